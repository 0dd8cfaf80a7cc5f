"""Right-sizing against a hidden ground truth: held-out-style synthetic fleets.

Usage: python bench/bench_rightsizing.py [--fleets 3] [--functions 300] [--baseline DIR]

Each fleet comes from ``lambdascope.synthetic.plan_fleet`` (seeds 101, 102, ...): every
function's true memory need (99.99th percentile of its log-normal memory use) and true
duration at any size (I/O part + CPU part scaling with the CPU share) are known to this
script and hidden from the analysis, which sees only the store the generator writes
(28 days of hourly facts; the report reads the default 14-day window). Figures per
strategy of the current code, and for ``--baseline DIR`` (a checkout of an earlier commit,
run through its own ``lambdascope report memory --format json`` on the same stores; its
row at each function's current size is the one compared):

- savings share: true savings per 30 days of the recommendations / those of the best safe
  sizes (the cheapest size covering the true need, and the expected peak of the window's
  invocations, plus 10 % headroom: the report never recommends below a peak it saw; for
  balanced, the cheapest whose true duration stays within 1.25x of today's), over the
  truly over-provisioned functions;
- unsafe: recommendations below the true need (steps after out-of-memory errors counted
  apart: a bounded step may stop short of a need the errors cannot measure);
- finding accuracy: finding = truth (under-provisioned: configured below the true need;
  optimized: configured within two 64 MB steps above the best safe size; else
  over-provisioned), over functions with an answer (not insufficient-data);
- under-provisioned found; slowdowns > 2x: true duration at the recommendation over
  today's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

from lambdascope import rightsizing, synthetic
from lambdascope.db import open_db
from lambdascope.synthetic import SyntheticFunction
from lambdascope.timeutil import iso

GB_SECOND_USD = 0.0000166667
REQUEST_USD = 0.2e-6
DAYS = 28
WINDOW_DAYS = 14


def true_cost(fn: SyntheticFunction, memory_mb: int) -> float:
    """USD per invocation at ``memory_mb`` from the true mean duration."""
    return REQUEST_USD + memory_mb / 1024 * fn.duration_ms(memory_mb) / 1000 * GB_SECOND_USD


def round_up(memory_mb: float) -> int:
    return int(min(10240, max(128, math.ceil(memory_mb / 64) * 64)))


def expected_peak_mb(fn: SyntheticFunction, invocations: int) -> float:
    """The expected largest memory use among ``invocations`` (MB): its quantile 1 - 1/n."""
    if invocations < 2:
        return 0.0
    z = NormalDist().inv_cdf(1.0 - 1.0 / invocations)
    return fn.memory_median_mb * math.exp(fn.memory_sigma * z)


def truth(fn: SyntheticFunction, invocations: int = 0) -> dict[str, Any]:
    need = fn.true_need_mb
    safe = round_up(need * 1.1)
    # what a safe answer must also cover: the window's own peak (never recommended below)
    cover = round_up(max(need, expected_peak_mb(fn, invocations)) * 1.1)
    if fn.memory_mb < need:
        finding = "under-provisioned"
    elif fn.memory_mb - safe <= 128:
        finding = "optimized"
    else:
        finding = "over-provisioned"
    grid = [m for m in range(cover, 10241, 64)]
    today = fn.duration_ms(fn.memory_mb)
    best_cost = min(grid, key=lambda m: (true_cost(fn, m), m))
    within = [m for m in grid if fn.duration_ms(m) <= 1.25 * today] or [fn.memory_mb]
    best_balanced = min(within, key=lambda m: (true_cost(fn, m), m))
    return {
        "need": need,
        "finding": finding,
        "best": {"cost": best_cost, "balanced": best_balanced},
    }


@dataclass
class Tally:
    answered: int = 0
    insufficient: int = 0
    right: int = 0
    unsafe: int = 0
    unsafe_after_oom: int = 0
    under: int = 0
    under_found: int = 0
    slow_2x: int = 0
    savings: float = 0.0
    best_savings: float = 0.0
    confusion: dict[str, int] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "savings_share": round(self.savings / self.best_savings, 3)
            if self.best_savings
            else None,
            "unsafe": self.unsafe,
            "unsafe_after_oom_step": self.unsafe_after_oom,
            "finding_accuracy": round(self.right / self.answered, 3) if self.answered else None,
            "answered": self.answered,
            "insufficient_data": self.insufficient,
            "under_found": f"{self.under_found}/{self.under}",
            "slowdowns_over_2x": self.slow_2x,
            "wrong": dict(sorted(self.confusion.items())),
        }


def score(
    tally: Tally,
    fn: SyntheticFunction,
    answer: dict[str, Any] | None,
    invocations_30d: float,
    best_key: str,
) -> None:
    t = truth(fn, int(answer["invocations"]) if answer else 0)
    if answer is None or answer["finding"] == "insufficient-data":
        tally.insufficient += 1
        return
    tally.answered += 1
    finding = answer["finding"]
    if finding == t["finding"]:
        tally.right += 1
    else:
        key = f"{t['finding']} called {finding}"
        tally.confusion[key] = tally.confusion.get(key, 0) + 1
    if t["finding"] == "under-provisioned":
        tally.under += 1
        tally.under_found += finding == "under-provisioned"
    recommended = int(answer["recommended_memory_mb"] or fn.memory_mb)
    if recommended < t["need"]:
        stepped = answer.get("out_of_memory_errors", 0) > 0 and recommended > fn.memory_mb
        if stepped:
            tally.unsafe_after_oom += 1
        else:
            tally.unsafe += 1
    if fn.duration_ms(recommended) > 2 * fn.duration_ms(fn.memory_mb):
        tally.slow_2x += 1
    if t["finding"] == "over-provisioned":
        today = true_cost(fn, fn.memory_mb)
        tally.savings += invocations_30d * (today - true_cost(fn, recommended))
        tally.best_savings += invocations_30d * (today - true_cost(fn, t["best"][best_key]))


def current_answers(path: Path, end: int, strategy: str) -> dict[str, dict[str, Any]]:
    db = open_db(path, readonly=True)
    policy = rightsizing.Policy(strategy)  # type: ignore[arg-type]
    recs = rightsizing.recommend_all(db, end - WINDOW_DAYS * 86400, end, policy=policy)
    return {r.function_name: r.as_dict() for r in recs}


def baseline_answers(
    checkout: Path, path: Path, end: int, fleet: list[SyntheticFunction]
) -> dict[str, dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from lambdascope.cli import main; main()",
            "--db",
            str(path),
            "report",
            "memory",
            "--until",
            iso(end) or "",
            "--format",
            "json",
        ],
        env=env,
        cwd=checkout,  # python -c puts the working directory first on sys.path
        capture_output=True,
        text=True,
        check=True,
    )
    configured = {f.name: f.memory_mb for f in fleet}
    out: dict[str, dict[str, Any]] = {}
    for row in json.loads(result.stdout):
        if row["memory_mb"] == configured.get(row["function_name"]):
            out[row["function_name"]] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fleets", type=int, default=3)
    parser.add_argument("--functions", type=int, default=300)
    parser.add_argument("--baseline", type=Path, default=None)
    args = parser.parse_args()
    end = synthetic.DEFAULT_END
    tallies: dict[str, Tally] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.fleets):
            seed = 101 + n
            fleet = synthetic.plan_fleet(args.functions, seed, days=DAYS)
            path = Path(tmp) / f"fleet-{seed}.db"
            synthetic.generate_store(
                open_db(path), days=DAYS, seed=seed, end=end, fleet=fleet
            )
            runs: dict[str, dict[str, dict[str, Any]]] = {
                s: current_answers(path, end, s) for s in ("cost", "balanced", "speed")
            }
            if args.baseline is not None:
                runs["baseline"] = baseline_answers(args.baseline, path, end, fleet)
            for name, answers in runs.items():
                tally = tallies.setdefault(name, Tally())
                for fn in fleet:
                    if fn.kind == "stale":
                        continue
                    answer = answers.get(fn.name)
                    per_30d = fn.rate_per_hour * 24 * 30
                    best_key = "balanced" if name == "balanced" else "cost"
                    score(tally, fn, answer, per_30d, best_key)
    print(
        f"{args.fleets} fleets x {args.functions} functions (seeds 101..{100 + args.fleets}),"
        f" {DAYS} days of data, {WINDOW_DAYS}-day window; {time.perf_counter() - started:.0f} s"
        f" on {platform.machine()} with {os.cpu_count()} CPUs"
    )
    for name, tally in tallies.items():
        print(name, json.dumps(tally.row()))


if __name__ == "__main__":
    main()
