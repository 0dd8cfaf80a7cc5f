"""The alert check after each collection and the weekly digest in `schedule`/`serve`."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from lambdascope.alerts.jobs import AlertSettings
from lambdascope.cli import cli
from lambdascope.commands.schedule import _alerts_after, serve_alert_settings
from lambdascope.db import open_db
from lambdascope.timeutil import hour_floor, to_epoch, utcnow
from tests.alerts_store import add_function, add_hour
from tests.notify_receivers import http_receiver


def _oom_store(db_path: Path) -> None:
    db = open_db(db_path)
    fid = add_function(db, "checkout")
    add_hour(db, fid, hour_floor(to_epoch(utcnow())), durations=[10.0] * 30, out_of_memory=2)
    db.conn.close()


def test_the_check_after_a_collection_reports_and_never_raises(db_path: Path) -> None:
    _oom_store(db_path)
    with http_receiver() as hook:
        hook.status = 500
        line = _alerts_after(db_path, AlertSettings(notify=(hook.url(),)))
        assert line.startswith("; alerts: 1 new, 0 resolved, 0 open;")
        assert "1 failed (retried next check)" in line
        hook.status = 200
        line = _alerts_after(db_path, AlertSettings(notify=(hook.url(),)))
        assert line.startswith("; alerts: 0 new, 0 resolved, ")
        assert line.endswith("delivered to 1 destination(s)")
        assert len(hook.posts) == 1 and "checkout" in hook.posts[0]["message"]
    assert _alerts_after(db_path, AlertSettings(enabled=False)) == ""
    # a store that cannot be opened is reported, not raised
    assert _alerts_after(db_path.parent / "missing" / "x" / "\0", AlertSettings()).startswith(
        "; alerts: failed: "
    )


def test_schedule_once_sends_the_weekly_digest(db_path: Path) -> None:
    _oom_store(db_path)
    with http_receiver() as hook:
        args = ["--db", str(db_path), "schedule", "--once", "--job", "digest"]
        result = CliRunner().invoke(cli, [*args, "--notify", hook.url()])
        assert result.exit_code == 0, result.output
        assert len(hook.posts) == 1
        assert hook.posts[0]["title"].startswith("lambdascope: Weekly digest")
        again = CliRunner().invoke(cli, [*args, "--notify", hook.url()])
        assert again.exit_code == 0
        assert len(hook.posts) == 1  # once per week


def test_schedule_refuses_a_bad_rules_file_and_runs_no_digest_without_alerts(
    db_path: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[rules.oom]\nmin_count = -1\n")
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "schedule", "--once", "--job", "digest", "--rules", str(rules)]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "Error: rules.oom.min_count must be a whole number >= 0"
    )
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "schedule", "--once", "--job", "digest", "--no-alerts"]
    )
    assert result.exit_code == 2
    assert "no job to run" in result.output


def test_serve_links_alerts_to_its_own_dashboard_unless_told() -> None:
    mine = {"host": "127.0.0.1", "port": 8050, "notify": (), "dashboard_url": None}
    assert serve_alert_settings(mine).dashboard_url == "http://127.0.0.1:8050"
    ipv6 = {**mine, "host": "::1"}
    assert serve_alert_settings(ipv6).dashboard_url == "http://[::1]:8050"
    mine["dashboard_url"] = "https://lambdascope.example.com"
    assert serve_alert_settings(mine).dashboard_url == "https://lambdascope.example.com"
