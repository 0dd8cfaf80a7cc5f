"""Lambda Insights performance events: one JSON event per invocation in the
``/aws/lambda-insights`` log group (embedded metric format: ``_aws.Timestamp`` in epoch
ms, ``event_type`` "performance", ``function_name``, ``request_id``, ``duration``,
``cpu_total_time`` in ms, ``total_memory`` and ``used_memory_max`` in MB, ...).

CPU time says how much of an invocation's duration is CPU work: at a size below one vCPU
the work ``cpu_total_time`` (vCPU-ms) takes ``cpu_total_time / cpu_share(size)`` of wall
time, the rest is waiting (I/O). The projection keeps the waiting and scales the CPU part
with the CPU share: ``duration(m) = io + cpu_total / cpu_share(m)``.

Units: ms, MB; times epoch seconds (UTC).
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from lambdascope.db import function_id
from lambdascope.evidence import has_table
from lambdascope.pricing import MAX_MEMORY_MB, cpu_share, cpu_throughput, vcpus

INSIGHTS_LOG_GROUP = "/aws/lambda-insights"
# The measured CPU share overstates the part of duration that scales with the CPU share:
# CPU time also counts the runtime's and the extension's work and the system time of
# I/O, and memory-bound code speeds up less than the share. The range reaches this far
# below the measured share, and MODEL_ERROR_ABOVE above it (bench/bench_insights.py).
MODEL_ERROR_BELOW = 0.15
MODEL_ERROR_ABOVE = 0.05


@dataclass(frozen=True)
class PerformanceEvent:
    """What lambdascope keeps of one Lambda Insights performance event."""

    function_name: str
    request_id: str
    timestamp_s: int
    memory_mb: int
    duration_ms: float
    cpu_total_ms: float
    used_memory_max_mb: float | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def parse_event(obj: Any, fallback_timestamp_ms: float | None = None) -> PerformanceEvent | None:
    """A performance event from a decoded JSON object, or None when it is not one (or
    lacks the fields the CPU share needs)."""
    if not isinstance(obj, dict) or obj.get("event_type") != "performance":
        return None
    aws = obj.get("_aws")
    stamp = _number(aws.get("Timestamp")) if isinstance(aws, dict) else None
    stamp = stamp if stamp is not None else _number(fallback_timestamp_ms)
    duration = _number(obj.get("duration"))
    cpu = _number(obj.get("cpu_total_time"))
    memory = _number(obj.get("total_memory"))
    name, request = obj.get("function_name"), obj.get("request_id")
    if None in (stamp, duration, cpu, memory) or not name or not request:
        return None
    assert stamp is not None and duration is not None and cpu is not None and memory is not None
    if duration <= 0 or cpu < 0 or memory <= 0:
        return None
    return PerformanceEvent(
        str(name),
        str(request),
        int(stamp // 1000),
        int(memory),
        duration,
        cpu,
        _number(obj.get("used_memory_max")),
    )


def event_of_message(message: Any, timestamp_ms: float | None = None) -> PerformanceEvent | None:
    """A performance event from a log event's message (JSON text or decoded), or None."""
    if isinstance(message, str | bytes):
        try:
            message = json.loads(message)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
    return parse_event(message, timestamp_ms)


def envelope_events(
    obj: dict[str, Any],
) -> tuple[list[PerformanceEvent], int]:
    """The performance events of a ``/aws/lambda-insights`` subscription envelope, and
    how many of its log events are not performance events."""
    events, other = [], 0
    for message, stamp in _messages(obj):
        event = event_of_message(message, stamp)
        if event is None:
            other += 1
        else:
            events.append(event)
    return events, other


# The key every performance event has and no platform line does: a cheap test on raw bytes
EVENT_MARKER = b'"cpu_total_time"'


# A pretty-printed event (``jq .``, ``json.dumps(indent=2)``) opens with "{" and closes with
# "}" at the start of a line; one whose start lies further back than this is not looked for
MAX_EVENT_BYTES = 256 * 1024
_OPEN, _CLOSE = b"\n{", b"\n}"


def events_in_text(data: bytes, carried: bytes = b"") -> tuple[list[PerformanceEvent], bytes]:
    """The performance events of text: JSON lines holding ``"cpu_total_time"`` and
    ``"request_id"``, and pretty-printed events spread over several lines; the rest is
    not looked at. ``carried`` is what the call for the previous chunk of the same file
    returned: the start of an object its end cut. Returns the events and such a start at
    the end of ``data`` (``b""`` when there is none) for the next chunk."""
    if carried:
        data = carried + data
    events: list[PerformanceEvent] = []
    done = 0  # bytes before this belong to an object already read
    at = data.find(EVENT_MARKER)
    while at >= 0:
        start = data.rfind(b"\n", 0, at) + 1
        end = data.find(b"\n", at)
        end = len(data) if end < 0 else end
        line = data[start:end]
        event = event_of_message(line) if b'"request_id"' in line else None
        if event is not None:
            events.append(event)
            done = end
            at = data.find(EVENT_MARKER, end)
            continue
        opening = data.rfind(_OPEN, max(done, at - MAX_EVENT_BYTES), at)
        begin = opening + 1 if opening >= 0 else 0
        if (
            (opening < 0 and (done > 0 or at > MAX_EVENT_BYTES))
            or not _lone_brace(data, begin)
            or data.find(_CLOSE, begin, at) >= 0  # that object ended before the key
        ):
            at = data.find(EVENT_MARKER, end)  # a line that only mentions the key, or junk
            continue
        following = data.find(_OPEN, at)
        closing = data.find(_CLOSE, at, len(data) if following < 0 else following)
        if closing < 0 and following < 0:  # cut by the end of the chunk: read with the next
            return events, data[begin:] if len(data) - begin <= MAX_EVENT_BYTES else b""
        if closing >= 0:
            event = event_of_message(data[begin : closing + 2])
            if event is not None:
                events.append(event)
        done = closing + 2 if closing >= 0 else following  # an object left open: the next
        at = data.find(EVENT_MARKER, done)
    return events, open_tail(data, done)


def _lone_brace(data: bytes, begin: int) -> bool:
    """Whether the line at ``begin`` is "{" alone, as pretty-printers open an object."""
    end = data.find(b"\n", begin)
    return data[begin : len(data) if end < 0 else end].strip() == b"{"


def open_tail(data: bytes, done: int = 0) -> bytes:
    """The bytes from the last line opening an object that no line closes, when the end
    of ``data`` may have cut an event before its ``"cpu_total_time"``."""
    opening = data.rfind(_OPEN, max(done, len(data) - MAX_EVENT_BYTES))
    if opening < 0 or data.find(_CLOSE, opening + 1) >= 0 or not _lone_brace(data, opening + 1):
        return b""
    return data[opening + 1 :]


def events_in_lines(data: bytes) -> list[PerformanceEvent]:
    """The performance events of ``data`` (see ``events_in_text``) when nothing carries
    over from or to another chunk."""
    return events_in_text(data)[0]


@dataclass
class ReadCounts:
    """What a read found: events kept, lines skipped (not JSON, not performance events)."""

    events: int = 0
    skipped: int = 0


def _messages(obj: Any) -> Iterator[tuple[Any, float | None]]:
    """(message, timestamp ms) pairs of a decoded line: an event itself, a CloudWatch
    Logs subscription envelope (DATA_MESSAGE) or `aws logs filter-log-events` output."""
    if isinstance(obj, dict) and obj.get("messageType") == "DATA_MESSAGE":
        for event in obj.get("logEvents") or []:
            yield event.get("message"), _number(event.get("timestamp"))
    elif isinstance(obj, dict) and isinstance(obj.get("events"), list):
        for event in obj["events"]:
            yield event.get("message"), _number(event.get("timestamp"))
    else:
        yield obj, None


def read_events(chunks: Iterable[bytes], counts: ReadCounts) -> Iterator[PerformanceEvent]:
    """Performance events from raw file contents (JSON lines, gzip'd or not; envelopes)."""
    for chunk in chunks:
        data = gzip.decompress(chunk) if chunk[:2] == b"\x1f\x8b" else chunk
        text = data.decode("utf-8-sig", errors="replace")
        decoder = json.JSONDecoder()
        position = 0
        while position < len(text):
            while position < len(text) and text[position].isspace():
                position += 1
            if position >= len(text):
                break
            try:
                obj, position = decoder.raw_decode(text, position)
            except json.JSONDecodeError:
                counts.skipped += 1
                end = text.find("\n", position)
                position = len(text) if end < 0 else end + 1
                continue
            for message, stamp in _messages(obj):
                event = event_of_message(message, stamp)
                if event is None:
                    counts.skipped += 1
                else:
                    counts.events += 1
                    yield event


def store_events(
    db: Database, events: Iterable[PerformanceEvent], *, account_id: str = "", region: str = ""
) -> int:
    """Store events (one row per function and request id; a repeat adds nothing) in one
    transaction. Returns the rows added."""
    with db.conn:
        return insert_events(db, events, account_id=account_id, region=region)


def insert_events(
    db: Database, events: Iterable[PerformanceEvent], *, account_id: str = "", region: str = ""
) -> int:
    """``store_events`` inside the caller's transaction (commits nothing). Returns the
    rows added."""
    added = 0
    ids: dict[str, int] = {}
    for e in events:
        fid = ids.get(e.function_name)
        if fid is None:
            fid = ids[e.function_name] = function_id(db, e.function_name, account_id, region)
        cursor = db.conn.execute(
            "INSERT OR IGNORE INTO insights_invocations (function_id, request_id, hour,"
            " memory_mb, duration_ms, cpu_total_ms, used_memory_max_mb)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                fid,
                e.request_id,
                e.timestamp_s - e.timestamp_s % 3600,
                e.memory_mb,
                e.duration_ms,
                e.cpu_total_ms,
                e.used_memory_max_mb,
            ),
        )
        added += cursor.rowcount
    return added


# ---------------------------------------------------------------- CPU share


@dataclass(frozen=True)
class CpuProfile:
    """A function's CPU use at one size from Insights events: ``wall_share`` is the part
    of duration spent on CPU (0..1); the range spans ``share_below`` under it to
    ``share_above`` over it."""

    memory_mb: int
    invocations: int
    mean_duration_ms: float
    mean_cpu_ms: float
    wall_share: float
    share_below: float
    share_above: float
    source: str = "events"  # "events" (performance events) or "metrics" (LambdaInsights)


def profile_from_sums(
    memory_mb: int, n: int, duration_sum: float, cpu_sum: float, share_sum: float, share_sq: float
) -> CpuProfile:
    """The profile from per-invocation sums; the range adds two standard errors of the
    mean share to the model errors."""
    mean_duration = duration_sum / n
    mean_cpu = cpu_sum / n
    share = min(1.0, mean_cpu / (cpu_share(memory_mb) * mean_duration))
    mean = share_sum / n
    variance = max(0.0, share_sq / n - mean * mean)
    error = 2.0 * math.sqrt(variance / n)
    return CpuProfile(
        memory_mb,
        n,
        mean_duration,
        mean_cpu,
        share,
        MODEL_ERROR_BELOW + error,
        MODEL_ERROR_ABOVE + error,
    )


_SHARE = "MIN(1.0, cpu_total_ms / duration_ms / MIN(1.0, memory_mb / 1769.0))"


def cpu_profiles(db: Database, start: int, end: int) -> dict[tuple[str, str, str, int], CpuProfile]:
    """CPU profiles per (account_id, region, function_name, memory_mb) from the events of
    hours in [start, end): imported events, and Logs Insights' hourly sums for hours
    without imported events (imported events win, as local logs do)."""
    if not has_table(db, "insights_invocations"):
        return {}
    rows = db.conn.execute(
        "WITH per_hour AS ("
        " SELECT function_id, hour, memory_mb, COUNT(*) AS n, SUM(duration_ms) AS d,"
        f"  SUM(cpu_total_ms) AS c, SUM({_SHARE}) AS s, SUM({_SHARE} * {_SHARE}) AS sq"
        "  FROM insights_invocations WHERE hour >= ? AND hour < ?"
        "  GROUP BY function_id, hour, memory_mb"
        " UNION ALL"
        " SELECT function_id, hour, memory_mb, invocations, duration_ms_sum, cpu_total_ms_sum,"
        "  cpu_wall_share_sum, cpu_wall_share_sq_sum FROM insights_hourly h"
        "  WHERE hour >= ? AND hour < ? AND NOT EXISTS (SELECT 1 FROM insights_invocations i"
        "  WHERE i.function_id = h.function_id AND i.hour = h.hour))"
        " SELECT f.account_id, f.region, f.function_name, p.memory_mb, SUM(p.n), SUM(p.d),"
        " SUM(p.c), SUM(p.s), SUM(p.sq) FROM per_hour p JOIN functions f ON f.id = p.function_id"
        " WHERE p.d > 0 GROUP BY p.function_id, p.memory_mb",
        (start, end, start, end),
    ).fetchall()
    profiles = {
        (str(a), str(r), str(name), int(m)): profile_from_sums(int(m), int(n), d, c, s, sq)
        for a, r, name, m, n, d, c, s, sq in rows
    }
    with_events = {key[:3] for key in profiles}
    for key, profile in metrics_profiles(db, start, end).items():
        if key[:3] not in with_events:  # performance events give per-invocation CPU time
            profiles[key] = profile
    return profiles


# With a single hour of LambdaInsights metrics, how far the hour's CPU share may be from
# the function's usual one (no spread between hours is measured then)
SINGLE_HOUR_ERROR = 0.05


def profile_from_hours(memory_mb: int, hours: Sequence[tuple[float, float, float]]) -> CpuProfile:
    """The profile from hourly (invocations, mean duration ms, mean CPU ms) of one size:
    the share of the summed means; the range adds two standard errors of the hourly
    shares (invocation-weighted; hours, not invocations, are the samples) to the model
    errors."""
    n = sum(h[0] for h in hours)
    duration_sum = sum(k * d for k, d, _ in hours)
    cpu_sum = sum(k * c for k, _, c in hours)
    share = min(1.0, cpu_sum / (cpu_share(memory_mb) * duration_sum))
    shares = [min(1.0, c / (cpu_share(memory_mb) * d)) for _, d, c in hours]
    if len(hours) > 1:
        mean = sum(k * s for (k, _, _), s in zip(hours, shares, strict=True)) / n
        variance = sum(k * (s - mean) ** 2 for (k, _, _), s in zip(hours, shares, strict=True))
        error = 2.0 * math.sqrt(variance / n / len(hours))
    else:
        error = SINGLE_HOUR_ERROR
    return CpuProfile(
        memory_mb,
        int(n),
        duration_sum / n,
        cpu_sum / n,
        share,
        MODEL_ERROR_BELOW + error,
        MODEL_ERROR_ABOVE + error,
        source="metrics",
    )


def metrics_profiles(
    db: Database, start: int, end: int
) -> dict[tuple[str, str, str, int], CpuProfile]:
    """CPU profiles from LambdaInsights metrics hours in [start, end) (hours of one size,
    with CPU time and the AWS/Lambda Duration of the same hour)."""
    if not has_table(db, "insights_metrics_hourly"):
        return {}
    rows = db.conn.execute(
        "SELECT f.account_id, f.region, f.function_name, h.total_memory_max_mb,"
        " h.invocations, h.duration_ms_sum / h.duration_count, h.cpu_total_ms_sum / h.invocations"
        " FROM insights_metrics_hourly h JOIN functions f ON f.id = h.function_id"
        " WHERE h.hour >= ? AND h.hour < ? AND h.total_memory_min_mb = h.total_memory_max_mb"
        " AND h.invocations > 0 AND h.duration_count > 0 AND h.duration_ms_sum > 0"
        " AND h.cpu_total_ms_sum IS NOT NULL ORDER BY h.function_id, h.hour",
        (start, end),
    ).fetchall()
    hours: dict[tuple[str, str, str, int], list[tuple[float, float, float]]] = {}
    for a, r, name, memory, n, duration, cpu in rows:
        key = (str(a), str(r), str(name), int(memory))
        hours.setdefault(key, []).append((float(n), float(duration), float(cpu)))
    return {key: profile_from_hours(key[3], h) for key, h in hours.items()}


def busy_vcpus(profile: CpuProfile) -> float:
    """vCPUs busy on average during an invocation at the profile's size (CPU time over
    duration); above 1 the code runs on several vCPUs at once."""
    return profile.mean_cpu_ms / profile.mean_duration_ms if profile.mean_duration_ms > 0 else 0.0


def project(
    current_ms: float, current_mb: int, target_mb: int, profile: CpuProfile
) -> tuple[float, float, float]:
    """Projected mean duration (lower, expected, upper) in ms at ``target_mb``: the CPU
    part of today's mean scales with the vCPUs the code can use, the rest stays.

    The environment gets ``vcpus(m)`` = m / 1,769 vCPUs; code keeping ``t`` threads busy
    uses ``min(t, vcpus(m))`` of them. CPU time only shows ``t`` when more than one vCPU
    was busy at today's size (``busy_vcpus`` > 1), so the expected value assumes the
    fewest threads the measurement allows (single-threaded below that) and the range also
    spans code that uses every vCPU of the target (it matters above 1,769 MB only), on top
    of the CPU share's error.
    """
    busy = busy_vcpus(profile)
    fewest = max(1.0, busy)

    def at(threads: float, error: float) -> float:
        today, there = cpu_throughput(current_mb, threads), cpu_throughput(target_mb, threads)
        share = min(1.0, max(0.0, min(1.0, busy / today) + error))
        return current_ms * ((1.0 - share) + share * today / there)

    ends = [
        at(threads, error)
        for threads in (fewest, vcpus(MAX_MEMORY_MB))
        for error in (-profile.share_below, profile.share_above)
    ]
    return min(ends), at(fewest, 0.0), max(ends)


# ---------------------------------------------------------------- one function's usage


@dataclass(frozen=True)
class InsightsUsage:
    """What Lambda Insights recorded of one function in a window besides CPU time:
    ``events`` performance events (imported, or summed per hour by Logs Insights),
    ``metric_hours`` hours of LambdaInsights metrics (with ``metric_invocations``
    invocations), memory in MB, init in ms, network in bytes; None where no source has
    the value (performance events keep no init or network)."""

    events: int
    metric_hours: int
    metric_invocations: float
    memory_mb: float | None
    used_memory_max_mb: float | None
    memory_utilization_max_pct: float | None
    init_duration_max_ms: float | None
    init_count: float | None
    network_bytes_sum: float | None


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def function_usage(db: Database, function_id: int, start: int, end: int) -> InsightsUsage | None:
    """Lambda Insights' events and metrics of ``function_id`` in hours [start, end), or
    None when it has neither there."""
    events, memory, used, utilisation = 0, None, None, None
    if has_table(db, "insights_invocations"):
        events, memory, used, utilisation = db.conn.execute(
            "SELECT COUNT(*), MAX(memory_mb), MAX(used_memory_max_mb),"
            " MAX(100.0 * used_memory_max_mb / memory_mb) FROM insights_invocations"
            " WHERE function_id = ? AND hour >= ? AND hour < ?",
            (function_id, start, end),
        ).fetchone()
        # hours Logs Insights summed (collect), where no events were imported
        (summed,) = db.conn.execute(
            "SELECT COALESCE(SUM(invocations), 0) FROM insights_hourly h"
            " WHERE function_id = ? AND hour >= ? AND hour < ? AND NOT EXISTS (SELECT 1"
            " FROM insights_invocations i WHERE i.function_id = h.function_id"
            " AND i.hour = h.hour)",
            (function_id, start, end),
        ).fetchone()
        events += int(summed)
    hours, calls, init_max, init_count, network = 0, 0.0, None, None, None
    if has_table(db, "insights_metrics_hourly"):
        row = db.conn.execute(
            "SELECT COUNT(*), SUM(invocations), MAX(total_memory_max_mb),"
            " MAX(used_memory_max_mb), MAX(memory_utilization_max_pct),"
            " MAX(init_duration_max_ms), SUM(init_count), SUM(total_network_bytes_sum)"
            " FROM insights_metrics_hourly WHERE function_id = ? AND hour >= ? AND hour < ?",
            (function_id, start, end),
        ).fetchone()
        hours, calls = int(row[0]), float(row[1] or 0.0)
        memory, used, utilisation = (
            _max(memory, row[2]),
            _max(used, row[3]),
            _max(utilisation, row[4]),
        )
        init_max, init_count, network = row[5], row[6], row[7]
    if not events and not hours:
        return None
    return InsightsUsage(
        int(events), hours, calls, memory, used, utilisation, init_max, init_count, network
    )
