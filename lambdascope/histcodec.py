"""The stored form of a histogram (lambdascope.histogram): a few bytes of varints.

Layout (format 1); an empty histogram is ``b""``:

- one byte: ``1`` (no zero bucket) or ``2`` (a zero bucket follows);
- with ``2``: the zero bucket's count;
- then per bucket in ascending index order: the first bucket's index zigzag-encoded
  (indices are negative for values below 1), each later one as its distance to the
  previous index; each followed by the bucket's count.

Every number is an unsigned LEB128 varint (7 bits a byte, low bits first), so a typical
hourly histogram of 30 buckets takes about 60 bytes instead of 250 of JSON text.
:func:`decode` also reads the JSON text of older stores (``{"166": 3, "z": 1}``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from itertools import accumulate

from lambdascope import histogram
from lambdascope.histogram import ZERO_KEY, Histogram

FORMAT_PLAIN = 1
FORMAT_WITH_ZERO = 2
# larger counts are refused (ten varint bytes; SQLite's own integers stop at 2**63 - 1)
MAX_VALUE = 2**64 - 1
_MAX_VARINT_BYTES = 10

EMPTY = b""


class InvalidHistogram(ValueError):
    """Bytes that are not a stored histogram."""


def encode(hist: Mapping[str, int]) -> bytes:
    """The stored form of ``hist`` (keys as in lambdascope.histogram, counts >= 0).

    Raises InvalidHistogram for a key that is neither ``"z"`` nor an integer, or a count
    that is negative, not whole, or above MAX_VALUE. Keys equal as integers ("07", "7")
    are added up.
    """
    if not hist:
        return EMPTY
    # the common case in one pass: distinct integer keys and counts; anything else (keys
    # equal as integers, a bad key or count) goes the checked way
    try:
        return _encode_small(hist)
    except (TypeError, ValueError):
        return _encode_checked(hist)


def _encode_small(hist: Mapping[str, int]) -> bytes:
    numbers: list[int] = []
    zero = hist.get(ZERO_KEY)
    if zero is not None:
        numbers.append(zero)
    pairs = sorted((int(k), c) for k, c in hist.items() if k != ZERO_KEY)
    previous: int | None = None
    for index, count in pairs:
        if previous is None:
            numbers.append(index * 2 if index >= 0 else -index * 2 - 1)
        elif index == previous:
            raise ValueError("keys equal as integers")
        else:
            numbers.append(index - previous)
        numbers.append(count)
        previous = index
    kind = FORMAT_PLAIN if zero is None else FORMAT_WITH_ZERO
    if max(numbers) < 0x80:
        return bytes((kind, *numbers))  # refuses a negative or fractional count
    out = bytearray((kind,))
    for number in numbers:
        if type(number) is not int or number < 0:
            raise ValueError("not a count")
        _put(out, number)
    return bytes(out)


def _encode_checked(hist: Mapping[str, int]) -> bytes:
    zero = 0
    has_zero = False
    buckets: dict[int, int] = {}
    for key, count in hist.items():
        number = int(count)
        if number < 0 or number != count:
            raise InvalidHistogram(f"histogram count {count!r} is not a whole number >= 0")
        if key == ZERO_KEY:
            has_zero = True
            zero += number
            continue
        try:
            index = int(key)
        except ValueError:
            raise InvalidHistogram(f"histogram bucket {key!r} is not an integer") from None
        buckets[index] = buckets.get(index, 0) + number
    out = bytearray((FORMAT_WITH_ZERO if has_zero else FORMAT_PLAIN,))
    if has_zero:
        _put(out, zero)
    previous: int | None = None
    for index in sorted(buckets):
        if previous is None:
            _put(out, index * 2 if index >= 0 else -index * 2 - 1)
        else:
            _put(out, index - previous)
        _put(out, buckets[index])
        previous = index
    return bytes(out)


def _put(out: bytearray, value: int) -> None:
    if value > MAX_VALUE:
        raise InvalidHistogram(f"histogram number {value} is too large to store")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def decode(data: bytes | str | None) -> Histogram:
    """The histogram stored in ``data``: bytes of :func:`encode`, or the JSON text older
    stores hold. None, empty or invalid data gives an empty histogram (``store check``
    reports invalid stored histograms; see :func:`is_valid`)."""
    if not data:
        return {}
    if isinstance(data, str):
        return histogram.from_json(data)
    try:
        return decode_strict(data)
    except InvalidHistogram:
        return {}


def decode_strict(data: bytes) -> Histogram:
    """Like :func:`decode` for bytes, but raises InvalidHistogram for invalid data."""
    if not data:
        return {}
    kind = data[0]
    if kind != FORMAT_PLAIN and kind != FORMAT_WITH_ZERO:
        raise InvalidHistogram(f"unknown histogram format {kind}")
    out: Histogram = {}
    # the zero count and the first index often take two bytes; the rest of a histogram
    # usually takes one byte a number, and then the bytes are the numbers (done in C)
    head, pos = _read_head(data, 2 if kind == FORMAT_WITH_ZERO else 1)
    if kind == FORMAT_WITH_ZERO:
        if not head:
            raise InvalidHistogram("histogram ends before its zero bucket")
        out[ZERO_KEY] = head[0]
        if len(head) == 1:  # nothing but the zero bucket
            return out
    elif not head:
        raise InvalidHistogram("histogram holds no bucket")
    rest = data[pos:]
    numbers: bytes | list[int] = rest if rest.isascii() else _varints(rest)
    if not len(numbers) % 2:
        raise InvalidHistogram("histogram ends inside a bucket")
    first = head[-1]
    indices = accumulate(numbers[1::2], initial=first >> 1 if not first & 1 else -(first + 1 >> 1))
    out.update(zip(map(_KEYS.__getitem__, indices), numbers[::2], strict=True))
    return out


class _Keys(dict[int, str]):
    """Bucket index -> key text, remembered (str() of an int costs more than a lookup)."""

    def __missing__(self, index: int) -> str:
        key = str(index)
        if -_KEPT_KEYS <= index <= _KEPT_KEYS:  # what a double can reach, not what bad bytes can
            self[index] = key
        return key


_KEPT_KEYS = 40_000


# every bucket of values from 1 µs to 10**17 is ready; others are added when first seen
_KEYS = _Keys({index: str(index) for index in range(-700, 2000)})


def _read_head(data: bytes, wanted: int) -> tuple[list[int], int]:
    """The first ``wanted`` varints after the format byte, and where the next starts."""
    numbers: list[int] = []
    value = shift = 0
    pos = 1
    size = len(data)
    while pos < size and len(numbers) < wanted:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            if shift >= 7 * _MAX_VARINT_BYTES:
                raise InvalidHistogram("histogram number too long")
            continue
        if value > MAX_VALUE:
            raise InvalidHistogram("histogram number too large")
        numbers.append(value)
        value = shift = 0
    if shift:
        raise InvalidHistogram("histogram ends inside a number")
    return numbers, pos


def _varints(data: bytes) -> list[int]:
    numbers: list[int] = []
    append = numbers.append
    value = shift = 0
    for byte in data:
        if byte < 0x80:
            if shift:
                value |= byte << shift
                if value > MAX_VALUE:
                    raise InvalidHistogram("histogram number too large")
                append(value)
                value = shift = 0
            else:
                append(byte)
        else:
            value |= (byte & 0x7F) << shift
            shift += 7
            if shift >= 7 * _MAX_VARINT_BYTES:
                raise InvalidHistogram("histogram number too long")
    if shift:
        raise InvalidHistogram("histogram ends inside a number")
    return numbers


def is_valid(data: object) -> bool:
    """True for bytes of :func:`encode` (and the empty histogram), False otherwise."""
    if not isinstance(data, bytes):
        return False
    try:
        decode_strict(data)
    except InvalidHistogram:
        return False
    return True


def from_text(text: str | None) -> bytes:
    """The stored form of a JSON-text histogram of an older store, read as the JSON
    readers read it (lambdascope.histogram.from_json: invalid text is empty, fractional
    counts are truncated); buckets that are not integers are dropped."""
    if not text:
        return EMPTY
    try:
        data = json.loads(text)
    except ValueError:
        return EMPTY
    if isinstance(data, dict) and all(type(c) is int for c in data.values()):
        try:
            return encode(data)
        except InvalidHistogram:
            pass
    kept: Histogram = {}
    for key, count in histogram.from_json(text).items():
        try:
            if key != ZERO_KEY:
                int(key)
        except ValueError:
            continue
        if 0 <= count <= MAX_VALUE:
            kept[key] = count
    return encode(kept)


class MergeAggregate:
    """SQLite aggregate ``hist_merge(blob)``: the stored form of the sum of a column's
    histograms (registered by :func:`register`)."""

    def __init__(self) -> None:
        self.total: Histogram = {}

    def step(self, value: bytes | str | None) -> None:
        if value:
            total = self.total
            for key, count in decode(value).items():
                total[key] = total.get(key, 0) + count

    def finalize(self) -> bytes:
        return encode(self.total)


def register(conn: sqlite3.Connection) -> None:
    """Make ``hist_merge(x)`` (aggregate), ``hist_from_text(x)`` and ``hist_valid(x)``
    available in SQL on ``conn``."""
    conn.create_aggregate("hist_merge", 1, MergeAggregate)  # type: ignore[arg-type]
    conn.create_function("hist_from_text", 1, _from_text_sql, deterministic=True)
    conn.create_function("hist_valid", 1, is_valid, deterministic=True)


def _from_text_sql(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return from_text(value if isinstance(value, str) else None)
