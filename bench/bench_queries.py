"""Benchmark: the shared read layer (lambdascope.queries) on a synthetic fleet.

Usage: python bench/bench_queries.py [--functions 2000] [--days 14] [--db /tmp/bench_q.db]
Generates the store once (lambdascope.synthetic; reused when the file exists), then
prints best-of-3 wall times, in the same run, of:
- baseline: one plain SQL pass summing invocations over the window (no merge rule);
- function_stats without histograms (counts, merged view);
- function_stats with the two histograms ``summary`` reads (duration, memory used);
- function_stats with all four histograms;
- fleet_timeseries (hourly), function_timeseries and memory_histogram of one function.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lambdascope import queries, synthetic
from lambdascope.db import open_db


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _best(times: int, func: Callable[[], Any]) -> tuple[float, Any]:
    best = float("inf")
    result: Any = None
    for _ in range(times):
        t0 = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--functions", type=int, default=2000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--db", default="/tmp/bench_queries.db")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = Path(args.db)
    if not path.exists():
        t0 = time.perf_counter()
        info = synthetic.generate_store(open_db(path), functions=args.functions, days=args.days)
        print(
            f"generated {info['functions']} functions x {args.days} days:"
            f" {info['hourly_facts']:,} hourly_facts, {info['hourly_metrics']:,} hourly_metrics"
            f" in {time.perf_counter() - t0:.1f} s ({path.stat().st_size / 1e6:.0f} MB)"
        )
    db = open_db(path, readonly=True)
    end = synthetic.DEFAULT_END
    start = end - args.days * 86400
    rows = db.conn.execute(
        "SELECT count(*) FROM hourly_facts WHERE hour >= ? AND hour < ?", (start, end)
    ).fetchone()[0]
    print(f"machine: nproc={os.cpu_count()} cpu={_cpu()}; window rows: {rows:,}")
    fid = db.conn.execute(
        "SELECT function_id FROM hourly_facts GROUP BY function_id ORDER BY count(*) DESC"
    ).fetchone()[0]
    cases: list[tuple[str, Callable[[], Any]]] = [
        (
            "baseline: plain SUM(invocations) pass",
            lambda: db.conn.execute(
                "SELECT function_id, memory_mb, sum(invocations) FROM hourly_facts"
                " WHERE hour >= ? AND hour < ? GROUP BY function_id, memory_mb",
                (start, end),
            ).fetchall(),
        ),
        (
            "function_stats(histograms=False)",
            lambda: queries.function_stats(db, start, end, histograms=False),
        ),
        (
            "function_stats(duration + memory histograms)",
            lambda: queries.function_stats(
                db, start, end, histograms=("duration_hist", "max_memory_used_hist")
            ),
        ),
        ("function_stats(all 4 histograms)", lambda: queries.function_stats(db, start, end)),
        (
            "function_stats(duration, memory), window ending 11 h after the data ('now')",
            lambda: queries.function_stats(
                db,
                start + 11 * 3600,
                end + 11 * 3600,
                histograms=("duration_hist", "max_memory_used_hist"),
            ),
        ),
        ("fleet_timeseries(hourly)", lambda: queries.fleet_timeseries(db, start, end)),
        ("function_timeseries(busiest)", lambda: queries.function_timeseries(db, fid, start, end)),
        ("memory_histogram(busiest)", lambda: queries.memory_histogram(db, fid, start, end)),
    ]
    for name, func in cases:
        seconds, result = _best(args.repeat, func)
        print(f"{name:<48} {seconds:8.3f} s  ({len(result):,} rows)")


if __name__ == "__main__":
    main()
