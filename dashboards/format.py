"""Readable numbers for people: 1.2 k, 3.4 s, $12.30, 512 MB."""

from __future__ import annotations

import math

DASH = "—"


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value: float | None) -> str:
    """Compact count: 950, 1.2 k, 3.4 M, 5.6 B."""
    if value is None or _missing(value):
        return DASH
    magnitude = abs(value)
    for size, suffix in ((1e9, " B"), (1e6, " M"), (1e3, " k")):
        if magnitude >= size:
            return f"{value / size:.1f}{suffix}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def duration_ms(value: float | None) -> str:
    """Milliseconds as 850 ms, 3.4 s or 2.1 min."""
    if value is None or _missing(value):
        return DASH
    if value >= 60_000:
        return f"{value / 60_000:.1f} min"
    if value >= 1_000:
        return f"{value / 1_000:.1f} s"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def usd(value: float | None) -> str:
    """Dollars: $0.0012, $12.30, $1.2 k."""
    if value is None or _missing(value):
        return DASH
    if value < 0:
        return f"-{usd(-value)}"
    if abs(value) >= 10_000:
        return f"${number(value)}"
    if abs(value) < 0.01 and value != 0:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def percent(value: float | None) -> str:
    """A fraction as 1.2 %."""
    if value is None or _missing(value):
        return DASH
    return f"{value * 100:.2f} %" if value < 0.1 else f"{value * 100:.1f} %"


def megabytes(value: float | None) -> str:
    """Memory in MB (decimal MB as Lambda reports), or GB past 10,240 MB."""
    if value is None or _missing(value):
        return DASH
    return f"{value:,.0f} MB"


def size_bytes(value: float | None) -> str:
    """Bytes as KB/MB/GB."""
    if value is None or _missing(value):
        return DASH
    for size, suffix in ((1024**3, "GB"), (1024**2, "MB"), (1024, "KB")):
        if value >= size:
            return f"{value / size:.1f} {suffix}"
    return f"{value:.0f} B"
