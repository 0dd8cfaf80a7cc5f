"""Memory right-sizing: one recommendation per function, for its current configuration.

Public API (stable, used by reports and the dashboard):
- ``read_memory_stats(db, start, end, filters) -> list[MemoryStats]`` (store read)
- ``recommend(stats, history, *, window_s, earlier, policy, ...) -> Recommendation`` (pure),
  in named steps: ``assess_memory`` (finding, safe size; ``oom_step_mb`` after
  out-of-memory errors), ``candidate_sizes``, ``project_options`` (duration, cost),
  ``choose`` (cost / balanced / speed), ``assess_risk``
- ``recommend_all(db, start, end, filters, *, policy, ...) -> list[Recommendation]``
- ``power_tuning_input(rec, function_arn=None) -> dict`` (AWS Lambda Power Tuning input)

Units: MB, milliseconds, USD; ``start``/``end`` are epoch seconds (UTC, end exclusive).
"""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any, Literal, Protocol

from sqlite_utils import Database

from lambdascope import histogram, queries
from lambdascope.cost import FreeTier, per_30_days, share_free_tier, window_cost
from lambdascope.evidence import insights
from lambdascope.evidence.power_tuning import MeasuredCurve, latest_curves
from lambdascope.pricing import MAX_MEMORY_MB, MIN_MEMORY_MB, ONE_VCPU_MB, cpu_share
from lambdascope.timeutil import iso
from lambdascope.usage import MemoryStats, UsageTotals, current_usage

__all__ = ["MemoryStats", "current_usage"]  # re-exported: the memory report's inputs

Finding = Literal[
    "over-provisioned", "under-provisioned", "optimized", "insufficient-data", "managed-instances"
]
Confidence = Literal["low", "medium", "high"]
# where projected durations come from, best first
DurationEvidence = Literal["power-tuning", "natural-experiment", "lambda-insights", "bounds"]
MIN_INSIGHTS_EVENTS = 20  # Insights events at the current size before its CPU share counts

DEFAULT_MIN_INVOCATIONS = 50
HEADROOM = 0.10  # on top of the estimated tail
_NORMAL = NormalDist()
TAIL_PROBABILITY = 1e-4  # aim: the 99.99th percentile of future invocations
TAIL_Z = _NORMAL.inv_cdf(1.0 - TAIL_PROBABILITY)  # 3.719
UPPER_HALF_Z = _NORMAL.inv_cdf(0.99)  # 2.326, z of the 99th percentile
CONFIDENCE_Z = _NORMAL.inv_cdf(0.95)  # 1.645, one-sided 95 % bounds
MIN_SIGMA = 0.01  # log-scale spread floor (histogram buckets are 2 % wide)
MIN_EXP_TAIL_SAMPLES = 20  # the exponential tail needs a few excesses over p90
MAX_TEST_LEVEL = 0.01  # a log-normal fit is dropped when P(max of n <= observed) < 1 %
HISTOGRAM_ERROR = math.sqrt(histogram.GAMMA)  # half a bucket: read-back error <= 1 %
STEP_MB = 64  # recommendations are rounded up to a multiple of 64 MB
OPTIMIZED_STEPS = 2  # configured within two 64 MB steps above the safe size: "optimized"
OOM_MIN_STEP = 1.25  # after out-of-memory errors: grow by at least this ...
OOM_MAX_STEP = 1.5  # ... and at most this per step (the errors do not say by how much)
TIMEOUT_RISK = 0.9  # a projected p99 duration at 90 % of the timeout is a risk
DEFAULT_MAX_SLOWDOWN = 1.25  # balanced: expected duration at most 1.25x today's
DEFAULT_MAX_COST_INCREASE = 0.25  # speed: cost at most 25 % above today's

Strategy = Literal["cost", "balanced", "speed"]
STRATEGIES: tuple[Strategy, ...] = ("cost", "balanced", "speed")


class FilterLike(Protocol):
    """Anything with these three tuples (``StatsFilter``, ``lambdascope.queries.Filters``)."""

    @property
    def function_names(self) -> tuple[str, ...]: ...

    @property
    def regions(self) -> tuple[str, ...]: ...

    @property
    def account_ids(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class StatsFilter:
    """Which functions to read: empty tuples mean all."""

    function_names: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    account_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """How to pick among safe sizes (the names AWS Lambda Power Tuning uses).

    ``max_slowdown``: balanced keeps the expected duration within this multiple of
    today's; ``max_cost_increase``: speed keeps the cost within this fraction above
    today's (0.25 = +25 %).
    """

    strategy: Strategy = "balanced"
    max_slowdown: float = DEFAULT_MAX_SLOWDOWN
    max_cost_increase: float = DEFAULT_MAX_COST_INCREASE


@dataclass(frozen=True)
class Choice:
    """What one strategy picks: size (MB), expected duration (ms), slowdown against today's
    mean (None without durations), and cost and savings per 30 days (USD)."""

    memory_mb: int
    expected_duration_ms: float
    slowdown: float | None
    monthly_cost_usd: float
    monthly_savings_usd: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "memory_mb": self.memory_mb,
            "expected_duration_ms": round(self.expected_duration_ms, 2),
            "slowdown": None if self.slowdown is None else round(self.slowdown, 3),
            "monthly_cost_usd": round(self.monthly_cost_usd, 6),
            "monthly_savings_usd": round(self.monthly_savings_usd, 6),
        }


@dataclass(frozen=True)
class HistoryEntry:
    """An earlier memory size of a function (evidence, not an answer): when it ran there
    (ISO-8601 UTC), how often, its peak memory (MB) and mean duration (ms)."""

    memory_mb: int
    invocations: int
    first_seen: str | None
    last_seen: str | None
    max_memory_used_mb: int | None
    mean_duration_ms: float | None
    out_of_memory_errors: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "memory_mb": self.memory_mb,
            "invocations": self.invocations,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "max_memory_used_mb": self.max_memory_used_mb,
            "mean_duration_ms": _round(self.mean_duration_ms),
            "out_of_memory_errors": self.out_of_memory_errors,
        }


@dataclass(frozen=True)
class DurationRange:
    """Projected invoke duration in ms."""

    lower: float
    expected: float
    upper: float

    def as_dict(self) -> dict[str, float]:
        return {
            "lower": round(self.lower, 2),
            "expected": round(self.expected, 2),
            "upper": round(self.upper, 2),
        }


@dataclass(frozen=True)
class Option:
    """One candidate configuration, with projected duration and cost (USD)."""

    rank: int
    memory_mb: int
    architecture: str
    projected_duration_ms: DurationRange
    projected_cost_usd: float
    projected_savings_usd: float
    monthly_cost_usd: float
    monthly_savings_usd: float
    what_if: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "memory_mb": self.memory_mb,
            "architecture": self.architecture,
            "projected_duration_ms": self.projected_duration_ms.as_dict(),
            "projected_cost_usd": round(self.projected_cost_usd, 6),
            "projected_savings_usd": round(self.projected_savings_usd, 6),
            "monthly_cost_usd": round(self.monthly_cost_usd, 6),
            "monthly_savings_usd": round(self.monthly_savings_usd, 6),
            "what_if": self.what_if,
        }


@dataclass(frozen=True)
class Recommendation:
    """A right-sizing result for one function at its current configuration.

    ``strategy`` produced ``recommended_memory_mb``; ``strategies`` holds what each of
    cost, balanced and speed picks; ``history`` the function's earlier memory sizes.
    ``performance_risk``: the recommendation's expected duration is beyond the strategy's
    slowdown limit, or its projected p99 duration reaches 90 % of the timeout.
    """

    function_name: str
    account_id: str
    region: str
    architecture: str
    memory_mb: int
    invocations: int
    errors: int
    out_of_memory_errors: int
    max_memory_used_mb: int | None
    p99_memory_used_mb: float | None
    estimated_tail_memory_mb: float | None
    finding: Finding
    reasons: tuple[str, ...]
    recommended_memory_mb: int | None
    confidence: Confidence
    performance_risk: bool
    projected_duration_ms: DurationRange | None
    options: tuple[Option, ...]
    current_cost_usd: float
    projected_cost_usd: float
    projected_savings_usd: float
    monthly_savings_usd: float
    natural_experiment: bool
    strategy: Strategy = "balanced"
    strategies: dict[Strategy, Choice] = field(default_factory=dict)
    history: tuple[HistoryEntry, ...] = ()
    current_duration_ms: float | None = None
    timeout_s: int | None = None
    current_monthly_cost_usd: float = 0.0
    duration_evidence: DurationEvidence = "bounds"

    def as_dict(self) -> dict[str, Any]:
        """The memory report's JSON object (keys as documented in README)."""
        return {
            "function_name": self.function_name,
            "account_id": self.account_id,
            "region": self.region,
            "architecture": self.architecture,
            "memory_mb": self.memory_mb,
            "invocations": self.invocations,
            "errors": self.errors,
            "out_of_memory_errors": self.out_of_memory_errors,
            "max_memory_used_mb": self.max_memory_used_mb,
            "p99_memory_used_mb": _round(self.p99_memory_used_mb),
            "estimated_tail_memory_mb": _round(self.estimated_tail_memory_mb),
            "finding": self.finding,
            "reasons": list(self.reasons),
            "recommended_memory_mb": self.recommended_memory_mb,
            "confidence": self.confidence,
            "performance_risk": self.performance_risk,
            "projected_duration_ms": (
                self.projected_duration_ms.as_dict() if self.projected_duration_ms else None
            ),
            "options": [o.as_dict() for o in self.options],
            "current_cost_usd": round(self.current_cost_usd, 6),
            "projected_cost_usd": round(self.projected_cost_usd, 6),
            "projected_savings_usd": round(self.projected_savings_usd, 6),
            "monthly_savings_usd": round(self.monthly_savings_usd, 6),
            "natural_experiment": self.natural_experiment,
            "strategy": self.strategy,
            "strategies": {k: v.as_dict() for k, v in self.strategies.items()},
            "current_duration_ms": _round(self.current_duration_ms),
            "timeout_s": self.timeout_s,
            "current_monthly_cost_usd": round(self.current_monthly_cost_usd, 6),
            "history": [h.as_dict() for h in self.history],
            "duration_evidence": self.duration_evidence,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# ---------------------------------------------------------------- tail estimate


def _quantile_variance(p: float) -> float:
    """n * Var(sample p-quantile) / sigma^2 for normal data (asymptotic)."""
    z = _NORMAL.inv_cdf(p)
    return p * (1.0 - p) / _NORMAL.pdf(z) ** 2


def _log_normal_bound(
    hist: dict[str, int], n: int, p_high: float, confidence_z: float = CONFIDENCE_Z
) -> tuple[float, float]:
    """One-sided 95 % upper bound (MB) of the 99.99th percentile from a log-normal fitted
    on the median and the ``p_high`` quantile, and the fitted sigma.

    The estimate ``y50 + c * (y_high - y50)`` (log scale, ``c = z_tail / z_high``) is a
    linear combination of two sample quantiles; its standard error comes from their
    asymptotic variances and covariance.
    """
    p50 = histogram.quantile(hist, 0.5) or 0.0
    high = histogram.quantile(hist, p_high) or 0.0
    if p50 <= 0 or high <= 0:
        return 0.0, 0.0
    z_high = _NORMAL.inv_cdf(p_high)
    # buckets are 2 % wide: keep a floor so identical samples still get a spread
    sigma = max((math.log(high) - math.log(p50)) / z_high, MIN_SIGMA)
    c = TAIL_Z / z_high
    covariance = 0.5 * (1.0 - p_high) / (_NORMAL.pdf(0.0) * _NORMAL.pdf(z_high))
    variance = (
        (1.0 - c) ** 2 * _quantile_variance(0.5)
        + c * c * _quantile_variance(p_high)
        + 2.0 * c * (1.0 - c) * covariance
    )
    standard_error = sigma * math.sqrt(max(variance, 0.0) / n)
    return math.exp(math.log(p50) + TAIL_Z * sigma + confidence_z * standard_error), sigma


def _exponential_tail_bound(
    hist: dict[str, int], n: int, confidence_z: float = CONFIDENCE_Z
) -> float:
    """One-sided 95 % upper bound (MB) of the 99.99th percentile assuming an exponential
    tail above the 90th percentile (peaks over threshold: the mean excess at its one-sided
    95 % bound). Covers gamma-like tails that a log-normal fit on quantiles misses."""
    threshold = histogram.quantile(hist, 0.9) or 0.0
    excesses = [
        (histogram.bucket_value(key) - threshold, int(count))
        for key, count in hist.items()
        if histogram.bucket_value(key) > threshold and int(count) > 0
    ]
    k = sum(count for _, count in excesses)
    if k == 0:
        return threshold
    mean_excess = sum(e * count for e, count in excesses) / k
    # exact bound for an exponential mean: 2k * mean / mean ~ chi-square(2k); its lower
    # 5 % point by the Wilson-Hilferty approximation
    nu = 2.0 * k
    chi2_low = nu * (1.0 - 2.0 / (9.0 * nu) - confidence_z * math.sqrt(2.0 / (9.0 * nu))) ** 3
    upper = mean_excess * nu / max(chi2_low, 1e-9)
    return threshold + upper * math.log((k / n) / TAIL_PROBABILITY)


def estimate_tail_mb(
    memory_hist: dict[str, int], observed_max: float | None, confidence_z: float = CONFIDENCE_Z
) -> tuple[float, str]:
    """Upper bound (MB) for the 99.99th percentile of future invocations' memory use.

    The largest of: one-sided 95 % bounds from a log-normal fitted on the upper half of
    the merged histogram (median with the 90th and with the 99th percentile, standard
    errors from the sample size), an exponential-tail bound above the 90th percentile
    (from 20 samples on), and the observed maximum; a log-normal fit is dropped when the
    observed maximum rejects it (under 1 % chance that ``n`` samples stay that low, as
    with memory that plateaus); then widened by the histogram's
    half-bucket read-back error. By simulation this covers log-normal, normal, gamma and
    bounded memory profiles in >= 98 % of windows of 60 to 5,000 samples, at the price
    of 20-40 % above the true value at a few hundred samples (less with more); tails
    heavier than exponential (memory growing as a power law of the payload) cannot be
    bounded from a few hundred samples. Returns the value and a one-line explanation.
    ``confidence_z`` 0 gives the central estimate instead of the upper bound.
    """
    n = histogram.count(memory_hist)
    top = float(observed_max or 0.0)
    if n < 2 or not histogram.quantile(memory_hist, 0.5):
        return top, f"tail = observed max {top:.0f} MB (only {n} samples)"
    p50 = histogram.quantile(memory_hist, 0.5) or 0.0
    ln90, sigma90 = _log_normal_bound(memory_hist, n, 0.90, confidence_z)
    ln99, sigma = _log_normal_bound(memory_hist, n, 0.99, confidence_z)
    candidates = {
        "log-normal fit on the median and p90": ln90,
        "log-normal fit on the median and p99": ln99,
    }
    rejected: list[str] = []
    if n >= MIN_EXP_TAIL_SAMPLES:
        # A fit whose tail the data contradicts is dropped: bounded profiles (memory
        # that plateaus) would otherwise be extrapolated far past anything seen.
        for name, fit_sigma in zip(list(candidates), (sigma90, sigma), strict=True):
            if _max_contradicts(p50, fit_sigma, top, n):
                rejected.append(name.removeprefix("log-normal fit on "))
                del candidates[name]
        candidates["exponential tail above p90"] = _exponential_tail_bound(
            memory_hist, n, confidence_z
        )
    method = max(candidates, key=lambda k: candidates[k])
    tail = candidates[method] * HISTOGRAM_ERROR
    if tail < top:
        tail, method = top, "observed max"
    p99 = histogram.quantile(memory_hist, 0.99, top or None) or 0.0
    dropped = (
        f"; log-normal fits on {' and '.join(rejected)} dropped: the observed max"
        f" {top:.0f} MB is far below what they predict for {n} samples"
        if rejected
        else ""
    )
    return tail, (
        f"p99.99 memory estimated at {tail:.0f} MB ({method}; p50 {p50:.0f} MB, "
        f"p99 {p99:.0f} MB, sigma {sigma:.3f}; 95 % upper bound for {n} samples{dropped}), "
        f"never below the observed max {top:.0f} MB"
    )


def _max_contradicts(p50: float, sigma: float, observed_max: float, n: int) -> bool:
    """Whether a log-normal (median ``p50``, ``sigma``) is rejected by the observed maximum
    of ``n`` samples: the chance that all ``n`` stay at or below it is under 1 %."""
    if p50 <= 0 or sigma <= 0 or observed_max <= 0:
        return False
    below = _NORMAL.cdf((math.log(observed_max) - math.log(p50)) / sigma)
    return below <= 0.0 or n * math.log(below) < math.log(MAX_TEST_LEVEL)


def round_up_memory(memory_mb: float) -> int:
    """Round up to a multiple of STEP_MB and clamp to Lambda's 128..10,240 MB."""
    stepped = math.ceil(memory_mb / STEP_MB) * STEP_MB
    return int(min(MAX_MEMORY_MB, max(MIN_MEMORY_MB, stepped)))


# ---------------------------------------------------------------- duration model


@dataclass(frozen=True)
class DurationModel:
    """Duration (ms) as ``io_ms + cpu_ms_at_1vcpu / cpu_share(memory)``; fitted or None."""

    io_ms: float
    cpu_ms_at_1vcpu: float

    def at(self, memory_mb: float) -> float:
        return self.io_ms + self.cpu_ms_at_1vcpu / cpu_share(memory_mb)

    def cpu_fraction(self, memory_mb: float) -> float:
        total = self.at(memory_mb)
        return 0.0 if total <= 0 else (self.cpu_ms_at_1vcpu / cpu_share(memory_mb)) / total


def fit_duration_model(points: list[tuple[int, float, float]]) -> DurationModel | None:
    """Weighted least squares on (memory_mb, mean_duration_ms, weight) at >= 2 CPU shares.

    Fits duration = a + b / cpu_share(memory) with a, b >= 0. None when the sizes give
    fewer than two distinct CPU shares.
    """
    rows = [(1.0 / cpu_share(m), d, w) for m, d, w in points if d > 0 and w > 0]
    if len({round(x, 6) for x, _, _ in rows}) < 2:
        return None
    sw = sum(w for _, _, w in rows)
    mx = sum(x * w for x, _, w in rows) / sw
    my = sum(y * w for _, y, w in rows) / sw
    sxx = sum(w * (x - mx) ** 2 for x, _, w in rows)
    sxy = sum(w * (x - mx) * (y - my) for x, y, w in rows)
    b = max(0.0, sxy / sxx) if sxx > 0 else 0.0
    a = my - b * mx
    if a < 0:  # purely CPU-bound: refit through the origin
        b = sum(w * x * y for x, y, w in rows) / sum(w * x * x for x, _, w in rows)
        a = 0.0
    return DurationModel(io_ms=a, cpu_ms_at_1vcpu=b)


def project_duration(
    current_ms: float, current_mb: int, target_mb: int, model: DurationModel | None
) -> DurationRange:
    """Projected mean duration at ``target_mb``.

    Bounds: I/O-bound (unchanged) and CPU-bound (scales with the CPU share). Expected is
    the natural-experiment fit when there is one (range narrowed to +-10 % around it,
    inside the bounds), else the midpoint of the bounds.
    """
    cpu_bound = current_ms * cpu_share(current_mb) / cpu_share(target_mb)
    lower, upper = min(current_ms, cpu_bound), max(current_ms, cpu_bound)
    if model is None:
        return DurationRange(lower, (lower + upper) / 2.0, upper)
    scale = current_ms / model.at(current_mb) if model.at(current_mb) > 0 else 1.0
    expected = min(upper, max(lower, model.at(target_mb) * scale))
    return DurationRange(max(lower, expected * 0.9), expected, min(upper, expected * 1.1))


MEASURED_SPREAD = 0.05  # +-5 % at and between sizes Power Tuning measured
EXTRAPOLATED_SPREAD = 0.10  # +-10 % beyond them


def project_measured(
    current_ms: float, current_mb: int, target_mb: int, curve: MeasuredCurve
) -> DurationRange:
    """Projected mean duration (ms) at ``target_mb`` from a measured curve: today's mean
    times the curve's ratio between the two sizes (the tuning payload gives the shape,
    production the level). Measured points win over the I/O-CPU bounds: above one vCPU a
    multi-threaded function measured faster stays faster."""
    base = curve.at(current_mb)
    expected = current_ms * (curve.at(target_mb) / base if base > 0 else 1.0)
    inside = curve.covers(target_mb) and curve.covers(current_mb)
    spread = MEASURED_SPREAD if inside else EXTRAPOLATED_SPREAD
    return DurationRange(expected * (1 - spread), expected, expected * (1 + spread))


# ---------------------------------------------------------------- recommendation


def _usage_at(stats: MemoryStats, memory_mb: int, mean_ms: float) -> UsageTotals:
    """Usage at another memory size with a projected mean invoke duration (ms): the billed
    duration as observed (1 ms rounding, init inside it) moved by the change in mean, so
    the same size and duration cost exactly what they cost now."""
    now = current_usage(stats)
    shift = (mean_ms - (stats.mean_duration_ms or 0.0)) * stats.invocations
    return UsageTotals(
        invocations=now.invocations,
        memory_mb=memory_mb,
        billed_duration_ms=max(0.0, now.billed_duration_ms + shift),
        billable_init_ms=now.billable_init_ms,
        billed_restore_duration_ms=now.billed_restore_duration_ms,
        init_in_billed_ms=now.init_in_billed_ms,
    )


def _spread(stats: MemoryStats, p99: float | None) -> float:
    """Log-scale spread of memory use from its median and p99 (0 when unknown)."""
    median = histogram.quantile(stats.memory_hist, 0.5)
    return math.log(p99 / median) / UPPER_HALF_Z if p99 and median else 0.0


def _confidence(n: int, window_s: float, sigma_note: float) -> Confidence:
    days = window_s / 86400
    if n >= 1000 and days >= 7 and sigma_note < 0.15:
        return "high"
    if n >= 200 and days >= 3:
        return "medium"
    return "low"


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count:,} {singular if count == 1 else (plural or singular + 's')}"


# ---------------------------------------------------------------- step 1: the evidence


@dataclass(frozen=True)
class MemoryNeed:
    """What the evidence says about a function's memory need (MB).

    ``tail_mb``: upper bound of the 99.99th percentile of memory use (None without data);
    ``safe_mb``: the smallest size (64 MB steps) that covers it with headroom, or the
    bounded step up after out-of-memory errors; ``finding`` and the ``reasons`` behind it.
    """

    finding: Finding
    safe_mb: int | None
    tail_mb: float | None
    observed_max: int | None
    reasons: tuple[str, ...]
    stepped_up: bool = False


def _censored_samples(stats: MemoryStats) -> int:
    """Invocations that hit the configured size: out-of-memory errors, or samples in the
    histogram bucket of the limit (memory use is capped there)."""
    at_limit = sum(
        int(count)
        for key, count in stats.memory_hist.items()
        if histogram.bucket_value(key) * HISTOGRAM_ERROR >= stats.memory_mb
    )
    return max(stats.out_of_memory, at_limit, 1 if _at_limit(stats) else 0)


def _at_limit(stats: MemoryStats) -> bool:
    return stats.max_memory_used_mb is not None and stats.max_memory_used_mb >= stats.memory_mb


def oom_step_mb(stats: MemoryStats) -> tuple[int, float | None, str]:
    """The next size after out-of-memory errors (or memory use at the limit), MB, the
    estimated 99.99th percentile of the need (MB, None when it cannot be estimated), and why.

    An out-of-memory error says the need exceeded the configured size, not by how much.
    The share of invocations that hit the limit and the median of memory use fit a
    log-normal whose 99.99th percentile plus headroom is the target; the step is at least
    OOM_MIN_STEP and at most OOM_MAX_STEP times today's size.
    """
    limit = stats.memory_mb
    n = max(histogram.count(stats.memory_hist), round(stats.invocations), 1)
    k = min(_censored_samples(stats), n)
    share = k / n
    p50 = histogram.quantile(stats.memory_hist, 0.5) or 0.0
    floor, ceiling = limit * OOM_MIN_STEP, limit * OOM_MAX_STEP
    tail: float | None = None
    if p50 <= 0 or p50 >= limit or share >= 0.5:
        target, how = ceiling, "most invocations hit the limit: the need cannot be estimated"
    else:
        sigma = math.log(limit / p50) / _NORMAL.inv_cdf(1.0 - share)
        tail = p50 * math.exp(TAIL_Z * sigma)
        target = tail * (1 + HEADROOM)
        how = (
            f"a log-normal through the median {p50:.0f} MB and {share:.1%} of invocations"
            f" above {limit} MB puts p99.99 near {tail:.0f} MB"
        )
    bounded = min(ceiling, max(floor, target))
    size = min(MAX_MEMORY_MB, round_up_memory(bounded))
    if size <= limit:
        size = min(MAX_MEMORY_MB, round_up_memory(limit + 1))
    capped = f" (steps are capped at {OOM_MAX_STEP:g}x: check again after a few days there)"
    return (
        size,
        tail,
        (
            f"{k:,} of {n:,} invocations hit the configured {limit} MB: the need is above"
            f" it, by how much the errors do not say; {how}; step up to {size} MB"
            + (capped if target >= ceiling else "")
        ),
    )


def assess_memory(
    stats: MemoryStats,
    earlier: Sequence[MemoryStats] = (),
    *,
    min_invocations: int = DEFAULT_MIN_INVOCATIONS,
) -> MemoryNeed:
    """Step 1: the finding and the safe size for the current configuration ``stats``.

    ``earlier``: the same function at other sizes in the window; memory use rarely depends
    on the configured size, so their samples join the tail estimate and their maximum is
    a floor. Under-provisioned only with out-of-memory errors (or use at the limit) at the
    current size, or an estimated tail (a 95 % upper bound) that reaches it; optimized
    when the configured size is within OPTIMIZED_STEPS x 64 MB of the safe size.
    """
    reasons: list[str] = []
    evidence = [stats, *earlier]
    invocations = round(sum(s.invocations for s in evidence))
    merged = histogram.merge(s.memory_hist for s in evidence)
    maxima = [s.max_memory_used_mb for s in evidence if s.max_memory_used_mb is not None]
    observed_max = max(maxima) if maxima else None
    if stats.out_of_memory > 0 or _at_limit(stats):
        if stats.out_of_memory:
            reasons.append(
                f"{_plural(stats.out_of_memory, 'out-of-memory error')} at {stats.memory_mb} MB"
            )
        else:
            reasons.append(
                f"max memory used {stats.max_memory_used_mb} MB reached the configured"
                f" {stats.memory_mb} MB"
            )
        size, tail, how = oom_step_mb(stats)
        reasons.append(how)
        if size >= MAX_MEMORY_MB:
            reasons.append("already at or near the 10,240 MB maximum")
        return MemoryNeed(
            "under-provisioned", size, tail, observed_max, tuple(reasons), stepped_up=True
        )
    samples = histogram.count(merged)
    if invocations < min_invocations or samples == 0 or observed_max is None:
        reasons.append(
            f"{_plural(invocations, 'invocation')} in the window, fewer than {min_invocations}"
            if invocations < min_invocations
            else "no memory-use data (no REPORT lines) for this function"
        )
        return MemoryNeed("insufficient-data", None, None, observed_max, tuple(reasons))
    tail, how = estimate_tail_mb(merged, observed_max)
    reasons.append(how)
    if earlier:
        sizes = ", ".join(f"{s.memory_mb} MB" for s in earlier)
        reasons.append(f"memory use at the earlier sizes ({sizes}) counted as evidence")
    safe = max(round_up_memory(tail * (1 + HEADROOM)), min(MAX_MEMORY_MB, math.ceil(observed_max)))
    # under-provisioned when the central estimate reaches the size (more likely than not);
    # the safe size itself comes from the upper bound
    central, _ = estimate_tail_mb(merged, observed_max, confidence_z=0.0)
    finding: Finding
    if central >= stats.memory_mb:
        finding = "under-provisioned"
        safe = max(safe, round_up_memory(stats.memory_mb + 1))
        reasons.append(
            f"estimated tail {central:.0f} MB (upper bound {tail:.0f} MB) reaches the"
            f" configured {stats.memory_mb} MB"
        )
        if safe >= MAX_MEMORY_MB:
            reasons.append("already at or near the 10,240 MB maximum")
    elif stats.memory_mb - safe > OPTIMIZED_STEPS * STEP_MB:
        finding = "over-provisioned"
        reasons.append(
            f"{safe} MB covers the tail plus {HEADROOM:.0%} headroom;"
            f" configured {stats.memory_mb} MB"
        )
    else:
        finding = "optimized"
        if tail >= stats.memory_mb:
            reasons.append(
                f"configured {stats.memory_mb} MB covers the estimated tail {central:.0f} MB;"
                f" its upper bound {tail:.0f} MB does not fit: watch for out-of-memory errors"
            )
        elif safe > stats.memory_mb:
            reasons.append(
                f"configured {stats.memory_mb} MB covers the estimated tail, with less than"
                f" {HEADROOM:.0%} headroom"
            )
        else:
            reasons.append(
                f"configured {stats.memory_mb} MB is the safe size"
                if safe == stats.memory_mb
                else f"configured {stats.memory_mb} MB is within {OPTIMIZED_STEPS * STEP_MB} MB"
                f" of the safe size {safe} MB"
            )
        safe = stats.memory_mb
    if samples < invocations:
        reasons.append(f"memory use known for {samples:,} of {invocations:,} invocations")
    return MemoryNeed(finding, safe, tail, observed_max, tuple(reasons))


# ---------------------------------------------------------------- step 2: candidate sizes


def candidate_sizes(safe_mb: int, current_mb: int) -> list[int]:
    """Sizes worth projecting, MB: from the safe size up to the larger of today's size and
    one vCPU (1,792 MB) in 64 MB steps below 2,048 MB, 128 MB to 4,096, 256 MB above."""
    top = min(MAX_MEMORY_MB, max(current_mb, safe_mb, round_up_memory(ONE_VCPU_MB)))
    sizes = {safe_mb, top}
    if safe_mb <= current_mb <= top:
        sizes.add(current_mb)
    size = safe_mb
    while size < top:
        size += STEP_MB if size < 2048 else 128 if size < 4096 else 256
        sizes.add(min(size, top))
    return sorted(sizes)


# ---------------------------------------------------------------- step 3: projections


def _p99_to_mean(stats: MemoryStats) -> float:
    mean = stats.mean_duration_ms or 0.0
    p99 = histogram.quantile(stats.duration_hist, 0.99) or 0.0
    return p99 / mean if mean > 0 and p99 > 0 else 1.0


def _cpu_evidence(cpu: insights.CpuProfile) -> str:
    return "invocations in LambdaInsights metrics" if cpu.source == "metrics" else "events"


def project_options(
    stats: MemoryStats,
    sizes: Sequence[int],
    model: DurationModel | None,
    *,
    window_s: float,
    free_tier: bool | FreeTier = False,
    architecture: str | None = None,
    measured: MeasuredCurve | None = None,
    cpu: insights.CpuProfile | None = None,
) -> list[Option]:
    """Step 3: projected duration (ms) and cost (USD) at each size (unranked); from the
    ``measured`` curve (Power Tuning) when there is one, else from ``model``."""
    arch = stats.architecture or "x86_64"
    target_arch = architecture or arch
    mean_ms = stats.mean_duration_ms or 0.0
    current = _current_cost(stats, window_s, free_tier)
    out = []
    for memory in sizes:
        if measured is not None:
            rng = project_measured(mean_ms, stats.memory_mb, memory, measured)
        elif model is None and cpu is not None:
            rng = DurationRange(*insights.project(mean_ms, stats.memory_mb, memory, cpu))
        else:
            rng = project_duration(mean_ms, stats.memory_mb, memory, model)
        if target_arch != arch:  # Graviton: similar on average, widely spread by workload
            rng = DurationRange(rng.expected * 0.9, rng.expected, rng.expected * 1.2)
        cost = window_cost(
            _usage_at(stats, memory, rng.expected),
            architecture=target_arch,
            region=stats.region,
            free_tier=free_tier,
            window_s=window_s,
        ).total_usd
        out.append(
            Option(
                0,
                memory,
                target_arch,
                rng,
                cost,
                current - cost,
                per_30_days(cost, window_s),
                per_30_days(current - cost, window_s),
                target_arch != arch,
            )
        )
    return out


def _current_cost(stats: MemoryStats, window_s: float, free_tier: bool | FreeTier) -> float:
    return window_cost(
        current_usage(stats),
        architecture=stats.architecture or "x86_64",
        region=stats.region,
        free_tier=free_tier,
        window_s=window_s,
    ).total_usd


# ---------------------------------------------------------------- step 4: strategies


def choose(
    options: Sequence[Option],
    *,
    today_ms: float,
    today_usd: float,
    policy: Policy,
    keep_mb: int | None = None,
) -> dict[Strategy, Option]:
    """Step 4: what each strategy picks among ``options`` (all safe sizes).

    cost: the cheapest; balanced: the cheapest whose expected duration stays within
    ``max_slowdown`` x today's; speed: the fastest (ties within 2 % go to the cheaper)
    whose cost rises at most ``max_cost_increase`` over today's, else the cheapest.
    ``keep_mb``: the configured size when it is already right (cost and balanced keep it).
    """
    cheapest = min(options, key=lambda o: (o.projected_cost_usd, o.memory_mb))
    kept = next((o for o in options if o.memory_mb == keep_mb), None)
    within = [
        o
        for o in options
        if today_ms <= 0
        or o.projected_duration_ms.expected <= policy.max_slowdown * today_ms + 1e-9
    ]
    balanced = (
        min(within, key=lambda o: (o.projected_cost_usd, o.memory_mb))
        if within
        else min(options, key=lambda o: (o.projected_duration_ms.expected, o.projected_cost_usd))
    )
    budget = today_usd * (1 + policy.max_cost_increase) + 1e-12
    affordable = [o for o in options if o.projected_cost_usd <= budget]
    speed = cheapest
    if affordable:
        fastest = min(o.projected_duration_ms.expected for o in affordable)
        speed = min(
            (o for o in affordable if o.projected_duration_ms.expected <= fastest * 1.02),
            key=lambda o: (o.projected_cost_usd, o.memory_mb),
        )
    if kept is not None:
        cheapest = balanced = kept
        if speed.projected_duration_ms.expected >= kept.projected_duration_ms.expected / 1.02:
            speed = kept
    return {"cost": cheapest, "balanced": balanced, "speed": speed}


def assess_risk(
    stats: MemoryStats, option: Option, policy: Policy, today_ms: float
) -> tuple[bool, list[str]]:
    """Step 5: performance risk of moving to ``option``: its expected duration is more
    than ``policy.max_slowdown`` x today's, or its projected p99 (today's p99 scaled by
    the upper bound) reaches TIMEOUT_RISK of the configured timeout."""
    reasons: list[str] = []
    expected = option.projected_duration_ms.expected
    if today_ms > 0 and expected > policy.max_slowdown * today_ms + 1e-9:
        reasons.append(
            f"{option.memory_mb} MB is projected {expected / today_ms:.1f}x slower than today"
            f" ({expected:,.0f} ms against {today_ms:,.0f} ms), beyond the"
            f" {policy.max_slowdown:g}x limit"
        )
    if stats.timeout_s and today_ms > 0:
        p99 = option.projected_duration_ms.upper * _p99_to_mean(stats)
        if p99 >= TIMEOUT_RISK * stats.timeout_s * 1000:
            reasons.append(
                f"projected p99 duration {p99:,.0f} ms reaches {TIMEOUT_RISK:.0%} of the"
                f" {stats.timeout_s} s timeout"
            )
    return bool(reasons), reasons


def _choice(option: Option, today_ms: float) -> Choice:
    expected = option.projected_duration_ms.expected
    return Choice(
        option.memory_mb,
        expected,
        expected / today_ms if today_ms > 0 else None,
        option.monthly_cost_usd,
        option.monthly_savings_usd,
    )


def _history_entries(
    stats: MemoryStats, history: Sequence[MemoryStats]
) -> tuple[HistoryEntry, ...]:
    others = [h for h in history if h.memory_mb != stats.memory_mb]
    others.sort(key=lambda h: (h.last_hour or 0, h.memory_mb))
    return tuple(
        HistoryEntry(
            memory_mb=h.memory_mb,
            invocations=round(h.invocations),
            first_seen=iso(h.first_hour),
            last_seen=iso(h.last_hour),
            max_memory_used_mb=h.max_memory_used_mb,
            mean_duration_ms=h.mean_duration_ms,
            out_of_memory_errors=h.out_of_memory,
        )
        for h in others
    )


def recommend(
    stats: MemoryStats,
    history: list[MemoryStats] | None = None,
    *,
    window_s: float,
    min_invocations: int = DEFAULT_MIN_INVOCATIONS,
    free_tier: bool | FreeTier = False,
    earlier: Sequence[MemoryStats] = (),
    policy: Policy | None = None,
    measured: MeasuredCurve | None = None,
    cpu: insights.CpuProfile | None = None,
) -> Recommendation:
    """Right-size one function at its current configuration ``stats`` (pure).

    ``history``: the same function's stats at other memory sizes over the stored history
    (the natural experiment, and the ``history`` list). ``earlier``: its other sizes in
    the window (memory evidence). ``window_s``: the seconds ``stats`` covers (for 30-day
    projections). ``free_tier``: True for the whole prorated free tier, or this function's
    share of it. ``policy``: strategy and limits (default balanced, 1.25x, +25 %).
    ``measured``: durations measured at several sizes (the latest Power Tuning run);
    its points are used before the natural-experiment model. ``cpu``: Lambda Insights'
    CPU profile at the current size, used when neither of those exists.
    """
    policy = policy or Policy()
    arch = stats.architecture or "x86_64"
    today_ms = stats.mean_duration_ms or 0.0
    current = _current_cost(stats, window_s, free_tier)
    model, points = _duration_model(stats, history or [])
    if cpu is not None and (
        cpu.memory_mb != stats.memory_mb or cpu.invocations < MIN_INSIGHTS_EVENTS
    ):
        cpu = None
    need = (
        _managed_instances(stats)
        if stats.capacity_provider_arn
        else assess_memory(stats, earlier, min_invocations=min_invocations)
    )
    p99 = histogram.quantile(stats.memory_hist, 0.99, stats.max_memory_used_mb)
    values: dict[str, Any] = {
        "function_name": stats.function_name,
        "account_id": stats.account_id,
        "region": stats.region,
        "architecture": arch,
        "memory_mb": stats.memory_mb,
        "invocations": round(stats.invocations),
        "errors": round(stats.errors),
        "out_of_memory_errors": stats.out_of_memory,
        "max_memory_used_mb": need.observed_max,
        "p99_memory_used_mb": p99,
        "estimated_tail_memory_mb": need.tail_mb,
        "finding": need.finding,
        "reasons": need.reasons,
        "recommended_memory_mb": None,
        "confidence": "low",
        "performance_risk": False,
        "projected_duration_ms": None,
        "options": (),
        "current_cost_usd": current,
        "projected_cost_usd": current,
        "projected_savings_usd": 0.0,
        "monthly_savings_usd": 0.0,
        "natural_experiment": model is not None,
        "duration_evidence": (
            "power-tuning"
            if measured is not None
            else "natural-experiment"
            if model is not None
            else "lambda-insights"
            if cpu is not None
            else "bounds"
        ),
        "strategy": policy.strategy,
        "strategies": {},
        "history": _history_entries(stats, history or []),
        "current_duration_ms": stats.mean_duration_ms,
        "timeout_s": stats.timeout_s,
        "current_monthly_cost_usd": per_30_days(current, window_s),
    }
    no_reports = stats.sampled_invocations <= 0 and need.finding in (
        "over-provisioned",
        "optimized",
    )
    if need.safe_mb is None or no_reports:
        if need.safe_mb is not None:
            values["finding"] = "insufficient-data"
            values["reasons"] = (*need.reasons, "no REPORT lines at the current size")
        return Recommendation(**values)
    reasons = list(need.reasons)
    if measured is not None:
        reasons.append(_measured_reason(measured, stats.memory_mb))
    elif model is None and cpu is not None:
        busy = insights.busy_vcpus(cpu)
        scaling = (
            f"{busy:.1f} vCPUs busy on average: that part scales with up to that many vCPUs"
            if busy > 1
            else "that part scales with the CPU share up to one vCPU (the range allows"
            " multi-threaded code more)"
        )
        reasons.append(
            f"Lambda Insights: {cpu.wall_share:.0%} of the duration is CPU time at"
            f" {stats.memory_mb} MB ({cpu.invocations:,} {_cpu_evidence(cpu)}); {scaling}"
            f" (range: {cpu.share_below:.0%} below to {cpu.share_above:.0%} above)"
        )
    elif model is not None:
        reasons.append(
            f"duration fitted on {len(points)} memory sizes in history: "
            f"{model.cpu_fraction(stats.memory_mb):.0%} CPU-bound at {stats.memory_mb} MB"
        )
    sizes = candidate_sizes(need.safe_mb, stats.memory_mb)
    options = project_options(
        stats, sizes, model, window_s=window_s, free_tier=free_tier, measured=measured, cpu=cpu
    )
    keep = stats.memory_mb if need.finding == "optimized" else None
    picks = choose(options, today_ms=today_ms, today_usd=current, policy=policy, keep_mb=keep)
    chosen = picks[policy.strategy]
    reasons += _strategy_reasons(picks, policy, today_ms, current)
    risky, why = assess_risk(stats, chosen, policy, today_ms)
    reasons += why
    recommended = chosen.memory_mb
    ranked = _rank(options, picks, stats.memory_mb, need.finding)
    if arch != "arm64":  # the Graviton what-if at the recommended size
        what_if = project_options(
            stats,
            [recommended],
            model,
            window_s=window_s,
            free_tier=free_tier,
            architecture="arm64",
            measured=measured,
            cpu=cpu,
        )[0]
        ranked.append(Option(len(ranked) + 1, *_fields(what_if)))
    savings = current - chosen.projected_cost_usd if recommended != stats.memory_mb else 0.0
    values.update(
        reasons=tuple(reasons),
        recommended_memory_mb=recommended,
        confidence=_confidence(round(stats.invocations), window_s, _spread(stats, p99)),
        performance_risk=risky,
        projected_duration_ms=chosen.projected_duration_ms,
        options=tuple(ranked),
        projected_cost_usd=current - savings,
        projected_savings_usd=savings,
        monthly_savings_usd=per_30_days(savings, window_s),
        strategies={name: _choice(option, today_ms) for name, option in picks.items()},
    )
    return Recommendation(**values)


def _strategy_reasons(
    picks: dict[Strategy, Option], policy: Policy, today_ms: float, today_usd: float
) -> list[str]:
    """Why the strategy did not simply take the cheapest safe size (or could not keep to
    its cost budget)."""
    chosen, cheapest = picks[policy.strategy], picks["cost"]
    reasons = []
    budget = today_usd * (1 + policy.max_cost_increase)
    if policy.strategy == "speed" and chosen is cheapest and chosen.projected_cost_usd > budget:
        reasons.append(
            f"no safe size within +{policy.max_cost_increase:.0%} of today's cost: the cheapest"
            " safe size"
        )
    if policy.strategy == "balanced" and chosen.memory_mb > cheapest.memory_mb and today_ms:
        slower = cheapest.projected_duration_ms.expected / today_ms
        reasons.append(
            f"balanced picks {chosen.memory_mb} MB: {cheapest.memory_mb} MB (the cost"
            f" strategy) is projected {slower:.1f}x slower, beyond the"
            f" {policy.max_slowdown:g}x limit"
        )
    return reasons


def _managed_instances(stats: MemoryStats) -> MemoryNeed:
    """Lambda Managed Instances: no per-invocation memory advice (several requests share
    an execution environment; memory is set as GiB per vCPU of the capacity provider)."""
    return MemoryNeed(
        "managed-instances",
        None,
        None,
        stats.max_memory_used_mb,
        (
            f"runs on Lambda Managed Instances (capacity provider {stats.capacity_provider_arn}):"
            " its compute is billed by the capacity provider's EC2 instances (on-demand price"
            " plus a management fee), not per GB-second, so only its requests are priced here",
            "several requests share each execution environment and memory is set as GiB per"
            " vCPU: size the capacity provider from its CPU and memory utilisation, not from"
            " per-invocation memory use",
        ),
    )


def _measured_reason(curve: MeasuredCurve, current_mb: int) -> str:
    sizes = ", ".join(f"{m:,}" for m in curve.sizes)
    when = f" on {(iso(curve.measured_at) or '')[:10]}" if curve.measured_at else ""
    scaled = (
        f"today's {current_mb} MB was measured"
        if curve.measured(current_mb)
        else f"today's {current_mb} MB "
        + ("interpolated" if curve.covers(current_mb) else "extrapolated")
    )
    return (
        f"durations measured by AWS Lambda Power Tuning at {sizes} MB{when} (used before"
        f" the model; {scaled}; scaled to production's mean duration)"
    )


def _duration_model(
    stats: MemoryStats, history: Sequence[MemoryStats]
) -> tuple[DurationModel | None, list[tuple[int, float, float]]]:
    """The natural experiment: mean durations at the sizes the function ran with."""
    points = [(stats.memory_mb, stats.mean_duration_ms or 0.0, float(stats.sampled_invocations))]
    for other in history:
        if other.memory_mb != stats.memory_mb and other.mean_duration_ms:
            points.append(
                (other.memory_mb, other.mean_duration_ms, float(other.sampled_invocations))
            )
    return (fit_duration_model(points) if len(points) >= 2 else None), points


def _rank(
    options: Sequence[Option], picks: dict[Strategy, Option], current_mb: int, finding: str
) -> list[Option]:
    """The options shown: each strategy's pick and today's size (when it is safe), by cost."""
    shown = {o.memory_mb: o for o in picks.values()}
    for o in options:
        if o.memory_mb == current_mb and finding != "under-provisioned":
            shown[o.memory_mb] = o
    ordered = sorted(shown.values(), key=lambda o: (o.projected_cost_usd, o.memory_mb))
    return [Option(i + 1, *_fields(o)) for i, o in enumerate(ordered)]


def _fields(o: Option) -> tuple[Any, ...]:
    return (
        o.memory_mb,
        o.architecture,
        o.projected_duration_ms,
        o.projected_cost_usd,
        o.projected_savings_usd,
        o.monthly_cost_usd,
        o.monthly_savings_usd,
        o.what_if,
    )


def power_tuning_input(
    rec: Recommendation,
    function_arn: str | None = None,
    num: int = 50,
    strategy: str | None = None,
) -> dict[str, Any]:
    """Input JSON for AWS Lambda Power Tuning (its documented execution input).

    ``powerValues``: 0.5x, 0.75x, 1x, 1.5x and 2x the recommendation (multiples of 64 MB,
    128..10,240) plus each strategy's pick and the current size, leaving out sizes below
    the memory the function was seen to need (estimated tail, else observed max):
    invoking it there would only end in out-of-memory errors and fail the tuning run.
    After out-of-memory errors the current size is left out and the values are the sizes
    between it and the recommendation (a quarter, half and three quarters of the way),
    the recommendation and 1.25x it: the errors do not say how much more is needed.
    ``strategy`` defaults to the recommendation's. Without a known ARN, region and
    account are written as
    ``<region>`` / ``<account-id>`` placeholders to fill in.
    """
    strategy = strategy or rec.strategy
    centre = rec.recommended_memory_mb or rec.memory_mb
    if rec.finding == "under-provisioned" and centre > rec.memory_mb:
        gap = centre - rec.memory_mb
        values = {round_up_memory(rec.memory_mb + gap * f) for f in (0.25, 0.5, 0.75)}
        values |= {centre, round_up_memory(centre * 1.25)}
        values = {v for v in values if v > rec.memory_mb}
    else:
        floor = rec.estimated_tail_memory_mb or float(rec.max_memory_used_mb or 0)
        values = {round_up_memory(centre * f) for f in (0.5, 0.75, 1.0, 1.5, 2.0)}
        # each strategy's pick (the cost pick is the smallest safe size): measured there,
        # an imported run (lambdascope.evidence.power_tuning) replaces its modelled duration
        values |= {choice.memory_mb for choice in rec.strategies.values()}
        if rec.finding != "under-provisioned":
            values.add(rec.memory_mb)
        values = {v for v in values if v >= floor} or {round_up_memory(max(floor, centre))}
    arn = function_arn or (
        f"arn:aws:lambda:{rec.region or '<region>'}:{rec.account_id or '<account-id>'}"
        f":function:{rec.function_name}"
    )
    payload: dict[str, Any] = {
        "lambdaARN": arn,
        "powerValues": sorted(values),
        "num": num,
        "payload": {},
        "parallelInvocation": False,
        "strategy": strategy,
    }
    if strategy == "balanced":
        payload["balancedWeight"] = 0.5
    return payload


# ---------------------------------------------------------------- store read

# The histograms the recommendations read (memory tail, duration shape, init).
WINDOW_HISTOGRAMS = (queries.MEMORY_HIST, "duration_hist", "init_duration_hist")


def query_filters(
    filters: FilterLike | None, function_ids: Collection[int] | None = None
) -> queries.Filters:
    if isinstance(filters, queries.Filters):
        base = filters
    elif filters is not None:
        base = queries.Filters(
            function_names=tuple(filters.function_names),
            regions=tuple(filters.regions),
            account_ids=tuple(filters.account_ids),
            include_deleted=True,
        )
    else:
        base = queries.Filters(include_deleted=True)
    if function_ids is not None:
        base = replace(base, function_ids=tuple(int(i) for i in function_ids))
    return base


def read_memory_stats(
    db: Database,
    start: int,
    end: int,
    filters: FilterLike | None = None,
    *,
    init_cutoff: int | None = None,
    histograms: bool = True,
    function_ids: Collection[int] | None = None,
    window_stats: Sequence[queries.FunctionStats] | None = None,
) -> list[MemoryStats]:
    """Per function x configured memory stats for hours in [start, end) (epoch seconds),
    from the merged view (lambdascope.queries.function_stats): local facts win over Logs
    Insights facts for a function-hour; invocation, error and throttle counts come from
    CloudWatch metrics where an hour has them. Rows without any invocation and rows of
    unknown memory size (None, or 0: logs that did not say) are left out: there is no
    configured size to compare with. Init time is billable from ``init_cutoff`` (default:
    the price table's 2025-08-01) and before it for images and custom runtimes.
    ``window_stats``: the window's ``queries.function_stats`` rows when the caller already
    read them with the memory, duration and init histograms (they are not read again).
    """
    from lambdascope.cost import init_billed_before_the_change
    from lambdascope.pricing import default_table
    from lambdascope.usage import billable_init_ms

    if function_ids is not None and not function_ids:
        return []
    cutoff = default_table().init_billed_for_all_since if init_cutoff is None else init_cutoff
    scope = query_filters(filters, function_ids)
    wanted = WINDOW_HISTOGRAMS if histograms else ()
    if window_stats is None:
        window_stats = queries.function_stats(db, start, end, scope, histograms=wanted)
    rows = [s for s in window_stats if s.memory_mb and (s.invocations > 0 or s.log_invocations > 0)]
    # The part of the window before the cutoff, where INIT was not billed for most.
    if start < cutoff < end:
        before = {
            (s.function_id, s.memory_mb): s
            for s in queries.function_stats(db, start, cutoff, scope, histograms=False)
        }
    elif cutoff >= end:
        before = {(s.function_id, s.memory_mb): s for s in rows}
    else:
        before = {}
    managed = _capacity_providers(db)
    out: list[MemoryStats] = []
    for s in rows:
        always = init_billed_before_the_change(s.package_type, s.runtime)
        pre = None if always else before.get((s.function_id, s.memory_mb))
        init_b, dur_b, billed_b, reports_b = (
            s.init_duration_ms_sum - (pre.init_duration_ms_sum if pre else 0.0),
            s.duration_ms_sum - (pre.duration_ms_sum if pre else 0.0),
            s.billed_duration_ms_sum - (pre.billed_duration_ms_sum if pre else 0.0),
            s.log_invocations - (pre.log_invocations if pre else 0),
        )
        out.append(
            MemoryStats(
                function_name=s.function_name,
                account_id=s.account_id,
                region=s.region,
                architecture=s.architecture,
                memory_mb=int(s.memory_mb or 0),
                invocations=s.invocations,
                errors=s.errors,
                throttles=s.throttles,
                timeouts=s.timeouts,
                out_of_memory=s.out_of_memory,
                cold_starts=s.cold_starts,
                duration_ms_sum=s.duration_ms_sum,
                duration_ms_max=s.duration_max_ms,
                billed_duration_ms_sum=s.billed_duration_ms_sum,
                init_duration_ms_sum=s.init_duration_ms_sum,
                billable_init_ms=billable_init_ms(init_b, dur_b, billed_b, reports_b),
                billed_restore_duration_ms_sum=s.billed_restore_duration_ms_sum,
                max_memory_used_mb=s.max_memory_used_mb,
                memory_hist=s.memory_hist,
                duration_hist=s.duration_hist,
                init_hist=s.init_hist,
                runtime=s.runtime,
                timeout_s=s.timeout_s,
                first_hour=s.first_seen,
                last_hour=s.last_seen,
                sampled_invocations=s.log_invocations,
                capacity_provider_arn=managed.get(s.function_id),
            )
        )
    return out


def _capacity_providers(db: Database) -> dict[int, str]:
    """Function id -> capacity provider ARN for functions on Lambda Managed Instances
    (empty for a store from before the column existed, opened read-only)."""
    try:
        rows = db.conn.execute(
            "SELECT id, capacity_provider_arn FROM functions"
            " WHERE capacity_provider_arn IS NOT NULL"
        ).fetchall()
    except sqlite3.OperationalError:
        return {}
    return {int(fid): str(arn) for fid, arn in rows}


def current_configuration(sizes: Sequence[MemoryStats]) -> MemoryStats:
    """The size a function runs with now among its sizes in a window: the latest seen
    (ties: the busier)."""
    return max(sizes, key=lambda s: (s.last_hour or 0, s.invocations, s.memory_mb))


def recommend_all(
    db: Database,
    start: int,
    end: int,
    filters: FilterLike | None = None,
    *,
    now: int | None = None,
    min_invocations: int = DEFAULT_MIN_INVOCATIONS,
    free_tier: bool = False,
    history_days: int = 90,
    window_stats: Sequence[queries.FunctionStats] | None = None,
    policy: Policy | None = None,
) -> list[Recommendation]:
    """One recommendation per function seen in [start, end), for its current
    configuration (the memory size seen last); its other sizes are evidence.

    ``now`` is accepted for symmetry with other analyses; the window is [start, end).
    The natural experiment and the ``history`` list use each function's memory sizes over
    the ``history_days`` before ``end`` (the stored history, from the start of that UTC
    day: whole days, read from the daily rows), not only the window. When
    the size changed in the window, costs per 30 days are projected from the time since
    the current size was first seen. With ``free_tier`` each account's free tier,
    prorated to the window, is shared among its functions in proportion to their requests
    and GB-seconds (``cost.share_free_tier``). ``window_stats``: see
    :func:`read_memory_stats` (read with :data:`WINDOW_HISTOGRAMS`). ``policy``: the
    strategy and its limits.
    """
    del now
    stats = read_memory_stats(db, start, end, filters, window_stats=window_stats)
    in_window: dict[tuple[str, str, str], list[MemoryStats]] = defaultdict(list)
    for s in stats:
        in_window[(s.account_id, s.region, s.function_name)].append(s)
    history_start = end - history_days * 86400
    history_start -= history_start % 86400  # whole days: no edge hours to read
    changed = queries.functions_with_several_memory_sizes(
        db, history_start, end, query_filters(filters)
    )
    history = (
        read_memory_stats(db, history_start, end, filters, histograms=False, function_ids=changed)
        if changed
        else []
    )
    curves = latest_curves(db)
    profiles = insights.cpu_profiles(db, start, end)
    by_function: dict[tuple[str, str, str], list[MemoryStats]] = defaultdict(list)
    for s in history:
        by_function[(s.account_id, s.region, s.function_name)].append(s)
    window_s = float(max(0, end - start))
    currents = [current_configuration(sizes) for sizes in in_window.values()]
    shares = free_tier_shares(currents, window_s) if free_tier else None
    out = []
    for i, (key, sizes) in enumerate(in_window.items()):
        current = currents[i]
        earlier = [s for s in sizes if s is not current]
        span = window_s
        if earlier and current.first_hour is not None:
            span = float(max(3600, end - max(start, current.first_hour)))
        out.append(
            recommend(
                current,
                by_function.get(key) or sizes,
                window_s=span,
                min_invocations=min_invocations,
                free_tier=shares[i] if shares is not None else False,
                earlier=earlier,
                policy=policy,
                measured=curves.get(key),
                cpu=profiles.get((*key, current.memory_mb)),
            )
        )
    return out


def free_tier_shares(stats: list[MemoryStats], window_s: float) -> list[FreeTier]:
    """Each row's share of its account's free tier prorated to the window, in the order of
    ``stats`` (``cost.share_free_tier`` per account, usage as observed)."""
    by_account: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(stats):
        by_account[s.account_id].append(i)
    out: list[FreeTier] = [FreeTier(0.0, 0.0)] * len(stats)
    for rows in by_account.values():
        usages = [current_usage(stats[i]) for i in rows]
        for i, share in zip(rows, share_free_tier(usages, window_s), strict=True):
            out[i] = share
    return out
