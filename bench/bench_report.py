"""Benchmark: ``lambdascope report memory`` on a generated 2,000 functions x 90 days store.

Usage: python bench/bench_report.py [--functions 2000] [--days 90] [--db /tmp/bench.db]
Generates the store once (lambdascope.synthetic), then times, in the same run:
- baseline: one plain SQL pass summing invocations over the 14-day window;
- the full ``report memory`` command (JSON, default --since 14d) through the CLI.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from lambdascope import synthetic
from lambdascope.db import open_db
from lambdascope.timeutil import iso


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _best(times: int, func: object) -> float:
    best = float("inf")
    for _ in range(times):
        t0 = time.perf_counter()
        func()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--functions", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--db", default="/tmp/lambdascope-bench-report.db")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    path = Path(args.db)
    if not path.exists():
        t0 = time.perf_counter()
        db = open_db(path)
        info = synthetic.generate_store(db, functions=args.functions, days=args.days)
        db.conn.close()
        print(f"generated {info['hourly_facts']} hourly facts in {time.perf_counter() - t0:.1f} s")
    end = synthetic.DEFAULT_END
    until = iso(end) or ""
    db = open_db(path, readonly=True)
    rows = db.conn.execute("SELECT COUNT(*) FROM hourly_facts").fetchone()[0]

    def baseline() -> None:
        db.conn.execute(
            "SELECT function_id, memory_mb, SUM(invocations) FROM hourly_facts"
            " WHERE hour >= ? AND hour < ? GROUP BY 1, 2",
            (end - 14 * 86400, end),
        ).fetchall()

    def cli(since: str, until: str = until) -> None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "lambdascope.cli",
                "--db",
                str(path),
                "report",
                "memory",
                "--since",
                since,
                "--until",
                until,
                "--format",
                "json",
                "-o",
                os.devnull,
            ],
            check=True,
            capture_output=True,
        )

    print(f"machine: nproc={os.cpu_count()} cpu={_cpu()} python={platform.python_version()}")
    print(f"store: {args.functions} functions x {args.days} days, {rows} hourly_facts rows")
    print(f"baseline SQL pass (14 d): {_best(args.repeat, baseline):.3f} s")
    # Whole days come from the daily rollup; the hours of a partial day at either edge are
    # read hour by hour (a partial last day with nothing stored after the window is read
    # as a whole day), so the window's alignment matters.
    cases = (
        ("window on day boundaries", end),
        ("both edges partial (until 13 h before the data ends)", end - 13 * 3600),
        ("until 11 h after the data ends, like 'now' (a 13 h first edge)", end + 11 * 3600),
    )
    for label, until_s in cases:
        seconds = _best(args.repeat, lambda u=until_s: cli("14d", iso(u) or ""))
        print(f"report memory --since 14d (CLI, wall), {label}: {seconds:.3f} s")


if __name__ == "__main__":
    main()
