"""The ingest fast path: platform events of a whole chunk of log bytes as compact tuples.

``scan_items`` finds the same events, with the same timestamps, as
``lambdascope.logparse.scan_chunk`` (the reference). Lines in the two shapes that make up
almost all of Lambda's output are read by whole-chunk regexes straight into tuples:

- the text ``REPORT RequestId: …`` line in its canonical field order (optionally after
  its own leading timestamp), as ``ReportTuple``;
- the JSON log format's ``platform.report`` line in Lambda's key order, as
  ``JsonReportTuple``, and its ``platform.start`` line, which holds no event.

Every other line that may hold an event goes through ``logparse.parse_line_or_reason``.
The regexes only accept ASCII text in which the reference parser can only take its
canonical branch, so both give equal events (tests/test_logscan.py checks this on every
fixture line and on generated logs).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

from lambdascope import logparse
from lambdascope.models import PlatformEvent

# (request_id, timestamp, duration_ms, billed_duration_ms, memory_mb, max_memory_used_mb,
#  init_duration_ms or None)
ReportTuple = tuple[str, float | None, float, float, int, int, float | None]
# ReportTuple + (status,)
JsonReportTuple = tuple[str, float | None, float, float, int, int, float | None, str]
Item = ReportTuple | JsonReportTuple | PlatformEvent

_WS = rb"[ \t\r\x0b\x0c]"  # str \s within one line, ASCII only
_NUM = rb"(\d+(?:\.\d+)?)"
_TS = logparse._TS.encode()
# No ":" in the request id and no timestamp in the X-Ray tail, so a timestamp never sits
# inside a fast line (the nearest-earlier-timestamp lookup only sees other lines).
_TEXT_REPORT_RE = re.compile(
    rb"REPORT RequestId:[ \t]*([!-9;-~]+)"
    + _WS
    + rb"+Duration: "
    + _NUM
    + rb" ms"
    + _WS
    + rb"+Billed Duration: "
    + _NUM
    + rb" ms"
    + _WS
    + rb"+Memory Size: (\d+) MB"
    + _WS
    + rb"+Max Memory Used: (\d+) MB(?:"
    + _WS
    + rb"+Init Duration: "
    + _NUM
    + rb" ms)?"
    + _WS
    + rb"*(?:XRAY TraceId: (?:(?!\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)[^\n])*)?(?=\n|\Z)"
)
_JNUM = rb"((?:0|[1-9]\d{0,14})(?:\.\d{1,20})?)"
_JINT = rb"(0|[1-9]\d{0,14})"
_HEX_ID = rb'"requestId":"([0-9a-fA-F-]{1,64})"'
_JSON_RE = re.compile(
    rb'\{"time":"([0-9TZz:.+ -]{10,40})","type":"platform\.(?:start","record":\{'
    + _HEX_ID
    + rb'(?:,"version":"(?:\$LATEST|\d{1,10})")?\}\}|report","record":\{'
    + _HEX_ID
    + rb',"metrics":\{"durationMs":'
    + _JNUM
    + rb',"billedDurationMs":'
    + _JNUM
    + rb',"memorySizeMB":'
    + _JINT
    + rb',"maxMemoryUsedMB":'
    + _JINT
    + rb'(?:,"initDurationMs":'
    + _JNUM
    + rb')?\},"status":"(success|error|timeout|failure)"\}\})'
    + _WS
    + rb"*(?=\n|\Z)"
)
# A timestamp found by its first "-": a literal start, so the search runs at memchr speed.
# It finds every timestamp the reference's backwards search can find (same starts, same text).
_TS_DASH_RE = re.compile(rb"-(?<=\d{4}-)" + _TS[6:])
# the line's own timestamp before a text REPORT (export and ``aws logs tail`` lines)
_OWN_TS_RE = re.compile(rb"(" + _TS + rb")[ \t]+")
_STR_TEXT_REPORT_RE = re.compile(
    "(?:(" + logparse._TS + ")[ \t]+)?" + _TEXT_REPORT_RE.pattern.decode("ascii"), re.ASCII
)


def _literals(pattern: bytes) -> list[bytes] | None:
    """The alternatives of a pattern that is only escaped literals, else None."""
    pieces = pattern.split(b"|")
    if any(re.search(rb"[()\[\]*+?{}^$]|\\[^.\"]", piece) for piece in pieces):
        return None
    return [piece.replace(b"\\", b"") for piece in pieces]


# The reference's candidate filter as plain literals: each is searched on its own (a
# literal search is several times faster than the alternation).
_CANDIDATE_LITERALS = _literals(logparse._CANDIDATE_RE.pattern)
_LITERAL_RES = [re.compile(re.escape(piece)) for piece in _CANDIDATE_LITERALS or []]
# literals that every fast line of a kind holds exactly once and no other part of it can
_TEXT_MARK = b"REPORT "
_JSON_MARK = b'"platform.'


def _candidates(buf: bytes, fast_text: int, fast_json: int) -> list[int]:
    """Start offsets of candidate-literal occurrences that may lie outside fast lines."""
    if _CANDIDATE_LITERALS is None:
        return [m.start() for m in logparse._CANDIDATE_RE.finditer(buf)]
    found: list[int] = []
    for piece, pattern in zip(_CANDIDATE_LITERALS, _LITERAL_RES, strict=True):
        if piece == _TEXT_MARK and buf.count(piece) == fast_text:
            continue
        if piece == _JSON_MARK and buf.count(piece) == fast_json:
            continue
        found.extend(m.start() for m in pattern.finditer(buf))
    found.sort()
    return found


@dataclass
class ChunkItems:
    """What scan_items found in one chunk of complete lines, in line order."""

    items: list[Item] = field(default_factory=list)
    lines: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    last_timestamp: float | None = None


def scan_items(
    buf: bytes,
    *,
    previous_timestamp: float | None = None,
    default_timestamp: float | None = None,
) -> ChunkItems:
    """Platform events of ``buf`` (complete lines), as scan_chunk finds them.

    Timestamps follow scan_chunk: a line's own, else the nearest timestamp earlier in
    the chunk (after the previous event's line start), else the one carried in
    ``previous_timestamp``, else ``default_timestamp``.
    """
    result = ChunkItems()
    result.lines = buf.count(b"\n") + (1 if buf and not buf.endswith(b"\n") else 0)
    items = result.items
    append = items.append
    to_epoch = logparse._to_epoch
    ts_matches = list(_TS_DASH_RE.finditer(buf))
    ts_starts = [m.start() - 4 for m in ts_matches]
    # (line start, own timestamp, match) of every fast line
    fast: list[tuple[int, bytes | None, re.Match[bytes]]] = []
    for m in _TEXT_REPORT_RE.finditer(buf):
        start = m.start()
        if start == 0 or buf[start - 1] == 10:
            fast.append((start, None, m))
            continue
        line_start = buf.rfind(b"\n", 0, start) + 1
        prefix = _OWN_TS_RE.fullmatch(buf, line_start, start)
        if prefix is not None:
            fast.append((line_start, prefix.group(1), m))
    fast_text = len(fast)
    if b'{"time":"' in buf:
        fast.extend(
            (m.start(), None, m)
            for m in _JSON_RE.finditer(buf)
            if m.start() == 0 or buf[m.start() - 1] == 10
        )
        fast.sort(key=_first)
    candidates = _candidates(buf, fast_text, len(fast) - fast_text)
    carried = previous_timestamp
    scanned_to = 0
    ci = 0
    n_candidates = len(candidates)
    skipped_to = 0  # the slow path reads whole lines: candidates before here are done

    def inherited(line_start: int) -> float | None:
        nonlocal carried
        j = bisect_left(ts_starts, line_start) - 1
        if j >= 0 and ts_starts[j] >= scanned_to:
            match = ts_matches[j]
            found = to_epoch(buf[match.start() - 4 : match.end()].decode("ascii"))
            if found is not None:
                carried = found
        return carried if carried is not None else default_timestamp

    for line_start, own, line_match in [*fast, (len(buf), None, None)]:
        # lines before this fast line that may hold an event
        while ci < n_candidates and candidates[ci] < line_start:
            position = candidates[ci]
            ci += 1
            if position < skipped_to:
                continue
            start = buf.rfind(b"\n", 0, position) + 1
            end = buf.find(b"\n", position)
            if end < 0:
                end = len(buf)
            skipped_to = end + 1
            parsed = logparse.parse_line_or_reason(buf[start:end].decode("utf-8", "replace"))
            if parsed is None:
                continue
            if isinstance(parsed, str):
                result.skipped[parsed] += 1
                continue
            if parsed.timestamp is None:
                object.__setattr__(parsed, "timestamp", inherited(start))
            else:
                carried = parsed.timestamp
            scanned_to = start
            append(parsed)
        if line_match is None:
            break
        end = line_match.end()
        while ci < n_candidates and candidates[ci] < end:
            ci += 1
        groups = line_match.groups()
        if len(groups) == 6:  # text REPORT
            rid, duration, billed, memory, used, init = groups
            stamp = to_epoch(own.decode("ascii")) if own is not None else None
            if stamp is None:
                stamp = inherited(line_start)
            else:
                carried = stamp
            append(
                (
                    rid.decode("ascii"),
                    stamp,
                    float(duration),
                    float(billed),
                    int(memory),
                    int(used),
                    float(init) if init is not None else None,
                )
            )
        else:
            if groups[1] is not None:  # platform.start: no event
                continue
            when, _start_id, rid, duration, billed, memory, used, init, status = groups
            stamp = to_epoch(when.decode("ascii"))
            if stamp is None:
                stamp = inherited(line_start)
            else:
                carried = stamp
            append(
                (
                    rid.decode("ascii"),
                    stamp,
                    float(duration),
                    float(billed),
                    int(memory),
                    int(used),
                    float(init) if init is not None else None,
                    logparse._STATUSES[status.decode("ascii")],
                )
            )
        scanned_to = line_start
    tail = None
    if ts_starts and ts_starts[-1] >= scanned_to:
        last = ts_matches[-1]
        tail = to_epoch(buf[last.start() - 4 : last.end()].decode("ascii"))
    result.last_timestamp = tail if tail is not None else carried
    return result


def _first(entry: tuple[int, bytes | None, re.Match[bytes]]) -> int:
    return entry[0]


def fast_report(line: str) -> ReportTuple | None:
    """A canonical text REPORT line (str) as a tuple, exactly as parse_line reads it;
    None for any other line. The timestamp is the line's own or None."""
    m = _STR_TEXT_REPORT_RE.match(line)
    if m is None or m.end() != len(line):
        return None
    own, rid, duration, billed, memory, used, init = m.groups()
    return (
        rid,
        logparse._to_epoch(own) if own is not None else None,
        float(duration),
        float(billed),
        int(memory),
        int(used),
        float(init) if init is not None else None,
    )


def item_event(item: Item, function_name: str | None = None) -> PlatformEvent:
    """The PlatformEvent an item stands for (what parse_line gives, timestamp filled)."""
    if isinstance(item, PlatformEvent):
        if function_name is None:
            return item
        return logparse.with_function(item, function_name)
    return PlatformEvent(
        "report",
        item[0],
        item[1],
        function_name,
        item[2],
        item[3],
        item[4],
        item[5],
        item[6],
        status=item[7] if len(item) == 8 else None,
    )
