"""The same invocation is counted once, whatever the prune job deleted.

Prune removes the raw invocation rows that dedupe reports by request id; the hours it
empties are sealed, so a copy, a .gz or an overlapping export of logs already summarised
adds nothing, through every path that writes invocations.
"""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlite_utils import Database

from collectors.local import ingest_paths
from lambdascope.cli import cli
from lambdascope.db import function_id, open_db
from lambdascope.logparse import parse_line
from lambdascope.scheduler import prune_raw_invocations
from lambdascope.store import rebuild_hourly_facts, store_events
from lambdascope.timeutil import hour_floor

REPORT = (
    "{ts}\tREPORT RequestId: {rid}\tDuration: 12.50 ms\tBilled Duration: 13 ms\t"
    "Memory Size: 256 MB\tMax Memory Used: 100 MB\t\n"
)


def _log(start: datetime, count: int, prefix: str = "a") -> str:
    lines = []
    for n in range(count):
        stamp = (start + timedelta(seconds=30 * n)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        rid = f"{prefix}{n:07d}-aaaa-4bbb-8ccc-000000000000"
        lines.append(REPORT.format(ts=stamp, rid=rid))
    return "".join(lines)


def _summary_invocations(db_path: Path) -> int:
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "summary", "--since", "60d", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    return int(sum(row["invocations"] for row in json.loads(result.stdout)["functions"]))


def _ingest(db_path: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--db", str(db_path), "ingest", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_copy_and_gzip_after_prune_add_nothing(tmp_path: Path) -> None:
    db_path = tmp_path / "store.db"
    three_weeks_ago = hour_floor(int((datetime.now(UTC) - timedelta(days=21)).timestamp()))
    log = _log(datetime.fromtimestamp(three_weeks_ago, UTC), 50)
    first = tmp_path / "orders-api" / "day.log"
    first.parent.mkdir()
    first.write_text(log)
    assert "50 reports (50 new)" in _ingest(str(db_path), str(first))

    prune = CliRunner().invoke(
        cli, ["--db", str(db_path), "schedule", "--once", "--job", "prune"]
    )
    assert prune.exit_code == 0, prune.output
    db = open_db(db_path)
    assert db.conn.execute("SELECT COUNT(*) FROM invocations").fetchone() == (0,)

    copy = tmp_path / "copy" / "orders-api" / "day-copy.log"
    copy.parent.mkdir(parents=True)
    shutil.copy(first, copy)
    packed = tmp_path / "gz" / "orders-api" / "day.log.gz"
    packed.parent.mkdir(parents=True)
    packed.write_bytes(gzip.compress(log.encode()))
    for path in (copy, packed):
        output = _ingest(str(db_path), str(path))
        assert "50 reports (0 new, 50 in pruned hours already counted)" in output
    assert _summary_invocations(db_path) == 50
    # the prune left the raw rows of the sealed hours deleted: nothing came back
    assert db.conn.execute("SELECT COUNT(*) FROM invocations").fetchone() == (0,)


def test_new_invocations_outside_sealed_hours_still_count(db: Database, tmp_path: Path) -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    old = now - timedelta(days=20)
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "a.log").write_text(_log(old, 10, "a"))
    ingest_paths(db, [str(tmp_path / "f" / "a.log")])
    assert prune_raw_invocations(db, timedelta(days=14), now=now) == 10
    # an overlapping export: the ten of the sealed hour again, and ten of a later hour
    later = old + timedelta(hours=5)
    (tmp_path / "f" / "b.log").write_text(_log(old, 10, "a") + _log(later, 10, "b"))
    result = ingest_paths(db, [str(tmp_path / "f" / "b.log")])
    assert (result.added, result.sealed) == (10, 10)
    facts = db.conn.execute(
        "SELECT hour, invocations FROM hourly_facts WHERE source = 'local' ORDER BY hour"
    ).fetchall()
    assert facts == [
        (hour_floor(int(old.timestamp())), 10),
        (hour_floor(int(later.timestamp())), 10),
    ]


def test_filter_mode_path_neither_adds_nor_wipes_a_sealed_hour(db: Database) -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    old = now - timedelta(days=20)
    fid = function_id(db, "orders-api")
    events = [e for e in map(parse_line, _log(old, 5).splitlines()) if e is not None]
    with db.conn:
        assert store_events(db, fid, events) == 5
        rebuild_hourly_facts(db, fid, [int(e.timestamp or 0) for e in events])
    prune_raw_invocations(db, timedelta(days=14), now=now)
    with db.conn:
        # the collector's filter mode stores then rebuilds the hours it touched
        assert store_events(db, fid, events) == 0
        rebuild_hourly_facts(db, fid, [int(e.timestamp or 0) for e in events])
    assert db.conn.execute(
        "SELECT SUM(invocations) FROM hourly_facts WHERE source = 'local'"
    ).fetchone() == (5,)


def test_logs_and_insights_for_the_same_hour_count_once(db: Database, db_path: Path) -> None:
    start = datetime.now(UTC) - timedelta(days=2)
    fid = function_id(db, "orders-api")
    events = [e for e in map(parse_line, _log(start, 8).splitlines()) if e is not None]
    with db.conn:
        store_events(db, fid, events)
        rebuild_hourly_facts(db, fid, [int(e.timestamp or 0) for e in events])
        db.conn.execute(
            "INSERT INTO hourly_facts (function_id, hour, memory_mb, source, invocations)"
            " VALUES (?, ?, 256, 'insights', 8)",
            (fid, hour_floor(int(start.timestamp()))),
        )
    from lambdascope import rollup

    rollup.refresh(db)
    assert _summary_invocations(db_path) == 8


def test_migration_seals_hours_pruned_before_it_existed(db_path: Path) -> None:
    db = open_db(db_path)
    fid = function_id(db, "orders-api")
    hour = 1_700_000_000 // 3600 * 3600
    with db.conn:
        db.conn.execute(
            "INSERT INTO hourly_facts (function_id, hour, memory_mb, source, invocations)"
            " VALUES (?, ?, 256, 'local', 3), (?, ?, 256, 'local', 1)",
            (fid, hour, fid, hour + 3600),
        )
        # the second hour still has its one raw row: it was not pruned
        db.conn.execute(
            "INSERT INTO invocations (function_id, request_id, timestamp) VALUES (?, 'r', ?)",
            (fid, hour + 3700),
        )
        # a store from before the migration
        db.conn.execute("DROP TABLE sealed_hours")
        db.conn.execute("DELETE FROM _sqlite_migrations WHERE name = '0003_sealed_hours'")
    db.conn.close()
    migrated = open_db(db_path)
    assert migrated.conn.execute("SELECT function_id, hour FROM sealed_hours").fetchall() == [
        (fid, hour)
    ]


@pytest.mark.parametrize("keep", ["0d", "0h", "12h"])
def test_keep_raw_under_a_day_is_refused(db_path: Path, keep: str) -> None:
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "schedule", "--once", "--job", "prune", "--keep-raw", keep]
    )
    assert result.exit_code == 2
    assert "keep at least 1d" in result.output
    with pytest.raises(ValueError, match="less than 1 day"):
        prune_raw_invocations(open_db(db_path), timedelta(0), now=datetime.now(UTC))
