from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from lambdascope import histogram as h


@given(
    st.lists(st.floats(min_value=0.01, max_value=1e7), min_size=1, max_size=300),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_quantile_within_relative_error(values: list[float], q: float) -> None:
    hist = h.from_values(values)
    got = h.quantile(hist, q)
    ordered = sorted(values)
    exact = ordered[max(1, math.ceil(q * len(ordered))) - 1]
    assert got is not None
    assert abs(got - exact) <= exact * (h.GAMMA - 1) / 2 + 1e-9


@given(
    st.lists(st.floats(min_value=0.5, max_value=1e5), max_size=50),
    st.lists(st.floats(min_value=0.5, max_value=1e5), max_size=50),
)
def test_merge_equals_histogram_of_union(a: list[float], b: list[float]) -> None:
    assert h.merge([h.from_values(a), h.from_values(b)]) == h.from_values(a + b)


def test_zero_and_json_roundtrip() -> None:
    hist = h.from_values([0.0, 0.0, 128.0])
    assert hist["z"] == 2
    assert h.from_json(h.to_json(hist)) == hist
    assert h.quantile(hist, 0.5) == 0.0
    assert h.from_json("not json") == {}
    assert h.quantile({}, 0.5) is None


def test_insights_bucket_formula_matches() -> None:
    # Logs Insights computes floor(log(x)/log(1.02)); the store must use the same keys.
    for value in (1.0, 17.3, 187.0, 1024.0, 10240.0):
        assert h.bucket_of(value) == str(math.floor(math.log(value) / math.log(1.02)))
