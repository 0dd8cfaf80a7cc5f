"""Does the synthetic store's layout flatter the bytes per function-day? The generator
writes function by function, so every table's rows arrive in key order and pages fill up.
A real store is written hour by hour (every function's new hour lands in the middle of
the tables' key order), its rollups are refreshed after each collection, and the nightly
job moves the oldest day out of the hourly tier and vacuums.

This builds the same synthetic fleet twice: once as bench_store.py's stores are built
(function by function, then one tier move and an incremental vacuum), once replayed in
hour order from the first copy with a rollup refresh after every hour and a tier move +
incremental vacuum after every UTC midnight; then prints bytes per function-day per tier
and table for both.

    python bench/replay_cadence.py --functions 300 --days 60 --keep-hourly-days 20
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlite_utils import Database

from lambdascope import rollup
from lambdascope.db import open_db
from lambdascope.queries import latest_data_hour
from lambdascope.storeadmin import incremental_vacuum, stats
from lambdascope.synthetic import generate_store
from lambdascope.tiers import Spans, move
from lambdascope.timeutil import DAY_S, HOUR_S

# the tables of the hourly and daily tiers (emptied for the replay, measured in both)
_TIER_TABLES = ("hourly_facts", "hourly_metrics", "merged_hourly", "daily_facts", "daily_metrics")


def _tier_move(db: Database, keep_hourly_days: int, now: int) -> None:
    """The nightly job's tier move and incremental vacuum at ``now``."""
    spans = Spans(keep_raw=timedelta(days=14), keep_hourly=timedelta(days=keep_hourly_days))
    move(db, spans, now=datetime.fromtimestamp(now, UTC))
    incremental_vacuum(db)


def _report(label: str, path: Path) -> None:
    db = open_db(path)
    try:
        found = stats(db, path)
        conn = db.conn
        print(f"[{label}] {path.stat().st_size / 1e6:.1f} MB")
        for tier in found.tiers:
            if tier.function_days:
                per = tier.bytes / tier.function_days / 1024
                days = tier.function_days
                print(f"  tier {tier.name:7s} {days:8,} fn-days {per:6.2f} KB per fn-day")
        for table in found.tables:
            if table.name in _TIER_TABLES and table.rows:
                unused = conn.execute(
                    "SELECT sum(unused) * 1.0 / sum(pgsize) FROM dbstat WHERE name = ?",
                    (table.name,),
                ).fetchone()[0]
                print(
                    f"  table {table.name:15s} {table.rows:10,} rows"
                    f" {table.bytes / table.rows:6.0f} B/row"
                    f"  {unused * 100:4.1f} % of its pages unused"
                )
    finally:
        db.conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=300)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--keep-hourly-days", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=None, help="where the two stores go")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="replay-"))
    ordered, replayed = work / "function-order.db", work / "hour-order.db"
    print(f"machine: nproc={os.cpu_count()} python={platform.python_version()} dir={work}")

    t0 = time.perf_counter()
    db = open_db(ordered)
    generate_store(db, functions=args.functions, days=args.days)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    print(f"generated in function order: {time.perf_counter() - t0:.1f} s")

    # the replay copy: same inventory, no hourly or derived rows, compact to start with
    shutil.copy(ordered, replayed)
    db = open_db(replayed)
    conn = db.conn
    with conn:
        for table in (*_TIER_TABLES, "rollup_dirty"):
            conn.execute(f"DELETE FROM {table}")
    conn.execute("VACUUM")
    conn.execute("ATTACH ? AS src", (str(ordered),))
    hours = [
        h
        for (h,) in conn.execute(
            "SELECT hour FROM src.hourly_facts UNION SELECT hour FROM src.hourly_metrics ORDER BY 1"
        )
    ]
    t0 = time.perf_counter()
    moves = 0
    for hour in hours:
        with conn:
            for table in ("hourly_facts", "hourly_metrics"):
                conn.execute(
                    f"INSERT INTO {table} SELECT * FROM src.{table} WHERE hour = ?"
                    " ORDER BY function_id",
                    (hour,),
                )
        rollup.refresh(db)
        if (hour + HOUR_S) % DAY_S == 0:  # the nightly job after the day's last hour
            conn.execute("DETACH src")
            _tier_move(db, args.keep_hourly_days, hour + HOUR_S)
            conn.execute("ATTACH ? AS src", (str(ordered),))
            moves += 1
    conn.execute("DETACH src")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(
        f"replayed {len(hours):,} hours with a refresh each and {moves} nightly tier moves:"
        f" {time.perf_counter() - t0:.1f} s"
    )

    db = open_db(ordered)
    latest = latest_data_hour(db)
    assert latest is not None
    _tier_move(db, args.keep_hourly_days, latest + HOUR_S)
    db.conn.close()
    _report("function order, one tier move", ordered)
    _report("hour order, nightly tier moves", replayed)


if __name__ == "__main__":
    main()
