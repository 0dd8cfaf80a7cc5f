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
message. Values below 0.0001 (ms or MB) go in no histogram (REPORT fields are never that
small; an absent field, e.g. no init duration on a warm start, maps there). A function
without a log group was never invoked: skipped, not an error.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from collectors import late
from collectors.aws import (
    LOGS_SETTLE_S,
    CallCounter,
    CollectOptions,
    SourceResult,
    Stop,
    Store,
    Target,
    error_code,
    never,
    record_failure,
)
from lambdascope import histogram
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
# CWL_AnalyzeLogData-discoverable-fields.html) and "CloudWatch Logs Insights query syntax":
# - Lambda logs: discovered fields @type, @requestId, @duration, @billedDuration,
#   @maxMemoryUsed, @memorySize, read from the text REPORT line. Not in that table but in use
#   (and in LAMBDA_FACTS.md): @initDuration, and memory fields in bytes (MB x 1,000,000).
#   A JSON-format function writes no REPORT line; the guide does not say whether these
#   fields are filled for its records, and this query does not depend on it (see below).
# - Logs in JSON format: "CloudWatch Logs Insights represents nested JSON fields using the
#   dot notation", so a record {"type":"platform.report","record":{"metrics":{"durationMs":
#   ..},"status":..,"errorType":..}} has the fields `type`, record.metrics.durationMs,
#   record.status, record.errorType. (Discovery only happens in Standard-class log groups.)
# - coalesce(a, b, ...) returns the first non-null value; strcontains(s, t) returns 1 or 0;
#   count(field) counts records that have the field; arithmetic and string functions may
#   take expressions as arguments.
# Each value is coalesce(text field, JSON field): an event has one or the other. Byte fields
# are divided after coalesce (the JSON MB value is scaled up inside it), so no arithmetic is
# applied to a field the event lacks. The flags of the two formats are summed apart (errors
# + json_errors): whether strcontains() of a missing field gives 0 or null (not documented),
# the sums are right. Cold starts come from the init bucket, not from count() of a value
# that coalesce may leave null.
MB = 1_000_000


@dataclass(frozen=True)
class Value:
    """One REPORT quantity: its text-format field, its JSON-format field, in ms or MB."""

    text: str
    json: str
    in_bytes: bool = False  # the text field is in bytes (MB x 1,000,000), the JSON one in MB

    def expression(self, default: str | None = None) -> str:
        json = f"{self.json} * {MB}" if self.in_bytes else self.json
        args = ", ".join([self.text, json, *([default] if default is not None else [])])
        return f"coalesce({args}) / {MB}" if self.in_bytes else f"coalesce({args})"


# query alias -> value, in ms / MB
VALUES: dict[str, Value] = {
    "memory_mb": Value("@memorySize", "record.metrics.memorySizeMB", in_bytes=True),
    "duration_ms": Value("@duration", "record.metrics.durationMs"),
    "billed_duration_ms": Value("@billedDuration", "record.metrics.billedDurationMs"),
    "max_memory_used_mb": Value("@maxMemoryUsed", "record.metrics.maxMemoryUsedMB", in_bytes=True),
    "init_duration_ms": Value("@initDuration", "record.metrics.initDurationMs"),
}
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
}
_MAXIMA = ("duration_ms_max", "max_memory_used_mb_max", "init_duration_ms_max")
_INTEGER_COLUMNS = {"invocations", "errors", "timeouts", "out_of_memory", "cold_starts"}


def _bucket(value: Value) -> str:
    guarded = value.expression(default="0")
    return f"floor(log(greatest({guarded}, {_FLOOR_VALUE})) / log({histogram.GAMMA}))"


def build_query() -> str:
    """The one Insights query run per batch of log groups and time window (pure)."""
    fields = [f"{value.expression()} as {name}" for name, value in VALUES.items()]
    fields += [f"{expression} as {name}" for name, expression in FLAGS.items()]
    fields += [f"{_bucket(VALUES[value])} as {name}" for name, value in HISTOGRAMS.values()]
    return (
        'filter @type = "REPORT" or type = "platform.report"'
        f" | fields {', '.join(fields)}"
        " | stats count(*) as invocations, sum(is_error) as errors,"
        " sum(is_json_error) as json_errors, sum(is_timeout) as timeouts,"
        " sum(is_json_timeout) as json_timeouts, sum(is_oom) as out_of_memory,"
        " sum(duration_ms) as duration_ms_sum, max(duration_ms) as duration_ms_max,"
        " sum(billed_duration_ms) as billed_duration_ms_sum,"
        " max(max_memory_used_mb) as max_memory_used_mb_max,"
        " sum(init_duration_ms) as init_duration_ms_sum,"
        " max(init_duration_ms) as init_duration_ms_max"
        f" by bin(1h) as hour, @log, memory_mb, {', '.join(n for n, _ in HISTOGRAMS.values())}"
        " | sort hour asc"
    )


QUERY = build_query()


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


FactKey = tuple[str, int, int]  # (log group, hour, memory_mb)


@dataclass
class Facts:
    """hourly_facts rows under construction, keyed by log group x hour x memory."""

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
    Rows of the same log group x hour x memory (other buckets, another log format, or
    another piece of a split window) add up. A row whose init bucket holds a value counts
    its invocations as cold starts (local ingest: a report with an init duration). A report
    without a memory size (JSON records may leave it out) is stored under memory 0, as local
    ingest does. Returns the number of rows skipped as malformed.
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
        row = facts.row((_log_group_of(fields["@log"]), hour, round(memory or 0)))
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


Sleep = Callable[[float], None]
BatchDone = Callable[[int, list[QueryJob]], None]


def run_queries(
    client: Any,
    jobs: list[QueryJob],
    *,
    query: str = QUERY,
    max_concurrent: int = 10,
    sleep: Sleep = time.sleep,
    poll_s: float = 1.0,
    max_poll_s: float = 15.0,
    on_batch: BatchDone | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[QueryJob]:
    """Run Insights queries, at most ``max_concurrent`` in flight, polling with backoff.

    A result that hits the 10,000-row limit keeps its complete hours and the rest of its
    window is queried again (see ``split_truncated``). ``on_batch(batch, jobs)`` is called
    once every query of a batch has finished, splits included. Once ``stop()`` is true no
    new batch starts; batches already started are finished. Returns the finished jobs
    (status Complete, Failed, Cancelled or Timeout).
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
    while pending or running:
        if stop is not None and stop():
            pending = [job for job in pending if job.batch in started]
        # The first query runs alone: its density sizes every later batch's windows.
        limit = max_concurrent if finished else 1
        while pending and len(running) < limit:
            job = pending[0]
            if job.batch not in started and density > 0:
                windows = plan_windows(job.start, job.end, density * len(job.log_groups))
                if len(windows) > 1:
                    pending[:1] = [QueryJob(job.batch, job.log_groups, s, e) for s, e in windows]
                    outstanding[job.batch] += len(windows) - 1
                    job = pending[0]
            try:
                job.query_id = client.start_query(
                    logGroupNames=job.log_groups,
                    startTime=job.start,
                    endTime=job.end - 1,
                    queryString=query,
                    limit=MAX_RESULT_ROWS,
                )["queryId"]
            except ClientError as exc:
                if error_code(exc) == "LimitExceededException" and running:
                    break  # the account's concurrent-query limit: wait for one to finish
                raise
            pending.pop(0)
            started.add(job.batch)
            running.append(job)
        if not running:
            break
        sleep(delay)
        delay = min(delay * 2, max_poll_s)
        for job in list(running):
            response = client.get_query_results(queryId=job.query_id)
            job.status = response.get("status", "Unknown")
            if job.status in ("Scheduled", "Running", "Unknown"):
                continue
            running.remove(job)
            delay = poll_s
            job.rows = response.get("results", [])
            job.bytes_scanned = int(response.get("statistics", {}).get("bytesScanned", 0))
            if job.status == "Complete":
                seen = len(job.rows) / (len(job.log_groups) * max(1, job.end - job.start))
                density = max(density, seen)
            if job.status == "Complete" and len(job.rows) >= MAX_RESULT_ROWS:
                job.rows, windows = split_truncated(job)
                job.truncated = True
                # first in line, so the batch completes (and is stored) before new ones start
                pending[:0] = [QueryJob(job.batch, job.log_groups, s, e) for s, e in windows]
                outstanding[job.batch] += len(windows)
                if not windows:
                    job.status = "Truncated"
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


def load_facts(store: Store, facts: Facts, group_to_function: dict[str, int]) -> int:
    """Write hourly_facts rows with source 'insights' (whole-row replace: idempotent)."""
    stored = 0
    with store.write() as db:
        for (group, hour, memory), row in sorted(facts.rows.items()):
            fid = group_to_function.get(group)
            if fid is None:
                continue
            values = {
                **{c: row[c] for c in (*_ADDED, *_MAXIMA)},
                **{c: histogram.to_json(row[c]) for c in HISTOGRAMS},
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


def _functions(store: Store, target: Target) -> tuple[dict[str, int], frozenset[str]]:
    """Log group -> function id of live functions, and the groups in JSON log format."""
    with store.lock:  # one connection is shared by the collection threads
        rows = store.db.conn.execute(
            "SELECT id, function_name, log_group, log_format FROM functions WHERE account_id = ?"
            " AND region = ? AND deleted_at IS NULL ORDER BY function_name",
            (target.account_id, target.region),
        ).fetchall()
    groups = {str(r[2] or f"/aws/lambda/{r[1]}"): int(r[0]) for r in rows}
    json_groups = frozenset(str(r[2]) for r in rows if r[2] and r[3] == "JSON")
    return groups, json_groups


def collect_insights(
    store: Store,
    client: Any,
    groups: dict[str, int],
    result: SourceResult,
    *,
    start: int,
    end: int,
    max_concurrent: int,
    sleep: Sleep = time.sleep,
    poll_s: float = 1.0,
    stop: Stop = never,
) -> None:
    """One Insights query per batch of <= 50 log groups; each batch's facts stored when done.

    A stop request lets the batches already started finish; the others are left for the
    next run (the result is then 'interrupted' and the watermark stays where it was).
    """
    batches = log_group_batches(sorted(groups))
    jobs = [QueryJob(index, batch, start, end) for index, batch in enumerate(batches)]
    done_batches = 0
    skipped = 0

    def store_batch(_batch: int, finished: list[QueryJob]) -> None:
        nonlocal done_batches, skipped
        facts = Facts()
        for job in finished:
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
        result.items += load_facts(store, facts, groups)
        done_batches += 1

    finished = run_queries(
        client,
        jobs,
        max_concurrent=max_concurrent,
        sleep=sleep,
        poll_s=poll_s,
        on_batch=store_batch,
        stop=stop,
    )
    result.bytes_scanned += sum(job.bytes_scanned for job in finished)
    result.estimated_cost_usd = result.bytes_scanned / 1e9 * PRICE_PER_GB_SCANNED_USD
    splits = sum(1 for job in finished if job.truncated)
    result.message = (
        f"{len(groups)} log groups, {len(batches)} batches, {len(finished)} queries"
        f" ({splits} results over {MAX_RESULT_ROWS} rows split)"
        + (f", {skipped} malformed rows skipped" if skipped else "")
    )
    if done_batches < len(batches) and result.status == "ok":
        result.status = "interrupted"
        result.message += f"; stopped after {done_batches} of {len(batches)} batches"


def collect_filter(
    store: Store,
    client: Any,
    groups: dict[str, int],
    result: SourceResult,
    *,
    start: int,
    end: int,
    json_groups: frozenset[str] = frozenset(),
    stop: Stop = never,
) -> None:
    """FilterLogEvents for REPORT lines, parsed by the core parser and stored like local logs.

    Invocations are upserted by request id and the 'local' hourly facts of the touched
    hours rebuilt, so re-reading a window changes nothing. One log group is one batch: a
    stop request is honoured between log groups.
    """
    lines = 0
    skipped = 0
    done = 0
    for group, fid in sorted(groups.items()):
        if stop():
            result.status = "interrupted"
            break
        done += 1
        pattern = '"platform.report"' if group in json_groups else '"REPORT RequestId"'
        events: list[PlatformEvent] = []
        paginator = client.get_paginator("filter_log_events")
        pages = paginator.paginate(
            logGroupName=group,
            startTime=start * 1000,
            endTime=end * 1000 - 1,
            filterPattern=pattern,
        )
        for page in pages:
            for raw in page.get("events", []):
                lines += 1
                event = parse_line(raw.get("message", ""))
                if event is None or event.kind != "report":
                    skipped += 1
                    continue
                if event.timestamp is None and "timestamp" in raw:
                    event = replace(event, timestamp=raw["timestamp"] / 1000)
                events.append(event)
        if not events:
            continue
        with store.write() as db:
            result.items += store_events(db, fid, events)
            rebuild_hourly_facts(db, fid, [int(e.timestamp) for e in events if e.timestamp])
    result.message = f"{len(groups)} log groups, {lines} REPORT lines, {skipped} skipped"
    if result.status == "interrupted":
        result.message += f"; stopped after {done - 1} of {len(groups)} log groups"


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
    functions, json_groups = _functions(store, target)
    described: dict[str, dict[str, Any]] = {}
    try:
        present = existing_log_groups(client, list(functions), described)
    except ClientError as exc:
        record_failure(result, client, "DescribeLogGroups", exc)
        return
    save_log_groups(store, target, [described[g] for g in present])
    groups = {g: functions[g] for g in present}
    try:
        if options.logs_mode == "filter":
            collect_filter(
                store,
                client,
                groups,
                result,
                start=start,
                end=end,
                json_groups=json_groups,
                stop=stop,
            )
        else:
            collect_insights(
                store,
                client,
                groups,
                result,
                start=start,
                end=end,
                max_concurrent=options.max_concurrent_queries,
                sleep=sleep,
                poll_s=options.poll_interval_s,
                stop=stop,
            )
    except ClientError as exc:
        operation = "FilterLogEvents" if options.logs_mode == "filter" else "StartQuery"
        record_failure(result, client, getattr(exc, "operation_name", operation), exc)
        return
    if options.start is None and options.since is None and result.status == "ok":

        def reread(start: int, end: int, chosen: set[str]) -> None:
            subset = {g: groups[g] for g in sorted(chosen)}
            if options.logs_mode == "filter":
                collect_filter(
                    store,
                    client,
                    subset,
                    result,
                    start=start,
                    end=end,
                    json_groups=json_groups,
                    stop=stop,
                )
            else:
                collect_insights(
                    store,
                    client,
                    subset,
                    result,
                    start=start,
                    end=end,
                    max_concurrent=options.max_concurrent_queries,
                    sleep=sleep,
                    poll_s=options.poll_interval_s,
                    stop=stop,
                )

        writers = {g: {fid} for g, fid in groups.items()}
        try:
            late.reread_late(store, client, target, result, writers, reread, LOGS_SETTLE_S)
        except ClientError as exc:
            record_failure(
                result, client, getattr(exc, "operation_name", "DescribeLogStreams"), exc
            )
