"""The deploy regression test on hourly histograms with known answers."""

from __future__ import annotations

import math
import random

from lambdascope import histogram
from lambdascope.alerts import detector


def _hours(rng: random.Random, n_hours: int, per_hour: int, median: float) -> list[dict[str, int]]:
    return [
        histogram.from_values(math.exp(rng.gauss(math.log(median), 0.3)) for _ in range(per_hour))
        for _ in range(n_hours)
    ]


def test_a_slower_after_side_is_a_regression_with_its_effect_and_interval() -> None:
    rng = random.Random(5)
    before, after = _hours(rng, 48, 200, 100.0), _hours(rng, 4, 200, 130.0)
    result = detector.compare_quantile("p95_duration", before, after, seed=1)
    assert result is not None
    assert 0.25 < result.effect < 0.35  # +30 % by construction
    assert result.low > 0.15 and result.high < 0.45
    assert result.confidence == 1.0
    assert (result.before_hours, result.after_hours) == (48, 4)
    assert result.after_count == 800
    assert detector.is_regression(result, confidence=0.99, min_effect=0.05)


def test_the_same_distribution_is_not_a_regression() -> None:
    rng = random.Random(6)
    before, after = _hours(rng, 48, 200, 100.0), _hours(rng, 4, 200, 100.0)
    result = detector.compare_quantile("p95_duration", before, after, seed=1)
    assert result is not None
    assert abs(result.effect) < 0.05
    assert 0.02 < result.confidence < 0.98
    assert not detector.is_regression(result, confidence=0.99, min_effect=0.05)


def test_hour_to_hour_drift_widens_the_interval() -> None:
    """Two after-hours that drifted up 10 % are less certain than 6 steady ones."""
    rng = random.Random(8)
    before = _hours(rng, 48, 500, 100.0)
    steady = detector.compare_quantile("p95", before, _hours(rng, 6, 500, 112.0), seed=2)
    drifting = [h for m in (100.0, 125.0) for h in _hours(rng, 1, 500, m)]
    few = detector.compare_quantile("p95", before, drifting, seed=2)
    assert steady is not None and few is not None
    assert (few.high - few.low) > (steady.high - steady.low)


def test_error_rate_comparison_and_empty_sides() -> None:
    before = [(1.0, 100.0)] * 24
    after = [(8.0, 100.0)] * 3
    result = detector.compare_rate("error_rate", before, after, seed=3)
    assert result is not None
    assert result.before == 0.01 and result.after == 0.08
    assert abs(result.effect - 0.07) < 1e-9
    assert result.confidence == 1.0
    assert detector.compare_rate("error_rate", before, [(0.0, 0.0)]) is None
    assert detector.compare_quantile("p95", [], [{"10": 5}]) is None
