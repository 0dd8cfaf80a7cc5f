"""A newcomer's mistakes (issue 13, points 4-14 and CSV cells): each ends in one clear
line and the right exit status, loses nothing stored, and never prints a traceback."""

from __future__ import annotations

import csv
import gc
import gzip
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lambdascope import rollup
from lambdascope.cli import cli
from lambdascope.db import open_db
from lambdascope.timeutil import parse_until, parse_window
from tests.unprivileged import as_unprivileged, shared_folder

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "logs"
RID = "8f5a6a2e-6c1f-4b0e-9f58-4a1d7a7b1c01"


def _report(request_id: str, stamp: str, status: str = "", memory: int = 128) -> str:
    tail = f"\tStatus: {status}" if status else ""
    return (
        f"{stamp} REPORT RequestId: {request_id}\tDuration: 10.00 ms\tBilled Duration: 10 ms"
        f"\tMemory Size: {memory} MB\tMax Memory Used: 60 MB{tail}\n"
    )


def _invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def _no_traceback(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception
    )
    assert "Traceback" not in result.output


# --- 4. a --db that is not SQLite: one line from every command, the file untouched ---

EVERY_COMMAND = [
    ["summary"],
    ["report", "memory"],
    ["report", "cost"],
    ["report", "stale"],
    ["report", "cold-starts"],
    ["power-tuning", "orders"],
    ["ingest", "--function", "orders", str(DATA / "text")],
    ["collect", "--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9"],
    ["schedule", "--once", "--job", "prune"],
    ["serve", "--port", "9"],
    ["dashboard", "--port", "9"],
    ["demo", "--no-serve"],
]


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: " ".join(c[:2]))
def test_a_file_that_is_not_sqlite_is_one_line_on_every_command(
    tmp_path: Path, command: list[str]
) -> None:
    store = tmp_path / "notes.db"
    content = b"my notes, not a database\n" * 200
    store.write_bytes(content)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("LAMBDASCOPE_DB", None)
    done = subprocess.run(
        [sys.executable, "-m", "lambdascope.cli", "--db", str(store), *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, done.stderr
    assert str(store) in lines[0]
    assert store.read_bytes() == content  # nothing written into someone else's file


# --- 5. a store in a folder the user cannot write to is read read-only ---


def _ingested_store(folder: Path) -> Path:
    store = folder / "lambdascope.db"
    logs = folder / "logs" / "orders"
    logs.mkdir(parents=True)
    lines = [_report(f"r-{i}", f"2024-05-01T10:00:{i:02d}.000Z") for i in range(5)]
    (logs / "a.log").write_text("".join(lines))
    assert _invoke("--db", str(store), "ingest", str(folder / "logs")).exit_code == 0
    gc.collect()  # the command's connection, closed as when its process ends
    return store


def test_a_store_in_a_read_only_folder_is_read(tmp_path: Path) -> None:
    # the modules the command needs, imported as root (the other user may not read them)
    warm = _ingested_store(tmp_path)
    assert _invoke("--db", str(warm), "summary", "--since", "1000d").exit_code == 0
    assert _invoke("--db", str(warm), "report", "memory", "--since", "1000d").exit_code == 0
    with shared_folder() as folder:
        store = _ingested_store(folder)
        assert not Path(f"{store}-wal").exists()  # closed cleanly: everything in the file
        for path in folder.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        folder.chmod(0o555)

        def read() -> tuple[int, str, int, str]:
            summary = _invoke("--db", str(store), "summary", "--since", "1000d", "--format", "json")
            report = _invoke("--db", str(store), "report", "memory", "--since", "1000d")
            return summary.exit_code, summary.stdout, report.exit_code, report.output

        code, out, report_code, report_out = as_unprivileged(read)
        assert code == 0, out
        assert json.loads(out)["functions"][0]["invocations"] == 5
        assert report_code == 0 and "Traceback" not in report_out
        assert sorted(p.name for p in folder.iterdir()) == ["lambdascope.db", "logs"]


def test_a_read_only_store_with_pending_pages_says_why_it_cannot_be_read(tmp_path: Path) -> None:
    warm = _ingested_store(tmp_path)
    assert _invoke("--db", str(warm), "summary", "--since", "1000d").exit_code == 0
    with shared_folder() as folder:
        store = _ingested_store(folder)
        writer = sqlite3.connect(store)
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("INSERT INTO settings VALUES ('note', 'pending')")
        writer.commit()
        copy = folder / "copy"
        copy.mkdir()
        for suffix in ("", "-wal"):  # as a crashed writer leaves them, without -shm
            shutil.copy(f"{store}{suffix}", f"{copy / store.name}{suffix}")
        writer.close()
        for path in copy.iterdir():
            path.chmod(0o644)
        copy.chmod(0o555)

        def read() -> tuple[int, str]:
            result = _invoke("--db", str(copy / store.name), "summary", "--since", "1000d")
            return result.exit_code, result.output

        code, out = as_unprivileged(read)
        assert code == 1
        assert out.count("\n") == 1 and out.startswith("Error: cannot read ")
        assert "lambdascope.db-wal" in out and "Traceback" not in out


# --- 6. unreadable folders inside an ingested tree are named, exit 1 ---


def test_unreadable_folders_are_named_and_the_rest_is_ingested(tmp_path: Path) -> None:
    _ingested_store(tmp_path)  # imports the ingest path as root
    with shared_folder() as folder:
        logs = folder / "logs"
        (logs / "orders").mkdir(parents=True)
        (logs / "locked" / "deeper").mkdir(parents=True)
        (logs / "orders" / "a.log").write_text(_report("r-1", "2024-05-01T10:00:00.000Z"))
        hidden = logs / "locked" / "deeper" / "b.log"
        hidden.write_text(_report("r-2", "2024-05-01T10:00:01.000Z"))
        store_dir = folder / "store"
        store_dir.mkdir()
        store_dir.chmod(0o777)
        (logs / "locked").chmod(0o000)
        store = store_dir / "s.db"

        def ingest() -> tuple[int, str, int, str, int, str]:
            tree = _invoke("--db", str(store), "ingest", str(logs))
            single = _invoke("--db", str(store), "ingest", "--function", "f", str(hidden))
            parse = _invoke("parse", str(logs))
            for result in (tree, single, parse):
                _no_traceback(result)
            return (
                tree.exit_code,
                tree.output,
                single.exit_code,
                single.output,
                parse.exit_code,
                parse.stderr,
            )

        code, out, single_code, single_out, parse_code, parse_err = as_unprivileged(ingest)
        assert (parse_code, parse_err) == (
            1,
            f"Error: cannot read {logs / 'locked'}: Permission denied\n",
        )
        assert code == 1
        assert f"Error: cannot read {logs / 'locked'}: Permission denied\n" in out
        assert "1 reports (1 new)" in out  # the readable file was ingested all the same
        assert single_code == 1
        assert single_out.startswith(f"Error: cannot read {hidden}: Permission denied\n")


# --- 7. --since / --until ---

NOW = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)


def test_window_forms_and_their_limits() -> None:
    assert parse_until("2026-11-04", NOW) == datetime(2026, 11, 4, tzinfo=UTC)
    assert parse_until("yesterday", NOW) == datetime(2026, 12, 3, tzinfo=UTC)
    assert parse_until("today", NOW) == datetime(2026, 12, 4, tzinfo=UTC)
    assert parse_until("36h", NOW) == datetime(2026, 12, 3, 3, 30, tzinfo=UTC)
    assert parse_until("2026-11-04T10:00Z", NOW) == datetime(2026, 11, 4, 10, tzinfo=UTC)
    start, end = parse_window("7d", "2026-11-04", NOW)
    assert end - start == 7 * 86400
    assert datetime.fromtimestamp(end, UTC) == parse_until("2026-11-04", NOW)
    for since, until, message in [
        ("0d", None, "--since: 0d is an empty window"),
        ("99999999d", None, "--since: 99999999d is longer than 100 years"),
        ("999999999999999999999d", None, "--since: 999999999999999999999d is longer"),
        ("7d", "not-a-date", "--until: cannot read 'not-a-date' as a time: use a date (2026-11-04"),
        ("7d", "99999-01-01", "--until: cannot read '99999-01-01'"),
        ("36500d", "1990-01-01", "the window would start before 1970-01-01"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_window(since, until, NOW)


@pytest.mark.parametrize(
    "command",
    [
        ["summary"],
        ["report", "memory"],
        ["report", "cost"],
        ["report", "stale"],
        ["report", "cold-starts"],
        ["power-tuning", "x"],
    ],
)
def test_window_options_on_the_command_line(db_path: Path, command: list[str]) -> None:
    for args, needle in [
        (["--since", "99999999999999d"], "longer than 100 years"),
        (["--since", "0d"], "empty window"),
        (["--until", "someday"], "now, today, yesterday, or a time ago"),
    ]:
        result = _invoke("--db", str(db_path), *command, *args)
        _no_traceback(result)
        assert result.exit_code == 2
        assert needle in result.output
    for until in ("yesterday", "2026-11-04"):
        result = _invoke("--db", str(db_path), *command, "--until", until)
        _no_traceback(result)
        assert result.exit_code in (0, 1), result.output  # 1: power-tuning's unknown function
        assert "--until" not in result.output


# --- 8. files without any Lambda line create no function ---


def test_empty_binary_and_plain_files_create_no_function(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "empty.log").write_bytes(b"")
    (folder / "binary.log").write_bytes(bytes(range(256)) * 20)
    (folder / "plain.log").write_text("hello\nno lambda here\n")
    for name, function in [("empty.log", "X"), ("binary.log", "Y"), ("plain.log", None)]:
        args = ["--db", str(store), "ingest", str(folder / name)]
        if function:
            args[3:3] = ["--function", function]
        result = _invoke(*args)
        assert result.exit_code == 0
        assert result.stderr == (
            f"warning: no Lambda REPORT or timeout line in {folder / name}: nothing stored for it\n"
        )
        assert ", 0 functions in " in result.stdout
    rows = sqlite3.connect(store).execute("SELECT function_name FROM functions").fetchall()
    assert rows == []
    # a file with events next to them still makes its function
    (folder / "real.log").write_text(_report(RID, "2024-05-01T10:00:00.000Z"))
    assert _invoke("--db", str(store), "ingest", "--function", "X", str(folder)).exit_code == 0
    rows = sqlite3.connect(store).execute("SELECT function_name FROM functions").fetchall()
    assert rows == [("X",)]


# --- 9 and 13. parse: truncated gzip, the stored function name, milliseconds ---


def test_parse_warns_on_a_truncated_gzip_as_ingest_counts_it(tmp_path: Path) -> None:
    text = "".join(_report(f"r-{i}", f"2024-05-01T10:00:{i:02d}.000Z") for i in range(40))
    whole = gzip.compress(text.encode())
    cut = tmp_path / "orders" / "cut.log.gz"
    cut.parent.mkdir()
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    result = _invoke("parse", str(cut))
    assert result.exit_code == 0
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert 0 < len(events) < 40
    assert result.stderr == (
        f"warning: {cut} is a truncated gzip file: the events before the cut are shown\n"
    )
    ingest = _invoke("--db", str(tmp_path / "s.db"), "ingest", str(cut))
    assert f"{len(events)} reports" in ingest.stdout and "truncated_gzip 1" in ingest.stdout


def test_parse_shows_the_function_name_ingest_stores_and_milliseconds(tmp_path: Path) -> None:
    result = _invoke("parse", str(DATA / "json" / "json_format.log"))
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert {e["function_name"] for e in events} == {"json"}
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
    assert all(stamp.fullmatch(e["timestamp"]) for e in events)
    assert "2024-05-01T12:01:00.000Z" in [e["timestamp"] for e in events]
    store = tmp_path / "s.db"
    _invoke("--db", str(store), "ingest", str(DATA / "json"))
    stored = sqlite3.connect(store).execute("SELECT function_name FROM functions").fetchall()
    assert stored == [("json",)]
    named = _invoke("parse", "--function", "api", str(DATA / "json" / "json_format.log"))
    assert {json.loads(line)["function_name"] for line in named.stdout.splitlines()} == {"api"}


# --- 10. the group's --db is the demo's store ---


def test_demo_uses_the_global_db_and_never_an_existing_store(db_path: Path, tmp_path: Path) -> None:
    before = db_path.read_bytes()
    result = _invoke("--db", str(db_path), "demo", "--no-serve")
    assert result.exit_code == 1
    assert result.output.endswith(
        f"Error: {db_path} exists and is not a demo database: choose another --db\n"
    )
    assert db_path.read_bytes() == before
    from lambdascope.commands.demo import _global_db

    with cli.make_context("lambdascope", ["--db", str(db_path), "demo"]) as ctx:
        ctx.obj = {"db_path": db_path}  # as the group's callback sets it
        assert _global_db(ctx) == db_path
    os.environ["LAMBDASCOPE_DB"] = str(db_path)
    try:  # the main store named by the environment is never the demo's
        with cli.make_context("lambdascope", ["demo"]) as ctx:
            ctx.obj = {"db_path": db_path}
            assert _global_db(ctx) is None
    finally:
        del os.environ["LAMBDASCOPE_DB"]


# --- 11. values that cannot be AWS's ---


def test_ingest_warns_on_values_aws_would_not_have(tmp_path: Path) -> None:
    result = _invoke(
        "--db",
        str(tmp_path / "s.db"),
        "ingest",
        "--account",
        "12345",
        "--region",
        "us-east1",
        "--function",
        "my function!",
        str(DATA / "text"),
    )
    assert result.exit_code == 0
    assert result.stderr == (
        "warning: --account '12345' is not a 12-digit AWS account id\n"
        "warning: --region 'us-east1' is not an AWS region name such as us-east-1\n"
        "warning: function name 'my function!' is not a Lambda function name"
        " (1-64 letters, digits, - and _)\n"
    )
    quiet = _invoke(
        "--db",
        str(tmp_path / "s.db"),
        "ingest",
        "--account",
        "123456789012",
        "--region",
        "us-gov-west-1",
        "--function",
        "orders-api_v2",
        str(DATA / "json"),
    )
    assert quiet.exit_code == 0 and quiet.stderr == ""


# --- 12. errors count what CloudWatch's Errors counts ---


def _summary_row(store: Path) -> dict[str, Any]:
    result = _invoke("--db", str(store), "summary", "--since", "1000d", "--format", "json")
    assert result.exit_code == 0, result.output
    row: dict[str, Any] = json.loads(result.stdout)["functions"][0]
    return row


def test_errors_include_timeouts_from_logs_as_from_metrics(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    log = tmp_path / "orders" / "a.log"
    log.parent.mkdir()
    log.write_text(
        _report("r-ok", "2024-05-01T10:00:01.000Z")
        + _report("r-err", "2024-05-01T10:00:02.000Z", "error")
        + "2024-05-01T10:00:03.000Z\tr-to-1\tTask timed out after 3.00 seconds\n"
        + _report("r-to-1", "2024-05-01T10:00:03.000Z", "timeout")
    )
    assert _invoke("--db", str(store), "ingest", str(log)).exit_code == 0
    logs_only = _summary_row(store)
    assert (logs_only["invocations"], logs_only["errors"], logs_only["timeouts"]) == (3, 2, 1)
    # the same hour as CloudWatch counts it: Errors = 2 (the timeout included)
    db = open_db(store)
    with db.conn:
        db.conn.execute(
            "INSERT INTO hourly_metrics (function_id, hour, invocations, errors, throttles)"
            " SELECT id, 1714557600, 3, 2, 0 FROM functions"
        )
    rollup.refresh(db)
    with_metrics = _summary_row(store)
    assert (with_metrics["invocations"], with_metrics["errors"]) == (3, 2)


def test_upgrade_recomputes_the_rollups_of_days_with_timeouts(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    log = tmp_path / "orders" / "a.log"
    log.parent.mkdir()
    log.write_text(
        "2024-05-01T10:00:03.000Z\tr-to\tTask timed out after 3.00 seconds\n"
        + _report("r-to", "2024-05-01T10:00:03.000Z", "timeout")
    )
    _invoke("--db", str(store), "ingest", str(log))
    db = open_db(store)
    with db.conn:  # a store written before 0007: its rollups counted errors without timeouts
        db.conn.execute("UPDATE daily_facts SET errors = 0")
        db.conn.execute("UPDATE merged_hourly SET errors = 0")
        db.conn.execute("DELETE FROM _sqlite_migrations WHERE name = '0007_cli_robustness'")
    db.conn.close()
    assert _summary_row(store)["errors"] == 0  # as the old rollups say
    db = open_db(store)  # applies 0007
    assert rollup.pending(db) == 1
    assert _summary_row(store)["errors"] == 1  # read from the base tables meanwhile
    rollup.refresh(db)
    assert db.conn.execute("SELECT errors FROM daily_facts").fetchone()[0] == 1
    assert _summary_row(store)["errors"] == 1


# --- 14. REPORT lines without a RequestId are named, not dropped in silence ---


def test_reports_without_request_id_are_counted_as_skipped(tmp_path: Path) -> None:
    log = tmp_path / "orders" / "a.log"
    log.parent.mkdir()
    log.write_text(
        "2024-05-01T10:00:00.000Z REPORT Duration: 1.00 ms\tBilled Duration: 1 ms"
        "\tMemory Size: 128 MB\tMax Memory Used: 40 MB\n"
        "2024-05-01T10:00:01.000Z\\tREPORT RequestId: r-1\\tDuration: 2.00 ms"
        "\\tBilled Duration: 2 ms\\tMemory Size: 128 MB\\tMax Memory Used: 41 MB\\n\n"
    )
    result = _invoke("--db", str(tmp_path / "s.db"), "ingest", str(log))
    assert result.exit_code == 0
    assert "1 reports (1 new), skipped 1 lines (no_request_id 1)" in result.stdout
    parsed = [json.loads(line) for line in _invoke("parse", str(log)).stdout.splitlines()]
    assert [(e["request_id"], e["duration_ms"]) for e in parsed] == [(None, 1.0), ("r-1", 2.0)]


# --- CSV cells that a spreadsheet would run ---

FORMULAS = ["=HYPERLINK(\"http://x\")", "+cmd", "-2+3", "@SUM(A1)"]


def _formula_store(tmp_path: Path) -> Path:
    store = tmp_path / "s.db"
    for n, name in enumerate(FORMULAS):
        log = tmp_path / f"f{n}.log"
        log.write_text(_report(f"r-{n}", "2024-05-01T10:00:00.000Z"))
        _invoke("--db", str(store), "ingest", "--function", name, str(log))
    return store


@pytest.mark.parametrize(
    "command",
    [["summary"], ["report", "memory"], ["report", "cost"], ["report", "cold-starts"]],
)
def test_csv_cells_never_start_a_formula(tmp_path: Path, command: list[str]) -> None:
    store = _formula_store(tmp_path)
    result = _invoke("--db", str(store), *command, "--since", "1000d", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    names = sorted(row["function_name"] for row in rows)
    assert names == sorted("'" + name for name in FORMULAS)
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "@")), row
            assert not value.startswith("-") or re.fullmatch(r"-\d+(\.\d+)?", value), row


@pytest.mark.parametrize("command", [["summary"], ["report", "memory"]])
def test_filters_warn_on_values_aws_would_not_have(db_path: Path, command: list[str]) -> None:
    result = _invoke(
        "--db", str(db_path), *command, "--account", "1234", "--region", "eu_west_1"
    )
    assert result.exit_code == 0
    assert (
        "warning: --account '1234' is not a 12-digit AWS account id\n"
        "warning: --region 'eu_west_1' is not an AWS region name such as us-east-1\n"
    ) in result.stderr


def test_collect_refuses_an_empty_window(db_path: Path) -> None:
    result = _invoke("--db", str(db_path), "collect", "--since", "0d")
    assert result.exit_code == 2
    assert "Invalid value for --since: 0d is an empty window" in result.output
