"""Cold starts, timeouts, errors and throttles per function, with the usual thresholds.

Pure on ``rightsizing.MemoryStats`` (one or more memory sizes of a function). Units: ms,
USD; rates are fractions of invocations. Thresholds follow what users already know
(errors > 1 %, throttles > 10 %, p99 duration > 90 % of the timeout). Cold starts warn
only when they cost something real: over 1 % of invocations AND their INIT time adds at
least 10 % to the mean latency or makes at least 10 % of the function's cost.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from lambdascope import histogram
from lambdascope.cost import per_30_days, window_cost
from lambdascope.usage import MemoryStats, current_usage

ERROR_RATE_WARN = 0.01
THROTTLE_RATE_WARN = 0.10
COLD_START_RATE_WARN = 0.01
COLD_START_IMPACT_WARN = 0.10  # share of mean latency, or of cost, that INIT adds
TIMEOUT_P99_WARN = 0.90
MAX_TIMEOUT_S = 900


@dataclass(frozen=True)
class ColdStartFinding:
    """Per-function cold-start, timeout, error and throttle figures and warnings."""

    function_name: str
    account_id: str
    region: str
    invocations: int
    cold_starts: int
    cold_start_rate: float
    init_p50_ms: float | None
    init_p95_ms: float | None
    init_max_ms: float | None
    init_cost_usd: float
    init_monthly_cost_usd: float
    timeouts: int
    duration_p99_ms: float | None
    duration_max_ms: float | None
    timeout_s: int | None
    recommended_timeout_s: int | None
    errors: int
    error_rate: float
    throttles: int
    throttle_rate: float
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["warnings"] = list(self.warnings)
        for key in ("cold_start_rate", "error_rate", "throttle_rate"):
            out[key] = round(out[key], 6)
        for key in ("init_cost_usd", "init_monthly_cost_usd"):
            out[key] = round(out[key], 6)
        for key in ("init_p50_ms", "init_p95_ms", "init_max_ms", "duration_p99_ms"):
            out[key] = None if out[key] is None else round(out[key], 1)
        return out


def recommended_timeout_s(duration_max_ms: float | None, p99_ms: float | None) -> int | None:
    """A timeout with room over the worst seen: 1.5 x max (or 2 x p99), 3..900 s."""
    base = max(duration_max_ms or 0.0, 2 * (p99_ms or 0.0) / 1.5)
    if base <= 0:
        return None
    return int(min(MAX_TIMEOUT_S, max(3, math.ceil(base * 1.5 / 1000))))


def analyse(stats: list[MemoryStats], *, window_s: float) -> ColdStartFinding:
    """Combine one function's memory sizes into its cold-start/timeout/error finding."""
    first = stats[0]
    invocations = sum(s.invocations for s in stats)
    cold = sum(s.cold_starts for s in stats)
    sampled = sum(s.sampled_invocations for s in stats)
    init_hist = histogram.merge(s.init_hist for s in stats)
    duration_hist = histogram.merge(s.duration_hist for s in stats)
    # INIT as billed: on top of the reported billed duration, or inside it (since 2025)
    costs = [
        window_cost(current_usage(s), architecture=s.architecture, region=s.region) for s in stats
    ]
    init_usd = sum(c.init_usd for c in costs)
    total_usd = sum(c.total_usd for c in costs)
    errors = sum(s.errors for s in stats)
    throttles = sum(s.throttles for s in stats)
    timeouts = sum(s.timeouts for s in stats)
    maxima = [s.duration_ms_max for s in stats if s.duration_ms_max is not None]
    duration_max = max(maxima) if maxima else None
    p99 = histogram.quantile(duration_hist, 0.99)
    timeout_s = first.timeout_s
    cold_rate = cold / sampled if sampled else 0.0
    error_rate = errors / invocations if invocations else 0.0
    throttle_rate = throttles / (invocations + throttles) if invocations + throttles else 0.0
    warnings: list[str] = []
    duration_sum = sum(s.duration_ms_sum for s in stats)
    init_sum = sum(s.init_duration_ms_sum for s in stats)
    latency_share = init_sum / duration_sum if duration_sum > 0 else 0.0
    cost_share = init_usd / total_usd if total_usd > 0 else 0.0
    if (
        cold_rate > COLD_START_RATE_WARN
        and max(latency_share, cost_share) >= COLD_START_IMPACT_WARN
    ):
        warnings.append(
            f"cold starts {cold_rate:.1%} of invocations add {latency_share:.0%} to the mean"
            f" latency and {cost_share:.0%} to the cost"
        )
    if error_rate > ERROR_RATE_WARN:
        warnings.append(f"errors {error_rate:.1%} of invocations (> 1 %)")
    if throttle_rate > THROTTLE_RATE_WARN:
        warnings.append(f"throttles {throttle_rate:.1%} of requests (> 10 %)")
    if timeouts:
        warnings.append(f"{timeouts} timeouts")
    if timeout_s and p99 is not None and p99 > TIMEOUT_P99_WARN * timeout_s * 1000:
        warnings.append(f"p99 duration {p99:.0f} ms passes 90 % of the {timeout_s} s timeout")
    if timeout_s is None:
        warnings.append("configured timeout unknown (no inventory)")
    return ColdStartFinding(
        function_name=first.function_name,
        account_id=first.account_id,
        region=first.region,
        invocations=round(invocations),
        cold_starts=cold,
        cold_start_rate=cold_rate,
        init_p50_ms=histogram.quantile(init_hist, 0.5),
        init_p95_ms=histogram.quantile(init_hist, 0.95),
        init_max_ms=histogram.quantile(init_hist, 1.0),
        init_cost_usd=init_usd,
        init_monthly_cost_usd=per_30_days(init_usd, window_s),
        timeouts=timeouts,
        duration_p99_ms=p99,
        duration_max_ms=duration_max,
        timeout_s=timeout_s,
        recommended_timeout_s=recommended_timeout_s(duration_max, p99),
        errors=round(errors),
        error_rate=error_rate,
        throttles=round(throttles),
        throttle_rate=throttle_rate,
        warnings=tuple(warnings),
    )


def analyse_all(stats: list[MemoryStats], *, window_s: float) -> list[ColdStartFinding]:
    """One finding per function (memory sizes combined), sorted by function."""
    groups: dict[tuple[str, str, str], list[MemoryStats]] = defaultdict(list)
    for s in stats:
        groups[(s.function_name, s.account_id, s.region)].append(s)
    return [analyse(groups[key], window_s=window_s) for key in sorted(groups)]
