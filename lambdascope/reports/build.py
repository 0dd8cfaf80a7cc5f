"""Turn analyses into ``Report`` objects (pure)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from lambdascope.coldstarts import ColdStartFinding
from lambdascope.cost import per_30_days, window_cost
from lambdascope.pricing import default_table, gb_seconds, tiered_duration_usd
from lambdascope.reports import Chart, Report
from lambdascope.rightsizing import (
    MemoryStats,
    Recommendation,
    current_usage,
    free_tier_shares,
)
from lambdascope.staleness import StaleReport, runtime_table_source

MEMORY_COLUMNS = [
    "function_name",
    "account_id",
    "region",
    "architecture",
    "memory_mb",
    "invocations",
    "errors",
    "out_of_memory_errors",
    "max_memory_used_mb",
    "p99_memory_used_mb",
    "finding",
    "recommended_memory_mb",
    "confidence",
    "performance_risk",
    "projected_duration_ms_expected",
    "current_cost_usd",
    "projected_savings_usd",
    "monthly_savings_usd",
    "reasons",
]


def _label(row: dict[str, Any]) -> str:
    where = "/".join(p for p in (row.get("account_id"), row.get("region")) if p)
    return f"{row['function_name']} ({where})" if where else str(row["function_name"])


FINDING_ORDER = {
    "under-provisioned": 0,
    "over-provisioned": 1,
    "optimized": 2,
    "insufficient-data": 3,
    "managed-instances": 4,
}


def rank_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """What to do first: under-provisioned (most out-of-memory errors first), then the
    largest savings, then the rest by name."""
    return (
        FINDING_ORDER.get(row.get("finding") or "", 5),
        -(row.get("out_of_memory_errors") or 0),
        -(row.get("monthly_savings_usd") or 0.0),
        row.get("function_name") or "",
    )


def memory_report(recs: list[Recommendation], window: str, *, free_tier: bool = False) -> Report:
    """The memory right-sizing report: one row per function, ranked by what to do first
    (``rank_key``); summary figures on top."""
    rows = sorted((r.as_dict() for r in recs), key=rank_key)
    counts: dict[str, int] = defaultdict(int)
    for r in recs:
        counts[r.finding] += 1
    savings = sum(max(0.0, r.monthly_savings_usd) for r in recs)
    strategies = sorted({r.strategy for r in recs})
    summary = [f"window: {window}; {len(recs)} functions"]
    if recs:
        summary.append(
            ", ".join(
                f"{k}: {counts[k]}" for k in sorted(counts, key=lambda k: FINDING_ORDER.get(k, 4))
            )
        )
        summary.append(
            f"potential savings: ${savings:,.2f} per 30 days (strategy {', '.join(strategies)})"
        )
        summary.append(_first_steps(rows, savings))
        prices = default_table().describe(r.region for r in recs)
        summary.append(prices + _free_tier_note(free_tier))
    return Report(
        "memory", "Lambda memory right-sizing", rows, MEMORY_COLUMNS, summary, [], layout="memory"
    )


def _first_steps(rows: list[dict[str, Any]], savings: float) -> str:
    """One line: what to do first."""
    steps = []
    under = [r for r in rows if r["finding"] == "under-provisioned"]
    if under:
        steps.append(
            f"give more memory to {len(under)} under-provisioned"
            f" function{'' if len(under) == 1 else 's'} ({under[0]['function_name']} first)"
        )
    top = [r for r in rows if r["finding"] == "over-provisioned" and r["monthly_savings_usd"] > 0][
        :5
    ]
    if top and savings > 0:
        share = sum(r["monthly_savings_usd"] for r in top) / savings
        steps.append(f"resize the top {len(top)} over-provisioned for {share:.0%} of the savings")
    return "first: " + ("; then ".join(steps) if steps else "nothing to change")


COST_COLUMNS = [
    "function_name",
    "account_id",
    "region",
    "architecture",
    "memory_mb",
    "invocations",
    "gb_seconds",
    "requests_usd",
    "duration_usd",
    "init_usd",
    "restore_usd",
    "total_usd",
    "monthly_usd",
]


def _free_tier_note(free_tier: bool) -> str:
    if not free_tier:
        return "; no free tier"
    return (
        "; free tier (1M requests, 400,000 GB-s per account and month) prorated to the"
        " window and shared by each account's functions in proportion to their use"
    )


def cost_report(
    stats: list[MemoryStats], window: str, window_s: float, *, free_tier: bool = False
) -> Report:
    """Cost per function x memory size over the window and per 30 days, with fleet
    totals per account (monthly volume tiers applied to the 30-day projection). With
    ``free_tier`` each account's free tier, prorated to the window, is taken off
    (``rightsizing.free_tier_shares``)."""
    rows: list[dict[str, Any]] = []
    table = default_table()
    per_account: dict[tuple[str, str, str], float] = defaultdict(float)
    shares = free_tier_shares(stats, window_s) if free_tier else None
    for i, s in enumerate(stats):
        usage = current_usage(s)
        cost = window_cost(
            usage,
            architecture=s.architecture,
            region=s.region,
            free_tier=shares[i] if shares is not None else False,
        )
        gbs = gb_seconds(
            usage.billed_duration_ms + usage.billable_init_ms + usage.billed_restore_duration_ms,
            s.memory_mb,
        )
        arch = s.architecture or "x86_64"
        per_account[(s.account_id, s.region, arch)] += per_30_days(gbs, window_s)
        rows.append(
            {
                "function_name": s.function_name,
                "account_id": s.account_id,
                "region": s.region,
                "architecture": arch,
                "memory_mb": s.memory_mb,
                "invocations": round(s.invocations),
                "gb_seconds": round(gbs, 3),
                "requests_usd": round(cost.requests_usd, 6),
                "duration_usd": round(cost.duration_usd, 6),
                "init_usd": round(cost.init_usd, 6),
                "restore_usd": round(cost.restore_usd, 6),
                "total_usd": round(cost.total_usd, 6),
                "monthly_usd": round(per_30_days(cost.total_usd, window_s), 6),
            }
        )
    rows.sort(key=lambda r: -r["total_usd"])
    total = sum(r["total_usd"] for r in rows)
    summary = [
        f"window: {window}; total ${total:,.4f}; "
        f"${per_30_days(total, window_s):,.2f} per 30 days (list prices"
        + ("" if free_tier else ", no free tier")
        + ")"
    ]
    for (account, region, arch), monthly_gbs in sorted(per_account.items()):
        price = table.price(region, arch)
        tiered = tiered_duration_usd(monthly_gbs, price)
        summary.append(
            f"{account or '-'}/{region or '-'} {arch}: {monthly_gbs:,.0f} GB-s per 30 days, "
            f"duration ${tiered:,.2f} with volume tiers"
        )
    summary.append(table.describe(s.region for s in stats) + _free_tier_note(free_tier))
    charts = (
        [
            Chart(
                "Cost by function (USD in window)",
                [_label(r) for r in rows[:30]],
                {"total": [r["total_usd"] for r in rows[:30]]},
                "USD",
            )
        ]
        if rows
        else []
    )
    return Report("cost", "Lambda cost", rows, COST_COLUMNS, summary, charts)


COLD_COLUMNS = [
    "function_name",
    "account_id",
    "region",
    "invocations",
    "cold_starts",
    "cold_start_rate",
    "init_p50_ms",
    "init_p95_ms",
    "init_max_ms",
    "init_cost_usd",
    "init_monthly_cost_usd",
    "timeouts",
    "duration_p99_ms",
    "duration_max_ms",
    "timeout_s",
    "recommended_timeout_s",
    "error_rate",
    "throttle_rate",
    "warnings",
]


def coldstarts_report(findings: list[ColdStartFinding], window: str) -> Report:
    """Cold starts, timeouts, errors and throttles per function."""
    rows = [f.as_dict() for f in findings]
    warned = sum(1 for f in findings if f.warnings)
    init_usd = sum(f.init_monthly_cost_usd for f in findings)
    summary = [
        f"window: {window}; {len(rows)} functions, {warned} with warnings",
        f"INIT cost ${init_usd:,.2f} per 30 days",
    ]
    charts = (
        [
            Chart(
                "Cold-start rate (%)",
                [_label(r) for r in rows],
                {"cold starts": [100 * r["cold_start_rate"] for r in rows]},
                "%",
            )
        ]
        if rows
        else []
    )
    return Report(
        "cold-starts",
        "Lambda cold starts, timeouts and errors",
        rows,
        COLD_COLUMNS,
        summary,
        charts,
    )


STALE_COLUMNS = [
    "function_name",
    "account_id",
    "region",
    "runtime",
    "score",
    "stale",
    "signals",
    "versions_to_delete",
]


def stale_report(stale: StaleReport) -> Report:
    """Stale functions with each signal, the safe-cleanup list and code storage per region."""
    rows = []
    for f in stale.functions:
        row = f.as_dict()
        row["signals"] = [s["detail"] for s in row["signals"]]
        rows.append(row)
    rows.sort(key=lambda r: (-r["score"], r["function_name"]))
    summary = [
        f"{len(stale.functions_to_review)} functions to review, "
        f"{len(stale.versions_to_delete)} versions safe to delete",
        f"runtime deprecation dates: {runtime_table_source()}",
    ]
    storage_rows = [
        {
            "account_id": s.account_id,
            "region": s.region,
            "code_storage_gb": round(s.code_storage_bytes / 1024**3, 3),
            "limit_gb": round(s.limit_bytes / 1024**3, 1),
            "used_percent": round(100 * s.used_fraction, 2),
        }
        for s in stale.storage
    ]
    versions = [
        {
            "function_name": f.function_name,
            "account_id": f.account_id,
            "region": f.region,
            "version": v,
        }
        for f, v in stale.versions_to_delete
    ]
    return Report(
        "stale",
        "Stale Lambda functions",
        rows,
        STALE_COLUMNS,
        summary,
        document=stale.as_dict(),
        sections=[
            (
                "Versions safe to delete",
                versions,
                ["function_name", "account_id", "region", "version"],
            ),
            (
                "Code storage per region (75 GB quota)",
                storage_rows,
                ["account_id", "region", "code_storage_gb", "limit_gb", "used_percent"],
            ),
        ],
    )
