"""Local runtime logs: file discovery, gzip, stdin, resumable offsets, envelopes.

``ingest_paths`` streams files, directories (recursive), ``.gz`` (any gzip by its magic
bytes, several members, a truncated tail keeps what was readable) and ``-`` (stdin)
into the store. Memory stays flat: text is read in chunks of complete lines and only
lines that can hold a platform event are decoded (lambdascope.logparse.scan_chunk).

Crash safety: each batch (its invocations, status marks, the hourly facts it adds to and
the file's new offset in decompressed bytes) is stored in the same transaction, so a run
killed at any point is completed by running it again. A transaction holds several batches
(about COMMIT_ROWS reports or COMMIT_SECONDS): fewer commits rewrite fewer b-tree pages.
With enough to read, reading processes (two on a machine with two cores or more) read and
parse files (lambdascope.logscan, column-wise, with its optional C module) while this one
writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISDIR
from typing import IO, Any

import numpy as np
from sqlite_utils import Database

from lambdascope import db as store_db
from lambdascope import logparse, logscan, rollup, store
from lambdascope.evidence import insights as lambda_insights
from lambdascope.logscan import Item
from lambdascope.models import PlatformEvent
from lambdascope.store import rebuild_dirty_hours

CHUNK_BYTES = 2 * 1024 * 1024
MAX_LINE_BYTES = 32 * 1024 * 1024
HEAD_BYTES = 4096
_GZIP_MAGIC = b"\x1f\x8b"
_WS = b" \t\r\n"


@dataclass
class Batch:
    """Events found in one stretch of a file, and the decompressed offset it ends at.

    ``chunks`` hold the events (lambdascope.logscan.ChunkColumns) in line order, each
    with the function it belongs to (an envelope's log group), else ``function_name``.
    """

    chunks: list[tuple[str | None, logscan.ChunkColumns]]
    lines: int
    skipped: Counter[str]
    start_offset: int
    end_offset: int
    function_name: str | None = None
    estimated: Counter[str] = field(default_factory=Counter)  # reports dated by a rule
    insights: list[lambda_insights.PerformanceEvent] = field(
        default_factory=list
    )  # Lambda Insights

    @property
    def events(self) -> list[PlatformEvent]:
        """The events, each naming its function."""
        return [
            logscan.item_event(item, name or self.function_name)
            for name, found in self.chunks
            for item in found.items()
        ]


@dataclass
class IngestResult:
    """Totals of one ingest run."""

    files: int = 0
    lines: int = 0
    reports: int = 0
    added: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    functions: set[str] = field(default_factory=set)
    name_sources: dict[str, str] = field(default_factory=dict)  # function -> where from
    seconds: float = 0.0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    # files read from their start that hold no REPORT, timeout or out-of-memory line
    without_events: list[str] = field(default_factory=list)
    unchanged_files: int = 0
    bytes_total: int = 0  # bytes this run has to read (files as stored on disk)
    bytes_done: int = 0
    sealed: int = 0  # reports in hours already summarised whose raw rows were pruned
    estimated_times: Counter[str] = field(default_factory=Counter)  # reports per source
    insights_events: int = 0  # Lambda Insights performance events read
    insights_added: int = 0  # of them, new in the store

    def summary_line(self) -> str:
        """The one-line summary printed at the end of ``lambdascope ingest``."""
        rate = self.lines / self.seconds if self.seconds > 0 else 0.0
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(self.skipped.items()))
        text = (
            f"{self.files:,} files, {self.lines:,} lines, {self.reports:,} reports"
            f" ({self.added:,} new"
            + (f", {self.sealed:,} in pruned hours already counted" if self.sealed else "")
            + f"), skipped {skipped:,} lines"
            + (f" ({reasons})" if reasons else "")
            + f", {len(self.functions):,} functions in {self.seconds:.1f} s"
            f" ({rate:,.0f} lines/s)"
        )
        if self.estimated_times:
            sources = ", ".join(
                f"{n:,} from {source}" for source, n in self.estimated_times.most_common()
            )
            text += f"; reports without a time of their own dated {sources}"
        if self.insights_events:
            text += (
                f"; {self.insights_events:,} Lambda Insights events ({self.insights_added:,} new)"
            )
        return text


class _Decompressed:
    """Decompressed blocks of a plain or gzip stream; ``truncated`` after a cut gzip."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.truncated = False
        self._pending = b""
        self._gzip: bool | None = None

    def blocks(self) -> Iterator[bytes]:
        first = self.raw.read(CHUNK_BYTES)
        if first[:2] != _GZIP_MAGIC:
            while first:
                yield first
                first = self.raw.read(CHUNK_BYTES)
            return
        decomp = zlib.decompressobj(wbits=47)
        data = first
        while True:
            if not data:
                if not decomp.eof:
                    self.truncated = True
                return
            try:
                out = decomp.decompress(data)
            except zlib.error:
                self.truncated = True
                return
            if out:
                yield out
            while decomp.eof and decomp.unused_data:
                rest = decomp.unused_data
                if rest.lstrip(b"\x00") == b"":
                    break
                decomp = zlib.decompressobj(wbits=47)
                try:
                    out = decomp.decompress(rest)
                except zlib.error:
                    self.truncated = True
                    return
                if out:
                    yield out
            data = self.raw.read(CHUNK_BYTES)
            if decomp.eof and not decomp.unused_data and not data:
                return


def _skip_bytes(blocks: Iterator[bytes], count: int) -> tuple[bytes, int]:
    """Drop the first ``count`` bytes; returns the leftover of the last block read."""
    skipped = 0
    for block in blocks:
        if skipped + len(block) > count:
            return block[count - skipped :], count
        skipped += len(block)
    return b"", skipped


def iter_batches(
    raw: IO[bytes],
    *,
    start_offset: int = 0,
    default_timestamp: float | None = None,
    default_function: str | None = None,
    default_source: str = "the file's modification time",
) -> Iterator[tuple[Batch, _Decompressed]]:
    """Batches of events from a byte stream, from ``start_offset`` (decompressed bytes).

    A platform line without a time takes the nearest timestamped line before it in the
    file, else the nearest after it, else ``default_timestamp`` (named by
    ``default_source``: a date in the file's path, or its modification time); each batch
    counts the reports dated by the last two rules (``Batch.estimated``).

    Text files are scanned in chunks of complete lines; JSON envelopes (subscription /
    Firehose records, ``filter-log-events`` output) object by object. Each event names
    its function: the envelope's ``/aws/lambda/<name>`` log group, else ``default_function``.
    """
    source = _Decompressed(raw)
    blocks = logparse.utf8_blocks(source.blocks())  # UTF-16 / BOM files from Windows tools
    buf, offset = _skip_bytes(blocks, start_offset) if start_offset else (b"", 0)
    if not buf:
        buf = next(blocks, b"")
    while len(buf) < HEAD_BYTES:
        more = next(blocks, b"")
        if not more:
            break
        buf += more
    head = buf[:HEAD_BYTES].lstrip(_WS)
    if _json_documents(head):
        batches = _envelope_batches(buf, blocks, offset, default_function)
    else:
        batches = _text_batches(
            buf, blocks, offset, default_timestamp, default_function, default_source
        )
    reached = offset
    for batch in batches:
        reached = batch.end_offset
        yield batch, source
    if source.truncated:
        yield Batch([], 0, Counter({logparse.TRUNCATED_GZIP: 1}), reached, reached), source


# A JSON array of objects, or the rest of one (a run resumed after an element).
_ARRAY_OF_OBJECTS = re.compile(rb"[\[,]\s*\{")


def _json_documents(head: bytes) -> bool:
    """Whether a file holds JSON documents rather than log lines: envelope objects
    (subscription / Firehose records, ``filter-log-events`` output), or a JSON array of
    them or of log events (``aws logs filter-log-events --query events``, ``jq -c .events``).
    """
    if head.startswith(b"{"):
        return _looks_like_envelope(head)
    if _ARRAY_OF_OBJECTS.match(head) is None:
        return False  # e.g. "[INFO] ..." application lines
    return _looks_like_envelope(head) or b'"message"' in head[:400]


def _looks_like_envelope(head: bytes) -> bool:
    text = head[:400]
    return any(
        f'"{key}"'.encode() in text
        for key in ("messageType", "logEvents", "logGroup", "events", "searchedLogStreams")
    ) and b'"type":"platform.' not in text.replace(b" ", b"")


def _text_batches(
    buf: bytes,
    blocks: Iterator[bytes],
    offset: int,
    default_timestamp: float | None,
    default_function: str | None,
    default_source: str = "the file's modification time",
) -> Iterator[Batch]:
    carried: float | None = None
    insights_carried = b""  # the start of a pretty-printed event the chunk's end cut
    skipped_long = 0
    eof = False
    while not eof or buf:
        while not eof and len(buf) < CHUNK_BYTES:
            more = next(blocks, b"")
            if not more:
                eof = True
                break
            buf += more
        if eof:
            chunk, buf = buf, b""
        else:
            cut = buf.rfind(b"\n")
            if cut < 0:
                if len(buf) < MAX_LINE_BYTES:
                    more = next(blocks, b"")
                    if more:
                        buf += more
                        continue
                    eof = True
                    continue
                # a line longer than MAX_LINE_BYTES: drop it up to its end
                skipped_long += 1
                start = offset
                while True:
                    offset += len(buf)
                    more = next(blocks, b"")
                    if not more:
                        buf, eof = b"", True
                        break
                    newline = more.find(b"\n")
                    if newline >= 0:
                        offset += newline + 1
                        buf = more[newline + 1 :]
                        break
                    buf = more
                yield Batch([], 1, Counter({logparse.LINE_TOO_LONG: 1}), start, offset)
                continue
            chunk, buf = buf[: cut + 1], buf[cut + 1 :]
        # lines before the file's first time are left untimed by the scan, then dated: the
        # nearest timestamped line after them, else the default (path date, mtime)
        found = logscan.scan_columns(
            chunk,
            previous_timestamp=carried,
            default_timestamp=default_timestamp if carried is not None else None,
        )
        estimated = Counter[str]()
        if carried is None:
            later = logparse.first_timestamp_in(chunk)
            default, source = default_timestamp, default_source
            if later is not None:
                default, source = later, "a later line of the same file"
            dated = _date_untimed(found, default)
            if dated:
                estimated[source] = dated
        carried = found.last_timestamp
        start = offset
        offset += len(chunk)
        # Lambda Insights events (JSON lines or pretty-printed over several lines): the
        # scanner ignores them; one byte search per chunk keeps files without them as fast
        # as before, and an event cut at the chunk's end is read with the next chunk
        performance: list[lambda_insights.PerformanceEvent] = []
        if insights_carried or lambda_insights.EVENT_MARKER in chunk:
            performance, insights_carried = lambda_insights.events_in_text(chunk, insights_carried)
        else:  # an event may start here and show its key in the next chunk only
            insights_carried = lambda_insights.open_tail(chunk)
        yield Batch(
            [(None, found)],
            found.lines,
            found.skipped,
            start,
            offset,
            default_function,
            estimated,
            performance,
        )


def _date_untimed(found: logscan.ChunkColumns, timestamp: float | None) -> int:
    """Give the events of a chunk that have no time ``timestamp``; returns how many of
    them are reports."""
    dated = 0
    for columns in (found.text, found.json):
        untimed = np.isnan(columns.timestamps)
        dated += int(untimed.sum())
        if timestamp is not None and untimed.any():
            columns.timestamps[untimed] = timestamp
    for event in found.slow:
        if event.timestamp is None:
            dated += event.kind == "report"
            object.__setattr__(event, "timestamp", timestamp)  # built by this scan, not shared
    return dated if timestamp is not None else 0


# a date in a path: CloudWatch log streams (YYYY/MM/DD/...) and exports (YYYY-MM-DD...)
_PATH_DATE_RE = re.compile(r"(?<!\d)(20\d\d)([/-])(\d\d)\2(\d\d)(?!\d)")


def default_time(path: str, mtime: float) -> tuple[float, str]:
    """The time for lines of ``path`` that have none and no timestamped line around them:
    noon UTC of the last ``YYYY/MM/DD`` or ``YYYY-MM-DD`` date in the path, else the
    file's modification time. Returns the epoch seconds and where they came from."""
    for found in reversed(list(_PATH_DATE_RE.finditer(path.replace(os.sep, "/")))):
        year, _sep, month, day = found.groups()
        try:
            noon = datetime(int(year), int(month), int(day), 12, tzinfo=UTC)
        except ValueError:
            continue
        return noon.timestamp(), f"the date in the file's path ({found.group(0)})"
    return mtime, "the file's modification time"


# log event messages per batch of an envelope file (their text is held while scanned)
ENVELOPE_BATCH_MESSAGES = 10_000
# a log event of /aws/lambda-insights that is not a performance event
NOT_INSIGHTS_EVENT = "not_lambda_insights_event"


def _envelope_batches(
    buf: bytes, blocks: Iterator[bytes], offset: int, default_function: str | None
) -> Iterator[Batch]:
    """Concatenated JSON envelope objects. The buffer is decoded once per refill with
    ``surrogateescape`` so byte offsets of consumed objects are exact."""
    decoder = json.JSONDecoder()
    eof = False
    pending = _Messages()
    chunks: list[tuple[str | None, logscan.ChunkColumns]] = []
    skipped: Counter[str] = Counter()
    performance: list[lambda_insights.PerformanceEvent] = []
    performance_lines = 0
    start = offset
    text = buf.decode("utf-8", "surrogateescape")
    pos = 0
    queued = 0  # messages taken since the last batch

    def refill() -> bool:
        nonlocal text, pos, offset, eof
        more = next(blocks, b"")
        if not more:
            eof = True
            return False
        offset += len(text[:pos].encode("utf-8", "surrogateescape"))
        text = text[pos:] + more.decode("utf-8", "surrogateescape")
        pos = 0
        return True

    def batch() -> Batch:
        nonlocal chunks, skipped, start, performance, performance_lines
        pending.flush(chunks)
        here = offset + len(text[:pos].encode("utf-8", "surrogateescape"))
        lines = sum(found.lines for _name, found in chunks) + performance_lines
        for _name, found in chunks:
            skipped.update(found.skipped)
        done = Batch(chunks, lines, skipped, start, here, default_function, insights=performance)
        chunks, skipped, start = [], Counter(), here
        performance, performance_lines = [], 0
        return done

    while True:
        # whitespace, and the brackets and commas of a JSON array holding the documents
        while pos < len(text) and text[pos] in " \t\r\n[],":
            pos += 1
        if pos >= len(text):
            if eof or not refill():
                break
            continue
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            incomplete = exc.pos >= len(text) - 1 or exc.msg.startswith("Unterminated")
            if incomplete and not eof and len(text) - pos < MAX_LINE_BYTES * 16 and refill():
                continue
            skipped[logparse.BAD_JSON] += 1
            # resynchronise on the next object that starts a line, or give up at EOF
            following = text.find("\n{", pos + 1)
            if following < 0:
                pos = len(text)
                if eof:
                    break
                continue
            pos = following + 1
            continue
        pos = end
        if (
            isinstance(obj, dict)
            and isinstance(obj.get("message"), str)
            and not logparse.is_envelope(obj)
        ):
            obj = {"events": [obj]}  # one log event of an array of them
        if not logparse.is_envelope(obj):
            skipped[logparse.NOT_ENVELOPE] += 1
        elif obj.get("logGroup") == lambda_insights.INSIGHTS_LOG_GROUP:
            # Lambda Insights performance events: for the insights parser, not the scanner
            found_events, other = lambda_insights.envelope_events(obj)
            performance.extend(found_events)
            performance_lines += len(found_events) + other
            if other:
                skipped[NOT_INSIGHTS_EVENT] += other
            queued += len(found_events) + other
        else:
            for name, messages, seconds in _log_events(obj):
                queued += len(messages)
                if name is None:  # e.g. filter-log-events output of /aws/lambda-insights
                    messages, seconds, found_events = _split_insights(messages, seconds)
                    performance.extend(found_events)
                    performance_lines += len(found_events)
                pending.add(name or default_function, messages, seconds, chunks)
        if queued >= ENVELOPE_BATCH_MESSAGES:
            queued = 0
            yield batch()
    yield batch()


_MARKER_TEXT = lambda_insights.EVENT_MARKER.decode()


def _split_insights(
    messages: list[str], seconds: list[float]
) -> tuple[list[str], list[float], list[lambda_insights.PerformanceEvent]]:
    """Lambda Insights performance events among log event messages of no known log group
    (``aws logs filter-log-events`` output names none), and the other messages."""
    if not any(_MARKER_TEXT in message for message in messages):
        return messages, seconds, []
    kept: list[str] = []
    kept_seconds: list[float] = []
    events = []
    for message, second in zip(messages, seconds, strict=True):
        event = None
        if _MARKER_TEXT in message and '"request_id"' in message:
            stamp = None if second != second else second * 1000.0  # NaN: no event time
            event = lambda_insights.event_of_message(message, stamp)
        if event is None:
            kept.append(message)
            kept_seconds.append(second)
        else:
            events.append(event)
    return kept, kept_seconds, events


@dataclass
class _Messages:
    """Log event messages of one function waiting to be scanned together."""

    name: str | None = None
    messages: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def add(
        self,
        name: str | None,
        messages: list[str],
        seconds: list[float],
        chunks: list[tuple[str | None, logscan.ChunkColumns]],
    ) -> None:
        if name != self.name:
            self.flush(chunks)
            self.name = name
        self.messages.extend(messages)
        self.seconds.extend(seconds)

    def flush(self, chunks: list[tuple[str | None, logscan.ChunkColumns]]) -> None:
        if self.messages:
            chunks.append((self.name, scan_messages(self.messages, self.seconds)))
        self.messages, self.seconds = [], []


_NAN = float("nan")


def _log_events(obj: dict[str, Any]) -> list[tuple[str | None, list[str], list[float]]]:
    """An envelope's log events as runs of (function name, messages, event times in epoch
    seconds, NaN if none), as ``logparse.envelope_messages`` reads them."""
    events = obj.get("logEvents")
    if not isinstance(events, list):
        events = obj.get("events")
    if obj.get("messageType") != "CONTROL_MESSAGE" and isinstance(events, list):
        name = logparse.function_from_log_group(obj.get("logGroup"), obj.get("logStream"))
        try:
            messages = [event["message"] for event in events]
            stamps = [event["timestamp"] for event in events]
            groups = {event.get("logGroupName") for event in events} if name is None else ()
        except (KeyError, TypeError, AttributeError):
            pass  # some event is not a plain one: read them one by one below
        else:
            if (
                set(map(type, messages)) <= {str}
                and set(map(type, stamps)) <= {int, float}
                and len(groups) <= 1
            ):
                if name is None and groups:
                    name = logparse.function_from_log_group(next(iter(groups)))
                try:
                    millis = np.asarray(stamps, np.float64)
                except OverflowError:  # an integer beyond any float: read one by one
                    millis = None
                if millis is not None:
                    valid = (millis > 0) & (millis < 1e15)
                    seconds = np.where(valid, millis / 1000.0, _NAN).tolist()
                    return [(name, messages, seconds)] if messages else []
    runs: list[tuple[str | None, list[str], list[float]]] = []
    for name, second, message in logparse.envelope_messages(obj):
        if not runs or runs[-1][0] != name:
            runs.append((name, [], []))
        runs[-1][1].append(message)
        runs[-1][2].append(_NAN if second is None else second)
    return runs


# Line breaks of str.splitlines() other than "\n"
_OTHER_BREAKS_RE = re.compile("[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def scan_messages(messages: list[str], seconds: list[float]) -> logscan.ChunkColumns:
    """The events of log event messages (one function), each line of a message taking
    the message's event time when it has no timestamp of its own.

    The messages are scanned together: their lines (``str.splitlines``, so a message's
    trailing newline ends its last line) joined by newlines, UTF-8 encoded (a lone
    surrogate left by undecodable input becomes "?").
    """
    if _OTHER_BREAKS_RE.search("".join(messages)):
        messages = ["\n".join(message.splitlines()) for message in messages]
    else:
        messages = [m[:-1] if m.endswith("\n") else m for m in messages]
    joined = "\n".join(messages)
    if joined.isascii():
        data = joined.encode("ascii")
        sizes = np.fromiter(map(len, messages), np.int64, len(messages))
    else:
        data = joined.encode("utf-8", "replace")
        sizes = np.fromiter(
            (len(m.encode("utf-8", "replace")) for m in messages), np.int64, len(messages)
        )
    found = logscan.scan_columns(
        data,
        event_ends=np.cumsum(sizes + 1),
        event_seconds=np.asarray(seconds, np.float64),
    )
    found.lines = joined.count("\n") + 1  # an empty message is a line too
    return found


def discover(paths: Iterable[str]) -> Iterator[tuple[str, str | None]]:
    """(path, error) for every file under ``paths``; ``-`` is stdin. Sorted, recursive."""
    for given in paths:
        if given == "-":
            yield "-", None
            continue
        try:
            mode = os.stat(given).st_mode
        except FileNotFoundError:
            yield given, "no such file or directory"
            continue
        except OSError as exc:  # e.g. under a folder that cannot be traversed
            yield given, exc.strerror or str(exc)
            continue
        if not S_ISDIR(mode):
            yield given, None
            continue
        # a folder that cannot be listed is named, never skipped in silence
        errors: list[OSError] = []
        found: list[tuple[str, str | None]] = [
            (os.path.join(root, name), None)
            for root, _dirs, names in os.walk(given, onerror=errors.append)
            for name in names
        ]
        found += [(str(exc.filename or given), exc.strerror or str(exc)) for exc in errors]
        yield from sorted(found, key=lambda entry: entry[0])


def default_function_name(path: str, function_name: str | None) -> str | None:
    """The function name ingest stores for the events of ``path`` that carry none of their
    own (outside a ``/aws/lambda/<name>`` envelope); None for stdin without one (ingest
    refuses those events)."""
    return _function_for(path, function_name)[0]


def _function_for(path: str, function_name: str | None) -> tuple[str | None, str]:
    """The name of a file's function when it has no envelope, and where it came from
    (stdin without --function has none: its lines need an envelope)."""
    if function_name:
        return function_name, "--function"
    if path == "-":
        return None, "stdin"
    folder = Path(path).resolve().parent
    return folder.name or "unknown", f"the folder {folder}"


@dataclass
class Job:
    """One file (or stdin) to read, as decided from the registry of ingested files."""

    path: str
    default_function: str | None
    start_offset: int
    mtime: float
    registry: tuple[str, int, int, str] | None  # (resolved path, size, mtime, head hash)
    size: int
    name_source: str = "--function"  # where default_function came from


def ingest_paths(
    db: Database,
    paths: Iterable[str],
    *,
    function_name: str | None = None,
    account_id: str = "",
    region: str = "",
    architecture: str = "x86_64",
    progress: Callable[[IngestResult], None] | None = None,
    stdin: IO[bytes] | None = None,
    workers: int | None = None,
) -> IngestResult:
    """Ingest log files / directories / ``-`` into the store; see the module docstring.

    A path that cannot be read is listed in ``result.unreadable`` and the run goes on.
    ``workers``: N reading processes parse files while this one writes, 0 does
    everything here; None (default) uses reading processes when there are at least
    PARALLEL_MIN_BYTES to read and the platform can fork (two on a machine with two cores
    or more and twice that much to read).
    """
    started = time.monotonic()
    result = IngestResult()
    rebuild_dirty_hours(db)  # a run that died left its touched hours here
    ids: dict[str, int] = {}
    jobs = _plan(db, paths, result, function_name)
    to_read = sum(max(job.size - job.start_offset, 0) for job in jobs)
    result.bytes_total = to_read
    context = _fork_context() if workers != 0 else None
    if workers is None and to_read < PARALLEL_MIN_BYTES:
        context = None
    readers = workers if workers else _default_readers(to_read)
    readers = max(1, min(readers, len(jobs)))
    writer = _Writer(db, result, ids, account_id, region, architecture, progress, started)
    # invocations go into random places of a (function, request id) b-tree: a larger page
    # cache keeps the touched pages in memory between batches (bounded, given back after)
    cache_pages = db.conn.execute("PRAGMA cache_size").fetchone()[0]
    db.conn.execute(f"PRAGMA cache_size = {-INGEST_CACHE_KIB}")
    # checkpoint less often: a page rewritten by several transactions is copied back once
    checkpoint_pages = db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    db.conn.execute(f"PRAGMA wal_autocheckpoint = {INGEST_CHECKPOINT_PAGES}")
    try:
        _run_jobs(jobs, writer, context, stdin, readers)
        writer.commit()
    finally:
        if db.conn.in_transaction:
            db.conn.rollback()  # interrupted: the batches since the last commit are redone
        db.conn.execute(f"PRAGMA cache_size = {int(cache_pages)}")
        db.conn.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint_pages)}")
    rebuild_dirty_hours(db)
    rollup.refresh(db)  # the daily rollups of the days this run touched
    result.seconds = time.monotonic() - started
    return result


INGEST_CACHE_KIB = 32 * 1024
# WAL pages between checkpoints (64 MiB with 4 KiB pages, 256 MiB with the 16 KiB of
# new stores; measured best of 1,000 / 4,096 / 16,384 on the 200 MB benchmark)
INGEST_CHECKPOINT_PAGES = 16_384


def _run_jobs(
    jobs: list[Job], writer: _Writer, context: Any, stdin: IO[bytes] | None, readers: int
) -> None:
    result = writer.result
    if context is None:
        for index, job in enumerate(jobs):
            try:
                for batch in _read_job(job, stdin):
                    writer.store(job, batch, index)
                writer.finish(job, index)
            except OSError as exc:
                writer.pending.pop(index, None)
                result.unreadable.append((job.path, exc.strerror or str(exc)))
    else:
        _run_with_readers(context, jobs, writer, readers)


PARALLEL_MIN_BYTES = 8 * 1024 * 1024
# Several batches share one transaction: each commit rewrites the b-tree pages it
# touched, and invocations land all over the (function, request id) b-tree.
COMMIT_ROWS = 100_000
COMMIT_SECONDS = 2.0


def _commit_rows() -> int:
    """Reports per transaction: LAMBDASCOPE_COMMIT_ROWS, else COMMIT_ROWS (an interrupted
    run redoes at most this much; fewer makes the run slower)."""
    try:
        return max(int(os.environ.get("LAMBDASCOPE_COMMIT_ROWS", COMMIT_ROWS)), 1)
    except ValueError:
        return COMMIT_ROWS


def _default_readers(to_read: int) -> int:
    """One reading process, or two on a machine with two cores or more and enough to read
    (the files that are slow to parse, such as envelopes, would otherwise keep the writer
    waiting)."""
    if (os.cpu_count() or 1) >= 2 and to_read >= 2 * PARALLEL_MIN_BYTES:
        return 2
    return 1


def _fork_context() -> Any:
    # fork: the reader needs no imports and no pickled jobs; only safe without threads
    if threading.active_count() > 1:
        return None
    try:
        return multiprocessing.get_context("fork")
    except ValueError:
        return None


def _plan(
    db: Database, paths: Iterable[str], result: IngestResult, function_name: str | None
) -> list[Job]:
    """The files to read and from where; unchanged files are counted and skipped."""
    store_files = _store_files(db)
    jobs: list[Job] = []
    planned: set[str] = set()
    for path, error in discover(paths):
        if path != "-" and error is None and str(Path(path).resolve()) in store_files:
            continue  # a log directory that also holds the store
        if error is not None:
            result.unreadable.append((path, error))
            continue
        try:
            name, source = _function_for(path, function_name)
            job = _plan_one(db, path, name)
            if job is not None:
                job.name_source = source
        except OSError as exc:
            result.unreadable.append((path, exc.strerror or str(exc)))
            continue
        key = job.registry[0] if job is not None and job.registry else None
        if job is None or (key is not None and key in planned):
            result.files += 1
            result.unchanged_files += 1
            continue
        if key is not None:
            planned.add(key)
        jobs.append(job)
    return jobs


def _plan_one(db: Database, path: str, default_function: str | None) -> Job | None:
    if path == "-":
        return Job(path, default_function, 0, time.time(), None, 0)
    with open(path, "rb") as raw:
        stat = os.fstat(raw.fileno())
        size, mtime = stat.st_size, stat.st_mtime
        registry_key = str(Path(path).resolve())
        start_offset = 0
        row = db.conn.execute(
            "SELECT size_bytes, mtime, head_sha256, offset_bytes, completed"
            " FROM ingested_files WHERE path = ?",
            (registry_key,),
        ).fetchone()
        if row is not None:
            old_size, old_mtime, old_head, old_offset, completed = row
            same_head = _head_hash(raw, min(old_size, HEAD_BYTES)) == old_head
            if same_head and size >= old_size:
                if completed and size == old_size and int(mtime) == old_mtime:
                    return None
                start_offset = old_offset
        head = _head_hash(raw, size)
    return Job(
        path, default_function, start_offset, mtime, (registry_key, size, int(mtime), head), size
    )


def _read_job(job: Job, stdin: IO[bytes] | None = None) -> Iterator[Prepared]:
    """The prepared batches of one job (raises OSError when the file cannot be read)."""
    if job.path == "-":
        raw: IO[bytes] = stdin if stdin is not None else sys.stdin.buffer
        for batch, _source in iter_batches(
            raw,
            default_timestamp=job.mtime,
            default_function=job.default_function,
            default_source="the time of reading (stdin)",
        ):
            yield prepare(batch)
        return
    default, source = default_time(job.path, job.mtime)
    with open(job.path, "rb") as handle:
        for batch, _source in iter_batches(
            handle,
            start_offset=job.start_offset,
            default_timestamp=default,
            default_function=job.default_function,
            default_source=source,
        ):
            yield prepare(batch)


# Reading processes run at a lower priority: the writing process sets the pace (its
# inserts cost more than the parsing), and with three processes on two cores it would
# otherwise get only two thirds of one (about 10 % faster on the 200 MB benchmark).
READER_NICENESS = 5


def _reader_main(
    jobs: list[Job], order: list[int], next_job: Any, channel: Any, inherited: list[Any]
) -> None:
    """A reading process: takes the next job of ``order`` (shared counter) until none is
    left, and sends each job's prepared batches, in order, over its pipe."""
    with contextlib.suppress(OSError):  # a platform without priorities: same results
        os.nice(READER_NICENESS)
    for other in inherited:
        # the receiving ends copied by the fork: with them open here, a send would block
        # for ever instead of failing once the writing process is gone (killed)
        other.close()
    try:
        while True:
            with next_job.get_lock():
                taken = next_job.value
                next_job.value = taken + 1
            if taken >= len(order):
                break
            index = order[taken]
            try:
                for batch in _read_job(jobs[index]):
                    channel.send(("batch", index, batch))
            except OSError as exc:
                channel.send(("error", index, exc.strerror or str(exc)))
                continue
            channel.send(("done", index, None))
        channel.send(("end", -1, None))
    except (BrokenPipeError, KeyboardInterrupt):
        pass  # the writing process is gone: nothing left to do
    finally:
        channel.close()


def _run_with_readers(context: Any, jobs: list[Job], writer: _Writer, readers: int) -> None:
    """Reading processes parse files (the largest first, each taking the next file when
    done with one) while this one writes what they send, as it comes (the batches of one
    file arrive in order; files interleave)."""
    order = sorted(range(len(jobs)), key=lambda i: -max(jobs[i].size - jobs[i].start_offset, 0))
    next_job = context.Value("q", 0)
    channels: list[Any] = []
    processes = []
    for _ in range(readers):
        receiving, sending = context.Pipe(duplex=False)
        process = context.Process(
            target=_reader_main,
            args=(jobs, order, next_job, sending, [*channels, receiving]),
            daemon=True,
        )
        process.start()
        sending.close()
        channels.append(receiving)
        processes.append(process)
    open_channels = list(channels)
    failed: set[int] = set()
    try:
        while open_channels:
            for ready in multiprocessing.connection.wait(open_channels):
                channel: Any = ready
                try:
                    kind, index, payload = channel.recv()
                except EOFError:
                    kind, index, payload = "end", -1, None  # the reader died
                if kind == "end":
                    open_channels.remove(channel)
                    continue
                job = jobs[index]
                if kind == "batch":
                    writer.store(job, payload, index)
                elif kind == "done":
                    writer.finish(job, index)
                else:
                    failed.add(index)
                    writer.pending.pop(index, None)
                    writer.result.unreadable.append((job.path, str(payload)))
        # a reader that died left its file unfinished (and maybe files it had taken)
        for index, job in enumerate(jobs):
            if job.path not in writer.finished and index not in failed:
                writer.result.unreadable.append((job.path, "reading process ended"))
    finally:
        for channel in channels:
            channel.close()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()


class _Writer:
    """Stores prepared batches (the one process that writes to the store)."""

    def __init__(
        self,
        db: Database,
        result: IngestResult,
        ids: dict[str, int],
        account_id: str,
        region: str,
        architecture: str,
        progress: Callable[[IngestResult], None] | None,
        started: float,
    ) -> None:
        self.db, self.result, self.ids = db, result, ids
        self.account_id, self.region, self.architecture = account_id, region, architecture
        self.progress, self.started = progress, started
        self.pending: dict[int, Pending] = {}  # per job: marks still without invocation
        self.with_events: set[int] = set()  # jobs in which an event was found
        self.finished: set[str] = set()
        self.finished_bytes = 0  # of the files done, for the progress bar
        self.reading: dict[int, int] = {}  # bytes read so far of files being read
        self.since_commit = (0, time.monotonic())  # (reports, time) since the last commit
        self.commit_rows = _commit_rows()

    def commit(self) -> None:
        """Make the batches stored so far durable (one transaction holds several)."""
        if self.db.conn.in_transaction:
            self.db.conn.commit()

    def store(self, job: Job, batch: Prepared, index: int = 0) -> None:
        if not self.db.conn.in_transaction:
            self.db.conn.execute("BEGIN")
            self.since_commit = (0, time.monotonic())
        for name in batch.parts:
            if name not in self.result.name_sources:
                self.result.name_sources[name] = (
                    "its log group" if name in batch.named_by_log_group else job.name_source
                )
        self.pending[index] = _store_batch(
            self.db,
            batch,
            self.pending.get(index, []),
            self.result,
            self.ids,
            account_id=self.account_id,
            region=self.region,
            architecture=self.architecture,
            registry=job.registry,
        )
        if (
            batch.reports
            or batch.insights
            or batch.skipped.get(logparse.NO_REQUEST_ID)
            or any(part.marks for part in batch.parts.values())
        ):
            self.with_events.add(index)
        rows, since = self.since_commit
        rows += batch.reports
        self.since_commit = (rows, since)
        if rows >= self.commit_rows or time.monotonic() - since >= COMMIT_SECONDS:
            self.commit()
        if self.progress is not None:
            self.result.seconds = time.monotonic() - self.started
            read = max(batch.end_offset - job.start_offset, 0)
            self.reading[index] = min(read, max(job.size, 0))
            self.result.bytes_done = self.finished_bytes + sum(self.reading.values())
            self.progress(self.result)

    def finish(self, job: Job, index: int = 0) -> None:
        self.finished_bytes += max(job.size - job.start_offset, 0)
        self.reading.pop(index, None)
        self.result.bytes_done = self.finished_bytes + sum(self.reading.values())
        self.pending.pop(index, None)  # marks never carry over from one file to the next
        if index not in self.with_events and job.start_offset == 0:
            self.result.without_events.append(job.path)
        self.with_events.discard(index)
        if job.registry is not None:
            self.db.conn.execute(
                "UPDATE ingested_files SET completed = 1 WHERE path = ?", (job.registry[0],)
            )
        self.result.files += 1
        self.finished.add(job.path)


def _store_files(db: Database) -> set[str]:
    files: set[str] = set()
    for row in db.conn.execute("PRAGMA database_list"):
        if row[2]:
            main = str(Path(row[2]).resolve())
            files.update({main, main + "-wal", main + "-shm", main + "-journal"})
    return files


def _head_hash(raw: IO[bytes], size: int) -> str:
    raw.seek(0)
    digest = hashlib.sha256(raw.read(min(HEAD_BYTES, size))).hexdigest()
    raw.seek(0)
    return digest


@dataclass
class Part:
    """One function's share of a batch, ready for the store."""

    columns: list[logscan.FastColumns]  # fast-path lines that have a timestamp
    full: list[tuple[Any, ...]]  # store.ROW_COLUMNS rows of every other report
    marks: list[tuple[str, str]]  # (kind, request id) of timeout / out-of-memory lines
    first_seen: int | None
    last_seen: int | None
    facts: store.Facts

    @property
    def empty(self) -> bool:
        """Nothing to store: no invocation, no timeout or out-of-memory mark, no facts."""
        return not (self.columns or self.full or self.marks or self.facts)

    def rows(self) -> dict[store.Shape, list[tuple[Any, ...]]]:
        """Invocation rows by column shape (no NULL is bound), no request id twice."""
        rows: dict[store.Shape, list[tuple[Any, ...]]] = {}
        for columns in self.columns:
            for shape, group in _shaped_rows(columns):
                if group:
                    rows.setdefault(shape, []).extend(group)
        if self.full:
            rows[store.ROW_COLUMNS] = self.full
        return rows


def _shaped_rows(
    columns: logscan.FastColumns,
) -> list[tuple[store.Shape, list[tuple[Any, ...]]]]:
    """The lines as rows of the shape without and the one with Init Duration."""
    if columns.status is None:
        plain_shape, init_shape = store.TEXT_SHAPE, store.TEXT_INIT_SHAPE
    else:
        plain_shape, init_shape = store.JSON_SHAPE, store.JSON_INIT_SHAPE
    has_init = ~np.isnan(columns.init_duration_ms)
    shaped = []
    for shape, wanted in ((plain_shape, ~has_init), (init_shape, has_init)):
        if not wanted.any():
            continue
        part = columns if wanted.all() else columns.select(wanted)
        values: list[list[Any]] = [
            part.request_ids,
            part.timestamps.astype(np.int64).tolist(),  # int(): towards zero
            part.duration_ms.tolist(),
            part.billed_duration_ms.tolist(),
            part.memory_mb.tolist(),
            part.max_memory_used_mb.tolist(),
        ]
        if shape is init_shape:
            values.append(part.init_duration_ms.tolist())
        if part.status is not None:
            values.append(part.status)
        shaped.append((shape, list(zip(*values, strict=True))))
    return shaped


@dataclass
class Prepared:
    """A batch as compact rows per function, plus its hourly facts (see prepare)."""

    parts: dict[str, Part]
    reports: int
    lines: int
    skipped: Counter[str]
    start_offset: int
    end_offset: int
    estimated: Counter[str] = field(default_factory=Counter)
    named_by_log_group: frozenset[str] = frozenset()
    insights: list[lambda_insights.PerformanceEvent] = field(default_factory=list)


UNNAMED = "no function name (stdin without --function or envelope)"


def prepare(batch: Batch) -> Prepared:
    """Invocation rows, marks and the hourly facts of a batch's events, as store_events
    would store them. Events with no function to belong to (stdin without ``--function``
    nor envelope) are skipped and counted. Pure: runs in the reading process."""
    by_function: dict[str, list[logscan.ChunkColumns]] = {}
    skipped = batch.skipped
    for name, found in batch.chunks:
        owner = name or batch.function_name
        if owner is None:
            skipped = skipped + Counter(
                {UNNAMED: len(found.text) + len(found.json) + len(found.slow)}
            )
            continue
        by_function.setdefault(owner, []).append(found)
    from_log_groups = frozenset(
        name for name, _found in batch.chunks if name and name != batch.function_name
    )
    parts = {}
    reports = 0
    for name, chunks in by_function.items():
        part, count = _part(chunks)
        parts[name] = part
        reports += count
        without_id = sum(
            1
            for found in chunks
            for event in found.slow
            if event.kind == "report" and event.request_id is None
        )
        if without_id:  # counted and named in the summary, never dropped in silence
            skipped = skipped + Counter({logparse.NO_REQUEST_ID: without_id})
            reports -= without_id
    return Prepared(
        parts,
        reports,
        batch.lines,
        +skipped,
        batch.start_offset,
        batch.end_offset,
        batch.estimated,
        from_log_groups,
        batch.insights,
    )


def _part(chunks: list[logscan.ChunkColumns]) -> tuple[Part, int]:
    columns = [
        logscan.concat([found.text for found in chunks]),
        logscan.concat([found.json for found in chunks], json_format=True),
    ]
    reports = sum(len(c) for c in columns)
    full: list[tuple[Any, ...]] = []
    marks: list[tuple[str, str]] = []
    stamps: list[int] = []
    for found in chunks:
        for event in found.slow:
            if event.timestamp is not None:
                stamps.append(int(event.timestamp))
            if event.kind == "report":
                reports += 1
                row = store.event_row(event)
                if row is not None:
                    full.append(row)
            elif event.kind in ("timeout", "out_of_memory") and event.request_id is not None:
                marks.append((event.kind, event.request_id))
    columns = [c.with_timestamps() for c in columns]
    for c in columns:
        if len(c):
            stamps.extend((int(c.timestamps.min()), int(c.timestamps.max())))
    ids = [*columns[0].request_ids, *columns[1].request_ids, *(row[0] for row in full)]
    if len(set(ids)) != len(ids):  # the first of each request id wins
        items = [item for found in chunks for item in found.items()]
        columns, full = [], _first_rows(items)
    facts = store.facts_of({store.ROW_COLUMNS: full})
    for c in columns:
        store.merge_facts(facts, store.facts_of_columns(c))
    part = Part(
        [c for c in columns if len(c)],
        full,
        marks,
        min(stamps) if stamps else None,
        max(stamps) if stamps else None,
        facts,
    )
    return part, reports


def _first_rows(items: list[Item]) -> list[tuple[Any, ...]]:
    seen: set[str] = set()
    rows = []
    for item in items:
        row = store.event_row(logscan.item_event(item))
        if row is not None and row[0] not in seen:
            seen.add(row[0])
            rows.append(row)
    return rows


Pending = list[tuple[str, str, str]]  # (function, kind, request id)


def _store_batch(
    db: Database,
    batch: Prepared,
    pending: Pending,
    result: IngestResult,
    ids: dict[str, int],
    *,
    account_id: str,
    region: str,
    architecture: str,
    registry: tuple[str, int, int, str] | None,
) -> Pending:
    """Rows, marks carried from the previous batch, facts and the file's offset, in the
    caller's transaction (so they are stored together or not at all).

    Returns the timeout / out-of-memory marks still without their invocation; while
    there are some, the stored offset stays at this batch's start so a re-run re-reads
    it (all writes are idempotent).
    """
    names = list(dict.fromkeys([*(name for name, _k, _r in pending), *batch.parts]))
    still_pending: Pending = []
    for name in names:
        part = batch.parts.get(name)
        carried = [(kind, rid) for owner, kind, rid in pending if owner == name]
        if part is not None and part.empty and not carried:
            continue  # no event of this function here: no function row for it
        fid = store_db.function_id(
            db,
            name,
            account_id,
            region,
            seen_at=part.first_seen if part else None,
            architecture=architecture,
        )
        if part is not None and part.last_seen is not None:
            store_db.function_id(db, name, account_id, region, seen_at=part.last_seen)
        ids[name] = fid
        result.functions.add(name)
        facts: store.Facts = {}
        marks = carried
        if part is not None:
            span = None
            if part.first_seen is not None and part.last_seen is not None:
                span = (part.first_seen, part.last_seen)
            added, new_rows, sealed = store.insert_rows(db, fid, part.rows(), span)
            result.added += added
            result.sealed += sealed
            facts = part.facts if new_rows is None else store.facts_of(new_rows)
            marks = carried + part.marks
        missing, delta = store.apply_marks(db, fid, marks)
        still_pending.extend((name, *marks[i]) for i in missing if i >= len(carried))
        store.merge_facts(facts, delta)
        store.add_facts(db, fid, facts)
    if batch.insights:
        result.insights_events += len(batch.insights)
        result.insights_added += lambda_insights.insert_events(
            db, batch.insights, account_id=account_id, region=region
        )
    if registry is not None:
        key_path, size, mtime, head = registry
        offset = batch.start_offset if still_pending else batch.end_offset
        db.conn.execute(
            "INSERT INTO ingested_files (path, size_bytes, mtime, head_sha256, offset_bytes,"
            " lines, reports, skipped, completed, function_name, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)"
            " ON CONFLICT (path) DO UPDATE SET size_bytes = excluded.size_bytes,"
            " mtime = excluded.mtime, head_sha256 = excluded.head_sha256,"
            " offset_bytes = excluded.offset_bytes, lines = lines + excluded.lines,"
            " reports = reports + excluded.reports, skipped = skipped + excluded.skipped,"
            " completed = 0, function_name = excluded.function_name,"
            " updated_at = excluded.updated_at",
            (
                key_path,
                size,
                mtime,
                head,
                offset,
                batch.lines,
                batch.reports,
                sum(batch.skipped.values()),
                names[0] if names else None,
                int(time.time()),
            ),
        )
    result.lines += batch.lines
    result.reports += batch.reports
    result.skipped.update(batch.skipped)
    result.estimated_times.update(batch.estimated)
    return still_pending
