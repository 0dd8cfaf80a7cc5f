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


def iso_ms(seconds: float | None) -> str | None:
    """Epoch seconds -> ISO-8601 UTC text that always has milliseconds
    (``2024-05-01T12:01:00.000Z``), so every line of a listing has the same shape."""
    if seconds is None:
        return None
    return from_epoch(seconds).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hour_floor(seconds: float) -> int:
    """Start of the UTC hour that contains ``seconds`` (epoch seconds)."""
    return int(seconds // HOUR_S * HOUR_S)


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": HOUR_S, "d": DAY_S, "w": 7 * DAY_S}


# The longest duration accepted anywhere (a window, a retention): 100 years.
MAX_DURATION_S = 36_525 * DAY_S


def parse_duration(text: str) -> timedelta:
    """``"14d"``, ``"36h"``, ``"90m"``, ``"2w"``, ``"30s"`` -> timedelta, at most
    MAX_DURATION_S. Raises ValueError."""
    match = _DURATION_RE.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 24h, 14d, 2w)")
    seconds = float(match.group(1)) * _UNIT_S[match.group(2).lower()]
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{text.strip()} is longer than 100 years (36525d): use a shorter one")
    return timedelta(seconds=seconds)


UNTIL_FORMS = (
    "a date (2026-11-04, the start of that day, UTC), a date and time"
    " (2026-11-04T10:00:00Z), now, today, yesterday, or a time ago (36h, 7d)"
)


UNTIL_HELP = (
    "End of the window: a date (2026-11-04, 00:00 UTC), a date and time"
    " (2026-11-04T10:00Z), now, today, yesterday, or a time ago (36h, 7d) [default: now]."
)


def parse_until(text: str, now: datetime) -> datetime:
    """The end of a window as a user writes it -> aware UTC datetime (see UNTIL_FORMS).

    A date means the start of that UTC day, ``today`` the start of the current one and
    ``yesterday`` the one before; a duration is that long before ``now``. Raises
    ValueError naming the forms that work.
    """
    word = text.strip().lower()
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if word == "now":
        return now
    if word == "today":
        return midnight
    if word == "yesterday":
        return midnight - timedelta(days=1)
    if _DURATION_RE.match(word):
        return now - parse_duration(word)
    try:
        return parse_timestamp(text)
    except (ValueError, OverflowError):
        raise ValueError(f"cannot read {text!r} as a time: use {UNTIL_FORMS}") from None


def parse_window(since: str, until: str | None, now: datetime) -> tuple[int, int]:
    """``(start, end)`` epoch seconds of the window ``since`` long ending at ``until``
    (default ``now``). Raises ValueError with one line naming the option at fault."""
    try:
        length = parse_duration(since)
    except ValueError as exc:
        raise ValueError(f"--since: {exc}") from None
    if length.total_seconds() < 1:
        raise ValueError(f"--since: {since.strip()} is an empty window: use e.g. 30m, 24h, 14d")
    try:
        end_dt = parse_until(until, now) if until else now
    except ValueError as exc:
        raise ValueError(f"--until: {exc}") from None
    end = to_epoch(end_dt)
    start = end - int(length.total_seconds())
    if start < 0:
        raise ValueError("--since/--until: the window would start before 1970-01-01")
    return start, end


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
