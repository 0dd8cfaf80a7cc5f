"""The derived tables (merged_hourly, daily_facts) give the same answers as the base tables."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlite_utils import Database

from lambdascope import queries, rollup
from lambdascope.cli import cli
from lambdascope.db import open_db
from lambdascope.queries import Filters
from lambdascope.synthetic import generate_store

H = 3600
DAY = 86400
END = 1_767_225_600 + 3 * DAY + 7 * H  # not on a day boundary


def _same(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, path
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (path, a, b)
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


def _reads(db: Database, start: int, end: int) -> list[Any]:
    fid = db.conn.execute("SELECT min(id) FROM functions").fetchone()[0]
    return [
        queries.function_stats(db, start, end),
        queries.function_stats(db, start, end, Filters(regions=("eu-west-1",)), histograms=False),
        queries.fleet_timeseries(db, start, end),
        queries.fleet_timeseries(db, start, end, bucket_s=DAY),
        queries.function_timeseries(db, fid, start, end),
        queries.memory_histogram(db, fid, start, end),
        queries.activity(db),
    ]


@pytest.fixture
def fleet(db: Database) -> Database:
    generate_store(db, functions=12, days=4, seed=3, end=END, refresh_rollups=False)
    # Logs Insights rows: for some hours a copy of the local row (local must win), for
    # others the only facts of the hour (insights counts then).
    db.conn.execute(
        "INSERT INTO hourly_facts SELECT function_id, hour, memory_mb, 'insights',"
        " invocations + 1, errors, timeouts, out_of_memory, cold_starts, duration_ms_sum,"
        " duration_ms_max, billed_duration_ms_sum, max_memory_used_mb_max,"
        " init_duration_ms_sum, init_duration_ms_max, restore_duration_ms_sum,"
        " billed_restore_duration_ms_sum, duration_hist, billed_duration_hist,"
        " max_memory_used_hist, init_duration_hist FROM hourly_facts WHERE hour % (5 * 3600) = 0"
    )
    db.conn.execute("DELETE FROM hourly_facts WHERE source = 'local' AND hour % (10 * 3600) = 0")
    # and hours with CloudWatch metrics only
    db.conn.execute("DELETE FROM hourly_facts WHERE hour % (7 * 3600) = 0")
    db.conn.commit()
    return db


def test_rollup_reads_equal_base_table_reads(fleet: Database) -> None:
    windows = [
        (END - 4 * DAY, END),  # partial first day, three whole days, partial last day
        (END - 2 * DAY - 5 * H, END - 3 * H),
        (END - 20 * H, END - 15 * H),  # inside one day
        (END - 3 * DAY - 7 * H, END - 7 * H),  # exactly whole days
    ]
    assert rollup.pending(fleet) > 0
    before = [_reads(fleet, s, e) for s, e in windows]  # computed from the base tables
    assert rollup.refresh(fleet) > 0
    assert rollup.pending(fleet) == 0
    assert fleet.conn.execute("SELECT count(*) FROM daily_facts").fetchone()[0] > 0
    after = [_reads(fleet, s, e) for s, e in windows]
    _same(before, after)
    # the merged view is not trivial here: insights-only hours and metrics-only hours exist
    stats = before[0][0]
    assert any("insights" in s.sources for s in stats)
    assert any("metrics" in s.sources for s in stats)
    metrics_only_hours = fleet.conn.execute(
        "SELECT count(*) FROM merged_hourly WHERE source = 'metrics'"
    ).fetchone()[0]
    assert metrics_only_hours > 0
    assert rollup.refresh(fleet) == 0  # nothing left to do


def test_writes_mark_days_dirty_and_reads_stay_correct(fleet: Database) -> None:
    rollup.refresh(fleet)
    fid, hour = fleet.conn.execute(
        "SELECT function_id, max(hour) FROM hourly_facts WHERE source = 'local'"
    ).fetchone()
    fleet.conn.execute(
        "UPDATE hourly_facts SET invocations = invocations + 1000 WHERE function_id = ?"
        " AND hour = ? AND source = 'local'",
        (fid, hour),
    )
    fleet.conn.commit()
    assert fleet.conn.execute("SELECT function_id, day FROM rollup_dirty").fetchall() == [
        (fid, hour - hour % DAY)
    ]
    dirty = _reads(fleet, END - 4 * DAY, END)  # read while the day is dirty: base tables
    rollup.refresh(fleet)
    _same(dirty, _reads(fleet, END - 4 * DAY, END))
    total = sum(s.log_invocations for s in dirty[0] if s.function_id == fid)
    assert total >= 1000

    # A new inventory memory size moves metrics-only hours: their days are refreshed.
    metrics_only = fleet.conn.execute(
        "SELECT m.function_id FROM hourly_metrics m WHERE NOT EXISTS (SELECT 1 FROM"
        " hourly_facts h WHERE h.function_id = m.function_id AND h.hour = m.hour) LIMIT 1"
    ).fetchone()
    assert metrics_only is not None
    fleet.conn.execute("UPDATE functions SET memory_mb = 4242 WHERE id = ?", metrics_only)
    fleet.conn.commit()
    assert rollup.pending(fleet) > 0
    rollup.refresh(fleet)
    stats = queries.function_stats(
        fleet, END - 4 * DAY, END, Filters(function_ids=metrics_only), histograms=False
    )
    assert 4242 in {s.memory_mb for s in stats}


def test_deleting_a_function_removes_its_rollups(fleet: Database) -> None:
    rollup.refresh(fleet)
    fid = fleet.conn.execute("SELECT min(function_id) FROM daily_facts").fetchone()[0]
    fleet.conn.execute("DELETE FROM functions WHERE id = ?", (fid,))
    fleet.conn.commit()
    for table in ("daily_facts", "merged_hourly"):
        n = fleet.conn.execute(f"SELECT count(*) FROM {table} WHERE function_id = ?", (fid,))
        assert n.fetchone()[0] == 0


def test_marking_never_conflicts_whatever_the_writer_conflict_policy(db: Database) -> None:
    fid = db.conn.execute(
        "INSERT INTO functions (function_name) VALUES ('f') RETURNING id"
    ).fetchone()[0]
    # A conflict clause on the firing statement overrides the trigger's own: two writes
    # to the same day with OR FAIL / OR ROLLBACK must still just mark the day once.
    for policy, hour in (("FAIL", 0), ("ROLLBACK", 3600), ("ABORT", 7200)):
        db.conn.execute(
            f"INSERT OR {policy} INTO hourly_facts (function_id, hour, memory_mb, source)"
            " VALUES (?, ?, 128, 'local')",
            (fid, 86400 + hour),
        )
        db.conn.execute(
            f"INSERT OR {policy} INTO hourly_metrics (function_id, hour) VALUES (?, ?)",
            (fid, 86400 + hour),
        )
    db.conn.commit()
    assert db.conn.execute("SELECT function_id, day FROM rollup_dirty").fetchall() == [
        (fid, 86400)
    ]


def test_a_store_from_before_the_rollups_upgrades_on_the_next_write(
    db_path: Path, tmp_path: Path
) -> None:
    # A store as the previous version left it: no rollup tables, no 0002 migration.
    db = open_db(db_path)
    triggers = db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    for (name,) in triggers.fetchall():
        db.conn.execute(f"DROP TRIGGER {name}")
    for name in ("rollup_dirty", "merged_hourly", "daily_facts"):
        db.conn.execute(f"DROP TABLE {name}")
    # (nor the later histogram compaction, which rebuilds the daily_facts 0002 creates)
    db.conn.execute(
        "DELETE FROM _sqlite_migrations WHERE name IN ('0002_rollups', '0015_compact_histograms')"
    )
    db.conn.commit()
    generate_store(db, functions=4, days=2, seed=1, end=END, refresh_rollups=False)
    db.conn.close()

    # A reader opened before any writer runs sees no rollup tables and reads the base tables.
    old = open_db(db_path, readonly=True)
    before = queries.function_stats(old, END - 2 * DAY, END)
    old.conn.close()

    logs = tmp_path / "orders"
    logs.mkdir()
    (logs / "x.log").write_text("nothing to see\n")
    result = CliRunner().invoke(cli, ["--db", str(db_path), "ingest", str(logs)])
    assert result.exit_code == 0, result.output
    upgraded = open_db(db_path, readonly=True)
    assert rollup.pending(upgraded) == 0
    assert upgraded.conn.execute("SELECT count(*) FROM daily_facts").fetchone()[0] > 0
    after = [
        s
        for s in queries.function_stats(upgraded, END - 2 * DAY, END)
        if s.function_name != "orders"
    ]
    _same(before, after)
