"""Mergeable log-bucketed histograms with bounded relative error.

A value ``x > 0`` falls in bucket ``floor(log(x) / log(GAMMA))``; a bucket's
representative value is its geometric midpoint, so any percentile read back is within
about ``(GAMMA - 1) / 2`` (1 %) of a true sample value. Histograms of different hours,
sources or functions merge by adding counts. The same bucketing can be computed inside a
CloudWatch Logs Insights query (``floor(log(x)/log(1.02))``), so Insights results and
local logs fill the same shape.

A histogram is ``{"<bucket>": count, ...}``; zero and negative values use the bucket key
``"z"`` (read back as 0). The store keeps them as bytes (lambdascope.histcodec); the JSON
text of :func:`to_json` is what stores held before migration 0015.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping

GAMMA = 1.02
_LOG_GAMMA = math.log(GAMMA)
ZERO_KEY = "z"

Histogram = dict[str, int]


def bucket_of(value: float) -> str:
    """The bucket key of one value."""
    if not value > 0 or math.isinf(value):
        return ZERO_KEY
    return str(math.floor(math.log(value) / _LOG_GAMMA))


def bucket_value(key: str) -> float:
    """Representative value of a bucket (geometric midpoint; 0 for the zero bucket)."""
    if key == ZERO_KEY:
        return 0.0
    index = int(key)
    return float(GAMMA ** (index + 0.5))


def bucket_upper(key: str) -> float:
    """Upper bound of a bucket (exclusive)."""
    if key == ZERO_KEY:
        return 0.0
    return float(GAMMA ** (int(key) + 1))


def from_values(values: Iterable[float]) -> Histogram:
    """Build a histogram from raw values (None-free)."""
    hist: Histogram = {}
    for value in values:
        key = bucket_of(value)
        hist[key] = hist.get(key, 0) + 1
    return hist


def add(hist: Histogram, value: float, count: int = 1) -> None:
    """Add ``count`` samples of ``value`` in place."""
    key = bucket_of(value)
    hist[key] = hist.get(key, 0) + count


def merge(histograms: Iterable[Mapping[str, int]]) -> Histogram:
    """Sum several histograms."""
    total: Histogram = {}
    for hist in histograms:
        for key, count in hist.items():
            total[key] = total.get(key, 0) + int(count)
    return total


def count(hist: Mapping[str, int]) -> int:
    """Number of samples."""
    return sum(int(c) for c in hist.values())


def _ordered(hist: Mapping[str, int]) -> list[tuple[float, str, int]]:
    """(bucket index, key, count) in value order; the zero bucket first. Values are
    computed only for the buckets a caller reads."""
    items = [(-math.inf if k == ZERO_KEY else int(k), k, int(c)) for k, c in hist.items() if c > 0]
    items.sort()
    return items


def _sorted_items(hist: Mapping[str, int]) -> list[tuple[float, int]]:
    return [(bucket_value(k), c) for _, k, c in _ordered(hist)]


def quantile(hist: Mapping[str, int], q: float, upper: float | None = None) -> float | None:
    """The q-quantile (0..1) by nearest rank; None for an empty histogram. ``upper``: the
    exact maximum when known (a bucket's midpoint can lie up to 1 % above it)."""
    items = _ordered(hist)
    total = sum(c for _, _, c in items)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    value = bucket_value(items[-1][1])
    for _, key, c in items:
        seen += c
        if seen >= rank:
            value = bucket_value(key)
            break
    return value if upper is None else min(value, upper)


def mean(hist: Mapping[str, int]) -> float | None:
    """Approximate mean (from bucket midpoints); None when empty."""
    items = _sorted_items(hist)
    total = sum(c for _, c in items)
    if total == 0:
        return None
    return sum(v * c for v, c in items) / total


def to_json(hist: Mapping[str, int]) -> str:
    """Compact, key-sorted JSON text (the stored form before migration 0015)."""
    return json.dumps(dict(sorted(hist.items())), separators=(",", ":"))


def from_json(text: str | None) -> Histogram:
    """Parse stored JSON text; empty or invalid text gives an empty histogram."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): int(v) for k, v in data.items() if isinstance(v, int | float)}
