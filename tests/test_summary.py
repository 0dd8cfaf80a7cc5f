"""``lambdascope summary`` through the real CLI on real store files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner
from sqlite_utils import Database

from lambdascope.cli import cli
from lambdascope.db import function_id, open_db
from lambdascope.models import PlatformEvent
from lambdascope.store import rebuild_hourly_facts, store_events

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
UNTIL = "2026-01-02T00:00:00Z"


def report(i: int, ts: float, duration: float, memory: int, used: int) -> PlatformEvent:
    return PlatformEvent(
        kind="report",
        request_id=f"req-{i}",
        timestamp=ts,
        duration_ms=duration,
        billed_duration_ms=float(int(duration) + 1),
        memory_size_mb=memory,
        max_memory_used_mb=used,
    )


def fill(db: Database) -> None:
    """Two local-log functions: 'api' (memory changed 128 -> 256) and 'etl' (an OOM)."""
    api = function_id(db, "api")
    etl = function_id(db, "etl")
    api_events = [report(i, T0 + 600 * i, 10.0 * (i + 1), 128, 60 + i) for i in range(4)]
    api_events += [report(10 + i, T0 + 7200 + 60 * i, 5.0, 256, 70) for i in range(2)]
    etl_events = [
        report(20, T0 + 3600, 1500.0, 512, 200),
        PlatformEvent(
            kind="report",
            request_id="req-21",
            timestamp=T0 + 3660,
            duration_ms=900.0,
            billed_duration_ms=900.0,
            memory_size_mb=512,
            max_memory_used_mb=512,
            status="error",
            error_type="Runtime.OutOfMemory",
        ),
    ]
    with db.conn:
        store_events(db, api, api_events)
        store_events(db, etl, etl_events)
        rebuild_hourly_facts(db, api, [T0, T0 + 7200])
        rebuild_hourly_facts(db, etl, [T0 + 3600])


def run(db_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--db", str(db_path), "summary", "--until", UNTIL, *args])
    return result.exit_code, result.stdout, result.stderr


# Percentiles are histogram bucket midpoints (within 1 %; 900 ms reads 899.8), never above
# the exact maximum.
EXPECTED_TABLE = """\
FUNCTION  INVOCATIONS  ERRORS  TIMEOUTS  OOM  COLD  P50 MS   P95 MS   P99 MS   MAX MS  MEMORY MB  MAX USED  P99 USED  FIRST SEEN         LAST SEEN
api                 6       0         0    0     0    10.0     40.0     40.0     40.0    128,256        70        70  2026-01-01 00:00Z  2026-01-01 02:01Z
etl                 2       1         0    1     0   899.8  1,500.0  1,500.0  1,500.0        512       512       512  2026-01-01 01:00Z  2026-01-01 01:01Z
"""  # noqa: E501


def test_table(db: Database, db_path: Path) -> None:
    fill(db)
    code, out, err = run(db_path)
    assert (code, err) == (0, "")
    assert out == EXPECTED_TABLE


def test_json_and_csv(db: Database, db_path: Path) -> None:
    fill(db)
    code, out, _ = run(db_path, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["window"] == {"start": "2025-12-19T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
    api, etl = doc["functions"]
    assert api["function_name"] == "api"
    assert api["memory_mb"] == [128, 256]
    assert api["invocations"] == 6
    assert api["max_memory_used_mb"] == 70
    assert api["first_seen"] == "2026-01-01T00:00:00Z"
    assert api["last_seen"] == "2026-01-01T02:01:00Z"
    assert api["sources"] == ["local"]
    assert etl["out_of_memory"] == 1 and etl["errors"] == 1
    assert etl["duration_max_ms"] == 1500.0

    code, out, _ = run(db_path, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["function_name"] for r in rows] == ["api", "etl"]
    assert rows[0]["memory_mb"] == "128;256"
    assert rows[1]["out_of_memory"] == "1"
    assert rows[1]["last_seen"] == "2026-01-01T01:01:00Z"


def test_window_and_filters(db: Database, db_path: Path) -> None:
    fill(db)
    code, out, _ = run(db_path, "--function", "etl", "--format", "json")
    assert code == 0
    assert [f["function_name"] for f in json.loads(out)["functions"]] == ["etl"]
    # A window that ends before any invocation lists functions with zero activity.
    code, out, _ = run(
        db_path, "--since", "1h", "--until", "2026-01-01T00:00:00Z", "--format", "json"
    )
    assert code == 0
    assert [(f["function_name"], f["invocations"]) for f in json.loads(out)["functions"]] == [
        ("api", 0),
        ("etl", 0),
    ]
    code, out, err = run(db_path, "--region", "eu-west-1")
    assert (code, out) == (0, "")
    assert "No functions match" in err


def test_metrics_counts_and_locations(db: Database, db_path: Path) -> None:
    fid = function_id(db, "billing", "123456789012", "eu-west-1")
    db.conn.execute("UPDATE functions SET memory_mb = 1024 WHERE id = ?", (fid,))
    db.conn.execute(
        "INSERT INTO hourly_metrics (function_id, hour, invocations, errors, throttles,"
        " duration_p50_ms, duration_p95_ms, duration_p99_ms, duration_max_ms)"
        " VALUES (?, ?, 1200, 3, 7, 12.5, 40, 88.25, 120)",
        (fid, T0),
    )
    db.conn.commit()
    code, out, _ = run(db_path)
    assert code == 0
    _header, line = out.splitlines()
    assert line.split() == [
        "billing",
        "(123456789012/eu-west-1)",
        "1,200",
        "3",
        "0",
        "0",
        "0",
        "12.5",
        "40.0",
        "88.2",
        "120.0",
        "1024",
        "-",
        "-",
        "2026-01-01",
        "00:00Z",
        "2026-01-01",
        "00:00Z",
    ]
    code, out, _ = run(db_path, "--format", "json", "--account", "123456789012")
    assert json.loads(out)["functions"][0]["throttles"] == 7


def test_empty_store_and_user_errors(db_path: Path, tmp_path: Path) -> None:
    code, out, err = run(db_path)
    assert (code, out) == (0, "")
    assert err.startswith("No data yet")
    code, _, err = run(tmp_path / "missing.db")
    assert code == 1 and "no database at" in err and "Traceback" not in err
    open_db(db_path).conn.close()
    code, _, err = run(db_path, "--since", "forever")
    assert code == 2 and "not a duration" in err
    db = open_db(db_path)
    function_id(db, "x")
    db.conn.commit()
    code, _, err = run(db_path, "--function", "nope")
    assert code == 1 and err.strip() == "Error: unknown function: nope"


def test_unknown_memory_size_shows_as_dash(db: Database, db_path: Path) -> None:
    fid = function_id(db, "legacy")
    event = PlatformEvent(
        kind="report", request_id="r1", timestamp=T0, duration_ms=12.0, billed_duration_ms=13.0
    )
    with db.conn:
        store_events(db, fid, [event])
        rebuild_hourly_facts(db, fid, [T0])
    code, out, _ = run(db_path, "--format", "json")
    assert code == 0
    [row] = json.loads(out)["functions"]
    assert (row["invocations"], row["memory_mb"], row["duration_max_ms"]) == (1, [], 12.0)
    code, out, _ = run(db_path)
    assert out.splitlines()[1].split()[10] == "-"


def test_store_older_than_the_default_window_shows_its_latest_data(
    db: Database, db_path: Path
) -> None:
    fill(db)  # January 2026; "now" is later, so the default 14 days hold nothing
    result = CliRunner().invoke(cli, ["--db", str(db_path), "summary", "--format", "json"])
    assert result.exit_code == 0
    assert "no data in the last 14d" in result.stderr
    assert "2026-01-01T03:00:00Z" in result.stderr  # the window ends after the latest hour
    functions = json.loads(result.stdout)["functions"]
    assert [(f["function_name"], f["invocations"]) for f in functions] == [("api", 6), ("etl", 2)]
    # An explicit --until is respected even when it selects nothing.
    code, out, err = run(db_path, "--since", "1h", "--format", "json")
    assert code == 0 and "no data" not in err
    assert {f["invocations"] for f in json.loads(out)["functions"]} == {0}
