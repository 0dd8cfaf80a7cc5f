"""Precision and recall of the deploy regression detector on synthetic change points.

Each trial is one function deployed at a random minute and checked every hour for 6
hours after, as ``lambdascope.alerts.rules.evaluate_deploy`` reads the store: the hours
after the deploy's hour up to the check (the current hour partial) against the same
clock hours on the ``baseline_days`` days before. Durations are log-normal within an
hour (sigma 0.4); hours drift by a log-normal factor (the noise level) and follow a
daily cycle of +-10 %. A "change" multiplies every duration after the deploy by 1.2
(p95 +20 %); "no change" keeps them. Reported: the share of changes found by a check
within 6 h (recall), the median hours to detection, and the share of unchanged
deploys flagged by any check (false alarms).

Usage: python bench/bench_alerts_detector.py [--trials 100] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from lambdascope import histogram
from lambdascope.alerts import detector
from lambdascope.alerts.config import default_config

CHECKS = 6
WITHIN_SIGMA = 0.4


def hour_hist(rng: np.random.Generator, n: int, median_ms: float) -> dict[str, int]:
    logs = rng.normal(math.log(median_ms), WITHIN_SIGMA, size=n)
    keys, counts = np.unique(np.floor(logs / math.log(histogram.GAMMA)), return_counts=True)
    return {str(int(k)): int(c) for k, c in zip(keys, counts, strict=True)}


def trial(
    rng: np.random.Generator,
    *,
    rate: int,
    drift: float,
    change: float,
    params: dict[str, object],
    seed: int,
) -> int | None:
    """Hours after the deploy at which a check first flagged it (None: never in 6 h)."""
    base = 80.0
    phase = rng.uniform(0, 24)
    minute = rng.uniform(0, 1)  # the deploy's position inside its hour

    def hour_median(h: int) -> float:
        daily = 1 + 0.10 * math.sin(2 * math.pi * (h + phase) / 24)
        return base * daily * math.exp(rng.normal(0, drift)) if drift else base * daily

    # hours after the deploy's hour (hour 1, 2, ...); the deploy hour itself is mixed
    after_full = [
        hour_hist(rng, rng.poisson(rate), hour_median(h) * change) for h in range(1, CHECKS + 2)
    ]
    # the baseline: the same clock hours on the previous days
    days = max(1, int(params["baseline_days"]))  # type: ignore[call-overload]
    before_by_hour = {
        h: [hour_hist(rng, rng.poisson(rate), hour_median(h)) for _ in range(days)]
        for h in range(1, CHECKS + 2)
    }
    confidence = float(params["confidence"])  # type: ignore[arg-type]
    min_effect = float(params["min_effect"])  # type: ignore[arg-type]
    min_hours = int(params["min_after_hours"])  # type: ignore[call-overload]
    minimum = float(params["min_invocations"])  # type: ignore[arg-type]
    resamples = int(params["resamples"])  # type: ignore[call-overload]
    for check in range(1, CHECKS + 1):
        now = minute + check  # hours since the deploy hour started
        complete = math.floor(now) - 1  # complete hours after the deploy hour
        hours = list(after_full[:complete])
        fraction = now - math.floor(now)
        if fraction > 0:  # the current hour, partly there
            partial = after_full[complete]
            hours.append({k: round(c * fraction) for k, c in partial.items()})
        hours = [h for h in hours if histogram.count(h) > 0]
        before = [b for h in range(1, len(hours) + 1) for b in before_by_hour[h]]
        if len(hours) < min_hours:
            continue
        comparison = detector.compare_quantile(
            "p95_duration",
            before,
            hours,
            resamples=resamples,
            seed=seed + check,
            within_hour=bool(params.get("within_hour", False)),
        )
        if (
            comparison is not None
            and comparison.after_count >= minimum
            and detector.is_regression(comparison, confidence=confidence, min_effect=min_effect)
        ):
            return check
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--confidence", type=float, default=None)
    parser.add_argument("--min-effect", type=float, default=None)
    parser.add_argument("--baseline-days", type=int, default=None)
    parser.add_argument("--min-after-hours", type=int, default=None)
    parser.add_argument(
        "--within-hour", action="store_true", help="also resample invocations within hours"
    )
    args = parser.parse_args()
    params = dict(default_config().rule("deploy_regression"))
    if args.confidence is not None:
        params["confidence"] = args.confidence
    if args.min_effect is not None:
        params["min_effect"] = args.min_effect
    if args.baseline_days is not None:
        params["baseline_days"] = args.baseline_days
    params["within_hour"] = args.within_hour
    if args.min_after_hours is not None:
        params["min_after_hours"] = args.min_after_hours
    print(
        f"confidence {params['confidence']}, min_effect {params['min_effect']},"
        f" baseline_days {params['baseline_days']},"
        f" min_after_hours {params['min_after_hours']}, resamples {params['resamples']},"
        f" within_hour {params['within_hour']}, {args.trials} trials per cell"
    )
    print(
        "| invocations/h | hour drift (sigma) | recall (20 % p95) | median hours to find |"
        " false alarms (no change) |"
    )
    print("|---|---|---|---|---|")
    started = time.perf_counter()
    totals = {"found": 0, "changed": 0, "false": 0, "unchanged": 0}
    for rate in (60, 300, 1500):
        for drift in (0.0, 0.05, 0.10):
            rng = np.random.default_rng([args.seed, rate, int(drift * 100)])
            found: list[int] = []
            false = 0
            for i in range(args.trials):
                hit = trial(rng, rate=rate, drift=drift, change=1.2, params=params, seed=i)
                if hit is not None:
                    found.append(hit)
                if (
                    trial(rng, rate=rate, drift=drift, change=1.0, params=params, seed=i)
                    is not None
                ):
                    false += 1
            totals["found"] += len(found)
            totals["changed"] += args.trials
            totals["false"] += false
            totals["unchanged"] += args.trials
            median = statistics.median(found) if found else float("nan")
            print(
                f"| {rate} | {drift:.2f} | {len(found) / args.trials:.0%} | {median:.0f} |"
                f" {false / args.trials:.0%} |"
            )
    print(
        f"| all | | {totals['found'] / totals['changed']:.1%} | |"
        f" {totals['false'] / totals['unchanged']:.1%} |"
    )
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
