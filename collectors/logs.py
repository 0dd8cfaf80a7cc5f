"""REPORT statistics from CloudWatch Logs: Logs Insights pushdown, or FilterLogEvents.

Insights mode runs, per batch of <= 50 log groups, one summary query (counts, sums,
maxima per function x hour x configured memory) and one query per distribution that
buckets values inside the query with ``floor(log(x)/log(1.02))`` — the same buckets as
lambdascope.histogram — so results fill hourly_facts (source 'insights') exactly like
local ingest. Insights reports memory in BYTES (MB x 1,000,000); rows are stored in MB.
A function without a log group was never invoked: skipped, not an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from collectors.aws import (
    CallCounter,
    CollectOptions,
    SourceResult,
    Store,
    Target,
    error_code,
    record_failure,
)
from lambdascope import histogram
from lambdascope.logparse import parse_line
from lambdascope.models import PlatformEvent
from lambdascope.store import rebuild_hourly_facts, store_events
from lambdascope.timeutil import HOUR_S, hour_floor, parse_timestamp, to_epoch

MAX_LOG_GROUPS_PER_QUERY = 50
MAX_RESULT_ROWS = 10_000
# Logs Insights list price (us-east-1): $0.005 per GB scanned.
PRICE_PER_GB_SCANNED_USD = 0.005
_LOG_GAMMA = f"log({histogram.GAMMA})"

SUMMARY_QUERY = (
    'filter @type = "REPORT"'
    " | fields @memorySize / 1000000 as memory_mb,"
    ' strcontains(@message, "Status: error") as is_error,'
    ' strcontains(@message, "Status: timeout") as is_timeout,'
    ' strcontains(@message, "Runtime.OutOfMemory") as is_oom'
    " | stats count(*) as invocations, sum(is_error) as errors, sum(is_timeout) as timeouts,"
    " sum(is_oom) as out_of_memory, count(@initDuration) as cold_starts,"
    " sum(@duration) as duration_ms_sum, max(@duration) as duration_ms_max,"
    " sum(@billedDuration) as billed_duration_ms_sum,"
    " max(@maxMemoryUsed) / 1000000 as max_memory_used_mb_max,"
    " sum(@initDuration) as init_duration_ms_sum, max(@initDuration) as init_duration_ms_max"
    " by @log, bin(1h), memory_mb"
)

# hourly_facts histogram column -> value expression in MB / ms
HISTOGRAM_VALUES: dict[str, str] = {
    "duration_hist": "@duration",
    "billed_duration_hist": "@billedDuration",
    "max_memory_used_hist": "@maxMemoryUsed / 1000000",
    "init_duration_hist": "@initDuration",
}

_SUMMARY_COLUMNS = (
    "invocations",
    "errors",
    "timeouts",
    "out_of_memory",
    "cold_starts",
    "duration_ms_sum",
    "duration_ms_max",
    "billed_duration_ms_sum",
    "max_memory_used_mb_max",
    "init_duration_ms_sum",
    "init_duration_ms_max",
)
_INTEGER_COLUMNS = {"invocations", "errors", "timeouts", "out_of_memory", "cold_starts"}

Sleep = Callable[[float], None]


def histogram_query(value: str) -> str:
    """Insights query: count of REPORT lines per log group x hour x memory x bucket (pure)."""
    return (
        f'filter @type = "REPORT" and ispresent({value.split(" ")[0]})'
        f" | fields @memorySize / 1000000 as memory_mb,"
        f" if({value} > 0, floor(log({value}) / {_LOG_GAMMA}), -999999) as bucket"
        " | stats count(*) as n by @log, bin(1h), memory_mb, bucket"
    )


def queries() -> dict[str, str]:
    """Every query run per batch of log groups: 'summary' and one per histogram column."""
    return {
        "summary": SUMMARY_QUERY,
        **{c: histogram_query(v) for c, v in HISTOGRAM_VALUES.items()},
    }


def log_group_batches(
    groups: Sequence[str], size: int = MAX_LOG_GROUPS_PER_QUERY
) -> list[list[str]]:
    return [list(groups[i : i + size]) for i in range(0, len(groups), size)]


def _row_dict(row: Sequence[dict[str, str]]) -> dict[str, str]:
    return {cell["field"]: cell.get("value", "") for cell in row}


def _hour_of(fields: dict[str, str]) -> int | None:
    for name, value in fields.items():
        if name.startswith("bin("):
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
            self.rows[key] = {c: 0 for c in _SUMMARY_COLUMNS} | {
                "duration_ms_max": None,
                "max_memory_used_mb_max": None,
                "init_duration_ms_max": None,
                **{c: {} for c in HISTOGRAM_VALUES},
            }
        return self.rows[key]


def _key(fields: dict[str, str]) -> FactKey | None:
    hour = _hour_of(fields)
    try:
        memory = round(float(fields.get("memory_mb", "")))
    except ValueError:
        return None
    if hour is None or "@log" not in fields:
        return None
    return (_log_group_of(fields["@log"]), hour, memory)


def transform_summary(rows: Sequence[Sequence[dict[str, str]]], facts: Facts) -> None:
    """Summary query rows -> counts, sums and maxima (pure, in place on ``facts``)."""
    for raw in rows:
        fields = _row_dict(raw)
        key = _key(fields)
        if key is None:
            continue
        row = facts.row(key)
        for column in _SUMMARY_COLUMNS:
            text = fields.get(column)
            if text in (None, ""):
                continue
            value = float(text)
            if column in _INTEGER_COLUMNS or column == "max_memory_used_mb_max":
                row[column] = round(value)
            else:
                row[column] = value


def transform_histogram(
    rows: Sequence[Sequence[dict[str, str]]], column: str, facts: Facts
) -> None:
    """Histogram query rows (bucket, count) -> histogram JSON dicts (pure, in place)."""
    for raw in rows:
        fields = _row_dict(raw)
        key = _key(fields)
        if key is None:
            continue
        try:
            bucket = int(float(fields["bucket"]))
            count = int(float(fields["n"]))
        except (KeyError, ValueError):
            continue
        name = histogram.ZERO_KEY if bucket == -999999 else str(bucket)
        hist = facts.row(key)[column]
        hist[name] = hist.get(name, 0) + count


@dataclass
class QueryJob:
    name: str
    query: str
    log_groups: list[str]
    start: int
    end: int
    query_id: str | None = None
    rows: list[Any] = field(default_factory=list)
    bytes_scanned: int = 0
    status: str = "Pending"


def run_queries(
    client: Any,
    jobs: list[QueryJob],
    *,
    max_concurrent: int = 10,
    sleep: Sleep = time.sleep,
    poll_s: float = 1.0,
    max_poll_s: float = 15.0,
) -> list[QueryJob]:
    """Run Insights queries, at most ``max_concurrent`` in flight, polling with backoff.

    A query whose result hits the 10,000-row limit is split into two half windows.
    Returns finished jobs (status Complete, Failed, Cancelled or Timeout).
    """
    pending = list(jobs)
    running: list[QueryJob] = []
    finished: list[QueryJob] = []
    delay = poll_s
    while pending or running:
        while pending and len(running) < max_concurrent:
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
                if error_code(exc) == "LimitExceededException" and running:
                    break  # the account's concurrent-query limit: wait for one to finish
                raise
            pending.pop(0)
            running.append(job)
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
            if (
                job.status == "Complete"
                and len(job.rows) >= MAX_RESULT_ROWS
                and job.end - job.start > HOUR_S
            ):
                middle = hour_floor((job.start + job.end) // 2)
                middle = middle if middle > job.start else job.start + HOUR_S
                pending.append(QueryJob(job.name, job.query, job.log_groups, job.start, middle))
                pending.append(QueryJob(job.name, job.query, job.log_groups, middle, job.end))
                job.rows = []
            finished.append(job)
    return finished


def existing_log_groups(client: Any, wanted: Sequence[str]) -> list[str]:
    """Those of ``wanted`` that exist (a missing group means the function never ran)."""
    found: set[str] = set()
    prefixes = {"/aws/lambda/"} | {g for g in wanted if not g.startswith("/aws/lambda/")}
    for prefix in sorted(prefixes):
        paginator = client.get_paginator("describe_log_groups")
        for page in paginator.paginate(logGroupNamePrefix=prefix):
            found.update(g["logGroupName"] for g in page.get("logGroups", []))
    return [g for g in wanted if g in found]


def load_facts(store: Store, facts: Facts, group_to_function: dict[str, int]) -> int:
    """Upsert hourly_facts rows with source 'insights' (whole-row replace: idempotent)."""
    stored = 0
    with store.write() as db:
        for (group, hour, memory), row in sorted(facts.rows.items()):
            fid = group_to_function.get(group)
            if fid is None:
                continue
            values = {
                **{c: row[c] for c in _SUMMARY_COLUMNS},
                **{c: histogram.to_json(row[c]) for c in HISTOGRAM_VALUES},
            }
            names = ", ".join(["function_id", "hour", "memory_mb", "source", *values])
            marks = ", ".join("?" for _ in range(len(values) + 4))
            updates = ", ".join(f"{c} = excluded.{c}" for c in values)
            db.conn.execute(
                f"INSERT INTO hourly_facts ({names}) VALUES ({marks}) ON CONFLICT"
                f" (function_id, hour, memory_mb, source) DO UPDATE SET {updates}",
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
) -> None:
    """Insights queries for every batch of <= 50 log groups; facts upserted in one go."""
    jobs = [
        QueryJob(name, query, batch, start, end)
        for batch in log_group_batches(sorted(groups))
        for name, query in queries().items()
    ]
    facts = Facts()
    done = run_queries(client, jobs, max_concurrent=max_concurrent, sleep=sleep, poll_s=poll_s)
    for job in done:
        result.bytes_scanned += job.bytes_scanned
        if job.status != "Complete":
            result.fail("logs:StartQuery", job.status, f"{job.name} query ended {job.status}")
            continue
        if job.name == "summary":
            transform_summary(job.rows, facts)
        else:
            transform_histogram(job.rows, job.name, facts)
    result.items = load_facts(store, facts, groups)
    result.estimated_cost_usd = result.bytes_scanned / 1e9 * PRICE_PER_GB_SCANNED_USD
    result.message = f"{len(groups)} log groups, {len(jobs)} queries"


def collect_filter(
    store: Store,
    client: Any,
    groups: dict[str, int],
    result: SourceResult,
    *,
    start: int,
    end: int,
    json_groups: frozenset[str] = frozenset(),
) -> None:
    """FilterLogEvents for REPORT lines, parsed by the core parser and stored like local logs.

    Invocations are upserted by request id and the 'local' hourly facts of the touched
    hours rebuilt, so re-reading a window changes nothing.
    """
    lines = 0
    skipped = 0
    for group, fid in sorted(groups.items()):
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
) -> None:
    """REPORT statistics of the account/region's known functions over [start, end)."""
    client = target.client("logs", counter)
    functions, json_groups = _functions(store, target)
    try:
        present = existing_log_groups(client, list(functions))
    except ClientError as exc:
        record_failure(result, client, "DescribeLogGroups", exc)
        return
    groups = {g: functions[g] for g in present}
    try:
        if options.logs_mode == "filter":
            collect_filter(
                store, client, groups, result, start=start, end=end, json_groups=json_groups
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
            )
    except ClientError as exc:
        operation = "FilterLogEvents" if options.logs_mode == "filter" else "StartQuery"
        record_failure(result, client, getattr(exc, "operation_name", operation), exc)
