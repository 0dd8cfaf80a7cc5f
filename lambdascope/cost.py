"""The Lambda billing model: cost per invocation, per function per window, per 30 days.

Units: USD, milliseconds, MB. Billing is per 1 ms. The INIT phase of a cold start is
billed for every function whose invocation starts on or after 2025-08-01 (the invocation
timestamp decides); before that only for container images and custom runtimes
(``provided*``), where AWS billed it already. SnapStart's billed restore duration is billed
at the duration price. Free tier is an option, off by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lambdascope.pricing import PriceTable, billed_ms, default_table, gb_seconds
from lambdascope.usage import (
    MemoryStats,
    UsageTotals,
    billable_init_ms,
    current_usage,
    init_in_billed_ms,
)

__all__ = [  # usage types and helpers re-exported: callers import them from here too
    "UsageTotals",
    "billable_init_ms",
    "init_in_billed_ms",
]

THIRTY_DAYS_S = 30 * 86400


def init_billed_before_the_change(package_type: str | None, runtime: str | None) -> bool:
    """Whether INIT was billed before it was billed for every cold start (container images
    and custom ``provided*`` runtimes)."""
    return package_type == "Image" or (runtime or "").startswith("provided")


def init_billed(
    timestamp: float,
    *,
    package_type: str | None = None,
    runtime: str | None = None,
    table: PriceTable | None = None,
) -> bool:
    """Whether a cold start's INIT phase is billed for an invocation at ``timestamp``."""
    table = table or default_table()
    if timestamp >= table.init_billed_for_all_since:
        return True
    return init_billed_before_the_change(package_type, runtime)


def invocation_cost_usd(
    *,
    memory_mb: int,
    duration_ms: float,
    timestamp: float,
    architecture: str = "x86_64",
    region: str = "",
    billed_duration_ms: float | None = None,
    init_duration_ms: float | None = None,
    billed_restore_duration_ms: float | None = None,
    package_type: str | None = None,
    runtime: str | None = None,
    table: PriceTable | None = None,
) -> float:
    """USD of one invocation (request + duration, first-tier price, no free tier).

    ``billed_duration_ms`` is what the REPORT line says; when it already covers the
    init time (REPORT lines written after the change do), init is not added twice.
    """
    table = table or default_table()
    billed = billed_ms(duration_ms) if billed_duration_ms is None else float(billed_duration_ms)
    if init_duration_ms and init_billed(
        timestamp, package_type=package_type, runtime=runtime, table=table
    ):
        with_init = billed_ms(duration_ms + init_duration_ms)
        if billed < with_init - 1:
            billed += billed_ms(init_duration_ms)
    billed += max(0.0, billed_restore_duration_ms or 0.0)
    price = table.price(region, architecture)
    return table.request_usd_for(region) + gb_seconds(billed, memory_mb) * price.usd_per_gb_second


@dataclass(frozen=True)
class CostBreakdown:
    """USD split in requests, duration (invoke), init and SnapStart restore."""

    requests_usd: float
    duration_usd: float
    init_usd: float
    restore_usd: float

    @property
    def total_usd(self) -> float:
        """Sum of all parts."""
        return self.requests_usd + self.duration_usd + self.init_usd + self.restore_usd


@dataclass(frozen=True)
class FreeTier:
    """Free-tier requests and GB-seconds available to a usage total."""

    requests: float
    gb_seconds: float


def free_tier_for_window(window_s: float | None, table: PriceTable | None = None) -> FreeTier:
    """An account's monthly free tier prorated to a window (30 days = one month; the whole
    month when ``window_s`` is None)."""
    table = table or default_table()
    share = 1.0 if window_s is None else max(0.0, window_s) / THIRTY_DAYS_S
    return FreeTier(table.free_requests * share, table.free_gb_seconds * share)


def usage_gb_seconds(usage: UsageTotals) -> float:
    """All billed GB-seconds of a usage total (invoke, INIT, SnapStart restore)."""
    billed = usage.billed_duration_ms + usage.billable_init_ms + usage.billed_restore_duration_ms
    return gb_seconds(billed, usage.memory_mb)


def share_free_tier(
    usages: Sequence[UsageTotals], window_s: float, table: PriceTable | None = None
) -> list[FreeTier]:
    """Split one account's free tier, prorated to the window, among its usage totals in
    proportion to their requests and GB-seconds (the free tier is per account and month,
    shared by every function, region and architecture)."""
    free = free_tier_for_window(window_s, table)
    requests = sum(max(0.0, u.invocations) for u in usages)
    gbs = sum(usage_gb_seconds(u) for u in usages)
    return [
        FreeTier(
            free.requests * max(0.0, u.invocations) / requests if requests > 0 else 0.0,
            free.gb_seconds * usage_gb_seconds(u) / gbs if gbs > 0 else 0.0,
        )
        for u in usages
    ]


def window_cost(
    usage: UsageTotals,
    *,
    architecture: str | None = "x86_64",
    region: str = "",
    free_tier: bool | FreeTier = False,
    window_s: float | None = None,
    table: PriceTable | None = None,
) -> CostBreakdown:
    """Cost of a usage total at the first-tier price (volume tiers apply to a whole
    account x region x architecture per month: ``pricing.tiered_duration_usd``).

    ``free_tier=True`` takes the monthly free requests and GB-seconds off first, prorated
    to ``window_s`` when given (meaningful for one function alone: the free tier is shared
    by an account's whole fleet); a ``FreeTier`` takes off that allowance instead (a share
    from ``share_free_tier``).
    """
    table = table or default_table()
    price = table.price(region, architecture).usd_per_gb_second
    requests = max(0.0, usage.invocations)
    init_in_billed = min(max(0.0, usage.init_in_billed_ms), max(0.0, usage.billed_duration_ms))
    duration_gbs = gb_seconds(usage.billed_duration_ms - init_in_billed, usage.memory_mb)
    init_gbs = gb_seconds(usage.billable_init_ms + init_in_billed, usage.memory_mb)
    restore_gbs = gb_seconds(usage.billed_restore_duration_ms, usage.memory_mb)
    allowance = free_tier_for_window(window_s, table) if free_tier is True else free_tier
    if isinstance(allowance, FreeTier):
        requests = max(0.0, requests - allowance.requests)
        free = max(0.0, allowance.gb_seconds)
        for_duration = min(free, duration_gbs)
        duration_gbs -= for_duration
        free -= for_duration
        for_init = min(free, init_gbs)
        init_gbs -= for_init
        restore_gbs = max(0.0, restore_gbs - (free - for_init))
    return CostBreakdown(
        requests_usd=requests * table.request_usd_for(region),
        duration_usd=duration_gbs * price,
        init_usd=init_gbs * price,
        restore_usd=restore_gbs * price,
    )


def per_30_days(usd: float, window_s: float) -> float:
    """Scale a window's USD to 30 days (0 for an empty window)."""
    if window_s <= 0:
        return 0.0
    return usd * THIRTY_DAYS_S / window_s


def current_usage_cost(stats: MemoryStats) -> tuple[UsageTotals, CostBreakdown]:
    """Usage and cost of a ``MemoryStats`` as observed (first-tier prices)."""
    usage = current_usage(stats)
    return usage, window_cost(usage, architecture=stats.architecture, region=stats.region)
