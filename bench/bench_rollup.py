"""Time `rollup.refresh` over every function-day of a store (the daily histograms merged).

Usage: python bench/bench_rollup.py --db STORE [--repeat 3] [--merge sql|python]

Works on a copy of STORE (marks every function-day dirty, refreshes, best of --repeat).
``--merge python`` replaces the SQL aggregate ``hist_merge`` by a merge in Python of the
same rows (select, merge with lambdascope.histcodec, UPDATE per function x memory), for
comparing the two ways on the same store; it needs a store with byte histograms. Run it
from a checkout of the code to time (PYTHONPATH at that tree), e.g. an older one on a store
it wrote to time the JSON ``json_each`` merge.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from lambdascope import rollup
from lambdascope.db import open_db


def _python_merge() -> None:
    """Swap the histogram UPDATE of rollup._refresh_day for a merge in Python."""
    from lambdascope import histcodec, queries
    from lambdascope.queries import HIST_COLUMNS, Filters

    original = rollup._refresh_day

    def refresh_day(conn: sqlite3.Connection, day: int, ids: tuple[int, ...]) -> None:
        class NoMerge:
            def __init__(self) -> None:
                pass

            def step(self, value: object) -> None:
                pass

            def finalize(self) -> bytes:
                return b""

        conn.create_aggregate("hist_merge", 1, NoMerge)  # type: ignore[arg-type]
        original(conn, day, ids)
        where, params = queries.filter_sql(Filters(include_deleted=True, function_ids=ids))
        facts = queries.facts_histogram_sql(day, day + 86_400, where, HIST_COLUMNS)
        merged: dict[tuple[int, int], list[dict[str, int]]] = {}
        for row in conn.execute(facts, params):
            hists = merged.setdefault((row[0], row[1]), [{} for _ in HIST_COLUMNS])
            for hist, stored in zip(hists, row[2:], strict=True):
                for key, count in histcodec.decode(stored).items():
                    hist[key] = hist.get(key, 0) + count
        conn.executemany(
            f"UPDATE daily_facts SET {', '.join(f'{c} = ?' for c in HIST_COLUMNS)}"
            f" WHERE day = {day} AND function_id = ? AND memory_mb = ?",
            [(*(histcodec.encode(h) for h in hists), f, m) for (f, m), hists in merged.items()],
        )

    rollup._refresh_day = refresh_day  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--merge", choices=("sql", "python"), default="sql")
    args = parser.parse_args()
    if args.merge == "python":
        _python_merge()
    work = Path(tempfile.mkdtemp(prefix="lambdascope-rollup-"))
    copy = work / "store.db"
    shutil.copy(args.db, copy)
    times = []
    days = 0
    for _ in range(args.repeat):
        db = open_db(copy)
        with db.conn:
            db.conn.execute(
                "INSERT OR IGNORE INTO rollup_dirty SELECT DISTINCT function_id,"
                " hour - hour % 86400 FROM hourly_facts"
            )
        start = time.perf_counter()
        days = rollup.refresh(db)
        times.append(time.perf_counter() - start)
        db.conn.close()
    print(f"machine: nproc={os.cpu_count()}; merge: {args.merge}; function-days: {days:,}")
    print(f"rollup.refresh, every function-day: best {min(times):.2f} s of {args.repeat}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
