"""Projection error with Lambda Insights' CPU share, on a simulated fleet.

The platform as documented: an execution environment of m MB gets m / 1,769 vCPUs (one
at 1,769 MB, 5.79 at 10,240 MB); code that keeps ``threads`` threads busy uses
``min(threads, m / 1,769)`` of them (single-threaded code gains nothing above 1,769 MB).
Each simulated function, configured at 128-10,240 MB, waits ``io`` ms and does ``cpu``
vCPU-ms of work per invocation; its true mean duration at another size is
``io + cpu / min(threads, m / 1769) ** gamma`` (``gamma`` < 1: CPU work that does not
speed up fully with the vCPUs, e.g. memory-bound code; 1 in the first scenarios). A
share of the fleet is multi-threaded (``--parallel-share``, 2-6 threads). Insights events
are generated at the configured size with what real ones carry besides the work:
per-invocation noise, CPU time the runtime and the extension add (0-3 % of duration) and
system CPU time of the I/O (0-8 % of the waiting), vCPU-ms that take no time of their
own while they fit in the allotment the work leaves idle (the waiting, unused vCPUs) and
lengthen the invocation beyond it (the platform gives no more than m / 1,769). For each
function the projection at every other size from 128 to 10,240 MB is compared with the
truth; baselines in the same run: the projection without evidence (midpoint of the
I/O-bound and CPU-bound bounds) and the Insights projection before the vCPU model
(``project_single_threaded``: CPU share capped at one vCPU for every function).

Command: python bench/bench_insights.py [--functions 400] [--events 200] [--seed 7]
[--parallel-share 0.3] [--overhead-beyond-allotment] [--from-metrics]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time

from lambdascope.evidence.insights import (
    CpuProfile,
    profile_from_hours,
    profile_from_sums,
    project,
)
from lambdascope.pricing import cpu_share, cpu_throughput, vcpus
from lambdascope.rightsizing import project_duration

SIZES = (128, 256, 384, 512, 768, 1024, 1536, 1769, 2048, 3008, 4096, 6144, 8192, 10240)
HOUR_EVENTS = 20  # --from-metrics: the events of one hour (200 events = 10 hours)
CONFIGURED = (128, 256, 512, 1024, 1536, 2048, 3008, 4096, 6144, 10240)


def project_single_threaded(
    current_ms: float, current_mb: int, target_mb: int, profile: CpuProfile
) -> tuple[float, float, float]:
    """The Insights projection before the vCPU model (commit fd66563), kept as a baseline."""
    ratio = cpu_share(current_mb) / cpu_share(target_mb)

    def at(share: float) -> float:
        share = min(1.0, max(0.0, share))
        return current_ms * ((1.0 - share) + share * ratio)

    low, high = (
        at(profile.wall_share - profile.share_below),
        at(profile.wall_share + profile.share_above),
    )
    return min(low, high), at(profile.wall_share), max(low, high)


def simulate(
    functions: int,
    events: int,
    seed: int,
    *,
    gamma_min: float = 0.85,
    runtime_max: float = 0.03,
    sys_max: float = 0.08,
    max_step: float = 100.0,
    parallel_share: float = 0.3,
    single_threaded_model: bool = False,
    overhead_beyond_allotment: bool = False,
    from_metrics: bool = False,
) -> dict[str, float]:
    rng = random.Random(seed)
    errors_insights: list[float] = []
    errors_bounds: list[float] = []
    by_step: dict[str, list[float]] = {}
    inside = 0
    widths: list[float] = []
    model = project_single_threaded if single_threaded_model else project
    for _ in range(functions):
        memory = rng.choice(CONFIGURED)
        total = math.exp(rng.uniform(math.log(20), math.log(2000)))  # ms at its size
        cpu_wall = rng.uniform(0.0, 1.0)  # share of duration on CPU at its size
        gamma = rng.uniform(gamma_min, 1.0)
        threads = rng.choice((2, 3, 4, 6)) if rng.random() < parallel_share else 1
        io = total * (1 - cpu_wall)
        cpu = total * cpu_wall * cpu_throughput(memory, threads) ** gamma  # vCPU-ms of work
        runtime_share = rng.uniform(0.0, runtime_max)
        sys_share = rng.uniform(0.0, sys_max)

        overhead = runtime_share * total + sys_share * io  # vCPU-ms besides the work

        def truth(
            size: int,
            io: float = io,
            cpu: float = cpu,
            gamma: float = gamma,
            t: int = threads,
            overhead: float = overhead,
        ) -> float:
            busy = cpu / cpu_throughput(size, t) ** gamma
            if overhead_beyond_allotment:  # the simulator before: overhead never takes time
                return io + busy
            # The overhead runs on the allotment the work leaves idle (while waiting, and
            # vCPUs the threads do not use); what does not fit there takes its own time.
            idle = vcpus(size) * io + max(0.0, vcpus(size) - cpu_throughput(size, t)) * busy
            return io + busy + max(0.0, overhead - idle) / vcpus(size)

        d_sum = c_sum = s_sum = s_sq = 0.0
        hours: list[tuple[float, float, float]] = []  # LambdaInsights metrics: hourly means
        for k in range(events):
            noise = math.exp(rng.gauss(0.0, 0.25))
            duration = truth(memory) * noise
            cpu_time = (cpu + overhead) * noise
            if k % HOUR_EVENTS == 0:
                hours.append((0.0, 0.0, 0.0))
            n, d, c = hours[-1]
            hours[-1] = (n + 1, (d * n + duration) / (n + 1), (c * n + cpu_time) / (n + 1))
            share = min(1.0, cpu_time / duration / cpu_share(memory))
            d_sum += duration
            c_sum += cpu_time
            s_sum += share
            s_sq += share * share
        profile = (
            profile_from_hours(memory, hours)
            if from_metrics
            else profile_from_sums(memory, events, d_sum, c_sum, s_sum, s_sq)
        )
        today = d_sum / events
        for size in SIZES:
            if size == memory or max(size / memory, memory / size) > max_step:
                continue
            real = truth(size) * today / truth(memory)  # same sampling noise as today's mean
            low, expected, high = model(today, memory, size, profile)
            bounds = project_duration(today, memory, size, None)
            errors_insights.append(abs(expected - real) / real)
            step = max(size / memory, memory / size)
            band = "<=2x" if step <= 2 else "2-4x" if step <= 4 else "4-8x" if step <= 8 else ">8x"
            side = "down" if size < memory else "up"
            by_step.setdefault(f"{side} {band}", []).append(errors_insights[-1])
            errors_bounds.append(abs(bounds.expected - real) / real)
            inside += low <= real <= high
            if bounds.upper > bounds.lower:
                widths.append((high - low) / (bounds.upper - bounds.lower))
    n = len(errors_insights)
    if not widths:
        widths = [0.0]
    q = statistics.quantiles
    return {
        **{f"median {key}": statistics.median(v) for key, v in sorted(by_step.items())},
        "projections": n,
        "insights_median_error": statistics.median(errors_insights),
        "insights_p90_error": q(errors_insights, n=10)[-1],
        "bounds_median_error": statistics.median(errors_bounds),
        "bounds_p90_error": q(errors_bounds, n=10)[-1],
        "truth_inside_range": inside / n,
        "range_width_vs_bounds_median": statistics.median(widths),
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
    parser.add_argument("--parallel-share", type=float, default=0.3)
    parser.add_argument(
        "--from-metrics",
        action="store_true",
        help="profiles from LambdaInsights metrics (hourly means of 20 events) instead of"
        " the events",
    )
    parser.add_argument(
        "--overhead-beyond-allotment",
        action="store_true",
        help="the simulator before: the runtime's and the I/O's CPU time never takes time,"
        " even beyond the vCPUs the size gives",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    print(
        "| scenario | sizes | model | projections | median error Insights / bounds |"
        " p90 error Insights / bounds | truth inside the range | range width vs bounds |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, params in SCENARIOS.items():
        for step, label in ((100.0, "all, 128-10,240 MB"), (2.0, "within 2x of today's")):
            for single, model in ((True, "before (1 vCPU cap)"), (False, "vCPU model")):
                r = simulate(
                    args.functions,
                    args.events,
                    args.seed,
                    max_step=step,
                    parallel_share=args.parallel_share,
                    single_threaded_model=single,
                    overhead_beyond_allotment=args.overhead_beyond_allotment,
                    from_metrics=args.from_metrics,
                    **params,
                )
                print(
                    f"| {name} | {label} | {model} | {r['projections']:,} |"
                    f" {r['insights_median_error']:.1%} / {r['bounds_median_error']:.1%} |"
                    f" {r['insights_p90_error']:.1%} / {r['bounds_p90_error']:.1%} |"
                    f" {r['truth_inside_range']:.0%} |"
                    f" {r['range_width_vs_bounds_median']:.0%} |"
                )
    print("\nMedian error by distance from today's size (runtime + I/O system CPU time):")
    for single, model in ((True, "before (1 vCPU cap)"), (False, "vCPU model")):
        r = simulate(
            args.functions,
            args.events,
            args.seed,
            gamma_min=1.0,
            parallel_share=args.parallel_share,
            single_threaded_model=single,
            overhead_beyond_allotment=args.overhead_beyond_allotment,
            from_metrics=args.from_metrics,
        )
        bands = ", ".join(f"{k[7:]} {v:.1%}" for k, v in r.items() if k.startswith("median "))
        print(f"- {model}: {bands}")
    print(f"\n{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
