"""The ingest fast path: platform events of a whole chunk of log bytes, column by column.

``scan_columns`` (and ``scan_items``, the same as tuples) finds the same events, with the
same timestamps, as ``lambdascope.logparse.scan_chunk`` (the reference). Lines in the two
shapes that make up almost all of Lambda's output are read a whole chunk at a time:

- the text ``REPORT RequestId: …`` line in its canonical field order (optionally after
  its own leading timestamp): by the C module ``lambdascope._scan`` when it is built,
  else by one regex pass; numbers and timestamps are converted per column (numpy);
- the JSON log format's ``platform.report`` line in Lambda's key order, and its
  ``platform.start`` line, which holds no event.

Every other line that may hold an event goes through ``logparse.parse_line_or_reason``.
The fast rules only accept ASCII text in which the reference parser can only take its
canonical branch, so both give equal events (tests/test_logscan.py checks this on every
fixture line, generated logs and random mixtures, with and without the C module).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from lambdascope import logparse
from lambdascope.models import PlatformEvent

try:  # the optional C accelerator (setup.py); without it the same results, more slowly
    from lambdascope import _scan as _native
except ImportError:  # pragma: no cover - a build without a C compiler
    _native = None  # type: ignore[assignment]

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
    + rb"+Memory Size: (\d{1,15}) MB"
    + _WS
    + rb"+Max Memory Used: (\d{1,15}) MB(?:"
    + _WS
    + rb"+Init Duration: "
    + _NUM
    + rb" ms)?"
    + _WS
    + rb"*(?:XRAY TraceId: (?:(?!\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)[^\n])*)?(?=\n|\Z)"
)
# every "REPORT " occurrence; the groups are set only where the canonical line follows
_ANY_REPORT_RE = re.compile(rb"REPORT (?:" + _TEXT_REPORT_RE.pattern[len(b"REPORT ") :] + rb")?")
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


def _candidates(buf: bytes, reports: list[int], json_count: int, fast_json: int) -> list[int]:
    """Start offsets of candidate-literal occurrences that may lie outside fast lines;
    ``reports``: the "REPORT " occurrences that are not fast lines."""
    if _CANDIDATE_LITERALS is None:
        return [m.start() for m in logparse._CANDIDATE_RE.finditer(buf)]
    found = list(reports)
    for piece, pattern in zip(_CANDIDATE_LITERALS, _LITERAL_RES, strict=True):
        if piece == _TEXT_MARK:
            continue
        if piece == _JSON_MARK and json_count == fast_json:
            continue
        if _native is not None:
            found.extend(np.frombuffer(_native.find_all(buf, piece), np.int64).tolist())
        else:
            found.extend(map(_start, pattern.finditer(buf)))
    found.sort()
    return found


_NAN = float("nan")
_STATUS_OF = {key.encode("ascii"): value for key, value in logparse._STATUSES.items()}
_start = re.Match.start
_end = re.Match.end
_groups = re.Match.groups


def _positions(method: Any, matches: list[re.Match[bytes]]) -> npt.NDArray[np.int64]:
    return np.fromiter(map(method, matches), np.int64, len(matches))


def _floats(values: Sequence[bytes | None]) -> npt.NDArray[np.float64]:
    """float() of each value (NaN for None), as Python reads them."""
    return np.fromiter(map(float, [value or b"nan" for value in values]), np.float64, len(values))


def _ints(values: Sequence[bytes]) -> npt.NDArray[np.int64]:
    return np.fromiter(map(int, values), np.int64, len(values))


_TS_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22])


def epochs(texts: Sequence[bytes | None]) -> npt.NDArray[np.float64]:
    """``logparse._to_epoch`` of each timestamp (ASCII bytes), NaN where it gives None.

    The common ``YYYY-MM-DDTHH:MM:SS.mmmZ`` shape is converted column-wise with the same
    float operations in the same order (so the values are identical); any other shape
    goes through ``_to_epoch`` itself.
    """
    out = np.full(len(texts), _NAN)
    present = [i for i, text in enumerate(texts) if text is not None]
    canonical = [i for i in present if len(texts[i]) == 24]  # type: ignore[arg-type]
    done: set[int] = set()
    if canonical:
        joined = b"".join([texts[i] for i in canonical])  # type: ignore[misc]
        values, ok = _canonical_epochs(np.frombuffer(joined, np.uint8).reshape(-1, 24))
        rows = np.asarray(canonical, np.int64)
        out[rows[ok]] = values[ok]
        done = set(rows[ok].tolist())
    to_epoch = logparse._to_epoch
    for i in present:
        if i not in done:
            out[i] = _or_nan(to_epoch(texts[i].decode("ascii")))  # type: ignore[union-attr]
    return out


def _canonical_epochs(
    chars: npt.NDArray[np.uint8],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Rows of 24 characters: their ``_to_epoch`` where the row is a canonical
    ``YYYY-MM-DDTHH:MM:SS.mmmZ`` timestamp (ok), else undefined."""
    digits = chars.astype(np.int64) - 48
    ok = (
        (chars[:, 4] == 45)
        & (chars[:, 7] == 45)
        & ((chars[:, 10] == 84) | (chars[:, 10] == 32))
        & (chars[:, 13] == 58)
        & (chars[:, 16] == 58)
        & (chars[:, 19] == 46)
        & ((chars[:, 23] == 90) | (chars[:, 23] == 122))
        & ((digits[:, _TS_DIGITS] >= 0) & (digits[:, _TS_DIGITS] <= 9)).all(axis=1)
    )
    minutes = digits[:, 14] * 10 + digits[:, 15]
    seconds = digits[:, 17] * 10 + digits[:, 18]
    millis = digits[:, 20] * 100 + digits[:, 21] * 10 + digits[:, 22]
    ok &= (minutes <= 59) & (seconds <= 60)
    hours = np.ascontiguousarray(chars[:, :13]).view("S13").ravel()
    unique, inverse = np.unique(hours, return_inverse=True)
    bases = np.array(
        [_or_nan(logparse.hour_base(key.decode("ascii"))) for key in unique.tolist()],
        np.float64,
    )
    # _to_epoch: base + minutes * 60 + seconds + float(".mmm"); mmm / 1000.0 is the
    # same correctly rounded double as float(".mmm")
    values = ((bases[inverse.ravel()] + minutes * 60) + seconds) + millis / 1000.0
    return values, ok


_TS_AT_RE = re.compile(_TS)
_TS_OFFSETS = np.arange(24)


def _timestamp_starts(buf: bytes, view: npt.NDArray[np.uint8], start: int) -> npt.NDArray[np.int64]:
    """Where the timestamps at or after ``start`` begin, as ``_TS_DASH_RE.finditer``
    finds them: ``dddd-dd-dd[T ]dd:dd:dd`` (no match can begin inside another one)."""
    if _native is not None:
        return np.frombuffer(_native.timestamp_starts(buf, start), np.int64)
    dashes = np.flatnonzero(view[start + 4 :] == 45) + start + 4
    dashes = dashes[dashes + 14 < len(view)]  # the 19 characters fit
    dashes = dashes[view[dashes + 3] == 45]
    dashes = dashes[(view[dashes + 6] == 84) | (view[dashes + 6] == 32)]
    dashes = dashes[(view[dashes + 9] == 58) & (view[dashes + 12] == 58)]
    at = dashes - 4
    digits = view[at[:, None] + _TS_DIGITS[:14]]
    found: npt.NDArray[np.int64] = at[((digits >= 48) & (digits <= 57)).all(axis=1)]
    return found


def _epochs_at(
    buf: bytes, view: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """``_to_epoch`` of the timestamp that begins at each of ``starts`` (NaN if None)."""
    out = np.full(len(starts), _NAN)
    if not len(starts):
        return out
    # the 24 characters of a canonical timestamp fit (its "Z" ends the regex's match)
    rows = np.flatnonzero(starts + 24 <= len(view))
    ok = np.zeros(len(starts), np.bool_)
    if rows.size:
        chars = view[starts[rows][:, None] + _TS_OFFSETS]
        values, good = _canonical_epochs(chars)
        out[rows[good]] = values[good]
        ok[rows[good]] = True
    to_epoch = logparse._to_epoch
    for i in np.flatnonzero(~ok).tolist():
        match = _TS_AT_RE.match(buf, int(starts[i]))
        if match is not None:
            out[i] = _or_nan(to_epoch(match.group().decode("ascii")))
    return out


def _or_nan(value: float | None) -> float:
    return _NAN if value is None else value


def _or_none(value: float) -> float | None:
    return None if value != value else value  # NaN


@dataclass
class FastColumns:
    """Fast-path REPORT lines of one chunk, column by column, in line order."""

    positions: npt.NDArray[np.int64]  # line starts: the order among a chunk's events
    request_ids: list[str]
    timestamps: npt.NDArray[np.float64]  # epoch seconds, NaN where none is known
    duration_ms: npt.NDArray[np.float64]
    billed_duration_ms: npt.NDArray[np.float64]
    memory_mb: npt.NDArray[np.int64]
    max_memory_used_mb: npt.NDArray[np.int64]
    init_duration_ms: npt.NDArray[np.float64]  # NaN: no Init Duration
    status: list[str] | None = None  # JSON log format lines only

    def __len__(self) -> int:
        return len(self.request_ids)

    def with_timestamps(self) -> FastColumns:
        """Only the lines whose time is known (the others cannot be stored)."""
        known = ~np.isnan(self.timestamps)
        return self if known.all() else self.select(known)

    def select(self, keep: npt.NDArray[np.bool_]) -> FastColumns:
        """The lines where ``keep`` is true."""
        kept = np.flatnonzero(keep).tolist()
        return FastColumns(
            self.positions[keep],
            [self.request_ids[i] for i in kept],
            self.timestamps[keep],
            self.duration_ms[keep],
            self.billed_duration_ms[keep],
            self.memory_mb[keep],
            self.max_memory_used_mb[keep],
            self.init_duration_ms[keep],
            None if self.status is None else [self.status[i] for i in kept],
        )

    def items(self) -> list[Item]:
        """The lines as ReportTuple / JsonReportTuple."""
        columns: list[Any] = [
            self.request_ids,
            [_or_none(t) for t in self.timestamps.tolist()],
            self.duration_ms.tolist(),
            self.billed_duration_ms.tolist(),
            self.memory_mb.tolist(),
            self.max_memory_used_mb.tolist(),
            [_or_none(t) for t in self.init_duration_ms.tolist()],
        ]
        if self.status is not None:
            columns.append(self.status)
        return list(zip(*columns, strict=True))


def empty_columns(json_format: bool = False) -> FastColumns:
    empty_f = np.empty(0, np.float64)
    empty_i = np.empty(0, np.int64)
    return FastColumns(
        empty_i,
        [],
        empty_f,
        empty_f,
        empty_f,
        empty_i,
        empty_i,
        empty_f,
        [] if json_format else None,
    )


def concat(parts: list[FastColumns], json_format: bool = False) -> FastColumns:
    """The lines of several chunks' columns, one after the other (positions are kept)."""
    parts = [part for part in parts if len(part)]
    if not parts:
        return empty_columns(json_format)
    if len(parts) == 1:
        return parts[0]
    return FastColumns(
        np.concatenate([p.positions for p in parts]),
        [rid for p in parts for rid in p.request_ids],
        np.concatenate([p.timestamps for p in parts]),
        np.concatenate([p.duration_ms for p in parts]),
        np.concatenate([p.billed_duration_ms for p in parts]),
        np.concatenate([p.memory_mb for p in parts]),
        np.concatenate([p.max_memory_used_mb for p in parts]),
        np.concatenate([p.init_duration_ms for p in parts]),
        [s for p in parts for s in p.status or []] if json_format else None,
    )


@dataclass
class ChunkColumns:
    """What scan_columns found in one chunk of complete lines."""

    text: FastColumns
    json: FastColumns
    slow: list[PlatformEvent] = field(default_factory=list)  # every other event
    slow_positions: list[int] = field(default_factory=list)  # their line starts
    lines: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    last_timestamp: float | None = None

    def items(self) -> list[Item]:
        """All events in line order, as scan_items gives them."""
        keyed: list[tuple[int, Item]] = [
            *zip(self.text.positions.tolist(), self.text.items(), strict=True),
            *zip(self.json.positions.tolist(), self.json.items(), strict=True),
            *zip(self.slow_positions, self.slow, strict=True),
        ]
        keyed.sort(key=_first)
        return [item for _position, item in keyed]


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
    found = scan_columns(
        buf, previous_timestamp=previous_timestamp, default_timestamp=default_timestamp
    )
    return ChunkItems(found.items(), found.lines, found.skipped, found.last_timestamp)


def _at_line_start(
    view: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Whether each of ``starts`` is the start of a line."""
    at_line: npt.NDArray[np.bool_] = (starts == 0) | (view[np.maximum(starts - 1, 0)] == 10)
    return at_line


def _text_lines(
    buf: bytes, view: npt.NDArray[np.uint8]
) -> tuple[FastColumns, npt.NDArray[np.int64], list[bytes | None], list[int]]:
    """Fast text REPORT lines (columns without timestamps, positions at line starts), where
    each line ends, their own leading timestamps, and where every other "REPORT " is."""
    if _native is not None:
        found = _native.scan_reports(buf)
        rids = found[2]
        columns = FastColumns(
            np.frombuffer(found[0], np.int64).copy(),
            rids,
            np.full(len(rids), _NAN),
            np.frombuffer(found[3], np.float64),
            np.frombuffer(found[4], np.float64),
            np.frombuffer(found[5], np.int64),
            np.frombuffer(found[6], np.int64),
            np.frombuffer(found[7], np.float64),
        )
        ends = np.frombuffer(found[1], np.int64)
        others = np.frombuffer(found[8], np.int64).tolist()
    else:
        matches = list(_ANY_REPORT_RE.finditer(buf))
        groups = list(map(_groups, matches))
        fast = np.fromiter((g[0] is not None for g in groups), np.bool_, len(groups))
        starts = _positions(_start, matches)
        others = starts[~fast].tolist()
        kept = np.flatnonzero(fast).tolist()
        columns = _columns([groups[i] for i in kept], starts[fast], np.full(len(kept), _NAN))
        ends = _positions(_end, matches)[fast]
    # a line that does not start with REPORT is fast only after a timestamp of its own
    starts = columns.positions
    own: list[bytes | None] = [None] * len(starts)
    off_line = ~_at_line_start(view, starts)
    if not off_line.any():
        return columns, ends, own, others
    keep = np.ones(len(starts), np.bool_)
    for i in np.flatnonzero(off_line).tolist():
        start = int(starts[i])
        line_start = buf.rfind(b"\n", 0, start) + 1
        prefix = _OWN_TS_RE.fullmatch(buf, line_start, start)
        if prefix is None:
            keep[i] = False
            others.append(start)
        else:
            own[i] = prefix.group(1)
            starts[i] = line_start
    if keep.all():
        return columns, ends, own, others
    return columns.select(keep), ends[keep], [own[i] for i in np.flatnonzero(keep).tolist()], others


def _columns(
    groups: list[tuple[Any, ...]], positions: npt.NDArray[np.int64], stamps: Any
) -> FastColumns:
    if not groups:
        return empty_columns()
    rid, duration, billed, memory, used, init = list(zip(*groups, strict=True))[:6]
    return FastColumns(
        positions,
        b"\n".join(rid).decode("ascii").split("\n"),
        stamps,
        np.fromiter(map(float, duration), np.float64, len(duration)),
        np.fromiter(map(float, billed), np.float64, len(billed)),
        _ints(memory),
        _ints(used),
        _floats(init),
    )


def scan_columns(
    buf: bytes,
    *,
    previous_timestamp: float | None = None,
    default_timestamp: float | None = None,
    event_ends: npt.NDArray[np.int64] | None = None,
    event_seconds: npt.NDArray[np.float64] | None = None,
) -> ChunkColumns:
    """Platform events of ``buf`` (complete lines), column by column (see scan_items).

    With ``event_ends`` (the end offset of each log event's message in ``buf``, messages
    joined by newlines) and ``event_seconds`` (each event's time, NaN if none), a line
    without a timestamp of its own takes its log event's time instead: envelope mode.
    """
    view = np.frombuffer(buf, np.uint8)
    newlines = buf.count(b"\n") if _native is None else _native.newlines(buf)
    lines = newlines + (1 if buf and not buf.endswith(b"\n") else 0)
    text, text_ends, text_own, other_reports = _text_lines(buf, view)
    text_starts = text.positions
    json_reports: list[re.Match[bytes]] = []
    json_starts = np.empty(0, np.int64)
    span_starts = [text_starts]
    span_ends = [text_ends]
    fast_json = 0
    json_count = buf.count(_JSON_MARK)
    if json_count:
        json_matches = list(_JSON_RE.finditer(buf))
        at_line = _at_line_start(view, _positions(_start, json_matches))
        json_matches = [m for m, ok in zip(json_matches, at_line.tolist(), strict=True) if ok]
        fast_json = len(json_matches)
        span_starts.append(_positions(_start, json_matches))
        span_ends.append(_positions(_end, json_matches))
        json_reports = [m for m in json_matches if m.group(2) is None]  # not platform.start
        json_starts = _positions(_start, json_reports)
    slow, slow_positions, skipped = _slow_events(
        buf,
        np.concatenate(span_starts),
        np.concatenate(span_ends),
        _candidates(buf, other_reports, json_count, fast_json),
    )
    json_groups = [groups[2:] for groups in map(_groups, json_reports)]
    own = np.concatenate(
        [
            epochs(text_own),
            epochs([groups[0] for groups in map(_groups, json_reports)]),
            np.array([_or_nan(e.timestamp) for e in slow], np.float64),
        ]
    )
    positions = np.concatenate([text_starts, json_starts, np.asarray(slow_positions, np.int64)])
    order = np.argsort(positions, kind="stable")
    stamps_sorted, last = _timestamps(
        buf,
        view,
        positions[order],
        own[order],
        previous_timestamp,
        default_timestamp,
        event_ends,
        event_seconds,
    )
    stamps = np.empty_like(stamps_sorted)
    stamps[order] = stamps_sorted
    n_text, n_json = len(text), len(json_groups)
    for event, stamp in zip(slow, stamps[n_text + n_json :].tolist(), strict=True):
        if event.timestamp is None:
            object.__setattr__(event, "timestamp", _or_none(stamp))
    text.timestamps = stamps[:n_text]
    json_columns = _columns(json_groups, json_starts, stamps[n_text : n_text + n_json])
    json_columns.status = [_STATUS_OF[groups[-1]] for groups in json_groups]
    return ChunkColumns(
        text,
        json_columns,
        slow,
        slow_positions,
        lines,
        skipped,
        last,
    )


def _slow_events(
    buf: bytes,
    span_starts: npt.NDArray[np.int64],
    span_ends: npt.NDArray[np.int64],
    found: list[int],
) -> tuple[list[PlatformEvent], list[int], Counter[str]]:
    """Events (and skip reasons) of the candidate lines outside the fast lines' spans."""
    slow: list[PlatformEvent] = []
    positions: list[int] = []
    skipped: Counter[str] = Counter()
    candidates = np.asarray(found, np.int64)
    if candidates.size == 0:
        return slow, positions, skipped
    if span_starts.size:
        by_start = np.argsort(span_starts, kind="stable")
        starts, ends = span_starts[by_start], span_ends[by_start]
        index = np.searchsorted(starts, candidates, side="right") - 1
        inside = (index >= 0) & (candidates < ends[np.maximum(index, 0)])
        candidates = candidates[~inside]
    skipped_to = 0  # a candidate line is read whole: later candidates in it are done
    for position in candidates.tolist():
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
            skipped[parsed] += 1
            continue
        slow.append(parsed)
        positions.append(start)
    return slow, positions, skipped


def _timestamps(
    buf: bytes,
    view: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    own: npt.NDArray[np.float64],
    previous: float | None,
    default: float | None,
    event_ends: npt.NDArray[np.int64] | None,
    event_seconds: npt.NDArray[np.float64] | None,
) -> tuple[npt.NDArray[np.float64], float | None]:
    """Each event's timestamp (events in line order), and the one carried past the chunk.

    An event's own timestamp, else the nearest timestamp after the previous event's line
    start and before its own, else the last one found before (``previous`` at first),
    else ``default``; NaN when there is none. In envelope mode: own, else its log event's.
    """
    missing = np.isnan(own)
    if event_ends is not None and event_seconds is not None:
        which = np.searchsorted(event_ends, starts, side="right")
        which = np.minimum(which, max(len(event_seconds) - 1, 0))
        fallback = event_seconds[which] if len(event_seconds) else np.full(len(own), _NAN)
        return np.where(missing, fallback, own), None
    scanned_to = int(starts[-1]) if starts.size else 0
    # timestamps are only looked up for events without their own, and after the last event
    ts_starts = _timestamp_starts(buf, view, 0 if missing.any() else scanned_to)
    value = own.copy()
    if missing.any() and ts_starts.size:
        nearest = np.searchsorted(ts_starts, starts, side="left") - 1
        previous_starts = np.concatenate([[0], starts[:-1]])
        usable = missing & (nearest >= 0) & (ts_starts[np.maximum(nearest, 0)] >= previous_starts)
        wanted = np.unique(nearest[usable])
        found = _epochs_at(buf, view, ts_starts[wanted])
        value[usable] = found[np.searchsorted(wanted, nearest[usable])]
    # carried forward: the last known value at or before each event
    known = np.where(np.isnan(value), -1, np.arange(len(value)))
    latest = np.maximum.accumulate(known) if len(known) else known
    carried = np.where(latest >= 0, value[np.maximum(latest, 0)], _or_nan(previous))
    carried_last = _or_none(float(carried[-1])) if len(carried) else previous
    stamps = np.where(np.isnan(carried), _or_nan(default), carried)
    last = carried_last
    if ts_starts.size and ts_starts[-1] >= scanned_to:
        tail = _or_none(float(_epochs_at(buf, view, ts_starts[-1:])[0]))
        if tail is not None:
            last = tail
    return stamps, last


def _first(entry: tuple[int, Any]) -> int:
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
