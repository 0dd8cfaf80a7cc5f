"""Evidence for the demo store that moto cannot serve: a Power Tuning run, Compute
Optimizer recommendations, provisioned concurrency and Lambda Insights on a few functions.

Each goes through the same code as real data: the Power Tuning output is the state
machine's output shape read by ``lambdascope power-tuning import``'s parser; Compute
Optimizer items and provisioned-concurrency configurations are API-reference shapes read
by the collectors' transform and load steps; the provisioned-concurrency metrics are
hourly rows as the collector stores them; Lambda Insights performance events are JSON
lines in the documented event shape, read and stored by ``lambdascope insights import``'s
functions, and LambdaInsights metrics are hourly rows stored by the metrics source's
load step. The values are derived from each function's
stored behaviour, so the answers side by side are plausible, not measured.
"""

from __future__ import annotations

import base64
import json
import math
import random
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from collectors import capacity_providers, compute_optimizer, insights_metrics, provisioned
from collectors.aws import Store
from lambdascope.evidence import insights, power_tuning
from lambdascope.pricing import cpu_share
from lambdascope.timeutil import HOUR_S

Say = Callable[[str], None]


def _busiest(db: Database, start: int, end: int, limit: int) -> list[tuple[Any, ...]]:
    """(id, name, account, region, memory MB, mean duration ms, peak memory MB, calls/h)."""
    return db.conn.execute(
        "SELECT f.id, f.function_name, f.account_id, f.region, f.memory_mb,"
        " SUM(h.duration_ms_sum) / MAX(1, SUM(h.invocations)),"
        " MAX(h.max_memory_used_mb_max), SUM(h.invocations) / MAX(1, COUNT(DISTINCT h.hour))"
        " FROM functions f JOIN hourly_facts h ON h.function_id = f.id"
        " WHERE h.hour >= ? AND h.hour < ? AND f.memory_mb IS NOT NULL"
        " AND h.memory_mb = f.memory_mb"
        " GROUP BY f.id HAVING SUM(h.invocations) > 100"
        " ORDER BY SUM(h.invocations) DESC LIMIT ?",
        (start, end, limit),
    ).fetchall()


def _visualization(points: list[tuple[int, float, float]]) -> str:
    sizes = struct.pack(f"<{len(points)}h", *(p[0] for p in points))
    times = struct.pack(f"<{len(points)}f", *(p[1] for p in points))
    costs = struct.pack(f"<{len(points)}f", *(p[2] for p in points))
    return "https://lambda-power-tuning.show/#" + ";".join(
        base64.b64encode(b).decode() for b in (sizes, times, costs)
    )


def _power_tuning_output(memory_mb: int, mean_ms: float, cpu_fraction: float) -> str:
    """A state machine output for a function that is ``cpu_fraction`` CPU-bound."""
    io_ms = mean_ms * (1 - cpu_fraction)
    cpu_ms = mean_ms * cpu_fraction * cpu_share(memory_mb)
    points = []
    for size in sorted({128, 256, 512, 1024, 1536, memory_mb}):
        duration = io_ms + cpu_ms / cpu_share(size)
        points.append((size, duration, 2.1e-9 * size / 128 * math.ceil(duration)))
    best = min(points, key=lambda p: p[2])
    return json.dumps(
        {
            "power": best[0],
            "cost": best[2],
            "duration": best[1],
            "stateMachine": {
                "executionCost": 0.00045,
                "lambdaCost": sum(p[2] for p in points) * 50,
                "visualization": _visualization(points),
            },
        }
    )


def _co_item(row: tuple[Any, ...], end: int) -> dict[str, Any]:
    _, name, account, region, memory, mean_ms, peak, calls = row
    option = max(128, math.ceil((peak or 128) * 1.3 / 64) * 64)
    finding = "Optimized" if option >= memory else "NotOptimized"
    saved = max(0.0, (memory - option) / 1024 * (mean_ms or 0) / 1000 * calls * 720 * 1.66667e-5)
    return {
        "functionArn": f"arn:aws:lambda:{region}:{account}:function:{name}",
        "functionVersion": "$LATEST",
        "accountId": account,
        "currentMemorySize": memory,
        "numberOfInvocations": int(calls * 24 * 14),
        "lookbackPeriodInDays": 14.0,
        "lastRefreshTimestamp": datetime.fromtimestamp(end - 6 * HOUR_S, UTC),
        "finding": finding,
        "findingReasonCodes": [] if finding == "Optimized" else ["MemoryOverprovisioned"],
        "memorySizeRecommendationOptions": []
        if finding == "Optimized"
        else [
            {
                "rank": 1,
                "memorySize": option,
                "projectedUtilizationMetrics": [
                    {"name": "Duration", "statistic": "Expected", "value": mean_ms or 0.0}
                ],
                "savingsOpportunity": {
                    "savingsOpportunityPercentage": 100.0 * (memory - option) / memory,
                    "estimatedMonthlySavings": {"currency": "USD", "value": round(saved, 2)},
                },
            }
        ],
        "currentPerformanceRisk": "VeryLow",
    }


def seed_evidence(db: Database, *, now_s: int, say: Say) -> None:
    """Add each kind of evidence to a few of the demo store's busiest functions."""
    end = now_s - now_s % HOUR_S
    start = end - 14 * 86400
    rows = _busiest(db, start, end, 6)
    if len(rows) < 3:
        say("evidence: too few busy functions in the demo store; none added")
        return
    store = Store(db)
    tuned = rows[0]
    output = _power_tuning_output(int(tuned[4]), float(tuned[5] or 100.0), cpu_fraction=0.7)
    run = power_tuning.parse_run(output)
    ref = power_tuning.FunctionRef(str(tuned[1]), str(tuned[2]), str(tuned[3]))
    power_tuning.store_run(db, run, ref, now=end)
    by_target: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows[1:]:
        by_target.setdefault((str(row[2]), str(row[3])), []).append(_co_item(row, end))
    for (account, region), items in by_target.items():
        compute_optimizer.load(store, account, region, compute_optimizer.transform(items), end)
    _seed_provisioned(store, rows[1], start, end)
    say(
        f"evidence: Power Tuning run for {tuned[1]}, Compute Optimizer answers for"
        f" {len(rows) - 1} functions, provisioned concurrency on {rows[1][1]}:live"
    )


def _seed_provisioned(store: Store, row: tuple[Any, ...], start: int, end: int) -> None:
    fid, name, account, region, _, mean_ms, _, calls = row
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}:live"
    item = {
        "FunctionArn": arn,
        "RequestedProvisionedConcurrentExecutions": 20,
        "AllocatedProvisionedConcurrentExecutions": 20,
        "AvailableProvisionedConcurrentExecutions": 20,
        "Status": "READY",
    }
    provisioned.load_configs(store, int(fid), provisioned.transform_configs([item]), end)
    rng = random.Random(16)
    hours: dict[tuple[int, str, int], dict[str, float]] = {}
    duration = float(mean_ms or 100.0)
    for hour in range(start, end, HOUR_S):
        busy = 0.5 + 0.5 * math.sin((hour % 86400) / 86400 * 2 * math.pi)
        invocations = max(1.0, float(calls) * (0.5 + busy) * rng.uniform(0.9, 1.1))
        peak = max(1.0, round(invocations * duration / 3_600_000 * 4 + 3 * busy))
        hours[(int(fid), "live", hour)] = {
            "concurrent_executions_max": peak,
            "provisioned_executions_max": min(20.0, peak),
            "utilization_max": min(1.0, peak / 20),
            "provisioned_invocations": invocations,
            "invocations": invocations,
            "duration_avg_ms": duration,
        }
    provisioned.load_hours(store, hours)


def seed_managed_instances(
    db: Database, functions: list[tuple[str, str, str]], *, now_s: int, say: Say
) -> None:
    """Put ``functions`` (name, account, region) on a Lambda Managed Instances capacity
    provider per account x region, as the inventory records it, and give each provider 14
    days of hourly utilisation over two instance types, stored through the collector's
    aggregate and load steps (a daily cycle: CPU busier than memory)."""
    end = now_s - now_s % HOUR_S
    rng = random.Random(14)
    store = Store(db)
    by_target: dict[tuple[str, str], list[str]] = {}
    for name, account, region in functions:
        by_target.setdefault((account, region), []).append(name)
    for (account, region), names in sorted(by_target.items()):
        provider = f"demo-fleet-{region}"
        arn = f"arn:aws:lambda:{region}:{account}:capacity-provider:{provider}"
        with db.conn:
            db.conn.executemany(
                "UPDATE functions SET capacity_provider_arn = ?, memory_gib_per_vcpu = 2.0,"
                " max_concurrency_per_environment = 16 WHERE account_id = ? AND region = ?"
                " AND function_name = ?",
                [(arn, account, region, name) for name in names],
            )
        values: capacity_providers.Values = {}
        for hour in range(end - 14 * 86400, end, HOUR_S):
            busy = 0.5 + 0.5 * math.sin((hour % 86400) / 86400 * 2 * math.pi)
            for instance_type, scale in (("m7g.xlarge", 1.0), ("c7g.2xlarge", 0.8)):
                cpu = (20.0 + 45.0 * busy) * scale * rng.uniform(0.9, 1.1)
                memory = (30.0 + 15.0 * busy) * rng.uniform(0.95, 1.05)
                for column, value in (
                    ("cpu_utilization_avg", cpu),
                    ("cpu_utilization_max", min(100.0, cpu * rng.uniform(1.2, 1.5))),
                    ("memory_utilization_avg", memory),
                    ("memory_utilization_max", min(100.0, memory * 1.1)),
                    ("vcpu_available", 4.0 if scale == 1.0 else 8.0),
                    ("vcpu_allocated", round((4.0 if scale == 1.0 else 8.0) * busy)),
                ):
                    by_type = values.setdefault((provider, hour), {}).setdefault(column, {})
                    by_type[instance_type] = value
        rows = capacity_providers.aggregate(values)
        capacity_providers.load_hours(store, account, region, rows)
    say(
        f"Lambda Managed Instances: {', '.join(name for name, _, _ in functions)} on"
        f" {len(by_target)} capacity provider(s) with 14 days of utilisation"
    )


# Lambda Insights in the demo: hours of events or metrics, and the part of each demo
# function's duration that is CPU work (the demo fleet's functions are half CPU-bound)
INSIGHTS_HOURS = 48
INSIGHTS_CPU_FRACTION = 0.5


def _insights_candidates(db: Database, start: int, end: int) -> list[tuple[Any, ...]]:
    """Busy functions whose projection Insights would feed: one memory size over the
    history (no natural experiment), no Power Tuning run, no capacity provider; the most
    over-provisioned first (where a smaller size's duration matters)."""
    tuned = set(power_tuning.latest_curves(db))
    several = {
        int(fid)
        for (fid,) in db.conn.execute(
            "SELECT function_id FROM hourly_facts"
            " WHERE function_id IN (SELECT id FROM functions) AND hour >= ? AND hour < ?"
            " GROUP BY function_id HAVING COUNT(DISTINCT memory_mb) > 1",
            (start, end),
        )
    }
    managed = {
        int(fid)
        for (fid,) in db.conn.execute(
            "SELECT id FROM functions WHERE capacity_provider_arn IS NOT NULL"
        )
    }
    rows = [
        r
        for r in _busiest(db, start, end, 200)
        if int(r[0]) not in several | managed
        and (str(r[2]), str(r[3]), str(r[1])) not in tuned
        and r[5]
        and r[6]
    ]
    return sorted(rows, key=lambda r: (-float(r[4]) / float(r[6]), str(r[1])))


def _performance_event(
    row: tuple[Any, ...], request_id: str, at_ms: int, rng: random.Random
) -> dict[str, Any]:
    """One performance event of the demo function ``row`` in the documented shape."""
    _, name, _, _, memory, mean_ms, peak, _ = row
    duration = round(float(mean_ms) * math.exp(rng.gauss(0, 0.3) - 0.045), 2)
    cpu = duration * INSIGHTS_CPU_FRACTION * cpu_share(int(memory)) * math.exp(rng.gauss(0, 0.1))
    used = round(float(peak) * rng.uniform(0.75, 1.0))
    cold = rng.random() < 0.03
    network = rng.randint(2_000, 40_000)
    return {
        "_aws": {
            "Timestamp": at_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": "LambdaInsights",
                    "Dimensions": [["function_name"], ["function_name", "version"]],
                    "Metrics": [{"Name": "cpu_total_time", "Unit": "Milliseconds"}],
                }
            ],
        },
        "event_type": "performance",
        "function_name": name,
        "version": "$LATEST",
        "request_id": request_id,
        "duration": duration,
        "billed_duration": math.ceil(duration),
        "billed_mb_ms": math.ceil(duration) * int(memory),
        "cold_start": cold,
        "init_duration": round(rng.uniform(200, 600), 2) if cold else 0,
        "memory_utilization": round(100.0 * used / int(memory), 1),
        "total_memory": int(memory),
        "used_memory_max": used,
        "cpu_user_time": round(cpu * 0.85, 3),
        "cpu_system_time": round(cpu * 0.15, 3),
        "cpu_total_time": round(cpu, 3),
        "rx_bytes": network // 3,
        "tx_bytes": network - network // 3,
        "total_network": network,
        "agent_version": "1.0.333.0",
    }


def _performance_lines(row: tuple[Any, ...], end: int, rng: random.Random) -> bytes:
    """JSON lines of events for each of the last INSIGHTS_HOURS hours before ``end``, as
    many per hour as the function's hourly calls (2 to 10)."""
    per_hour = min(10, max(2, round(float(row[7]))))
    lines = []
    for k in range(1, INSIGHTS_HOURS + 1):
        hour = end - k * HOUR_S
        for i in range(per_hour):
            at_ms = (hour + rng.randrange(HOUR_S)) * 1000
            event = _performance_event(row, f"demo-{row[0]}-{hour}-{i}", at_ms, rng)
            lines.append(json.dumps(event))
    return "\n".join(lines).encode()


def _metrics_hours(
    row: tuple[Any, ...], end: int, rng: random.Random
) -> dict[tuple[int, int], dict[str, float]]:
    """LambdaInsights metrics hours (with the hour's AWS/Lambda Duration) as the metrics
    source's transform step returns them."""
    fid, _, _, _, memory, mean_ms, peak, calls = row
    out = {}
    for k in range(1, INSIGHTS_HOURS + 1):
        n = max(1.0, round(float(calls) * rng.uniform(0.8, 1.2)))
        duration = float(mean_ms) * rng.uniform(0.95, 1.05)
        cpu = duration * INSIGHTS_CPU_FRACTION * cpu_share(int(memory)) * rng.uniform(0.9, 1.1)
        used = round(float(peak) * rng.uniform(0.8, 1.0))
        out[(int(fid), end - k * HOUR_S)] = {
            "invocations": n,
            "cpu_total_ms_sum": n * cpu,
            "total_memory_min_mb": float(memory),
            "total_memory_max_mb": float(memory),
            "used_memory_max_mb": float(used),
            "memory_utilization_max_pct": 100.0 * used / int(memory),
            "init_duration_max_ms": round(rng.uniform(200, 600), 2),
            "init_count": 1.0,
            "total_network_bytes_sum": n * rng.uniform(5_000, 30_000),
            "duration_ms_sum": n * duration,
            "duration_count": n,
        }
    return out


def seed_insights(
    db: Database, *, now_s: int, say: Say, events: int = 2, metrics: int = 1
) -> list[str]:
    """Lambda Insights for a few demo functions: performance events for ``events``
    functions (read and stored as ``lambdascope insights import`` does) and
    LambdaInsights metrics hours for ``metrics`` more, over the last INSIGHTS_HOURS hours,
    from each function's stored mean duration, memory and peak memory. Returns the names."""
    end = now_s - now_s % HOUR_S
    rows = _insights_candidates(db, end - 14 * 86400, end)[: events + metrics]
    if len(rows) < events + metrics:
        say("Lambda Insights: too few busy functions in the demo store; none added")
        return []
    rng = random.Random(16)
    counts = insights.ReadCounts()
    for row in rows[:events]:
        stream = insights.read_events([_performance_lines(row, end, rng)], counts)
        insights.store_events(db, stream, account_id=str(row[2]), region=str(row[3]))
    store = Store(db)
    for row in rows[events:]:
        insights_metrics.load_hours(store, _metrics_hours(row, end, rng))
    names = [str(r[1]) for r in rows]
    say(
        f"Lambda Insights: {counts.events:,} performance events for"
        f" {', '.join(names[:events])}; LambdaInsights metrics for {', '.join(names[events:])}"
    )
    return names
