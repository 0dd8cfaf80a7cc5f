"""UTC time helpers. Every timestamp in the store is integer epoch seconds (UTC).

Every "now" is a parameter: callers pass the clock in, so tests are deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

HOUR_S = 3600
DAY_S = 86400

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The real clock: an aware UTC datetime."""
    return datetime.now(UTC)


def to_epoch(value: datetime) -> int:
    """Aware datetime -> integer epoch seconds (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def from_epoch(seconds: float) -> datetime:
    """Epoch seconds -> aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def iso(seconds: float | None) -> str | None:
    """Epoch seconds -> ISO-8601 UTC text with a ``Z`` (None stays None)."""
    if seconds is None:
        return None
    text = from_epoch(seconds).isoformat(timespec="milliseconds")
    if text.endswith(".000+00:00"):
        text = text[: -len(".000+00:00")] + "+00:00"
    return text.replace("+00:00", "Z")


def hour_floor(seconds: float) -> int:
    """Start of the UTC hour that contains ``seconds`` (epoch seconds)."""
    return int(seconds // HOUR_S * HOUR_S)


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": HOUR_S, "d": DAY_S, "w": 7 * DAY_S}


def parse_duration(text: str) -> timedelta:
    """``"14d"``, ``"36h"``, ``"90m"``, ``"2w"``, ``"30s"`` -> timedelta. Raises ValueError."""
    match = _DURATION_RE.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 24h, 14d, 2w)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2).lower()])


_ISO_FRACTION_RE = re.compile(r"(\.\d{6})\d+")


def parse_timestamp(text: str) -> datetime:
    """Parse ISO-8601 text as AWS and moto write it -> aware UTC datetime.

    Accepts ``Z``, ``+0000``, ``+00:00``, a space instead of ``T``, and more than six
    fractional digits (moto writes nine). Text without a zone is UTC. Raises ValueError.
    """
    value = text.strip().replace(" ", "T", 1)
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    value = _ISO_FRACTION_RE.sub(r"\1", value)
    zone = re.search(r"([+-])(\d{2})(\d{2})$", value)
    if zone:
        value = value[: zone.start()] + f"{zone.group(1)}{zone.group(2)}:{zone.group(3)}"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
