"""REPORT statistics from CloudWatch Logs: Logs Insights pushdown, or FilterLogEvents.

Insights mode runs ONE query per batch of <= 50 log groups and time window (Logs Insights
bills every query for the bytes it scans, so one query per batch scans the logs once).
The query reads both of Lambda's log formats (a batch mixes them): text ``REPORT`` lines
and JSON-format ``platform.report`` records, each value taken from whichever format the
event has and normalised to ms / MB inside the query. It buckets every value with
``floor(log(x)/log(1.02))`` — the same buckets as lambdascope.histogram — and groups
reports by hour, log group, configured memory and the four buckets (duration, billed
duration, max memory used, init duration), with the counts, sums and maxima of each group.
``transform_rows`` adds those rows up into hourly_facts rows (source 'insights') exactly
like local ingest: counts and sums add up, each row's count goes into each of the four
histograms at its bucket, and a row whose init bucket holds a value is a row of cold starts.

A result holds at most 10,000 rows and is sorted by hour, so a truncated result still has
every row of its hours but the last: those are kept, and the rest of the window is queried
again in pieces sized from the row density measured so far (an hour that alone exceeds the
limit is split into quarters, down to one minute). Each split is counted in the run's
message. Custom log groups, which several functions may share, are queried in batches of
their own whose query also groups by the function named in each log stream name. The
account's concurrent queries are shared with other users: LimitExceededException makes the
collector wait for a free slot, a query left queued too long is stopped, and a query that
times out is split and run again (see ``run_queries``). Values below 0.0001 (ms or MB) go
in no histogram (REPORT fields are never that small; an absent field, e.g. no init duration
on a warm start, maps there). A function without a log group was never invoked: skipped,
not an error.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from collectors import late
from collectors.common import (
    CallCounter,
    CollectOptions,
    SourceResult,
    Stop,
    Store,
    Target,
    check_credentials,
    error_code,
    never,
    record_failure,
)
from collectors.runs import LOGS_SETTLE_S
from lambdascope import histcodec, histogram, packing
from lambdascope.logparse import parse_line
from lambdascope.models import PlatformEvent
from lambdascope.store import rebuild_hourly_facts, store_events
from lambdascope.timeutil import HOUR_S, hour_floor, parse_timestamp, to_epoch

MAX_LOG_GROUPS_PER_QUERY = 50
MAX_RESULT_ROWS = 10_000
# Pieces of a re-planned window aim at this share of the row limit (density varies by hour).
_FILL_TARGET = 0.6
MIN_WINDOW_S = 60
# Logs Insights list price (us-east-1): $0.005 per GB scanned.
PRICE_PER_GB_SCANNED_USD = 0.005
# Values at or below this map to the "no value" bucket (absent field, or not a real value).
_FLOOR_VALUE = 0.0001
NO_VALUE_BUCKET = math.floor(math.log(_FLOOR_VALUE) / math.log(histogram.GAMMA))

# How Logs Insights exposes the two formats. From the CloudWatch Logs user guide, "Supported
# logs and discovered fields" (docs.aws.amazon.com/AmazonCloudWatch/latest/logs/
# CWL_AnalyzeLogData-discoverable-fields.html) and "CloudWatch Logs Insights query syntax"
# (CWL_QuerySyntax.html, CWL_QuerySyntax-operations-functions.html, CWL_QuerySyntax-Parse.html):
# - Lambda logs: discovered fields @type, @requestId, @duration, @billedDuration,
#   @maxMemoryUsed, @memorySize, read from the text REPORT line. Not in that table but in use
#   (and in LAMBDA_FACTS.md): @initDuration, and memory fields in bytes (MB x 1,000,000).
#   A JSON-format function writes no REPORT line; the guide does not say whether these
#   fields are filled for its records, and this query does not depend on it (see below).
#   SnapStart's "Restore Duration: x ms" and "Billed Restore Duration: x ms" have no
#   discovered field: they are parsed from @message ("If a log event doesn't match the
#   specified pattern, you still see it in the results, but without the extracted fields").
# - Logs in JSON format: "CloudWatch Logs Insights represents nested JSON fields using the
#   dot notation", so a record {"type":"platform.report","record":{"metrics":{"durationMs":
#   ..},"status":..,"errorType":..}} has the fields `type`, record.metrics.durationMs,
#   record.status, record.errorType. (Discovery only happens in Standard-class log groups.)
# - coalesce(field, ...) is documented for log fields only ("Arguments: Log fields"), so
#   every expression is computed first into a field with `fields ... as x`, and coalesce
#   only ever receives field names. strcontains(s, t) returns 1 or 0; count(field) counts
#   records that have the field; arithmetic and numeric functions take expressions.
# Each value is coalesce(text field, JSON field): an event has one or the other. The text
# byte fields are turned into MB in a field of their own before coalesce (on a JSON event,
# which lacks them, that field has no value, and coalesce takes the JSON one). The flags of the
# two formats are summed apart (errors + json_errors): whether strcontains() of a missing
# field gives 0 or null (not documented), the sums are right. No group key of the stats is
# ever a missing value: a missing value is coalesced with the field `zero`
# (strlen(@message) * 0, present on every event), so it lands in the no-value bucket (or
# memory 0). Cold starts come from the init bucket, not from count() of a value.
MB = 1_000_000
ZERO = "zero"


@dataclass(frozen=True)
class Value:
    """One REPORT quantity: its text-format field, its JSON-format field, in ms or MB."""

    text: str
    json: str
    in_bytes: bool = False  # the text field is in bytes (MB x 1,000,000), the JSON one in MB


# query alias -> value, in ms / MB
VALUES: dict[str, Value] = {
    "memory_mb": Value("@memorySize", "record.metrics.memorySizeMB", in_bytes=True),
    "duration_ms": Value("@duration", "record.metrics.durationMs"),
    "billed_duration_ms": Value("@billedDuration", "record.metrics.billedDurationMs"),
    "max_memory_used_mb": Value("@maxMemoryUsed", "record.metrics.maxMemoryUsedMB", in_bytes=True),
    "init_duration_ms": Value("@initDuration", "record.metrics.initDurationMs"),
    "restore_duration_ms": Value("text_restore_duration_ms", "record.metrics.restoreDurationMs"),
    "billed_restore_duration_ms": Value(
        "text_billed_restore_duration_ms", "record.metrics.billedRestoreDurationMs"
    ),
}
# Fields parsed out of the text REPORT line (no discovered field): "\tRestore Duration: 310.1
# ms\tBilled Restore Duration: 95 ms". "[^ ]" before "Restore" keeps the billed one out.
PARSED = (
    "parse @message /[^ ]Restore Duration: (?<text_restore_duration_ms>[0-9.]+) ms/",
    "parse @message /Billed Restore Duration: (?<text_billed_restore_duration_ms>[0-9.]+) ms/",
)
# In a custom log group (which several functions may share) Lambda names each stream
# YYYY/MM/DD/<function_name>[<version>]... (Lambda developer guide, "Configuring CloudWatch
# log groups"); function names are letters, digits, hyphens and underscores. A stream
# without a name (a function's default group that another function also writes to) gets
# @log instead, so the group key is never missing; a name never contains ":".
STREAM_FUNCTION = "stream_function"
_NAMED_FUNCTION = "named_function"
STREAM_PARSE = (
    f"parse @logStream /^[0-9]{{4}}.[0-9]{{2}}.[0-9]{{2}}.(?<{_NAMED_FUNCTION}>[A-Za-z0-9_-]+)\\[/"
)
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]+")
STREAM_NAME = re.compile(r"^[0-9]{4}/[0-9]{2}/[0-9]{2}/([A-Za-z0-9_-]+)\[")
# hourly_facts histogram column -> (bucket field in the query, value alias)
HISTOGRAMS: dict[str, tuple[str, str]] = {
    "duration_hist": ("d", "duration_ms"),
    "billed_duration_hist": ("b", "billed_duration_ms"),
    "max_memory_used_hist": ("m", "max_memory_used_mb"),
    "init_duration_hist": ("i", "init_duration_ms"),
}
# Flags per event. Text: the REPORT line's "Status: ..." (the Telemetry API's "failure"
# counts as an error, as in lambdascope.logparse); JSON: record.status. Out of memory:
# "OutOfMemory" in the error type, which is part of the raw event (@message) in both formats.
FLAGS: dict[str, str] = {
    "is_error": 'strcontains(@message, "Status: error") + strcontains(@message, "Status: failure")',
    "is_timeout": 'strcontains(@message, "Status: timeout")',
    "is_json_error": 'strcontains(record.status, "error") + strcontains(record.status, "failure")',
    "is_json_timeout": 'strcontains(record.status, "timeout")',
    "is_oom": 'strcontains(@message, "OutOfMemory")',
}
# hourly_facts column -> the result fields that add up into it (cold starts: see transform)
_ADDED: dict[str, tuple[str, ...]] = {
    "invocations": ("invocations",),
    "errors": ("errors", "json_errors"),
    "timeouts": ("timeouts", "json_timeouts"),
    "out_of_memory": ("out_of_memory",),
    "cold_starts": (),
    "duration_ms_sum": ("duration_ms_sum",),
    "billed_duration_ms_sum": ("billed_duration_ms_sum",),
    "init_duration_ms_sum": ("init_duration_ms_sum",),
    "restore_duration_ms_sum": ("restore_duration_ms_sum",),
    "billed_restore_duration_ms_sum": ("billed_restore_duration_ms_sum",),
}
_MAXIMA = ("duration_ms_max", "max_memory_used_mb_max", "init_duration_ms_max")
_INTEGER_COLUMNS = {"invocations", "errors", "timeouts", "out_of_memory", "cold_starts"}
_AGGREGATES = (
    "count(*) as invocations",
    "sum(is_error) as errors",
    "sum(is_json_error) as json_errors",
    "sum(is_timeout) as timeouts",
    "sum(is_json_timeout) as json_timeouts",
    "sum(is_oom) as out_of_memory",
    "sum(duration_ms) as duration_ms_sum",
    "max(duration_ms) as duration_ms_max",
    "sum(billed_duration_ms) as billed_duration_ms_sum",
    "max(max_memory_used_mb) as max_memory_used_mb_max",
    "sum(init_duration_ms) as init_duration_ms_sum",
    "max(init_duration_ms) as init_duration_ms_max",
    "sum(restore_duration_ms) as restore_duration_ms_sum",
    "sum(billed_restore_duration_ms) as billed_restore_duration_ms_sum",
)


def _in_mb(name: str) -> str:
    return f"text_{name}"


def build_query(*, by_stream: bool = False) -> str:
    """The one Insights query run per batch of log groups and time window (pure).

    ``by_stream``: for custom (possibly shared) log groups, the function is parsed from each
    event's log stream name and the results are grouped by it as well.
    """
    # 1. expressions into fields: text byte fields in MB, flags, the always-present zero
    computed = [
        f"{value.text} / {MB} as {_in_mb(name)}" for name, value in VALUES.items() if value.in_bytes
    ]
    computed += [f"{expression} as {name}" for name, expression in FLAGS.items()]
    computed.append(f"strlen(@message) * 0 as {ZERO}")
    # 2. coalesce of fields only: the value from whichever format the event has
    coalesced = []
    for name, value in VALUES.items():
        text = _in_mb(name) if value.in_bytes else value.text
        fallback = f", {ZERO}" if name == "memory_mb" else ""  # a group key: never missing
        coalesced.append(f"coalesce({text}, {value.json}{fallback}) as {name}")
    if by_stream:
        coalesced.append(f"coalesce({_NAMED_FUNCTION}, @log) as {STREAM_FUNCTION}")
    # 3. buckets: a missing value is coalesced with zero, so no bucket is ever missing
    buckets = [
        f"floor(log(greatest(coalesce({alias}, {ZERO}), {_FLOOR_VALUE}))"
        f" / log({histogram.GAMMA})) as {bucket}"
        for bucket, alias in HISTOGRAMS.values()
    ]
    keys = ["bin(1h) as hour", "@log", *([STREAM_FUNCTION] if by_stream else [])]
    keys += ["memory_mb", *(bucket for bucket, _ in HISTOGRAMS.values())]
    commands = [
        'filter @type = "REPORT" or type = "platform.report"',
        *([STREAM_PARSE] if by_stream else []),
        *PARSED,
        f"fields {', '.join(computed)}",
        f"fields {', '.join(coalesced)}",
        f"fields {', '.join(buckets)}",
        f"stats {', '.join(_AGGREGATES)} by {', '.join(keys)}",
        "sort hour asc",
    ]
    return " | ".join(commands)


QUERY = build_query()
SHARED_QUERY = build_query(by_stream=True)


def log_group_batches(
    groups: Sequence[str], size: int = MAX_LOG_GROUPS_PER_QUERY
) -> list[list[str]]:
    return [list(groups[i : i + size]) for i in range(0, len(groups), size)]


def _row_dict(row: Sequence[dict[str, str]]) -> dict[str, str]:
    return {cell["field"]: cell.get("value", "") for cell in row}


def hour_of(fields: dict[str, str]) -> int | None:
    """The hour a result row belongs to (``hour`` alias, or a ``bin(...)`` field)."""
    for name, value in fields.items():
        if name == "hour" or name.startswith("bin("):
            try:
                return hour_floor(to_epoch(parse_timestamp(value)))
            except ValueError:
                return None
    return None


def _log_group_of(value: str) -> str:
    # @log is "<account-id>:<log-group-name>"
    head, sep, tail = value.partition(":")
    return tail if sep and head.isdigit() else value


# (log group, function named by the log stream or "" when grouped by log group only, hour,
# memory_mb)
FactKey = tuple[str, str, int, int]


@dataclass
class Facts:
    """hourly_facts rows under construction, keyed by log group x stream function x hour x
    memory."""

    rows: dict[FactKey, dict[str, Any]] = field(default_factory=dict)

    def row(self, key: FactKey) -> dict[str, Any]:
        if key not in self.rows:
            self.rows[key] = {c: 0 for c in _ADDED} | {
                **{c: None for c in _MAXIMA},
                **{c: {} for c in HISTOGRAMS},
            }
        return self.rows[key]


def _number(fields: dict[str, str], name: str) -> float | None:
    text = fields.get(name)
    if text in (None, ""):
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def transform_rows(rows: Sequence[Sequence[dict[str, str]]], facts: Facts) -> int:
    """Query result rows -> counts, sums, maxima and histograms (pure, adds into ``facts``).

    Every value arrives in ms or MB (normalised in the query, whatever the log format).
    Rows of the same log group x stream function x hour x memory (other buckets, another log
    format, or another piece of a split window) add up; the stream function is "" in rows of
    the by-log-group query, or of a stream whose name carries no function. A row whose init
    bucket holds a value counts its invocations as cold starts (local ingest: a report with
    an init duration). A report without a memory size (JSON records may leave it out) is
    stored under memory 0, as local ingest does. Returns the number of rows skipped as malformed.
    """
    skipped = 0
    for raw in rows:
        fields = _row_dict(raw)
        hour = hour_of(fields)
        count = _number(fields, "invocations")
        if hour is None or not count or "@log" not in fields:
            skipped += 1
            continue
        memory = _number(fields, "memory_mb")
        function = fields.get(STREAM_FUNCTION) or ""
        function = function if FUNCTION_NAME.fullmatch(function) else ""  # @log: no name
        row = facts.row((_log_group_of(fields["@log"]), function, hour, round(memory or 0)))
        for column, names in _ADDED.items():
            for name in names:
                value = _number(fields, name)
                if value is not None:
                    row[column] += round(value) if column in _INTEGER_COLUMNS else value
        memory_max = _number(fields, "max_memory_used_mb_max")
        maxima = {
            "duration_ms_max": _number(fields, "duration_ms_max"),
            "max_memory_used_mb_max": None if memory_max is None else round(memory_max),
            "init_duration_ms_max": _number(fields, "init_duration_ms_max"),
        }
        for column, value in maxima.items():
            if value is not None and (row[column] is None or value > row[column]):
                row[column] = value
        for column, (name, _) in HISTOGRAMS.items():
            bucket = _number(fields, name)
            if bucket is None or bucket <= NO_VALUE_BUCKET:
                continue
            key = str(int(bucket))
            row[column][key] = row[column].get(key, 0) + round(count)
            if column == "init_duration_hist":
                row["cold_starts"] += round(count)
    return skipped


@dataclass
class QueryJob:
    """One StartQuery over ``log_groups`` and [start, end) (epoch seconds)."""

    batch: int
    log_groups: list[str]
    start: int
    end: int
    query_id: str | None = None
    rows: list[Any] = field(default_factory=list)
    bytes_scanned: int = 0
    status: str = "Pending"
    truncated: bool = False
    query: str = QUERY
    queued_since: float | None = None  # clock() when first seen Scheduled / Unknown
    split: bool = False  # timed out and replaced by smaller queries


def plan_windows(start: int, end: int, rows_per_second: float) -> list[tuple[int, int]]:
    """[start, end) cut so each piece should fit the row limit at this density (pure).

    Pieces are whole hours when an hour fits, else minutes (at least MIN_WINDOW_S).
    """
    budget = _FILL_TARGET * MAX_RESULT_ROWS
    if rows_per_second <= 0 or rows_per_second * (end - start) <= budget:
        return [(start, end)]
    length = int(budget / rows_per_second)
    length = length // HOUR_S * HOUR_S if length >= HOUR_S else max(MIN_WINDOW_S, length // 60 * 60)
    return [(s, min(s + length, end)) for s in range(start, end, length)]


def split_truncated(job: QueryJob) -> tuple[list[Any], list[tuple[int, int]]]:
    """A result that hit the row limit -> (rows kept, windows to query again) (pure).

    Rows come sorted by hour: every hour before the last one in the result is complete and
    kept. The rest of the window is cut into pieces sized from the density of the kept rows;
    when not even one hour fitted, that hour is cut into quarters (at least MIN_WINDOW_S).
    An empty list of windows means the window cannot be split further.
    """
    hours = [hour_of(_row_dict(r)) for r in job.rows]
    last = max((h for h in hours if h is not None), default=job.start)
    resume = max(job.start, last)
    kept = [r for r, h in zip(job.rows, hours, strict=True) if h is not None and h < resume]
    if resume > job.start and kept:
        density = len(kept) / (resume - job.start)  # rows per second
        pieces = math.ceil(density * (job.end - resume) / (_FILL_TARGET * MAX_RESULT_ROWS))
        length = max(HOUR_S, (job.end - resume) // max(1, pieces) // HOUR_S * HOUR_S)
        windows = [(s, min(s + length, job.end)) for s in range(resume, job.end, length)]
        return kept, windows
    span = min(job.end, resume + HOUR_S) - resume
    if span <= MIN_WINDOW_S:
        return job.rows, []
    quarter = max(MIN_WINDOW_S, span // 4)
    windows = [(s, min(s + quarter, resume + span)) for s in range(resume, resume + span, quarter)]
    if resume + span < job.end:
        windows.append((resume + span, job.end))
    return [], windows


def split_timed_out(job: QueryJob) -> list[QueryJob]:
    """A query that ran into Insights' 60-minute timeout -> smaller queries (pure).

    The window is halved (at an hour boundary when it spans two hours or more); a window
    of MIN_WINDOW_S or less is kept and the log groups are halved instead. An empty list
    means the query cannot be made smaller.
    """
    span = job.end - job.start
    if span >= 2 * MIN_WINDOW_S:
        middle = job.start + span // 2
        if span >= 2 * HOUR_S:
            middle = job.start + (span // 2) // HOUR_S * HOUR_S
        windows = [(job.start, middle), (middle, job.end)]
        return [QueryJob(job.batch, job.log_groups, s, e, query=job.query) for s, e in windows]
    if len(job.log_groups) > 1:
        half = len(job.log_groups) // 2
        parts = [job.log_groups[:half], job.log_groups[half:]]
        return [QueryJob(job.batch, part, job.start, job.end, query=job.query) for part in parts]
    return []


Sleep = Callable[[float], None]
Clock = Callable[[], float]
BatchDone = Callable[[int, list[QueryJob]], None]
# A query still Scheduled (or Unknown) this long is stopped and recorded as failed.
QUEUED_DEADLINE_S = 15 * 60
# How long StartQuery may keep answering LimitExceededException while none of this run's
# queries is running (the account's concurrent queries are all other users'): then it fails.
SLOT_WAIT_S = 30 * 60
_WAITING = ("Scheduled", "Unknown")


def _stop_query(client: Any, job: QueryJob) -> None:
    try:
        client.stop_query(queryId=job.query_id)
    except ClientError as exc:
        # it may have ended meanwhile ("not running"); a denied StopQuery leaves it to expire
        check_credentials(exc)


def run_queries(
    client: Any,
    jobs: list[QueryJob],
    *,
    max_concurrent: int = 10,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
    poll_s: float = 1.0,
    max_poll_s: float = 15.0,
    queued_deadline_s: float = QUEUED_DEADLINE_S,
    slot_wait_s: float = SLOT_WAIT_S,
    on_batch: BatchDone | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[QueryJob]:
    """Run Insights queries, at most ``max_concurrent`` in flight, polling with backoff.

    A result that hits the 10,000-row limit keeps its complete hours and the rest of its
    window is queried again (see ``split_truncated``); a query that times out is replaced
    by smaller ones (see ``split_timed_out``). The account's concurrent queries are shared
    with other users: on LimitExceededException no more queries are started than are running
    (one more each time one finishes, up to ``max_concurrent``), and with none running
    StartQuery is retried with backoff for up to ``slot_wait_s`` (then its error is raised).
    A query Scheduled or Unknown for ``queued_deadline_s`` is stopped and ends "Expired".
    ``on_batch(batch, jobs)`` is called once every query of a batch has finished, splits
    included. Once ``stop()`` is true no new batch starts; batches already started are
    finished. Returns the finished jobs (status Complete, Truncated, Failed, Cancelled,
    Timeout or Expired; a timed-out job that was split has ``split`` set).
    """
    pending = list(jobs)
    running: list[QueryJob] = []
    finished: list[QueryJob] = []
    outstanding: dict[int, int] = {}
    for job in jobs:
        outstanding[job.batch] = outstanding.get(job.batch, 0) + 1
    started: set[int] = set()
    by_batch: dict[int, list[QueryJob]] = {}
    # Result rows per log group per second seen so far (the highest): later batches are cut
    # to fit before they run, so their logs are not scanned twice after a truncation.
    density = 0.0
    delay = poll_s
    slots = max_concurrent  # lowered while the account has no free query slot
    blocked_since: float | None = None  # no slot and none of ours running, since
    while pending or running:
        if stop is not None and stop():
            pending = [job for job in pending if job.batch in started]
        # The first query runs alone: its density sizes every later batch's windows.
        limit = min(slots, max_concurrent if finished else 1)
        no_slot = False
        while pending and len(running) < limit:
            job = pending[0]
            if job.batch not in started and density > 0:
                windows = plan_windows(job.start, job.end, density * len(job.log_groups))
                if len(windows) > 1:
                    pending[:1] = [
                        QueryJob(job.batch, job.log_groups, s, e, query=job.query)
                        for s, e in windows
                    ]
                    outstanding[job.batch] += len(windows) - 1
                    job = pending[0]
            try:
                job.query_id = client.start_query(
                    logGroupNames=job.log_groups,
                    startTime=job.start,
                    endTime=job.end - 1,
                    queryString=job.query,
                    limit=MAX_RESULT_ROWS,
                )["queryId"]
            except ClientError as exc:
                if error_code(exc) != "LimitExceededException":
                    raise
                slots = max(1, len(running))
                if not running:
                    now = clock()
                    blocked_since = now if blocked_since is None else blocked_since
                    if now - blocked_since >= slot_wait_s:
                        raise
                    no_slot = True
                break  # wait for a query (ours or another user's) to finish
            blocked_since = None
            pending.pop(0)
            started.add(job.batch)
            running.append(job)
        if not running:
            if no_slot:
                sleep(delay)
                delay = min(delay * 2, max_poll_s)
                continue
            break
        sleep(delay)
        delay = min(delay * 2, max_poll_s)
        for job in list(running):
            response = client.get_query_results(queryId=job.query_id)
            job.status = response.get("status", "Unknown")
            if job.status in _WAITING:
                now = clock()
                job.queued_since = now if job.queued_since is None else job.queued_since
                if now - job.queued_since < queued_deadline_s:
                    continue
                _stop_query(client, job)
                job.status = "Expired"
            elif job.status == "Running":
                job.queued_since = None
                continue
            running.remove(job)
            delay = poll_s
            slots = min(max_concurrent, slots + 1)
            job.rows = response.get("results", []) if job.status != "Expired" else []
            job.bytes_scanned = int(response.get("statistics", {}).get("bytesScanned", 0))
            if job.status == "Complete":
                seen = len(job.rows) / (len(job.log_groups) * max(1, job.end - job.start))
                density = max(density, seen)
            if job.status == "Complete" and len(job.rows) >= MAX_RESULT_ROWS:
                job.rows, windows = split_truncated(job)
                job.truncated = True
                # first in line, so the batch completes (and is stored) before new ones start
                pending[:0] = [
                    QueryJob(job.batch, job.log_groups, s, e, query=job.query) for s, e in windows
                ]
                outstanding[job.batch] += len(windows)
                if not windows:
                    job.status = "Truncated"
            if job.status == "Timeout":
                smaller = split_timed_out(job)
                job.rows, job.split = [], bool(smaller)  # partial rows of a timeout: dropped
                pending[:0] = smaller
                outstanding[job.batch] += len(smaller)
            finished.append(job)
            by_batch.setdefault(job.batch, []).append(job)
            outstanding[job.batch] -= 1
            if outstanding[job.batch] == 0 and on_batch is not None:
                on_batch(job.batch, by_batch.pop(job.batch))
    return finished


def existing_log_groups(
    client: Any, wanted: Sequence[str], described: dict[str, dict[str, Any]] | None = None
) -> list[str]:
    """Those of ``wanted`` that exist (a missing group means the function never ran).

    With ``described``, every group's DescribeLogGroups entry is put there by name.
    """
    found: set[str] = set()
    prefixes = {"/aws/lambda/"} | {g for g in wanted if not g.startswith("/aws/lambda/")}
    for prefix in sorted(prefixes):
        paginator = client.get_paginator("describe_log_groups")
        for page in paginator.paginate(logGroupNamePrefix=prefix):
            found.update(g["logGroupName"] for g in page.get("logGroups", []))
            if described is not None:
                described.update({g["logGroupName"]: g for g in page.get("logGroups", [])})
    return [g for g in wanted if g in found]


def save_log_groups(store: Store, target: Target, groups: Sequence[dict[str, Any]]) -> None:
    """Remember each log group's size (DescribeLogGroups ``storedBytes``, creation time,
    retention) for cost estimates; a group described again replaces its row."""
    with store.write() as db:
        db.conn.executemany(
            "INSERT INTO log_groups (account_id, region, log_group, stored_bytes, creation_time,"
            " retention_days) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (account_id, region, log_group) DO UPDATE SET"
            " stored_bytes = excluded.stored_bytes, creation_time = excluded.creation_time,"
            " retention_days = excluded.retention_days",
            [
                (
                    target.account_id,
                    target.region,
                    g["logGroupName"],
                    g.get("storedBytes"),
                    int(g["creationTime"]) // 1000 if g.get("creationTime") else None,
                    g.get("retentionInDays"),
                )
                for g in groups
            ],
        )


def _merge(into: dict[str, Any], row: dict[str, Any]) -> None:
    """Add one fact row into another of the same function x hour x memory."""
    for column in _ADDED:
        into[column] += row[column]
    for column in _MAXIMA:
        if row[column] is not None and (into[column] is None or row[column] > into[column]):
            into[column] = row[column]
    for column in HISTOGRAMS:
        for bucket, count in row[column].items():
            into[column][bucket] = into[column].get(bucket, 0) + count


def resolve_functions(
    facts: Facts,
    group_to_function: dict[str, int],
    shared: dict[str, dict[str, int]] | None = None,
) -> tuple[dict[tuple[int, int, int], dict[str, Any]], int]:
    """Fact rows -> rows per (function id, hour, memory), and the invocations of none (pure).

    A log group of ``group_to_function`` belongs to its one function. In a ``shared`` log
    group each row belongs to the function its log stream names (``""``: a stream without a
    name, i.e. the group is that function's default group); a function not in the inventory
    (deleted, or new since the last inventory) gets nothing, and its invocations are counted.
    """
    shared = shared or {}
    resolved: dict[tuple[int, int, int], dict[str, Any]] = {}
    unattributed = 0
    for (group, function, hour, memory), row in sorted(facts.rows.items()):
        fid = shared[group].get(function) if group in shared else group_to_function.get(group)
        if fid is None:
            unattributed += row["invocations"]
            continue
        key = (fid, hour, memory)
        if key in resolved:
            _merge(resolved[key], row)
        else:
            resolved[key] = {**row, **{c: dict(row[c]) for c in HISTOGRAMS}}
    return resolved, unattributed


def load_facts(
    store: Store,
    facts: Facts,
    group_to_function: dict[str, int],
    shared: dict[str, dict[str, int]] | None = None,
) -> int:
    """Write hourly_facts rows with source 'insights' (whole-row replace: idempotent)."""
    resolved, _ = resolve_functions(facts, group_to_function, shared)
    stored = 0
    with store.write() as db:
        packing.unpack_hours(db.conn, ((fid, hour) for fid, hour, _memory in resolved))
        for (fid, hour, memory), row in sorted(resolved.items()):
            values = {
                **{c: row[c] for c in (*_ADDED, *_MAXIMA)},
                **{c: histcodec.encode(row[c]) for c in HISTOGRAMS},
            }
            # UPDATE, then INSERT when there was no row (the same as an upsert).
            sets = ", ".join(f"{c} = ?" for c in values)
            cursor = db.conn.execute(
                f"UPDATE hourly_facts SET {sets} WHERE function_id = ? AND hour = ?"
                " AND memory_mb = ? AND source = 'insights'",
                (*values.values(), fid, hour, memory),
            )
            if cursor.rowcount == 0:
                names = ", ".join(["function_id", "hour", "memory_mb", "source", *values])
                marks = ", ".join("?" for _ in range(len(values) + 4))
                db.conn.execute(
                    f"INSERT INTO hourly_facts ({names}) VALUES ({marks})",
                    (fid, hour, memory, "insights", *values.values()),
                )
            stored += 1
    return stored


@dataclass
class LogGroups:
    """The log groups of one account/region's live functions."""

    # a function's own default group (/aws/lambda/<name>) that no other function writes to
    dedicated: dict[str, int] = field(default_factory=dict)
    # any other group: function name (as in its log stream names) -> id; "" -> the function
    # whose default group it is, if any (its streams carry no name)
    shared: dict[str, dict[str, int]] = field(default_factory=dict)
    # log group -> the log formats (Text, JSON) of the functions writing to it
    formats: dict[str, frozenset[str]] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted([*self.dedicated, *self.shared])

    def only(self, present: Sequence[str]) -> LogGroups:
        """The same, restricted to the groups in ``present``."""
        keep = set(present)
        return LogGroups(
            {g: f for g, f in self.dedicated.items() if g in keep},
            {g: f for g, f in self.shared.items() if g in keep},
            {g: f for g, f in self.formats.items() if g in keep},
        )


def group_functions(rows: Sequence[tuple[int, str, str | None, str | None]]) -> LogGroups:
    """(id, function name, log group, log format) of live functions -> LogGroups (pure).

    A function without a recorded log group writes to its default one.
    """
    writers: dict[str, dict[str, int]] = {}
    formats: dict[str, set[str]] = {}
    for fid, name, group, log_format in rows:
        group = group or f"/aws/lambda/{name}"
        writers.setdefault(group, {})[name] = fid
        formats.setdefault(group, set()).add(log_format or "Text")
    groups = LogGroups(formats={g: frozenset(f) for g, f in formats.items()})
    for group, functions in writers.items():
        if len(functions) == 1 and group == f"/aws/lambda/{next(iter(functions))}":
            groups.dedicated[group] = next(iter(functions.values()))
            continue
        owner = group.removeprefix("/aws/lambda/") if group.startswith("/aws/lambda/") else None
        groups.shared[group] = dict(functions)
        if owner in functions:
            groups.shared[group][""] = functions[owner]
    return groups


def _functions(store: Store, target: Target) -> LogGroups:
    """The log groups of the account/region's live functions, with who writes to each."""
    with store.lock:  # one connection is shared by the collection threads
        rows = store.db.conn.execute(
            "SELECT id, function_name, log_group, log_format FROM functions WHERE account_id = ?"
            " AND region = ? AND deleted_at IS NULL ORDER BY function_name",
            (target.account_id, target.region),
        ).fetchall()
    return group_functions([(int(r[0]), str(r[1]), r[2], r[3]) for r in rows])


def collect_insights(
    store: Store,
    client: Any,
    groups: dict[str, int],
    result: SourceResult,
    *,
    start: int,
    end: int,
    max_concurrent: int,
    shared: dict[str, dict[str, int]] | None = None,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
    poll_s: float = 1.0,
    stop: Stop = never,
) -> None:
    """One Insights query per batch of <= 50 log groups; each batch's facts stored when done.

    ``groups``: log groups of one function each; ``shared``: log groups whose function is
    named by each log stream (see ``resolve_functions``), queried apart with SHARED_QUERY.
    A stop request lets the batches already started finish; the others are left for the
    next run (the result is then 'interrupted' and the watermark stays where it was).
    """
    shared = shared or {}
    batches = [(b, QUERY) for b in log_group_batches(sorted(groups))]
    batches += [(b, SHARED_QUERY) for b in log_group_batches(sorted(shared))]
    jobs = [
        QueryJob(index, batch, start, end, query=query)
        for index, (batch, query) in enumerate(batches)
    ]
    done_batches = 0
    skipped = 0
    unattributed = 0

    def store_batch(_batch: int, finished: list[QueryJob]) -> None:
        nonlocal done_batches, skipped, unattributed
        facts = Facts()
        for job in finished:
            if job.split:
                continue  # timed out: its smaller queries are in ``finished`` too
            if job.status == "Expired":
                result.fail(
                    "logs:GetQueryResults",
                    "Expired",
                    f"query still {' or '.join(_WAITING)} after {QUEUED_DEADLINE_S} s: stopped"
                    f" ({len(job.log_groups)} log groups, {job.end - job.start} s)",
                )
                continue
            if job.status not in ("Complete", "Truncated"):
                result.fail("logs:StartQuery", job.status, f"query ended {job.status}")
                continue
            if job.status == "Truncated":
                result.fail(
                    "logs:GetQueryResults",
                    "Truncated",
                    f"more than {MAX_RESULT_ROWS} result rows in {job.end - job.start} s"
                    f" of {len(job.log_groups)} log groups: counts of that minute are partial",
                )
            skipped += transform_rows(job.rows, facts)
        unattributed += resolve_functions(facts, groups, shared)[1]
        result.items += load_facts(store, facts, groups, shared)
        done_batches += 1

    finished = run_queries(
        client,
        jobs,
        max_concurrent=max_concurrent,
        sleep=sleep,
        clock=clock,
        poll_s=poll_s,
        on_batch=store_batch,
        stop=stop,
    )
    result.bytes_scanned += sum(job.bytes_scanned for job in finished)
    result.estimated_cost_usd = result.bytes_scanned / 1e9 * PRICE_PER_GB_SCANNED_USD
    splits = sum(1 for job in finished if job.truncated)
    timeouts = sum(1 for job in finished if job.split)
    result.message = (
        f"{len(groups) + len(shared)} log groups, {len(batches)} batches,"
        f" {len(finished)} queries ({splits} results over {MAX_RESULT_ROWS} rows split)"
        + (f", {len(shared)} shared log groups" if shared else "")
        + (f", {timeouts} timed-out queries split" if timeouts else "")
        + (f", {skipped} malformed rows skipped" if skipped else "")
        + (
            f", {unattributed} invocations of functions not in the inventory skipped"
            if unattributed
            else ""
        )
    )
    if done_batches < len(batches) and result.status == "ok":
        result.status = "interrupted"
        result.message += f"; stopped after {done_batches} of {len(batches)} batches"


def filter_pattern(formats: frozenset[str]) -> str:
    """The FilterLogEvents pattern for REPORT events of these log formats (pure).

    A log group shared by functions of both formats needs either term (``?a ?b``: OR, in the
    CloudWatch Logs filter pattern syntax for unstructured events).
    """
    if formats == {"JSON"}:
        return '"platform.report"'
    if "JSON" in formats:
        return '?"REPORT RequestId" ?"platform.report"'
    return '"REPORT RequestId"'


def stream_function(stream: str) -> str:
    """The function named by a log stream ``YYYY/MM/DD/<function>[<version>]...``, or ""."""
    match = STREAM_NAME.match(stream)
    return match.group(1) if match else ""


def collect_filter(
    store: Store,
    client: Any,
    groups: dict[str, int],
    result: SourceResult,
    *,
    start: int,
    end: int,
    shared: dict[str, dict[str, int]] | None = None,
    formats: dict[str, frozenset[str]] | None = None,
    stop: Stop = never,
) -> None:
    """FilterLogEvents for REPORT lines, parsed by the core parser and stored like local logs.

    Invocations are upserted by request id and the 'local' hourly facts of the touched
    hours rebuilt, so re-reading a window changes nothing. In a ``shared`` log group each
    event belongs to the function its log stream names. One log group is one batch: a stop
    request is honoured between log groups.
    """
    shared = shared or {}
    formats = formats or {}
    writers = {group: {"": fid} for group, fid in groups.items()} | shared
    lines = 0
    skipped = 0
    unattributed = 0
    done = 0
    for group, functions in sorted(writers.items()):
        if stop():
            result.status = "interrupted"
            break
        done += 1
        events: dict[int, list[PlatformEvent]] = {}
        paginator = client.get_paginator("filter_log_events")
        pages = paginator.paginate(
            logGroupName=group,
            startTime=start * 1000,
            endTime=end * 1000 - 1,
            filterPattern=filter_pattern(formats.get(group, frozenset({"Text"}))),
        )
        for page in pages:
            for raw in page.get("events", []):
                lines += 1
                event = parse_line(raw.get("message", ""))
                if event is None or event.kind != "report":
                    skipped += 1
                    continue
                if group in shared:
                    fid = functions.get(stream_function(raw.get("logStreamName", "")))
                else:
                    fid = functions[""]
                if fid is None:
                    unattributed += 1
                    continue
                if event.timestamp is None and "timestamp" in raw:
                    event = replace(event, timestamp=raw["timestamp"] / 1000)
                events.setdefault(fid, []).append(event)
        for fid, function_events in sorted(events.items()):
            with store.write() as db:
                result.items += store_events(db, fid, function_events)
                hours = [int(e.timestamp) for e in function_events if e.timestamp]
                rebuild_hourly_facts(db, fid, hours)
    result.message = f"{len(writers)} log groups, {lines} REPORT lines, {skipped} skipped"
    if unattributed:
        result.message += f", {unattributed} of functions not in the inventory"
    if result.status == "interrupted":
        result.message += f"; stopped after {done - 1} of {len(writers)} log groups"


def collect(
    store: Store,
    target: Target,
    result: SourceResult,
    counter: CallCounter,
    *,
    start: int,
    end: int,
    options: CollectOptions,
    sleep: Sleep = time.sleep,
    stop: Stop = never,
) -> None:
    """REPORT statistics of the account/region's known functions over [start, end)."""
    client = target.client("logs", counter)
    described: dict[str, dict[str, Any]] = {}
    try:
        groups = _functions(store, target)
        groups = groups.only(existing_log_groups(client, groups.names(), described))
    except ClientError as exc:
        record_failure(result, client, "DescribeLogGroups", exc)
        return
    save_log_groups(store, target, [described[g] for g in groups.names()])

    def read(subset: LogGroups, start: int, end: int) -> None:
        """The REPORT facts of these log groups over [start, end), in the chosen mode."""
        if options.logs_mode == "filter":
            collect_filter(
                store,
                client,
                subset.dedicated,
                result,
                start=start,
                end=end,
                shared=subset.shared,
                formats=subset.formats,
                stop=stop,
            )
        else:
            collect_insights(
                store,
                client,
                subset.dedicated,
                result,
                start=start,
                end=end,
                shared=subset.shared,
                max_concurrent=options.max_concurrent_queries,
                sleep=sleep,
                poll_s=options.poll_interval_s,
                stop=stop,
            )

    try:
        read(groups, start, end)
    except ClientError as exc:
        operation = "FilterLogEvents" if options.logs_mode == "filter" else "StartQuery"
        record_failure(result, client, getattr(exc, "operation_name", operation), exc)
        return
    if options.start is None and options.since is None and result.status == "ok":

        def reread(start: int, end: int, chosen: set[str]) -> None:
            read(groups.only(sorted(chosen)), start, end)

        # log group -> the functions writing to it (dedicated: one; shared: by stream name)
        writers = {g: {fid} for g, fid in groups.dedicated.items()}
        writers.update({g: set(ids.values()) for g, ids in groups.shared.items()})
        try:
            late.reread_late(store, client, target, result, writers, reread, LOGS_SETTLE_S)
        except ClientError as exc:
            record_failure(
                result, client, getattr(exc, "operation_name", "DescribeLogStreams"), exc
            )
