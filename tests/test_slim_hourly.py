"""Migration 0018: merged_hourly without CloudWatch's percentiles, no index by hour on the
hourly tables. Every read answers as before, and no read of the dashboards, reports,
alerts or the tier move scans a whole hourly table."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lambdascope import queries, rightsizing, tiers
from lambdascope.alerts import rules
from lambdascope.alerts.config import default_config
from lambdascope.db import open_db
from tests.histstores import END, build_store
from tests.test_compaction import answers

DAY = 86400
HOURLY = ("hourly_facts", "hourly_metrics", "merged_hourly")
PERCENTILES = queries.CW_PERCENTILES


def to_pre_0018(path: Path) -> None:
    """Give ``path`` the hourly tables a store had before migration 0018: merged_hourly
    with CloudWatch's percentiles copied in, and the three by-hour indexes."""
    conn = sqlite3.connect(path)
    with conn:
        for column in PERCENTILES:
            conn.execute(f"ALTER TABLE merged_hourly ADD COLUMN {column} REAL")
        conn.execute(
            f"UPDATE merged_hourly SET ({', '.join(PERCENTILES)}) = (SELECT"
            f" {', '.join('hm.' + c for c in PERCENTILES)} FROM hourly_metrics hm"
            " WHERE hm.function_id = merged_hourly.function_id AND hm.hour = merged_hourly.hour)"
        )
        conn.execute("CREATE INDEX merged_hourly_by_hour ON merged_hourly (hour)")
        conn.execute("CREATE INDEX hourly_facts_by_hour ON hourly_facts (hour)")
        conn.execute("CREATE INDEX hourly_metrics_by_hour ON hourly_metrics (hour)")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = '0018_slim_hourly'")
    conn.close()


def _schema(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    rows = conn.execute(
        "SELECT name, replace(replace(sql, '\"', ''), '_slim', '') FROM sqlite_master"
        " WHERE tbl_name IN ('hourly_facts', 'hourly_metrics', 'merged_hourly')"
        " AND sql IS NOT NULL ORDER BY name"
    ).fetchall()
    conn.close()
    return rows


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("slim") / "built.db"
    build_store(path)
    return path


def _old_copy(built: Path, tmp_path: Path) -> Path:
    old = tmp_path / "old.db"
    shutil.copy(built, old)
    to_pre_0018(old)
    return old


def test_the_migration_keeps_every_answer_and_gives_the_new_schema(
    built: Path, tmp_path: Path
) -> None:
    old = _old_copy(built, tmp_path)
    conn = sqlite3.connect(old)
    stored = conn.execute("SELECT count(*), count(duration_p95_ms) FROM merged_hourly").fetchone()
    conn.close()
    assert stored[0] > 100 and stored[1] > 50  # the old form copies the percentiles
    reference = answers(built)
    assert answers(old) == reference  # the old form, read by this version
    open_db(old).conn.close()  # migrates
    assert answers(old) == reference
    assert _schema(old) == _schema(built)
    conn = sqlite3.connect(old)
    indexes = {
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            " AND tbl_name IN ('hourly_facts', 'hourly_metrics', 'merged_hourly')"
        )
    }
    assert indexes == {"merged_hourly_by_function"}
    assert conn.execute("SELECT count(*) FROM merged_hourly").fetchone()[0] == stored[0]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


# Opens the store in another process, which dies (os._exit: no rollback, no clean-up)
# when the migration is about to rename the rebuilt table, the old one already dropped.
_KILLED = """
import os, sqlite3, sys
connect = sqlite3.connect
def dying(*args, **kwargs):
    conn = connect(*args, **kwargs)
    conn.set_trace_callback(
        lambda sql: os._exit(9) if sql.startswith("ALTER TABLE merged_hourly_slim") else None
    )
    return conn
sqlite3.connect = dying
from lambdascope.db import open_db
open_db(sys.argv[1])
"""


def test_a_migration_killed_midway_leaves_the_old_table_and_runs_again(
    built: Path, tmp_path: Path
) -> None:
    old = _old_copy(built, tmp_path)
    done = subprocess.run([sys.executable, "-c", _KILLED, str(old)], check=False)
    assert done.returncode == 9
    conn = sqlite3.connect(old)
    names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "merged_hourly_by_hour" in names and "merged_hourly_slim" not in names
    conn.close()
    reference = answers(built)
    assert answers(old) == reference
    open_db(old).conn.close()
    assert answers(old) == reference
    assert _schema(old) == _schema(built)


_ALIAS = re.compile(
    r"\b(?:FROM|JOIN)\s+(" + "|".join(HOURLY) + r")\b(?:\s+(?:AS\s+)?(?!(?:WHERE|LEFT|JOIN|ON"
    r"|GROUP|ORDER|LIMIT|UNION|INNER|CROSS|USING|WINDOW)\b)(\w+))?",
    re.IGNORECASE,
)


def _full_scans(conn: sqlite3.Connection, statements: list[str]) -> list[tuple[str, str]]:
    """(statement, plan line) for each plan step that scans a whole hourly table or one of
    its indexes."""
    found = []
    for sql in statements:
        names = set()
        for table, alias in _ALIAS.findall(sql):
            names.add(table)
            if alias:
                names.add(alias)
        if not names:
            continue
        for *_ids, detail in conn.execute("EXPLAIN QUERY PLAN " + sql):
            # a SCAN, or a SEARCH with no constraint in brackets, reads the whole b-tree
            match = re.match(r"(SCAN|SEARCH) (\w+)(.*)", detail)
            if match and match.group(2) in names and "(" not in match.group(3):
                found.append((sql[:300], detail))
    return found


def test_no_read_scans_a_whole_hourly_table(built: Path, tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    shutil.copy(built, path)
    db = open_db(path)
    conn = db.conn
    fid = int(conn.execute("SELECT min(function_id) FROM hourly_facts").fetchone()[0])
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    windows = ((END - 3 * DAY, END), (END - 2 * DAY - 5 * 3600, END - 7 * 3600))
    for start, end in windows:
        queries.function_stats(db, start, end)
        queries.fleet_timeseries(db, start, end)
        queries.fleet_timeseries(db, start, end, bucket_s=DAY)
        queries.function_timeseries(db, fid, start, end)
        queries.memory_histogram(db, fid, start, end)
        queries.function_health(db, start, end)
        queries.health_timeseries(db, start, end)
        queries.functions_with_several_memory_sizes(db, start, end)
        rightsizing.read_memory_stats(db, start, end, rightsizing.StatsFilter())
        rules.deploys(db, start, end)
    queries.activity(db)
    queries.latest_data_hour(db)
    queries.data_freshness(db)
    rules.evaluate(db, default_config(), END)
    spans = tiers.Spans(keep_raw=tiers.MIN_KEEP_HOURLY, keep_hourly=tiers.MIN_KEEP_HOURLY)
    now = datetime.fromtimestamp(END, UTC)
    tiers.move(db, spans, now=now, dry_run=True)
    tiers.move(db, spans, now=now)
    conn.set_trace_callback(None)
    read = [s for s in statements if re.match(r"\s*(SELECT|WITH|INSERT|DELETE|UPDATE)", s, re.I)]
    assert len(read) > 50
    assert any("merged_hourly" in s for s in read) and any("hourly_metrics" in s for s in read)
    assert _full_scans(conn, read) == []
    # and the check itself finds a scan where there is one
    for sql in (
        "SELECT max(hour) FROM hourly_facts",
        "SELECT count(*) FROM hourly_metrics m WHERE hour < 5",
        "SELECT count(*) FROM merged_hourly WHERE hour < 5",
    ):
        assert len(_full_scans(conn, [sql])) == 1, sql
    conn.close()
