"""What a function used in a window, as observed: the shared types below ``cost`` and
``rightsizing`` (both read them; neither is imported here).

Units: MB, milliseconds. ``MemoryStats`` is one function x configured memory size over a
window; ``current_usage`` turns it into the ``UsageTotals`` the billing model prices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class MemoryStats:
    """What a function did at one configured memory size in a window (sums and histograms).

    Durations in ms, memory in MB. ``billable_init_ms`` is init time billed on top of the
    reported billed duration (see lambdascope.cost). Histograms are lambdascope.histogram dicts.
    """

    function_name: str
    account_id: str
    region: str
    architecture: str | None
    memory_mb: int
    invocations: float = 0.0
    errors: float = 0.0
    throttles: float = 0.0
    timeouts: int = 0
    out_of_memory: int = 0
    cold_starts: int = 0
    duration_ms_sum: float = 0.0
    duration_ms_max: float | None = None
    billed_duration_ms_sum: float = 0.0
    init_duration_ms_sum: float = 0.0
    billable_init_ms: float = 0.0
    billed_restore_duration_ms_sum: float = 0.0
    max_memory_used_mb: int | None = None
    memory_hist: dict[str, int] = field(default_factory=dict)
    duration_hist: dict[str, int] = field(default_factory=dict)
    init_hist: dict[str, int] = field(default_factory=dict)
    runtime: str | None = None
    timeout_s: int | None = None
    first_hour: int | None = None
    last_hour: int | None = None
    sampled_invocations: int = 0  # invocations with a duration (log-derived rows)
    capacity_provider_arn: str | None = None  # Lambda Managed Instances: no GB-second billing

    @property
    def mean_duration_ms(self) -> float | None:
        """Mean invoke duration (ms), None without log data."""
        if self.sampled_invocations <= 0:
            return None
        return self.duration_ms_sum / self.sampled_invocations


@dataclass(frozen=True)
class UsageTotals:
    """What a function used in a window at one memory size (sums over invocations).

    ``billed_duration_ms`` as reported; ``billable_init_ms`` the init time of cold starts
    whose INIT phase is billed and not yet inside the reported billed duration;
    ``init_in_billed_ms`` the part of ``billed_duration_ms`` that is init time (REPORT
    lines since the 2025 change fold it in): billed once, shown as INIT.
    """

    invocations: float
    memory_mb: int
    billed_duration_ms: float
    billable_init_ms: float = 0.0
    billed_restore_duration_ms: float = 0.0
    init_in_billed_ms: float = 0.0


def _init_inside_billed(
    init_ms_sum: float, duration_ms_sum: float, billed_duration_ms_sum: float, invocations: float
) -> bool:
    # Each invocation's billed duration exceeds its duration by less than 1 ms of
    # rounding, so billed - duration is `slack` (0 <= slack < n ms) or `init + slack`.
    # The threshold (n + init) / 2 separates the two exactly when init >= n ms, and is
    # the midpoint of uniform rounding otherwise (an error below 1 ms per invocation).
    margin = billed_duration_ms_sum - duration_ms_sum
    return margin >= 0.5 * (max(0.0, invocations) + init_ms_sum)


def billable_init_ms(
    init_ms_sum: float,
    duration_ms_sum: float,
    billed_duration_ms_sum: float,
    invocations: float = 0.0,
) -> float:
    """Init time (ms) still to bill on top of the reported billed duration.

    REPORT lines from after the billing change already fold the init time into
    ``Billed Duration``; when the billed sum covers duration + init, nothing is added.
    ``invocations``: how many REPORT lines the sums cover (for the 1 ms rounding slack;
    0 when unknown).
    """
    if init_ms_sum <= 0:
        return 0.0
    if _init_inside_billed(init_ms_sum, duration_ms_sum, billed_duration_ms_sum, invocations):
        return 0.0
    return float(math.ceil(init_ms_sum))


def init_in_billed_ms(
    init_ms_sum: float,
    duration_ms_sum: float,
    billed_duration_ms_sum: float,
    *,
    billable_on_top_ms: float = 0.0,
    invocations: float = 0.0,
) -> float:
    """How much of the reported billed duration (ms) is init time: all of the init when
    the billed sum covers it (REPORT lines since the billing change), else nothing
    (init billed on top, ``billable_on_top_ms`` > 0, or not billed at all)."""
    if init_ms_sum <= 0 or billable_on_top_ms > 0:
        return 0.0
    if not _init_inside_billed(init_ms_sum, duration_ms_sum, billed_duration_ms_sum, invocations):
        return 0.0
    return min(init_ms_sum, max(0.0, billed_duration_ms_sum - duration_ms_sum))


def current_usage(stats: MemoryStats) -> UsageTotals:
    """Usage as observed; invocations without log data billed at the mean duration.
    Init time inside the reported billed duration is marked as such (shown as INIT).
    A function on Lambda Managed Instances pays requests only: its compute is billed by
    its capacity provider's EC2 instances, not per GB-second."""
    if stats.capacity_provider_arn:
        return UsageTotals(
            invocations=stats.invocations, memory_mb=stats.memory_mb, billed_duration_ms=0.0
        )
    billed = stats.billed_duration_ms_sum
    if stats.sampled_invocations and stats.invocations > stats.sampled_invocations:
        billed *= stats.invocations / stats.sampled_invocations
    return UsageTotals(
        invocations=stats.invocations,
        memory_mb=stats.memory_mb,
        billed_duration_ms=billed,
        billable_init_ms=stats.billable_init_ms,
        billed_restore_duration_ms=stats.billed_restore_duration_ms_sum,
        init_in_billed_ms=init_in_billed_ms(
            stats.init_duration_ms_sum,
            stats.duration_ms_sum,
            stats.billed_duration_ms_sum,
            billable_on_top_ms=stats.billable_init_ms,
            invocations=stats.sampled_invocations,
        ),
    )
