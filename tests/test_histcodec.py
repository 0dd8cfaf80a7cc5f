from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdascope import histcodec
from lambdascope import histogram as h

# bucket keys as the store has them: "z" and the indices of any double (about +-38,000)
keys = st.one_of(st.just(h.ZERO_KEY), st.integers(-40_000, 40_000).map(str))
counts = st.one_of(st.integers(0, 300), st.integers(0, histcodec.MAX_VALUE))
hists = st.dictionaries(keys, counts, max_size=60)


@given(hists)
def test_round_trip_gives_the_same_buckets(hist: dict[str, int]) -> None:
    stored = histcodec.encode(hist)
    assert histcodec.decode(stored) == hist
    assert histcodec.decode_strict(stored) == hist
    assert histcodec.is_valid(stored)


@given(hists, hists)
def test_merge_commutes_with_encode(a: dict[str, int], b: dict[str, int]) -> None:
    merged = h.merge([a, b])
    if any(c > histcodec.MAX_VALUE for c in merged.values()):
        with pytest.raises(histcodec.InvalidHistogram):
            histcodec.encode(merged)
        return
    read = h.merge([histcodec.decode(histcodec.encode(a)), histcodec.decode(histcodec.encode(b))])
    assert read == histcodec.decode(histcodec.encode(merged)) == merged


@given(st.lists(st.floats(min_value=0.0, max_value=1e9), max_size=200), st.floats(0.0, 1.0))
def test_percentiles_read_back_unchanged(values: list[float], q: float) -> None:
    hist = h.from_values(values)
    assert h.quantile(histcodec.decode(histcodec.encode(hist)), q) == h.quantile(hist, q)


@given(st.binary(max_size=80))
def test_any_bytes_decode_to_a_histogram_or_an_empty_one(data: bytes) -> None:
    decoded = histcodec.decode(data)
    assert isinstance(decoded, dict)
    assert all(isinstance(c, int) and c >= 0 for c in decoded.values())
    if not histcodec.is_valid(data):
        assert decoded == {}
        with pytest.raises(histcodec.InvalidHistogram):
            histcodec.decode_strict(data)


def test_empty_histogram_is_no_bytes() -> None:
    assert histcodec.encode({}) == b""
    assert histcodec.decode(b"") == {}
    assert histcodec.decode(None) == {}
    assert histcodec.is_valid(b"")


def test_zero_bucket_alone_and_with_others() -> None:
    assert histcodec.encode({"z": 3}) == bytes([2, 3])
    assert histcodec.decode(bytes([2, 3])) == {"z": 3}
    hist = h.from_values([0.0, -1.0, 128.0])
    assert histcodec.decode(histcodec.encode(hist)) == {"z": 2, h.bucket_of(128.0): 1}


def test_values_below_one_ms_have_negative_buckets() -> None:
    hist = h.from_values([0.05, 0.5, 0.99, 1.0, 1.5])
    assert min(int(k) for k in hist) < 0
    assert histcodec.decode(histcodec.encode(hist)) == hist


def test_layout_is_sorted_deltas_of_indices_and_counts() -> None:
    # first index 166 zigzag -> 332 (two bytes), then +19 -> 185; counts 1 and 300
    assert histcodec.encode({"185": 300, "166": 1}) == bytes([1, 0xCC, 0x02, 1, 19, 0xAC, 0x02])


def test_huge_counts_round_trip_and_too_large_ones_are_refused() -> None:
    hist = {"10": 2**63 - 1, "z": histcodec.MAX_VALUE}
    assert histcodec.decode(histcodec.encode(hist)) == hist
    with pytest.raises(histcodec.InvalidHistogram, match="too large"):
        histcodec.encode({"10": histcodec.MAX_VALUE + 1})


@pytest.mark.parametrize(
    ("hist", "message"),
    [({"x": 1}, "not an integer"), ({"5": -1}, "whole number"), ({"5": 1.5}, "whole number")],
)
def test_invalid_histograms_are_refused_when_encoding(hist: dict[str, int], message: str) -> None:
    with pytest.raises(histcodec.InvalidHistogram, match=message):
        histcodec.encode(hist)


@pytest.mark.parametrize(
    "data",
    [
        b"\x07\x01\x01",  # unknown format
        b"\x01",  # no bucket
        b"\x02",  # zero bucket missing
        b"\x01\x02\x01\x03",  # a bucket without its count
        b"\x01\x02\x81",  # ends inside a number
        b"\x01" + b"\xff" * 11 + b"\x01",  # a number longer than any count
        b"\x02" + b"\xff" * 9 + b"\x7f",  # a zero count above 2**64 - 1
        b"\x01\x02\x01\x02" + b"\xff" * 9 + b"\x7f",  # a count above 2**64 - 1
    ],
)
def test_invalid_bytes_read_as_empty_and_are_reported_as_invalid(data: bytes) -> None:
    assert histcodec.decode(data) == {}
    assert not histcodec.is_valid(data)
    with pytest.raises(histcodec.InvalidHistogram):
        histcodec.decode_strict(data)


def test_json_text_of_older_stores_is_read() -> None:
    assert histcodec.decode('{"166":1,"185":2,"z":3}') == {"166": 1, "185": 2, "z": 3}
    assert histcodec.decode("{}") == {}
    assert histcodec.decode("not json") == {}
    assert histcodec.from_text('{"166":1,"x":4,"z":3}') == histcodec.encode({"166": 1, "z": 3})
    assert not histcodec.is_valid('{"166":1}')


def test_sql_functions_merge_and_convert() -> None:
    conn = sqlite3.connect(":memory:")
    histcodec.register(conn)
    conn.execute("CREATE TABLE t (g INTEGER, h BLOB)")
    parts = [{"10": 1, "z": 1}, {"10": 2, "12": 5}, {}, {"-3": 7}]
    conn.executemany("INSERT INTO t VALUES (1, ?)", [(histcodec.encode(p),) for p in parts])
    conn.execute("INSERT INTO t VALUES (1, ?)", ('{"12":1}',))  # JSON text is read too
    conn.execute("INSERT INTO t VALUES (2, x'')")
    rows = dict(conn.execute("SELECT g, hist_merge(h) FROM t GROUP BY g").fetchall())
    assert histcodec.decode(rows[1]) == {"10": 3, "12": 6, "z": 1, "-3": 7}
    assert rows[2] == b""
    assert conn.execute("SELECT hist_from_text('{\"5\":2}')").fetchone()[0] == histcodec.encode(
        {"5": 2}
    )
    assert conn.execute("SELECT hist_valid(x'07'), hist_valid(x'')").fetchone() == (0, 1)
