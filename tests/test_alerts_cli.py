"""`lambdascope alerts check` end to end: ingest logs, check, deliver to a local receiver."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from lambdascope.cli import cli
from tests.notify_receivers import http_receiver

AT = datetime(2026, 12, 4, 15, 20, tzinfo=UTC)


def _write_logs(root: Path, name: str, at: datetime, *, oom_every: int = 0, n: int = 30) -> None:
    """Text REPORT lines (export shape `<ts> <message>`) in ``root/name/``."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        ts = (at + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        rid = uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/{i}")
        oom = oom_every and i % oom_every == 0
        status = "\tStatus: error\tError Type: Runtime.OutOfMemory" if oom else ""
        used = 512 if oom else 300
        lines.append(
            f"{ts} REPORT RequestId: {rid}\tDuration: 120.00 ms\tBilled Duration: 120 ms"
            f"\tMemory Size: 512 MB\tMax Memory Used: {used} MB{status}\n"
        )
    (folder / "000000.txt").write_text("".join(lines))


def _ingest_oom_fleet(tmp_path: Path, now: datetime) -> Path:
    logs = tmp_path / "logs"
    _write_logs(logs, "checkout", now - timedelta(minutes=30), oom_every=10)
    _write_logs(logs, "healthy", now - timedelta(minutes=30))
    db = tmp_path / "store.db"
    result = CliRunner().invoke(cli, ["--db", str(db), "ingest", str(logs)])
    assert result.exit_code == 0, result.output
    return db


def test_oom_in_the_last_hour_is_posted_once_naming_only_the_failing_function(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    db = _ingest_oom_fleet(tmp_path, now)
    runner = CliRunner()
    with http_receiver() as hook:
        first = runner.invoke(cli, ["--db", str(db), "alerts", "check", "--notify", hook.url()])
        assert first.exit_code == 0, first.output
        assert len(hook.posts) == 1
        post = hook.posts[0]
        assert "checkout" in post["title"] + post["message"]
        assert "healthy" not in post["title"] + post["message"]
        assert "3 out-of-memory errors" in post["message"]
        assert post["type"] == "failure"
        assert hook.paths == ["/hook"]

        second = runner.invoke(cli, ["--db", str(db), "alerts", "check", "--notify", hook.url()])
        assert second.exit_code == 0, second.output
        assert len(hook.posts) == 1
        assert "No new or resolved alerts." in second.output
        assert "still open (already announced)" in second.output


def test_table_output_lists_new_alerts_and_the_delivery(tmp_path: Path) -> None:
    db = _ingest_oom_fleet(tmp_path, AT)
    with http_receiver() as hook:
        result = CliRunner().invoke(
            cli,
            [
                "--db",
                str(db),
                "alerts",
                "check",
                "--at",
                AT.isoformat(),
                "--notify",
                hook.url(),
                "--rules",
                str(_rules(tmp_path, "[rules.newly_under_provisioned]\nenabled = false\n")),
            ],
        )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Alerts as of 2026-12-04T15:20:00Z",
        "STATE     RULE        FUNCTION  SUMMARY",
        "critical  oom         checkout  3 out-of-memory errors since 14:00Z at 512 MB"
        " (max used 512 MB)",
        "warning   error_rate  checkout  10.0 % errors (3 of 30) in the hour from 14:00Z"
        " (threshold 5.0 %)",
        f"json://127.0.0.1:{hook.port}/hook?method=POST&overflow=upstream&retry=0&wait=0.5"
        "&optional=no: 2 alert(s) sent",
    ]


def _rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return path


def test_json_format_and_dashboard_links(tmp_path: Path) -> None:
    db = _ingest_oom_fleet(tmp_path, AT)
    with http_receiver() as hook:
        result = CliRunner().invoke(
            cli,
            [
                "--db",
                str(db),
                "alerts",
                "check",
                "--at",
                AT.isoformat(),
                "--format",
                "json",
                "--notify",
                hook.url(),
                "--dashboard-url",
                "http://127.0.0.1:8050/",
            ],
        )
        assert result.exit_code == 0, result.output
        doc = json.loads(result.output)
        assert {(a["rule"], a["function_name"]) for a in doc["new"]} >= {("oom", "checkout")}
        assert doc["new"][0]["details"]["out_of_memory"] == 3
        assert doc["deliveries"][0]["error"] is None
        message = hook.posts[0]["message"]
        assert "http://127.0.0.1:8050/functions/checkout" in message
        assert "All alerts: http://127.0.0.1:8050/alerts" in message


def test_a_failing_destination_exits_2_and_is_retried_by_the_next_check(tmp_path: Path) -> None:
    db = _ingest_oom_fleet(tmp_path, AT)
    args = ["--db", str(db), "alerts", "check", "--at", AT.isoformat()]
    with http_receiver() as hook:
        hook.status = 503
        failed = CliRunner().invoke(cli, [*args, "--notify", hook.url()])
        assert failed.exit_code == 2
        assert "FAILED (Failed to send JSON POST notification" in failed.output
        assert "will retry on the next check" in failed.output
        assert hook.posts == []
        hook.status = 200
        retried = CliRunner().invoke(cli, [*args, "--notify", hook.url()])
        assert retried.exit_code == 0, retried.output
        assert len(hook.posts) == 1
        assert "checkout" in hook.posts[0]["message"]
        again = CliRunner().invoke(cli, [*args, "--notify", hook.url()])
        assert again.exit_code == 0
        assert len(hook.posts) == 1


def test_bad_rules_file_and_bad_url_end_in_one_line(tmp_path: Path) -> None:
    db = _ingest_oom_fleet(tmp_path, AT)
    runner = CliRunner()
    bad = _rules(tmp_path, "[rules.error_rate]\nthreshhold = 0.1\n")
    result = runner.invoke(cli, ["--db", str(db), "alerts", "check", "--rules", str(bad)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown key 'threshhold' in [rules.error_rate]")
    assert len(result.output.strip().splitlines()) == 1

    broken = _rules(tmp_path, "[rules\n")
    result = runner.invoke(cli, ["--db", str(db), "alerts", "check", "--rules", str(broken)])
    assert result.exit_code == 1
    assert "is not valid TOML" in result.output

    missing = tmp_path / "nope.toml"
    result = runner.invoke(cli, ["--db", str(db), "alerts", "check", "--rules", str(missing)])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"Error: cannot read rules file {missing}: No such file or directory"
    )

    result = runner.invoke(
        cli, ["--db", str(db), "alerts", "check", "--notify", "nosuch://token@host/x"]
    )
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: not a notification URL apprise understands: nosuch://host/..."
    )
    # nothing was recorded by the refused runs
    from lambdascope.db import open_db

    store = open_db(db)
    assert store.conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0
