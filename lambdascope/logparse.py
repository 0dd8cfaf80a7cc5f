"""Parse AWS Lambda platform log lines into PlatformEvent values (pure, never raises).

Understood (see LAMBDA_FACTS.md): text ``REPORT`` lines in all their variants,
``INIT_REPORT``, ``Task timed out after … seconds``, JSON-format ``platform.report`` /
``platform.initReport`` / ``platform.runtimeDone``, and runtime out-of-memory messages.
Lines may carry a leading timestamp and/or request id or log stream name (exports,
``aws logs tail``), and tabs may have become spaces.

Two entry points: ``parse_line`` for one line of text, and ``scan_chunk`` which runs
compiled regexes over a whole chunk of bytes (many lines) and only decodes the lines
that can hold a platform event, so application lines cost no Python work.
Envelope objects (CloudWatch subscription / Firehose ``DATA_MESSAGE``,
``filter-log-events`` output) are unpacked by ``envelope_messages``.
"""

from __future__ import annotations

import codecs
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lambdascope.models import PlatformEvent
from lambdascope.timeutil import parse_timestamp

# Reasons a line that looked like a platform line was skipped.
BAD_REPORT = "bad_report"
BAD_JSON = "bad_json"
NOT_ENVELOPE = "not_envelope"
LINE_TOO_LONG = "line_too_long"
TRUNCATED_GZIP = "truncated_gzip"
# A REPORT line without a RequestId: read (``parse`` shows it) but not stored, because
# an invocation without its id cannot be counted once across re-ingests and copies.
NO_REQUEST_ID = "no_request_id"

_TS = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|z|[+-]\d{2}:?\d{2})?"
# Before a line's own timestamp may come: a BOM, the " | " columns of a console table copy,
# a "[LEVEL]" tag, or the log stream name that ``sam logs`` prints first.
_LEADING_TS_RE = re.compile(
    r"^[\s\ufeff|]*(?:\[\w+\]\s+)?(?:\d{4}/\d\d/\d\d/\[[^\]]*\]\S*\s+)?(" + _TS + r")(?=[\s|]|$)"
)
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_UUID_RE = re.compile(_UUID)
_REPORT_RE = re.compile(r"(?<![A-Z_])REPORT\s+RequestId:\s*(\S+)(.*)", re.DOTALL)
# REPORT with its fields but no request id: "REPORT Duration: …", "REPORT RequestId: \tDuration: …"
_REPORT_NO_ID_RE = re.compile(
    r"(?<![A-Z_])REPORT\s+(?:RequestId:[ \t]*)?()((?<=\s)Duration:.*)", re.DOTALL
)
# tabs and line breaks written as two characters (doubly escaped JSON from some shippers)
_ESCAPED_WS_RE = re.compile(r"\\[tnr]")
_ESCAPED_WS = {"\\t": "\t", "\\n": "\n", "\\r": ""}
_INIT_REPORT_RE = re.compile(r"\bINIT_REPORT\s+(.*)", re.DOTALL)
# No boundary before a name: a terminal copy can glue fields ("6.46 msBilled Duration");
# longer names come first so "Duration" is never read out of "Billed Duration".
_FIELD_RE = re.compile(
    r"(Billed Restore Duration|Restore Duration|Billed Duration|Init Duration|"
    r"Max Memory Used|Memory Size|Duration|Status|Error Type|Phase):[ \t]*"
    r"(\d[\d.]*(?:[eE][-+]?\d+)?|\S*)"
    r"(?:[ \t]*(ms|s|us|\u00b5s|\u03bcs|MB|MiB|M|GB|GiB|G|KB|KiB|K)\b)?"
)
# Multipliers to ms / to MB (Lambda's "MB" is the binary megabyte, so MiB is the same).
_DURATION_UNITS = {
    None: 1.0,
    "ms": 1.0,
    "s": 1000.0,
    "us": 0.001,
    "\u00b5s": 0.001,
    "\u03bcs": 0.001,
}
_MEMORY_UNITS = {None: 1.0, "MB": 1.0, "MiB": 1.0, "M": 1.0, "GB": 1024.0, "GiB": 1024.0}
_MEMORY_UNITS.update({"G": 1024.0, "KB": 1 / 1024, "KiB": 1 / 1024, "K": 1 / 1024})
_MEMORY_FIELDS = ("Memory Size", "Max Memory Used")
_TIMEOUT_RE = re.compile(r"Task timed out after\s+(\S+)\s+seconds")
# "<timestamp> <request id> Task timed out …" where the id is not a UUID (custom runtimes,
# test events): the token between them, when it has a digit (never a level like ERROR)
_TIMEOUT_ID_RE = re.compile(_LEADING_TS_RE.pattern + r"[ \t]+([^\s:\"|]*\d[^\s:\"|]*)[ \t]+$")
_JSON_REQUEST_ID_RE = re.compile(r'"(?:requestId|AWSRequestId|request_id)"\s*:\s*"([^"\\]{1,128})"')
_OOM_RE = re.compile(
    r"Runtime\.OutOfMemory|fatal error: runtime: out of memory|java\.lang\.OutOfMemoryError"
    r"|JavaScript heap out of memory|\bMemoryError\b|Runtime exited with error: signal: killed"
)
# Status values as written; the Telemetry API's "failure" (a platform-side failure) counts
# as an error.
_STATUSES = {"success": "success", "error": "error", "timeout": "timeout", "failure": "error"}

# Bytes-level pre-filter: a line can only hold an event if it contains one of these.
_CANDIDATE_RE = re.compile(
    rb"REPORT |Task timed out|\"platform\.|OutOfMemory|out of memory|MemoryError|signal: killed"
)
_BYTES_TS_RE = re.compile(_TS.encode())
# greedy prefix: one match() finds the LAST timestamp of a region, in C
_LAST_BYTES_TS_RE = re.compile(rb"(?s).*(" + _TS.encode() + rb")")


class _Bad(str):
    """A skip reason (distinct from a line that simply holds no event)."""


def parse_line(text: str) -> PlatformEvent | None:
    """One log line -> a PlatformEvent, or None (application line or unparseable).

    Never raises. Timestamps come from the line itself (JSON ``time`` or a leading
    ISO-8601 timestamp); otherwise ``timestamp`` is None.
    """
    result = parse_line_or_reason(text)
    return result if isinstance(result, PlatformEvent) else None


def parse_line_or_reason(text: str) -> PlatformEvent | str | None:
    """Like parse_line, but a line that looks like a platform line and cannot be
    understood gives the skip reason (``bad_report`` / ``bad_json``)."""
    try:
        return _parse(text)
    except Exception:  # a parser that must never raise: any surprise is a bad line
        return _Bad(BAD_REPORT)


def _leading_ts(text: str) -> float | None:
    match = _LEADING_TS_RE.match(text)
    if not match:
        return None
    return _to_epoch(match.group(1))


_FAST_TS_RE = re.compile(r"(\d{4}-\d\d-\d\d[T ]\d\d):(\d\d):(\d\d)(\.\d{1,9})?(?:Z|z|\+00:?00)?$")
_HOUR_CACHE: dict[str, float] = {}


def hour_base(date_hour: str) -> float | None:
    """Epoch seconds of ``YYYY-MM-DD[T ]HH`` at minute 0 (memoised), or None if invalid."""
    base = _HOUR_CACHE.get(date_hour)
    if base is None:
        base = _slow_epoch(date_hour + ":00:00Z")
        if base is None:
            return None
        if len(_HOUR_CACHE) > 10_000:
            _HOUR_CACHE.clear()
        _HOUR_CACHE[date_hour] = base
    return base


def _to_epoch(text: str) -> float | None:
    fast = _FAST_TS_RE.match(text)
    if fast:
        # memoise the date-hour part: thousands of lines share it
        base = hour_base(fast.group(1))
        if base is None:
            return None
        minutes, seconds = int(fast.group(2)), int(fast.group(3))
        if minutes > 59 or seconds > 60:
            return None
        fraction = float(fast.group(4)) if fast.group(4) else 0.0
        return base + minutes * 60 + seconds + fraction
    return _slow_epoch(text)


def _slow_epoch(text: str) -> float | None:
    try:
        return parse_timestamp(text).timestamp()
    except (ValueError, OverflowError):
        return None


def _number(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise ValueError(text)
    return value


def _unescape_ws(text: str) -> str:
    return _ESCAPED_WS_RE.sub(lambda m: _ESCAPED_WS[m.group(0)], text)


def _parse(text: str, depth: int = 0) -> PlatformEvent | str | None:
    event = _parse_once(text, depth)
    if (
        depth <= 1
        and _incomplete(event)
        and '"' not in text
        and "\\" in text
        and _ESCAPED_WS_RE.search(text)
    ):
        # outside JSON, "\t" and "\n" as two characters are escapes written once too
        # often; only tried where the line as written gives no complete event, so a line
        # the fast scanner accepts is never read differently here
        unescaped = _parse_embedded(text, _unescape_ws(text), depth + 1)
        if isinstance(unescaped, PlatformEvent):
            return unescaped
    return event


def _incomplete(event: PlatformEvent | str | None) -> bool:
    if not isinstance(event, PlatformEvent):
        return True
    return event.kind == "timeout" and (event.request_id is None or event.timestamp is None)


def _parse_once(text: str, depth: int) -> PlatformEvent | str | None:
    if "REPORT" in text:
        match = _REPORT_RE.search(text) or _REPORT_NO_ID_RE.search(text)
        if match:
            # a quote before REPORT: the line may sit inside a JSON string (rare; checked cheaply)
            if text.find('"', 0, match.start()) >= 0:
                inner = _embedded_string(text, match.start(), depth)
                if inner is not None:
                    return _parse_embedded(text, inner, depth)
            if match.group(1).endswith(":"):  # "RequestId: \tDuration: …": no id
                match = _REPORT_NO_ID_RE.search(text) or match
            return _text_report(text, match)
        match = _INIT_REPORT_RE.search(text)
        if match:
            inner = _embedded_string(text, match.start(), depth)
            if inner is not None:
                return _parse_embedded(text, inner, depth)
            return _text_init_report(text, match.group(1))
    brace = text.find("{")
    if brace >= 0 and '"platform.' in text:
        escaped = text.find('\\"platform.')
        if escaped >= 0:
            inner = _embedded_string(text, escaped, depth)
            if inner is not None:
                return _parse_embedded(text, inner, depth)
        json_event = _json_platform(text[brace:])
        if json_event is not None:
            return json_event
    if "Task timed out" in text:
        match = _TIMEOUT_RE.search(text)
        if match:
            inner = _embedded_string(text, match.start(), depth)
            if inner is not None:
                return _parse_embedded(text, inner, depth)
            return _timeout(text, match)
    oom = _OOM_RE.search(text)
    if oom:
        uuid = _UUID_RE.search(text)
        killed = oom.group(0).endswith("signal: killed")
        return PlatformEvent(
            kind="out_of_memory",
            request_id=uuid.group(0) if uuid else None,
            timestamp=_json_time(text) if brace >= 0 else _leading_ts(text),
            status="error",
            error_type="Runtime.ExitError" if killed else "Runtime.OutOfMemory",
        )
    return None


_JSON_VALUE_START = (":", "[", ",")
_JSON_DECODER = json.JSONDecoder()


def _embedded_string(text: str, pos: int, depth: int) -> str | None:
    """The decoded JSON string value holding ``text[pos]``, when the platform line sits
    inside a JSON document (``{"message":"REPORT RequestId: …\\t…"}`` from log shippers,
    Logs Insights exports, pretty-printed ``filter-log-events`` output); else None."""
    if depth > 1:
        return None
    quote = text.rfind('"', 0, pos)
    while quote > 0 and text[quote - 1] == "\\":
        quote = text.rfind('"', 0, quote - 1)
    if quote < 0 or not text[:quote].rstrip().endswith(_JSON_VALUE_START):
        return None
    try:
        decoded, _end = _JSON_DECODER.raw_decode(text, quote)
    except ValueError:
        return None
    return decoded if isinstance(decoded, str) else None


def _parse_embedded(outer: str, inner: str, depth: int) -> PlatformEvent | str | None:
    """Parse the message found inside a JSON string; without a time of its own it takes
    the first timestamp of the enclosing line."""
    event: PlatformEvent | str | None = None
    for line in inner.splitlines() or [inner]:
        event = _parse(line, depth + 1)
        if event is not None:
            break
    if isinstance(event, PlatformEvent) and event.timestamp is None:
        object.__setattr__(event, "timestamp", _json_time(outer))
    if isinstance(event, PlatformEvent) and event.kind == "timeout" and event.request_id is None:
        # a runtime's JSON log line: {"requestId": "...", "message": "Task timed out ..."}
        found = _JSON_REQUEST_ID_RE.search(outer)
        if found is not None:
            object.__setattr__(event, "request_id", found.group(1))
    return event


def _fields(rest: str) -> dict[str, tuple[str, str | None]]:
    """Field name -> (value, unit or None) of a text REPORT / INIT_REPORT."""
    return {m.group(1): (m.group(2), m.group(3)) for m in _FIELD_RE.finditer(rest)}


def _field_number(name: str, value: str, unit: str | None) -> float:
    units = _MEMORY_UNITS if name in _MEMORY_FIELDS else _DURATION_UNITS
    scale = units.get(unit)
    if scale is None:
        raise ValueError(unit)
    return _number(value) * scale


_CANONICAL_REPORT_RE = re.compile(
    r"\s+Duration: (\d+(?:\.\d+)?) ms\s+Billed Duration: (\d+(?:\.\d+)?) ms\s+"
    r"Memory Size: (\d+) MB\s+Max Memory Used: (\d+) MB"
    r"(?:\s+Init Duration: (\d+(?:\.\d+)?) ms)?\s*(?:XRAY TraceId: [^\n]*)?$"
)


def _text_report(text: str, match: re.Match[str]) -> PlatformEvent | str:
    request_id = match.group(1) or None
    canonical = None if request_id is None else _CANONICAL_REPORT_RE.match(match.group(2))
    if canonical is not None:
        # the common shape, read with one regex
        duration, billed, memory, used, init = canonical.groups()
        return PlatformEvent(
            "report",
            request_id,
            _leading_ts(text) if match.start() > 0 else None,
            None,
            float(duration),
            float(billed),
            int(memory),
            int(used),
            float(init) if init is not None else None,
        )
    fields = _fields(match.group(2))
    if "Duration" not in fields:
        return _Bad(BAD_REPORT)
    try:
        values = {
            name: _field_number(name, *fields[name])
            for name in (
                "Duration",
                "Billed Duration",
                "Memory Size",
                "Max Memory Used",
                "Init Duration",
                "Restore Duration",
                "Billed Restore Duration",
            )
            if name in fields
        }
    except ValueError:
        return _Bad(BAD_REPORT)
    memory = values.get("Memory Size")
    max_used = values.get("Max Memory Used")
    return PlatformEvent(
        kind="report",
        request_id=request_id,
        timestamp=_leading_ts(text),
        duration_ms=values["Duration"],
        billed_duration_ms=values.get("Billed Duration"),
        memory_size_mb=_megabytes(memory),
        max_memory_used_mb=_megabytes(max_used),
        init_duration_ms=values.get("Init Duration"),
        restore_duration_ms=values.get("Restore Duration"),
        billed_restore_duration_ms=values.get("Billed Restore Duration"),
        status=_text_status(fields),
        error_type=fields["Error Type"][0] if fields.get("Error Type", ("",))[0] else None,
    )


def _megabytes(value: float | None) -> int | None:
    return None if value is None or value >= 2**62 else round(value)


def _text_status(fields: dict[str, tuple[str, str | None]]) -> str | None:
    status = fields.get("Status")
    return _STATUSES.get(status[0]) if status is not None else None


def _text_init_report(text: str, rest: str) -> PlatformEvent | str:
    fields = _fields(rest)
    if "Init Duration" not in fields:
        return _Bad(BAD_REPORT)
    try:
        init = _field_number("Init Duration", *fields["Init Duration"])
    except ValueError:
        return _Bad(BAD_REPORT)
    return PlatformEvent(
        kind="init_report",
        timestamp=_leading_ts(text),
        init_duration_ms=init,
        status=_text_status(fields),
        error_type=fields["Error Type"][0] if fields.get("Error Type", ("",))[0] else None,
    )


def _timeout(text: str, match: re.Match[str]) -> PlatformEvent:
    uuid = _UUID_RE.search(text, 0, match.start())
    request_id = uuid.group(0) if uuid else None
    if request_id is None:
        token = _TIMEOUT_ID_RE.match(text, 0, match.start())
        request_id = token.group(2) if token else None
    try:
        seconds: float | None = _number(match.group(1))
    except ValueError:
        seconds = None
    return PlatformEvent(
        kind="timeout",
        request_id=request_id,
        timestamp=_leading_ts(text),
        status="timeout",
        timeout_s=seconds,
    )


def _json_time(text: str) -> float | None:
    match = _BYTES_TS_RE.search(text.encode("utf-8", "replace"))
    return _to_epoch(match.group(0).decode()) if match else None


def _opt_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value and value >= 0 else None


def _opt_int(value: Any) -> int | None:
    number = _opt_number(value)
    return int(number) if number is not None and number < 2**62 else None


def _json_platform(text: str) -> PlatformEvent | str | None:
    try:
        obj, _ = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    kind = obj.get("type")
    if kind not in ("platform.report", "platform.initReport", "platform.runtimeDone"):
        return None
    record = obj.get("record")
    if not isinstance(record, dict):
        return _Bad(BAD_JSON)
    time_text = obj.get("time")
    timestamp = _to_epoch(time_text) if isinstance(time_text, str) else None
    metrics = record.get("metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    status = record.get("status")
    status = _STATUSES.get(status) if isinstance(status, str) else None
    error_type = record.get("errorType")
    error_type = error_type if isinstance(error_type, str) and error_type else None
    request_id = record.get("requestId")
    request_id = request_id if isinstance(request_id, str) and request_id else None
    if kind == "platform.report":
        duration = _opt_number(metrics.get("durationMs"))
        if request_id is None:
            return _Bad(BAD_JSON)
        return PlatformEvent(
            kind="report",
            request_id=request_id,
            timestamp=timestamp,
            duration_ms=duration,
            billed_duration_ms=_opt_number(metrics.get("billedDurationMs")),
            memory_size_mb=_opt_int(metrics.get("memorySizeMB")),
            max_memory_used_mb=_opt_int(metrics.get("maxMemoryUsedMB")),
            init_duration_ms=_opt_number(metrics.get("initDurationMs")),
            restore_duration_ms=_opt_number(metrics.get("restoreDurationMs")),
            billed_restore_duration_ms=_opt_number(metrics.get("billedRestoreDurationMs")),
            status=status,
            error_type=error_type,
        )
    if kind == "platform.initReport":
        return PlatformEvent(
            kind="init_report",
            timestamp=timestamp,
            init_duration_ms=_opt_number(metrics.get("durationMs")),
            status=status,
            error_type=error_type,
        )
    if status == "timeout" and request_id:
        return PlatformEvent(
            kind="timeout", request_id=request_id, timestamp=timestamp, status="timeout"
        )
    if error_type and "OutOfMemory" in error_type and request_id:
        return PlatformEvent(
            kind="out_of_memory",
            request_id=request_id,
            timestamp=timestamp,
            status="error",
            error_type=error_type,
        )
    return None


@dataclass
class ChunkResult:
    """What scan_chunk found in one chunk of complete lines."""

    events: list[PlatformEvent] = field(default_factory=list)
    lines: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    last_timestamp: float | None = None


def first_timestamp_in(buf: bytes) -> float | None:
    """The first ISO-8601 timestamp found in ``buf`` (epoch seconds), else None."""
    for found in _BYTES_TS_RE.finditer(buf):
        value = _to_epoch(found.group(0).decode("ascii", "replace"))
        if value is not None:
            return value
    return None


def last_timestamp_in(buf: bytes, start: int, end: int) -> float | None:
    """The last ISO-8601 timestamp found in ``buf[start:end]`` (searching backwards)."""
    window = 4096
    while True:
        lo = max(start, end - window)
        last = _LAST_BYTES_TS_RE.match(buf, lo, end)
        if last is not None:
            return _to_epoch(last.group(1).decode("ascii", "replace"))
        if lo == start:
            return None
        window *= 16


def scan_chunk(
    buf: bytes,
    *,
    previous_timestamp: float | None = None,
    default_timestamp: float | None = None,
    count_lines: bool = True,
    function_name: str | None = None,
) -> ChunkResult:
    """Find every platform event in ``buf`` (complete lines of UTF-8 text).

    A platform line without a timestamp of its own takes the nearest timestamped
    line before it (in this chunk, else ``previous_timestamp`` carried from earlier
    chunks of the same file), else ``default_timestamp`` (the file's mtime).
    ``last_timestamp`` of the result is what the next chunk should carry. Events are
    named ``function_name``.
    """
    result = ChunkResult()
    if count_lines:
        result.lines = buf.count(b"\n") + (1 if buf and not buf.endswith(b"\n") else 0)
    carried = previous_timestamp
    scanned_to = 0
    pos = 0
    search = _CANDIDATE_RE.search
    while True:
        match = search(buf, pos)
        if match is None:
            break
        line_start = buf.rfind(b"\n", 0, match.start()) + 1
        line_end = buf.find(b"\n", match.end())
        if line_end < 0:
            line_end = len(buf)
        pos = line_end + 1
        text = buf[line_start:line_end].decode("utf-8", "replace")
        parsed = parse_line_or_reason(text)
        if parsed is None:
            continue
        if isinstance(parsed, str):
            result.skipped[parsed] += 1
            continue
        if function_name is not None:
            object.__setattr__(parsed, "function_name", function_name)
        if parsed.timestamp is None:
            found = last_timestamp_in(buf, scanned_to, line_start)
            if found is not None:
                carried = found
            # the event was built just above and is not shared yet
            object.__setattr__(
                parsed, "timestamp", carried if carried is not None else default_timestamp
            )
        else:
            carried = parsed.timestamp
        scanned_to = line_start
        result.events.append(parsed)
    tail = last_timestamp_in(buf, scanned_to, len(buf))
    result.last_timestamp = tail if tail is not None else carried
    return result


_UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}


def utf8_blocks(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The decompressed blocks of a log file as UTF-8 without a byte order mark.

    Windows tools write logs as UTF-16 with a BOM (PowerShell 5 ``>`` redirection) or
    UTF-8 with a BOM (Notepad, ``Out-File -Encoding utf8``); both are re-encoded here so
    the byte-level scan and envelope detection see plain UTF-8. Other input passes
    through untouched (offsets are then the file's own decompressed bytes).
    """
    iterator = iter(blocks)
    first = b""
    for block in iterator:
        first += block
        if len(first) >= 512:
            break
    encoding = _UTF16_BOMS.get(first[:2])
    if encoding is not None:
        # a BOM alone is not enough (binary junk can start with one): log text is mostly
        # ASCII, so in UTF-16 most high bytes are zero
        high = first[3:514:2] if encoding == "utf-16-le" else first[2:514:2]
        if high.count(0) * 2 < len(high):
            encoding = None
    if encoding is None:
        first = first[3:] if first.startswith(b"\xef\xbb\xbf") else first
        if first:  # an empty block would read as the end of the stream
            yield first
        yield from iterator
        return
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    text = decoder.decode(first[2:])
    if text:
        yield text.encode("utf-8", "surrogatepass")
    for block in iterator:
        text = decoder.decode(block)
        if text:
            yield text.encode("utf-8", "surrogatepass")
    text = decoder.decode(b"", final=True)
    if text:
        yield text.encode("utf-8", "surrogatepass")


def _with_timestamp(event: PlatformEvent, timestamp: float | None) -> PlatformEvent:
    if timestamp is None:
        return event
    return PlatformEvent(
        kind=event.kind,
        request_id=event.request_id,
        timestamp=timestamp,
        function_name=event.function_name,
        duration_ms=event.duration_ms,
        billed_duration_ms=event.billed_duration_ms,
        memory_size_mb=event.memory_size_mb,
        max_memory_used_mb=event.max_memory_used_mb,
        init_duration_ms=event.init_duration_ms,
        restore_duration_ms=event.restore_duration_ms,
        billed_restore_duration_ms=event.billed_restore_duration_ms,
        status=event.status,
        error_type=event.error_type,
        timeout_s=event.timeout_s,
    )


def with_function(event: PlatformEvent, function_name: str | None) -> PlatformEvent:
    """A copy of ``event`` naming its function."""
    clone = _with_timestamp(event, event.timestamp)
    object.__setattr__(clone, "function_name", function_name)
    return clone


# A Lambda log stream in a custom (shared) log group: YYYY/MM/DD/<name>[<version>]<guid>
_SHARED_STREAM_RE = re.compile(r"^\d{4}/\d{2}/\d{2}/([^\[/]+)\[")


def function_from_log_group(log_group: object, log_stream: object = None) -> str | None:
    """``/aws/lambda/<name>`` -> ``<name>``; in any other (shared) log group, the name in
    the stream ``YYYY/MM/DD/<name>[<version>]<guid>``; otherwise None."""
    if isinstance(log_group, str) and log_group.startswith("/aws/lambda/"):
        name = log_group[len("/aws/lambda/") :]
        return name or None
    if isinstance(log_stream, str):
        match = _SHARED_STREAM_RE.match(log_stream)
        if match:
            return match.group(1)
    return None


ENVELOPE_KEYS = frozenset(
    {"messageType", "logGroup", "logStream", "logEvents", "events", "searchedLogStreams"}
)


def is_envelope(obj: object) -> bool:
    """True for a subscription/Firehose record or ``filter-log-events`` output."""
    return isinstance(obj, dict) and (
        isinstance(obj.get("logEvents"), list) or isinstance(obj.get("events"), list)
    )


def envelope_messages(obj: dict[str, Any]) -> Iterator[tuple[str | None, float | None, str]]:
    """(function name or None, event time in epoch seconds or None, message) per log event.

    ``CONTROL_MESSAGE`` records (CloudWatch checking that a destination is reachable)
    carry no log events and yield nothing. Event timestamps are epoch milliseconds as AWS
    writes them (numbers, or digit strings as some forwarders re-encode them).
    """
    if obj.get("messageType") == "CONTROL_MESSAGE":
        return
    function_name = function_from_log_group(obj.get("logGroup"), obj.get("logStream"))
    events = obj.get("logEvents")
    if not isinstance(events, list):
        events = obj.get("events")
    if not isinstance(events, list):
        return
    for item in events:
        if not isinstance(item, dict):
            continue
        message = item.get("message")
        if not isinstance(message, str):
            continue
        seconds = _epoch_ms(item.get("timestamp"))
        name = function_name or function_from_log_group(item.get("logGroupName"))
        yield name, seconds, message


def _epoch_ms(stamp: object) -> float | None:
    """An envelope event's ``timestamp`` (epoch milliseconds) -> epoch seconds, or None."""
    if isinstance(stamp, str) and stamp.isdigit() and len(stamp) < 19:
        stamp = int(stamp)
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        return None
    if not 0 < stamp < 1e15:  # beyond year 33,000 in ms: not a time
        return None
    return stamp / 1000.0


def event_to_json(event: PlatformEvent) -> dict[str, Any]:
    """The ``lambdascope parse`` JSON object of one event (keys fixed by the CLI)."""
    from lambdascope.timeutil import iso_ms

    return {
        "kind": event.kind,
        "function_name": event.function_name,
        "timestamp": iso_ms(event.timestamp),
        "request_id": event.request_id,
        "duration_ms": event.duration_ms,
        "billed_duration_ms": event.billed_duration_ms,
        "memory_size_mb": event.memory_size_mb,
        "max_memory_used_mb": event.max_memory_used_mb,
        "init_duration_ms": event.init_duration_ms,
        "restore_duration_ms": event.restore_duration_ms,
        "billed_restore_duration_ms": event.billed_restore_duration_ms,
        "status": event.status,
        "error_type": event.error_type,
    }
