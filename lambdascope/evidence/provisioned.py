"""Provisioned concurrency: a level per alias or version from CloudWatch's hourly
ProvisionedConcurrencyUtilization, ProvisionedConcurrentExecutions,
ProvisionedConcurrencySpilloverInvocations and ConcurrentExecutions (Resource dimension),
with its cost per 30 days against on-demand for the same traffic.

Rule: an hour's peak concurrency is ConcurrentExecutions' maximum (the alias's or
version's, spillover included), else the provisioned executions' maximum plus the
spillover's average concurrency (Little's law: invocations x mean duration / 3,600 s).
The level that covers the 95th percentile of hourly peaks with 10 % headroom is the
target; raise to it when spillover happened in at least 1 % of hours, lower to it when
utilisation's hourly maximum stays below 60 % in 95 % of hours, else keep.

Units: counts, ms, MB, USD; ``start``/``end`` epoch seconds (UTC, end exclusive).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from sqlite_utils import Database

from lambdascope.evidence import has_table
from lambdascope.pricing import default_table

Action = Literal["raise", "lower", "keep", "insufficient-data"]

MIN_HOURS = 24  # a day of hourly metrics before any advice
HEADROOM = 0.10
PEAK_QUANTILE = 0.95
LOW_UTILISATION = 0.60
SPILLOVER_HOURS_SHARE = 0.01
THIRTY_DAYS_S = 30 * 86400


@dataclass(frozen=True)
class ProvisionedPrice:
    """USD per GB-s of provisioned concurrency configured, and of duration served by it."""

    provisioned_usd_per_gb_second: float
    duration_usd_per_gb_second: float
    on_demand_usd_per_gb_second: float
    request_usd: float


@lru_cache(maxsize=1)
def _price_file() -> dict[str, Any]:
    text = resources.files("lambdascope").joinpath("data/provisioned_prices.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def price_for(region: str, architecture: str | None) -> ProvisionedPrice:
    """Provisioned-concurrency prices in ``region``: the us-east-1 rates scaled by the
    region's on-demand duration price (see data/provisioned_prices.json)."""
    data = _price_file()
    arch = architecture if architecture in ("x86_64", "arm64") else "x86_64"
    table = default_table()
    on_demand = table.price(region, arch).usd_per_gb_second
    scale = on_demand / table.price(str(data["region"]), arch).usd_per_gb_second
    rates = data[arch]
    return ProvisionedPrice(
        float(rates["provisioned_usd_per_gb_second"]) * scale,
        float(rates["duration_usd_per_gb_second"]) * scale,
        on_demand,
        table.request_usd_for(region),
    )


@dataclass(frozen=True)
class ProvisionedHour:
    """One hour of an alias's or version's metrics (None: CloudWatch sent no datapoint)."""

    hour: int
    concurrent_executions_max: float | None = None
    provisioned_executions_max: float | None = None
    utilization_max: float | None = None
    spillover_invocations: float | None = None
    provisioned_invocations: float | None = None
    invocations: float | None = None
    duration_avg_ms: float | None = None

    @property
    def total_invocations(self) -> float:
        if self.invocations is not None:
            return self.invocations
        return (self.provisioned_invocations or 0.0) + (self.spillover_invocations or 0.0)

    def peak_concurrency(self) -> float:
        """The hour's peak concurrency on this alias or version (see the module doc)."""
        if self.concurrent_executions_max is not None:
            return max(self.concurrent_executions_max, self.provisioned_executions_max or 0.0)
        spill = self.spillover_invocations or 0.0
        extra = spill * (self.duration_avg_ms or 0.0) / 3_600_000.0
        return (self.provisioned_executions_max or 0.0) + (math.ceil(extra) if spill else 0.0)


@dataclass(frozen=True)
class ProvisionedRecommendation:
    """A provisioned-concurrency level for one alias or version, with costs per 30 days."""

    function_name: str
    account_id: str
    region: str
    qualifier: str
    memory_mb: int
    architecture: str
    configured_level: int
    recommended_level: int
    action: Action
    hours: int
    invocations: float
    spillover_invocations: float
    spillover_hours: int
    utilization_p95: float | None
    peak_concurrency_p95: float | None
    current_monthly_cost_usd: float
    recommended_monthly_cost_usd: float
    on_demand_monthly_cost_usd: float
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, float):
                value = round(value, 6 if name.endswith("_usd") else 3)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def window_cost(
    hours: list[ProvisionedHour],
    level: int,
    memory_mb: int,
    price: ProvisionedPrice,
    window_s: float,
    *,
    measured_spillover: bool = False,
) -> float:
    """USD over the window at ``level`` (0 = on-demand): the level configured for the whole
    window, duration served by it at the provisioned duration rate and the rest
    (spillover) at the on-demand rate, requests for all. ``measured_spillover``: use the
    hours' measured spillover (the configured level) instead of estimating it from peaks."""
    gb = memory_mb / 1024.0
    usd = level * gb * window_s * price.provisioned_usd_per_gb_second
    for h in hours:
        calls = h.total_invocations
        gb_s = calls * (h.duration_avg_ms or 0.0) / 1000.0 * gb
        if level <= 0:
            spill = 1.0
        elif measured_spillover:
            spill = min(1.0, (h.spillover_invocations or 0.0) / calls) if calls else 0.0
        else:
            peak = h.peak_concurrency()
            spill = max(0.0, peak - level) / peak if peak > 0 else 0.0
        usd += calls * price.request_usd
        usd += gb_s * ((1 - spill) * price.duration_usd_per_gb_second if level > 0 else 0.0)
        usd += gb_s * spill * price.on_demand_usd_per_gb_second
    return usd


def recommend_level(
    *,
    function_name: str,
    account_id: str,
    region: str,
    qualifier: str,
    memory_mb: int,
    architecture: str | None,
    configured_level: int,
    hours: list[ProvisionedHour],
    window_s: float,
) -> ProvisionedRecommendation:
    """The level for one alias or version (pure; the rule is in the module doc)."""
    arch = architecture or "x86_64"
    price = price_for(region, arch)
    spill_hours = sum(1 for h in hours if (h.spillover_invocations or 0) > 0)
    spilled = sum(h.spillover_invocations or 0.0 for h in hours)
    calls = sum(h.total_invocations for h in hours)
    utilisations = [h.utilization_max for h in hours if h.utilization_max is not None]
    util_p95 = _quantile(utilisations, PEAK_QUANTILE) if utilisations else None
    reasons: list[str] = []
    if len(hours) < MIN_HOURS:
        action: Action = "insufficient-data"
        target = configured_level
        peak_p95 = None
        reasons.append(f"{len(hours)} hours of metrics, fewer than {MIN_HOURS}")
    else:
        peak_p95 = _quantile([h.peak_concurrency() for h in hours], PEAK_QUANTILE)
        target = max(1, math.ceil(peak_p95 * (1 + HEADROOM)))
        share = spill_hours / len(hours)
        if spill_hours and share >= SPILLOVER_HOURS_SHARE and target > configured_level:
            action = "raise"
            reasons.append(
                f"{spilled:,.0f} invocations spilled over to on-demand in {spill_hours} of"
                f" {len(hours)} hours; the 95th percentile of hourly peaks is"
                f" {peak_p95:,.0f} concurrent: {target} covers it with {HEADROOM:.0%} headroom"
            )
        elif util_p95 is not None and util_p95 < LOW_UTILISATION and target < configured_level:
            action = "lower"
            reasons.append(
                f"utilisation's hourly maximum stayed at or below {util_p95:.0%} in 95 % of"
                f" hours; peaks (95th percentile {peak_p95:,.0f}) fit in {target}"
            )
        else:
            action = "keep"
            target = configured_level
            if spill_hours:
                reasons.append(
                    f"spillover in {spill_hours} of {len(hours)} hours only: the 95th"
                    f" percentile of peaks ({peak_p95:,.0f}) fits in {configured_level}"
                )
            else:
                reasons.append(f"level {configured_level} fits the peaks ({peak_p95:,.0f})")
    current = window_cost(
        hours, configured_level, memory_mb, price, window_s, measured_spillover=True
    )
    recommended = (
        current
        if target == configured_level
        else window_cost(hours, target, memory_mb, price, window_s)
    )
    on_demand = window_cost(hours, 0, memory_mb, price, window_s)

    def monthly(usd: float) -> float:
        return usd * THIRTY_DAYS_S / window_s if window_s > 0 else 0.0

    if hours and on_demand < recommended:
        reasons.append(
            f"on-demand would cost ${monthly(recommended - on_demand):,.2f} less per 30 days"
            " for this traffic: provisioned concurrency pays here only for cold-start latency"
        )
    return ProvisionedRecommendation(
        function_name=function_name,
        account_id=account_id,
        region=region,
        qualifier=qualifier,
        memory_mb=memory_mb,
        architecture=arch,
        configured_level=configured_level,
        recommended_level=target,
        action=action,
        hours=len(hours),
        invocations=calls,
        spillover_invocations=spilled,
        spillover_hours=spill_hours,
        utilization_p95=util_p95,
        peak_concurrency_p95=peak_p95,
        current_monthly_cost_usd=monthly(current),
        recommended_monthly_cost_usd=monthly(recommended),
        on_demand_monthly_cost_usd=monthly(on_demand),
        reasons=tuple(reasons),
    )


# ---------------------------------------------------------------- store


_HOUR_COLUMNS = (
    "concurrent_executions_max",
    "provisioned_executions_max",
    "utilization_max",
    "spillover_invocations",
    "provisioned_invocations",
    "invocations",
    "duration_avg_ms",
)


def recommend_all(
    db: Database,
    start: int,
    end: int,
    *,
    function_names: tuple[str, ...] = (),
    regions: tuple[str, ...] = (),
    account_ids: tuple[str, ...] = (),
    function_ids: tuple[int, ...] = (),
) -> list[ProvisionedRecommendation]:
    """One recommendation per stored provisioned-concurrency configuration (alias or
    version), from its hourly metrics in [start, end); empty filters mean all."""
    if not has_table(db, "provisioned_concurrency_configs"):
        return []
    where = ""
    params: list[Any] = []
    for column, values in (
        ("function_name", function_names),
        ("region", regions),
        ("account_id", account_ids),
    ):
        if values:
            where += f" AND f.{column} IN ({', '.join('?' * len(values))})"
            params += list(values)
    if function_ids:
        where += f" AND f.id IN ({', '.join('?' * len(function_ids))})"
        params += [int(i) for i in function_ids]
    configs = db.conn.execute(
        "SELECT c.function_id, c.qualifier, COALESCE(c.allocated, c.requested, 0),"
        " f.function_name, f.account_id, f.region, f.memory_mb, f.architecture"
        " FROM provisioned_concurrency_configs c JOIN functions f ON f.id = c.function_id"
        " WHERE 1 = 1" + where + " ORDER BY f.function_name, f.account_id, f.region, c.qualifier",
        params,
    ).fetchall()
    out = []
    for fid, qualifier, level, name, account, region, memory, arch in configs:
        rows = db.conn.execute(
            "SELECT hour, " + ", ".join(_HOUR_COLUMNS) + " FROM provisioned_concurrency_hourly"
            " WHERE function_id = ? AND qualifier = ? AND hour >= ? AND hour < ? ORDER BY hour",
            (fid, qualifier, start, end),
        ).fetchall()
        hours = [ProvisionedHour(*row) for row in rows]
        out.append(
            recommend_level(
                function_name=str(name),
                account_id=str(account),
                region=str(region),
                qualifier=str(qualifier),
                memory_mb=int(memory or 128),
                architecture=arch,
                configured_level=int(level),
                hours=hours,
                window_s=float(end - start),
            )
        )
    return out


# ---------------------------------------------------------------- report

COLUMNS = [
    "function_name",
    "account_id",
    "region",
    "qualifier",
    "memory_mb",
    "configured_level",
    "recommended_level",
    "action",
    "hours",
    "invocations",
    "spillover_invocations",
    "spillover_hours",
    "utilization_p95",
    "peak_concurrency_p95",
    "current_monthly_cost_usd",
    "recommended_monthly_cost_usd",
    "on_demand_monthly_cost_usd",
    "reasons",
]
TITLE = "Provisioned concurrency"


def section(
    recs: list[ProvisionedRecommendation],
) -> tuple[str, list[dict[str, Any]], list[str]]:
    """The report section (title, rows, columns) shown after the memory table."""
    return TITLE, [r.as_dict() for r in recs], COLUMNS


def price_note() -> str:
    """Where the provisioned-concurrency prices come from (one line)."""
    data = _price_file()
    return (
        "provisioned-concurrency prices: lambdascope/data/provisioned_prices.json"
        f" ({data['source_date']}; us-east-1 rates, other regions scaled by their"
        " on-demand duration price); costs per 30 days, first price tier, no free tier"
    )
