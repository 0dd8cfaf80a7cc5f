"""Deploy regression test: before/after a change, over hourly histograms (pure, numpy).

The unit of resampling is the hour, not the invocation: durations within an hour are
correlated (traffic mix, downstream latency), so an invocation-level test would call
ordinary hour-to-hour drift a regression. Each bootstrap replicate resamples the hours
of each side with replacement (optionally also the invocations within the merged
histogram, Poisson weights: more conservative, measured to cost recall without
lowering false alarms, see bench/README.md) and compares the two sides' quantiles.
``confidence`` is the share of replicates in which the after side is worse; the effect
size is the ratio of the quantiles (or the difference of error rates) on the data as
observed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lambdascope import histogram

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Comparison:
    """One metric before vs after a change.

    ``before``/``after``: the statistic on the observed data (ms or MB for quantiles, a
    fraction for error rates). ``effect``: after / before - 1 for quantiles, after - before
    for rates. ``low``/``high``: the 90 % bootstrap interval of the effect.
    ``confidence``: share of replicates with after worse than before (0..1).
    """

    metric: str
    before: float
    after: float
    effect: float
    low: float
    high: float
    confidence: float
    before_hours: int
    after_hours: int
    before_count: float
    after_count: float


def _matrix(hours: Sequence[Mapping[str, int]], keys: list[str]) -> FloatArray:
    index = {k: i for i, k in enumerate(keys)}
    out = np.zeros((len(hours), len(keys)), dtype=np.float64)
    for row, hist in enumerate(hours):
        for key, count in hist.items():
            out[row, index[key]] += count
    return out


def _quantiles(counts: FloatArray, values: FloatArray, q: float) -> FloatArray:
    """Nearest-rank quantile of each row of bucket counts (NaN for an empty row)."""
    cumulative = np.cumsum(counts, axis=1)
    total = cumulative[:, -1]
    rank = np.maximum(1.0, np.ceil(q * total))
    position = np.argmax(cumulative >= rank[:, None], axis=1)
    result = values[position]
    return np.where(total > 0, result, np.nan)


def _resample_hours(n_hours: int, resamples: int, rng: np.random.Generator) -> FloatArray:
    """Per replicate, how many times each hour is drawn (R x n)."""
    uniform = np.full(n_hours, 1.0 / n_hours)
    return rng.multinomial(n_hours, uniform, size=resamples).astype(np.float64)


def compare_quantile(
    metric: str,
    before_hours: Sequence[Mapping[str, int]],
    after_hours: Sequence[Mapping[str, int]],
    *,
    q: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
    within_hour: bool = False,
) -> Comparison | None:
    """Compare the ``q``-quantile of hourly histograms before and after; None when a
    side has no samples."""
    before_hours = [h for h in before_hours if histogram.count(h) > 0]
    after_hours = [h for h in after_hours if histogram.count(h) > 0]
    if not before_hours or not after_hours:
        return None
    keys = sorted(
        {k for h in (*before_hours, *after_hours) for k in h},
        key=lambda k: -math.inf if k == histogram.ZERO_KEY else int(k),
    )
    values = np.array([histogram.bucket_value(k) for k in keys], dtype=np.float64)
    before = _matrix(before_hours, keys)
    after = _matrix(after_hours, keys)
    observed_before = float(_quantiles(before.sum(axis=0)[None, :], values, q)[0])
    observed_after = float(_quantiles(after.sum(axis=0)[None, :], values, q)[0])
    rng = np.random.default_rng(seed)
    sides = []
    for side in (before, after):
        merged = _resample_hours(side.shape[0], resamples, rng) @ side
        if within_hour:
            merged = rng.poisson(merged).astype(np.float64)
        sides.append(_quantiles(merged, values, q))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = sides[1] / sides[0] - 1.0
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size == 0 or observed_before <= 0:
        return None
    return Comparison(
        metric=metric,
        before=observed_before,
        after=observed_after,
        effect=observed_after / observed_before - 1.0,
        low=float(np.quantile(ratios, 0.05)),
        high=float(np.quantile(ratios, 0.95)),
        confidence=float(np.mean(ratios > 0)),
        before_hours=len(before_hours),
        after_hours=len(after_hours),
        before_count=float(before.sum()),
        after_count=float(after.sum()),
    )


def compare_rate(
    metric: str,
    before_hours: Sequence[tuple[float, float]],
    after_hours: Sequence[tuple[float, float]],
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> Comparison | None:
    """Compare a rate (events / invocations per hour, e.g. errors) before and after;
    None when a side saw no invocations."""
    before = np.array([h for h in before_hours if h[1] > 0], dtype=np.float64).reshape(-1, 2)
    after = np.array([h for h in after_hours if h[1] > 0], dtype=np.float64).reshape(-1, 2)
    if before.shape[0] == 0 or after.shape[0] == 0:
        return None
    rng = np.random.default_rng(seed)
    rates = []
    for side in (before, after):
        weights = _resample_hours(side.shape[0], resamples, rng)
        events = rng.poisson(weights @ side[:, 0]).astype(np.float64)
        total = weights @ side[:, 1]
        rates.append(events / total)
    differences = rates[1] - rates[0]
    observed_before = float(before[:, 0].sum() / before[:, 1].sum())
    observed_after = float(after[:, 0].sum() / after[:, 1].sum())
    return Comparison(
        metric=metric,
        before=observed_before,
        after=observed_after,
        effect=observed_after - observed_before,
        low=float(np.quantile(differences, 0.05)),
        high=float(np.quantile(differences, 0.95)),
        confidence=float(np.mean(differences > 0)),
        before_hours=int(before.shape[0]),
        after_hours=int(after.shape[0]),
        before_count=float(before[:, 1].sum()),
        after_count=float(after[:, 1].sum()),
    )


def is_regression(comparison: Comparison, *, confidence: float, min_effect: float) -> bool:
    """A regression: the after side is worse by at least ``min_effect`` on the observed
    data, in at least ``confidence`` of the replicates."""
    return comparison.effect >= min_effect and comparison.confidence >= confidence
