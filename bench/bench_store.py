"""The store at organisation scale: file size, bytes per function-day per tier, the time of
``report memory`` and the dashboard's p95, on one store, plus the projection to 10,000
functions kept for a year.

Run it on the same store before and after an upgrade (the ``before`` figures with the old
code on the path, e.g. ``PYTHONPATH=/path/to/old/checkout``): everything it measures goes
through the command line and bench_dashboard.py, so it works with either version.

    python bench/bench_store.py --db /tmp/fleet-2000x90.db --label before --json out.json

Measured in the same run, as the baseline: one plain SQL pass summing invocations per
function over the report's 14-day window (what any read of that window costs at least).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lambdascope.synthetic import DEFAULT_END
from lambdascope.timeutil import iso

HERE = Path(__file__).resolve().parent
YEAR_DAYS = 365
PROJECTED_FUNCTIONS = 10_000


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cli(db: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "lambdascope.cli", "--db", str(db), *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def _stats(db: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_cli(db, "store", "stats", "--format", "json"))
    return data


def _report_seconds(db: Path, repeat: int) -> list[float]:
    """Wall time of ``report memory --since 14d`` (JSON), the window ending like 'now'
    (11 h after the data ends, so the first edge is a partial day)."""
    until = iso(DEFAULT_END + 11 * 3600) or ""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        _cli(db, "report", "memory", "--since", "14d", "--until", until,
             "--format", "json", "-o", os.devnull)  # fmt: skip
        times.append(time.perf_counter() - t0)
    return times


def _baseline_seconds(db: Path, repeat: int) -> list[float]:
    import sqlite3

    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        conn.execute(
            "SELECT function_id, SUM(invocations) FROM daily_facts WHERE day >= ? AND day < ?"
            " GROUP BY function_id",
            (DEFAULT_END - 14 * 86400, DEFAULT_END),
        ).fetchall()
        times.append(time.perf_counter() - t0)
    conn.close()
    return times


def _dashboard(db: Path, requests: int, cold: int) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            str(HERE / "bench_dashboard.py"),
            "--db",
            str(db),
            "--requests",
            str(requests),
            "--cold",
            str(cold),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _projection(tiers: dict[str, dict[str, Any]], keep_hourly_days: int) -> float | None:
    """Bytes for 10,000 functions x 1 year: the hourly tier for its span, the daily tier
    for every day (daily rows exist for the hourly span too)."""
    hourly = tiers.get("hourly", {}).get("bytes_per_function_day")
    daily = tiers.get("daily", {}).get("bytes_per_function_day")
    if hourly is None or daily is None:
        return None
    days_hourly = min(YEAR_DAYS, keep_hourly_days)
    return float(PROJECTED_FUNCTIONS * (hourly * days_hourly + daily * YEAR_DAYS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a generated store")
    parser.add_argument("--label", default="now")
    parser.add_argument("--repeat", type=int, default=3, help="report memory runs")
    parser.add_argument("--requests", type=int, default=20, help="dashboard requests per page")
    parser.add_argument("--cold", type=int, default=3)
    parser.add_argument(
        "--keep-hourly-days",
        type=int,
        default=YEAR_DAYS,
        help="hourly span for the 10,000 x 1 year projection (365: no tiers)",
    )
    parser.add_argument("--no-dashboard", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="append the figures here")
    args = parser.parse_args()

    stats = _stats(args.db)
    tiers = {t["name"]: t for t in stats["tiers"]}
    tables = {t["name"]: t for t in stats["tables"]}
    report = _report_seconds(args.db, args.repeat)
    baseline = _baseline_seconds(args.db, max(3, args.repeat))
    dash = None if args.no_dashboard else _dashboard(args.db, args.requests, args.cold)
    projected = _projection(tiers, args.keep_hourly_days)

    print(f"machine: nproc={os.cpu_count()} cpu={_cpu()} python={platform.python_version()}")
    print(f"[{args.label}] {args.db}: {stats['file_bytes'] / 1e9:.2f} GB,"
          f" {stats['function_days']:,} function-days,"
          f" {(stats['bytes_per_function_day'] or 0) / 1e3:.1f} KB per function-day")  # fmt: skip
    for name in ("raw", "hourly", "daily"):
        tier = tiers.get(name)
        if tier is None:
            continue
        per = tier.get("bytes_per_function_day")
        print(f"  tier {name:<6} {tier['bytes'] / 1e6:>10,.1f} MB"
              f"  {tier['function_days']:>9,} fn-days"
              f"  {'-' if per is None else f'{per / 1e3:.2f} KB'} per fn-day")  # fmt: skip
    for name in ("hourly_facts", "merged_hourly", "hourly_metrics", "daily_facts"):
        table = tables.get(name)
        if table is not None and table["rows"]:
            size = table["bytes"] + table["index_bytes"]
            print(f"  table {name:<15} {table['rows']:>11,} rows {size / 1e6:>10,.1f} MB"
                  f"  {size / table['rows']:>6.0f} B/row")  # fmt: skip
    print(f"  baseline SQL (14 d daily sums): median {statistics.median(baseline) * 1e3:.1f} ms")
    print(f"  report memory --since 14d: median {statistics.median(report):.2f} s"
          f" (runs: {', '.join(f'{s:.2f}' for s in report)})")  # fmt: skip
    if dash is not None:
        p95 = {page: round(v["p95_ms"], 1) for page, v in dash["pages"].items()}
        print(f"  dashboard p95 ms: {p95}; worst {max(p95.values()):.1f}")
    if projected is not None:
        print(f"  projected {PROJECTED_FUNCTIONS:,} functions x 1 year"
              f" (hourly kept {min(YEAR_DAYS, args.keep_hourly_days)} d):"
              f" {projected / 1e9:.1f} GB")  # fmt: skip
    if args.json is not None:
        record = {
            "label": args.label,
            "db": str(args.db),
            "stats": {k: v for k, v in stats.items() if k != "tables"},
            "tables": {k: v for k, v in tables.items() if v["rows"]},
            "report_s": report,
            "baseline_s": baseline,
            "dashboard": dash,
            "projected_bytes": projected,
        }
        with args.json.open("a") as out:
            out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
