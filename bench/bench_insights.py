"""Projection error with Lambda Insights' CPU share, on a simulated fleet.

Each simulated function waits ``io`` ms and does ``cpu`` vCPU-ms of work per invocation
at its configured size; its true mean duration at another size is
``io + cpu / cpu_share(size) ** gamma`` (``gamma`` < 1: CPU work that does not speed up
fully with the share, e.g. memory-bound code). Insights events are generated at the
configured size with what real ones carry besides the work: per-invocation noise, CPU
time the runtime and the extension add (0-3 % of duration) and system CPU time of the
I/O (0-8 % of the waiting). For each function the projection at every other size from
128 to 3,008 MB is compared with the truth, against the baseline without evidence
(midpoint of the I/O-bound and CPU-bound bounds, lambdascope's projection until now).

Command: python bench/bench_insights.py [--functions 400] [--events 200] [--seed 7]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time

from lambdascope.evidence.insights import profile_from_sums, project
from lambdascope.pricing import cpu_share
from lambdascope.rightsizing import project_duration

SIZES = (128, 256, 384, 512, 768, 1024, 1536, 1769, 2048, 3008)


def simulate(
    functions: int,
    events: int,
    seed: int,
    *,
    gamma_min: float = 0.85,
    runtime_max: float = 0.03,
    sys_max: float = 0.08,
    max_step: float = 16.0,
) -> dict[str, float]:
    rng = random.Random(seed)
    errors_insights: list[float] = []
    errors_bounds: list[float] = []
    inside = 0
    widths: list[float] = []
    bound_widths: list[float] = []
    for _ in range(functions):
        memory = rng.choice((256, 512, 1024, 1536, 2048))
        total = math.exp(rng.uniform(math.log(20), math.log(2000)))  # ms at its size
        cpu_wall = rng.uniform(0.0, 1.0)  # share of duration on CPU at its size
        gamma = rng.uniform(gamma_min, 1.0)
        io = total * (1 - cpu_wall)
        cpu = total * cpu_wall * cpu_share(memory) ** gamma  # vCPU-ms of work
        runtime_share = rng.uniform(0.0, runtime_max)
        sys_share = rng.uniform(0.0, sys_max)

        def truth(size: int, io: float = io, cpu: float = cpu, gamma: float = gamma) -> float:
            return io + cpu / cpu_share(size) ** gamma

        d_sum = c_sum = s_sum = s_sq = 0.0
        for _ in range(events):
            noise = math.exp(rng.gauss(0.0, 0.25))
            duration = truth(memory) * noise
            cpu_time = (cpu + runtime_share * truth(memory) + sys_share * io) * noise
            share = min(1.0, cpu_time / duration / cpu_share(memory))
            d_sum += duration
            c_sum += cpu_time
            s_sum += share
            s_sq += share * share
        profile = profile_from_sums(memory, events, d_sum, c_sum, s_sum, s_sq)
        today = d_sum / events
        for size in SIZES:
            if size == memory or max(size / memory, memory / size) > max_step:
                continue
            real = truth(size) * today / truth(memory)  # same sampling noise as today's mean
            low, expected, high = project(today, memory, size, profile)
            bounds = project_duration(today, memory, size, None)
            errors_insights.append(abs(expected - real) / real)
            errors_bounds.append(abs(bounds.expected - real) / real)
            inside += low <= real <= high
            if bounds.upper > bounds.lower:
                widths.append((high - low) / (bounds.upper - bounds.lower))
            bound_widths.append((bounds.upper - bounds.lower) / bounds.expected)
    n = len(errors_insights)
    if not widths:
        widths = [0.0]
    q = statistics.quantiles
    return {
        "projections": n,
        "insights_median_error": statistics.median(errors_insights),
        "insights_p90_error": q(errors_insights, n=10)[-1],
        "bounds_median_error": statistics.median(errors_bounds),
        "bounds_p90_error": q(errors_bounds, n=10)[-1],
        "truth_inside_range": inside / n,
        "range_width_vs_bounds_median": statistics.median(widths),
        "range_width_vs_bounds_max": max(widths),
    }


SCENARIOS = {
    "ideal: CPU time is the work, scaling exact": {
        "gamma_min": 1.0,
        "runtime_max": 0.0,
        "sys_max": 0.0,
    },
    "runtime + I/O system CPU time, scaling exact": {"gamma_min": 1.0},
    "same + CPU work scaling as share^0.95..1": {"gamma_min": 0.95},
    "same + CPU work scaling as share^0.85..1": {"gamma_min": 0.85},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=400)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.perf_counter()
    print(
        "| scenario | sizes | projections | median error Insights / bounds |"
        " p90 error Insights / bounds | truth inside the range | range width vs bounds |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, params in SCENARIOS.items():
        for step, label in ((16.0, "all, 128-3,008 MB"), (2.0, "within 2x of today's")):
            r = simulate(args.functions, args.events, args.seed, max_step=step, **params)
            print(
                f"| {name} | {label} | {r['projections']:,} |"
                f" {r['insights_median_error']:.1%} / {r['bounds_median_error']:.1%} |"
                f" {r['insights_p90_error']:.1%} / {r['bounds_p90_error']:.1%} |"
                f" {r['truth_inside_range']:.0%} | {r['range_width_vs_bounds_median']:.0%} |"
            )
    print(f"\n{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
