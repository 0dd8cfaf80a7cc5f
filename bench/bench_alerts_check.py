"""Time of one alert check (every rule) on a synthetic fleet, against the memory report.

The check runs after every collection, so it must stay a small part of the schedule's
hour. Measured on a store from ``lambdascope.synthetic.generate_store`` (N functions x
D days, CloudWatch metrics for 90 % of them), evaluated at the end of its data: a first
check (baseline recorded), a second check (nothing new), and, in the same run, the
14-day memory report's analysis (``rightsizing.recommend_all``) as the baseline figure.

Usage: python bench/bench_alerts_check.py [--functions 500] [--days 14]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lambdascope import rightsizing
from lambdascope.alerts import default_config, run_check
from lambdascope.alerts.rules import RULES, Context
from lambdascope.db import open_db
from lambdascope.synthetic import DEFAULT_END, generate_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=500)
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "fleet.db")
        started = time.perf_counter()
        generate_store(db, functions=args.functions, days=args.days)
        print(
            f"store: {args.functions} functions x {args.days} d in"
            f" {time.perf_counter() - started:.0f} s"
        )
        now = DEFAULT_END - 1
        started = time.perf_counter()
        rightsizing.recommend_all(db, now - 14 * 86400, now + 1)
        print(f"baseline, memory report analysis (14 d): {time.perf_counter() - started:.2f} s")
        ctx = Context(db, default_config(), now, None)
        for name, rule in RULES.items():
            started = time.perf_counter()
            found = rule(ctx)
            print(f"rule {name}: {time.perf_counter() - started:.2f} s, {len(found)} findings")
        for label in ("first check", "second check"):
            started = time.perf_counter()
            result = run_check(db, default_config(), now=now)
            print(
                f"{label}: {time.perf_counter() - started:.2f} s, {len(result.new)} new,"
                f" {result.ongoing} open, {result.baseline} baseline"
            )


if __name__ == "__main__":
    main()
