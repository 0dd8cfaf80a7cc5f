"""REPORT statistics from a Firehose archive of CloudWatch Logs in S3, aggregated by Athena.

Organisations that keep their Lambda logs for long send them through a subscription
filter and Kinesis Data Firehose to S3: ``DATA_MESSAGE`` records (``owner`` = account,
``logGroup``, ``logStream``, ``logEvents``) under ``YYYY/MM/DD/HH/`` prefixes, often from
every account into one bucket. ``athena_table_ddl`` declares that archive as an Athena
table (JSON SerDe, gzip by extension, partition projection on the date/hour path: no
crawler, no ``MSCK REPAIR``); ``build_query`` is the ONE query run per collection window.

The query computes, per account x function x hour x configured memory, the hourly facts
local ingest computes (lambdascope.store): counts, sums, maxima and the histograms with
buckets ``floor(ln(x) / ln(1.02))`` (lambdascope.histogram, ``"z"`` for values <= 0), for
text ``REPORT`` lines and JSON ``platform.report`` records. As local ingest does, a report
is taken once per request id (Firehose may deliver a record twice), a ``Task timed out``
line marks its request as a timeout, a runtime out-of-memory line marks it out of memory
(and an error unless it timed out), and a JSON report takes its hour from its ``time``
field. The function is the log group's ``/aws/lambda/<name>``, or in a shared log group the
``<name>`` of the stream ``YYYY/MM/DD/<name>[<version>]<guid>``.

Partition pruning: only the prefixes of the window's hours are read, plus LATE_HOURS after
it (Firehose files a record under the hour it received it, which can be after the event)
and EARLY_HOURS before it (a JSON report's ``time`` can follow its event's timestamp).
Every hour of the window is therefore complete, which matters because its facts replace
the stored ones (windows overlap from one run to the next).
Athena bills the bytes a query scans ($5 per TB, at least 10 MB per query); both are
recorded in collection_runs. The facts are written only once every result page has been
read, in one transaction: a failed, cancelled or throttled query writes nothing.

The SQL keeps to functions Trino (Athena engine 3) and DuckDB share after sqlglot's
transpilation, so its meaning is tested on DuckDB against local ingest of the same files.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from collectors.common import (
    CallCounter,
    CollectOptions,
    SourceResult,
    Stop,
    Store,
    Target,
    never,
    record_failure,
)
from collectors.runs import record_run, resolve_window, save_watermark
from lambdascope import db as store_db
from lambdascope import histcodec, histogram, packing
from lambdascope.timeutil import HOUR_S, hour_floor, to_epoch

# Athena list price (us-east-1): $5 per TB scanned, bytes rounded up to the megabyte,
# at least 10 MB per query (AWS bills TB and MB in powers of 1,024).
PRICE_PER_TB_SCANNED_USD = 5.0
MIN_BYTES_BILLED = 10 * 2**20
# Hours after a window whose prefixes are read too: records filed late by Firehose. And one
# hour before it: a JSON report takes its hour from its ``time``, which can be a little after
# its log event's timestamp (the one Firehose files it by).
LATE_HOURS = 1
EARLY_HOURS = 1
# GetQueryResults returns at most 1,000 rows per page.
PAGE_ROWS = 1000
PARTITION_FORMAT = "%Y/%m/%d/%H"
_NAME_RE = re.compile(r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")
_S3_URI_RE = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$")

_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# As lambdascope.logparse's out-of-memory messages.
_OOM_PATTERN = (
    r"Runtime\.OutOfMemory|fatal error: runtime: out of memory|java\.lang\.OutOfMemoryError"
    r"|JavaScript heap out of memory|\bMemoryError\b|Runtime exited with error: signal: killed"
)
# Fields of a text REPORT line (tab separated; Duration follows the request id)
P_REQUEST_ID = r"REPORT\s+RequestId:\s*([^\s]+)"
P_DURATION = r"RequestId:\s*[^\s]+\s+Duration: ([0-9.]+) ms"
P_RESTORE = r"\tRestore Duration: ([0-9.]+) ms"
P_ERROR_TYPE = r"Error Type: ([^\s]+)"
# hourly_facts histogram column -> the value it counts
HISTOGRAMS = {
    "duration_hist": "duration_ms",
    "billed_duration_hist": "billed_duration_ms",
    "max_memory_used_hist": "max_memory_used_mb",
    "init_duration_hist": "init_duration_ms",
}
# hourly_facts columns the query returns, in this order after the four key columns
FACT_COLUMNS = (
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
    "restore_duration_ms_sum",
    "billed_restore_duration_ms_sum",
    *HISTOGRAMS,
)
KEY_COLUMNS = ("account_id", "function_name", "hour", "memory_mb")
_INTEGER_COLUMNS = {
    "invocations",
    "errors",
    "timeouts",
    "out_of_memory",
    "cold_starts",
    "max_memory_used_mb_max",
}


class AthenaSetupError(ValueError):
    """A flag value Athena mode cannot use (one line for the user)."""


def check_table_name(table: str) -> tuple[str, str]:
    """``DATABASE.TABLE`` -> (database, table); raises AthenaSetupError otherwise."""
    if not _NAME_RE.match(table or ""):
        raise AthenaSetupError(
            f"--athena-table must be DATABASE.TABLE (letters, digits, _), not {table!r}"
        )
    database, name = table.split(".")
    return database.lower(), name.lower()


def check_s3_uri(uri: str, flag: str) -> str:
    """An ``s3://bucket/prefix/`` location, with its trailing slash."""
    if not _S3_URI_RE.match(uri or ""):
        raise AthenaSetupError(f"{flag} must be an s3://bucket/prefix/ location, not {uri!r}")
    return uri if uri.endswith("/") else uri + "/"


def athena_table_ddl(
    location: str, table: str = "lambda_archive.cwl_firehose", start: str = "2020/01/01/00"
) -> str:
    """The CREATE EXTERNAL TABLE statement for a Firehose archive at ``location``.

    One JSON record per line (Firehose with CloudWatch Logs decompression and a new-line
    delimiter; gzip'd objects are read by their ``.gz`` extension), partition ``dt`` =
    the ``YYYY/MM/DD/HH`` path, projected from ``start`` to now.
    """
    database, name = check_table_name(table)
    location = check_s3_uri(location, "--location")
    return f"""CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{name}` (
  `messagetype` string,
  `owner` string,
  `loggroup` string,
  `logstream` string,
  `subscriptionfilters` array<string>,
  `logevents` array<struct<`id`:string,`timestamp`:bigint,`message`:string>>
)
PARTITIONED BY (`dt` string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '{location}'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy/MM/dd/HH',
  'projection.dt.range' = '{start},NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'HOURS',
  'storage.location.template' = '{location}${{dt}}/'
)"""


def partition(epoch: int) -> str:
    """The ``dt`` partition value (``YYYY/MM/DD/HH``) of an hour."""
    return datetime.fromtimestamp(epoch, UTC).strftime(PARTITION_FORMAT)


def _text(pattern: str, cast: str = "double") -> str:
    # regexp_extract gives NULL (Trino) or '' (DuckDB) without a match: try_cast maps both
    extract = f"regexp_extract(message, '{pattern}', 1)"
    return f"nullif({extract}, '')" if cast == "varchar" else f"try_cast({extract} AS {cast})"


def _json(path: str, cast: str = "double") -> str:
    extract = f"json_extract_scalar(message, '$.{path}')"
    return extract if cast == "varchar" else f"try_cast({extract} AS {cast})"


def _status(expression: str) -> str:
    # the Telemetry API's "failure" counts as an error (lambdascope.logparse)
    return (
        f"CASE {expression} WHEN 'success' THEN 'success' WHEN 'error' THEN 'error'"
        f" WHEN 'timeout' THEN 'timeout' WHEN 'failure' THEN 'error' END"
    )


def _bucket(column: str) -> str:
    return (
        f"CASE WHEN {column} > 0 THEN CAST(CAST(floor(ln({column}) / ln({histogram.GAMMA}))"
        f" AS BIGINT) AS varchar) WHEN {column} IS NOT NULL THEN '{histogram.ZERO_KEY}' END"
    )


def build_query(table: str, start: int, end: int) -> str:
    """The Athena (Trino) query of hourly facts for reports in [start, end) (pure).

    Rows: account_id, function_name, hour (epoch seconds), memory_mb, then FACT_COLUMNS
    (histograms as JSON objects of bucket -> count).
    """
    database, name = check_table_name(table)
    first = partition(hour_floor(start) - EARLY_HOURS * HOUR_S)
    last = partition(hour_floor(end - 1) + LATE_HOURS * HOUR_S)
    is_report = "regexp_like(message, '(^|[^A-Z_])REPORT\\s+RequestId:')"
    is_platform = "strpos(message, '\"platform.') > 0"
    is_json_report = (
        "(message LIKE '{%' AND json_extract_scalar(message, '$.type') = 'platform.report')"
    )
    histograms = ",\n  ".join(
        f"json_format(CAST(histogram({_bucket(value)}) AS JSON)) AS {column}"
        for column, value in HISTOGRAMS.items()
    )
    return f"""WITH events AS (
  SELECT owner AS account_id,
    CASE WHEN loggroup LIKE '/aws/lambda/%' THEN substr(loggroup, 13)
      ELSE nullif(regexp_extract(logstream,
        '^[0-9]{{4}}/[0-9]{{2}}/[0-9]{{2}}/([^\\[/]+)\\[', 1), '')
    END AS function_name,
    e."timestamp" AS event_ms, e.id AS event_id, e.message AS message
  FROM "{database}"."{name}" CROSS JOIN UNNEST(logevents) AS t(e)
  WHERE dt >= '{first}' AND dt <= '{last}' AND messagetype = 'DATA_MESSAGE'
),
text_reports AS (
  SELECT account_id, function_name, event_ms, event_id,
    {_text(P_REQUEST_ID, "varchar")} AS request_id,
    floor(CAST(event_ms AS double) / 1000) AS ts,
    {_text(P_DURATION)} AS duration_ms,
    {_text("Billed Duration: ([0-9.]+) ms")} AS billed_duration_ms,
    {_text("Memory Size: ([0-9]+) MB", "bigint")} AS memory_mb,
    {_text("Max Memory Used: ([0-9]+) MB", "bigint")} AS max_memory_used_mb,
    {_text("Init Duration: ([0-9.]+) ms")} AS init_duration_ms,
    {_text(P_RESTORE)} AS restore_duration_ms,
    {_text("Billed Restore Duration: ([0-9.]+) ms")} AS billed_restore_duration_ms,
    {_status(_text("Status: ([a-z]+)", "varchar"))} AS status,
    {_text(P_ERROR_TYPE, "varchar")} AS error_type
  FROM events WHERE {is_report}
),
json_reports AS (
  SELECT account_id, function_name, event_ms, event_id,
    {_json("record.requestId", "varchar")} AS request_id,
    coalesce(floor(to_unixtime(try(from_iso8601_timestamp({_json("time", "varchar")})))),
      floor(CAST(event_ms AS double) / 1000)) AS ts,
    {_json("record.metrics.durationMs")} AS duration_ms,
    {_json("record.metrics.billedDurationMs")} AS billed_duration_ms,
    CAST(floor({_json("record.metrics.memorySizeMB")}) AS BIGINT) AS memory_mb,
    CAST(floor({_json("record.metrics.maxMemoryUsedMB")}) AS BIGINT) AS max_memory_used_mb,
    {_json("record.metrics.initDurationMs")} AS init_duration_ms,
    {_json("record.metrics.restoreDurationMs")} AS restore_duration_ms,
    {_json("record.metrics.billedRestoreDurationMs")} AS billed_restore_duration_ms,
    {_status(_json("record.status", "varchar"))} AS status,
    nullif({_json("record.errorType", "varchar")}, '') AS error_type
  FROM events WHERE NOT {is_report} AND {is_platform} AND {is_json_report}
),
reports AS (
  SELECT *, row_number() OVER (PARTITION BY account_id, function_name, request_id
    ORDER BY event_ms, event_id) AS nth_copy
  FROM (SELECT * FROM text_reports WHERE duration_ms IS NOT NULL
    UNION ALL SELECT * FROM json_reports) AS candidates
  WHERE request_id IS NOT NULL AND function_name IS NOT NULL
    AND ts >= {start} AND ts < {end}
),
marks AS (
  SELECT account_id, function_name,
    CASE WHEN regexp_like(message, 'Task timed out after\\s+[^\\s]+\\s+seconds')
      THEN nullif(regexp_extract(message,
        '({_UUID}).*Task timed out after\\s+[^\\s]+\\s+seconds', 1), '')
      ELSE nullif(regexp_extract(message, '({_UUID})', 1), '') END AS request_id,
    max(CASE WHEN regexp_like(message, 'Task timed out after\\s+[^\\s]+\\s+seconds')
      THEN 1 ELSE 0 END) AS timed_out,
    max(CASE WHEN NOT regexp_like(message, 'Task timed out after\\s+[^\\s]+\\s+seconds')
      THEN 1 ELSE 0 END) AS out_of_memory
  FROM events
  WHERE NOT {is_report} AND NOT {is_platform}
    AND (regexp_like(message, 'Task timed out after\\s+[^\\s]+\\s+seconds')
      OR regexp_like(message, '{_OOM_PATTERN}'))
  GROUP BY 1, 2, 3
),
invocations AS (
  SELECT r.account_id, r.function_name, CAST(floor(r.ts / 3600) * 3600 AS BIGINT) AS hour,
    coalesce(r.memory_mb, 0) AS memory_mb, r.duration_ms, r.billed_duration_ms,
    r.max_memory_used_mb, r.init_duration_ms, r.restore_duration_ms,
    r.billed_restore_duration_ms,
    CASE WHEN m.timed_out = 1 THEN 'timeout'
      WHEN m.out_of_memory = 1 AND coalesce(r.status, '') <> 'timeout'
        AND NOT coalesce(strpos(r.error_type, 'OutOfMemory') > 0, false) THEN 'error'
      WHEN r.status IS NULL AND strpos(r.error_type, 'OutOfMemory') > 0 THEN 'error'
      ELSE r.status END AS status,
    CASE WHEN strpos(r.error_type, 'OutOfMemory') > 0 OR m.out_of_memory = 1 THEN 1 ELSE 0
      END AS out_of_memory
  FROM reports r LEFT JOIN marks m ON m.account_id = r.account_id
    AND m.function_name = r.function_name AND m.request_id = r.request_id
  WHERE r.nth_copy = 1
)
SELECT account_id, function_name, hour, memory_mb,
  count(*) AS invocations,
  sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
  sum(CASE WHEN status = 'timeout' THEN 1 ELSE 0 END) AS timeouts,
  sum(out_of_memory) AS out_of_memory,
  count(init_duration_ms) AS cold_starts,
  coalesce(sum(duration_ms), 0) AS duration_ms_sum,
  max(duration_ms) AS duration_ms_max,
  coalesce(sum(billed_duration_ms), 0) AS billed_duration_ms_sum,
  max(max_memory_used_mb) AS max_memory_used_mb_max,
  coalesce(sum(init_duration_ms), 0) AS init_duration_ms_sum,
  max(init_duration_ms) AS init_duration_ms_max,
  coalesce(sum(restore_duration_ms), 0) AS restore_duration_ms_sum,
  coalesce(sum(billed_restore_duration_ms), 0) AS billed_restore_duration_ms_sum,
  {histograms}
FROM invocations
GROUP BY account_id, function_name, hour, memory_mb
ORDER BY account_id, function_name, hour, memory_mb"""


FactKey = tuple[str, str, int, int]  # (account id, function name, hour, memory_mb)


def _value(column: str, text: str | None) -> Any:
    if column in HISTOGRAMS:
        parsed = json.loads(text) if text else {}
        if not isinstance(parsed, dict):
            raise ValueError(column)
        return {str(k): int(v) for k, v in parsed.items()}
    if text in (None, ""):
        return None if column.endswith("_max") else 0
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(column)
    return round(number) if column in _INTEGER_COLUMNS else number


def transform_rows(
    rows: Sequence[Sequence[str | None]],
) -> tuple[dict[FactKey, dict[str, Any]], int]:
    """Result rows (cells as text, in KEY_COLUMNS + FACT_COLUMNS order) -> hourly facts by
    account x function x hour x memory, and the number of malformed rows skipped (pure)."""
    facts: dict[FactKey, dict[str, Any]] = {}
    skipped = 0
    width = len(KEY_COLUMNS) + len(FACT_COLUMNS)
    for row in rows:
        try:
            if len(row) != width or not row[0] or not row[1]:
                raise ValueError("row")
            key = (str(row[0]), str(row[1]), int(float(row[2] or "")), int(float(row[3] or "")))
            values = {
                column: _value(column, text)
                for column, text in zip(FACT_COLUMNS, row[len(KEY_COLUMNS) :], strict=True)
            }
        except (ValueError, TypeError):
            skipped += 1
            continue
        facts[key] = values
    return facts, skipped


# --- the API flow ------------------------------------------------------------------------

Sleep = Callable[[float], None]


@dataclass
class QueryOutcome:
    """What one query execution ended as."""

    execution_id: str
    state: str = "QUEUED"
    reason: str = ""
    bytes_scanned: int = 0
    rows: list[list[str | None]] = field(default_factory=list)


def charge_usd(bytes_scanned: int) -> float:
    """Athena's charge for one query: $5 per TB, rounded up to the MB, 10 MB minimum."""
    billed = max(math.ceil(bytes_scanned / 2**20) * 2**20, MIN_BYTES_BILLED)
    return billed / 2**40 * PRICE_PER_TB_SCANNED_USD


def start_query(client: Any, query: str, *, output: str, workgroup: str, database: str) -> str:
    """StartQueryExecution; returns the execution id."""
    response = client.start_query_execution(
        QueryString=query,
        QueryExecutionContext={"Database": database},
        ResultConfiguration={"OutputLocation": output},
        WorkGroup=workgroup,
    )
    return str(response["QueryExecutionId"])


def wait_for(
    client: Any,
    execution_id: str,
    *,
    sleep: Sleep = time.sleep,
    poll_s: float = 1.0,
    max_poll_s: float = 15.0,
    stop: Stop = never,
) -> QueryOutcome:
    """Poll GetQueryExecution until SUCCEEDED, FAILED or CANCELLED (backing off to
    ``max_poll_s``). When ``stop()`` becomes true the query is cancelled (StopQueryExecution)
    so it scans nothing more."""
    outcome = QueryOutcome(execution_id)
    delay = poll_s
    stopped = False
    while True:
        execution = client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
        status = execution.get("Status", {})
        outcome.state = str(status.get("State", "UNKNOWN"))
        outcome.reason = str(status.get("StateChangeReason", ""))
        outcome.bytes_scanned = int(execution.get("Statistics", {}).get("DataScannedInBytes", 0))
        if outcome.state in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return outcome
        if stop() and not stopped:
            client.stop_query_execution(QueryExecutionId=execution_id)
            stopped = True
        sleep(delay)
        delay = min(delay * 2, max_poll_s)


def result_rows(client: Any, execution_id: str) -> list[list[str | None]]:
    """Every row of a finished query, without the header row Athena puts first."""
    rows: list[list[str | None]] = []
    columns: list[str] | None = None
    paginator = client.get_paginator("get_query_results")
    for page in paginator.paginate(
        QueryExecutionId=execution_id, PaginationConfig={"PageSize": PAGE_ROWS}
    ):
        result_set = page.get("ResultSet", {})
        if columns is None:
            info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
            columns = [str(c.get("Name", "")) for c in info]
        for raw in result_set.get("Rows", []):
            cells = [cell.get("VarCharValue") for cell in raw.get("Data", [])]
            if not rows and cells in (columns, list(KEY_COLUMNS + FACT_COLUMNS)):
                continue  # the header row
            rows.append(cells)
    return rows


def run_query(
    client: Any,
    query: str,
    *,
    output: str,
    workgroup: str,
    database: str,
    sleep: Sleep = time.sleep,
    poll_s: float = 1.0,
    stop: Stop = never,
) -> QueryOutcome:
    """Start a query, wait for it, and read its rows when it succeeded."""
    execution_id = start_query(client, query, output=output, workgroup=workgroup, database=database)
    try:
        outcome = wait_for(client, execution_id, sleep=sleep, poll_s=poll_s, stop=stop)
    except ClientError:
        # polling failed for good (throttled, denied): do not leave a billed query running
        with contextlib.suppress(ClientError, BotoCoreError):
            client.stop_query_execution(QueryExecutionId=execution_id)
        raise
    if outcome.state == "SUCCEEDED":
        outcome.rows = result_rows(client, execution_id)
    return outcome


# --- the store ---------------------------------------------------------------------------


@dataclass
class Placement:
    """How result rows map to stored functions."""

    ids: dict[tuple[str, str], int] = field(default_factory=dict)
    other_accounts: set[str] = field(default_factory=set)
    ambiguous: set[tuple[str, str]] = field(default_factory=set)


def load_facts(
    store: Store, facts: dict[FactKey, dict[str, Any]], targets: Sequence[Target]
) -> tuple[int, Placement]:
    """Write hourly_facts rows (source 'insights': facts aggregated in AWS from the logs,
    whole-row replace, so re-running a window changes nothing), in ONE transaction.

    A row goes to the account's function of that name in a collected region; a function
    the inventory does not know (e.g. deleted) is added when its account is collected in
    one region only. Rows of accounts not collected, or of a name found in several of the
    account's regions, are left out and counted.
    """
    pairs = {(t.account_id, t.region) for t in targets}
    regions_of: dict[str, set[str]] = {}
    for account, region in pairs:
        regions_of.setdefault(account, set()).add(region)
    placement = Placement()
    stored = 0
    with store.write() as db:
        known: dict[tuple[str, str], list[int]] = {}
        for fid, account, region, name in db.conn.execute(
            "SELECT id, account_id, region, function_name FROM functions"
        ):
            if (account, region) in pairs:
                known.setdefault((account, name), []).append(int(fid))
        for (account, name, hour, memory), values in sorted(facts.items()):
            if account not in regions_of:
                placement.other_accounts.add(account)
                continue
            ids = known.get((account, name), [])
            if not ids and len(regions_of[account]) == 1:
                region = next(iter(regions_of[account]))
                ids = [store_db.function_id(db, name, account, region, seen_at=hour)]
                known[(account, name)] = ids
            if len(ids) != 1:
                placement.ambiguous.add((account, name))
                continue
            placement.ids[(account, name)] = ids[0]
            row = {
                **{c: values[c] for c in FACT_COLUMNS if c not in HISTOGRAMS},
                **{c: histcodec.encode(values[c]) for c in HISTOGRAMS},
            }
            names = ", ".join(["function_id", "hour", "memory_mb", "source", *row])
            marks = ", ".join("?" for _ in range(len(row) + 4))
            packing.unpack_hours(db.conn, ((ids[0], hour),))
            db.conn.execute(
                f"INSERT OR REPLACE INTO hourly_facts ({names}) VALUES ({marks})",
                (ids[0], hour, memory, "insights", *row.values()),
            )
            stored += 1
    return stored, placement


def collect(
    store: Store,
    targets: Sequence[Target],
    options: CollectOptions,
    *,
    now: datetime,
    sleep: Sleep = time.sleep,
    stop: Stop = never,
) -> SourceResult:
    """The logs source in Athena mode: ONE query over the archive for the window (all
    accounts at once), run with the first target's credentials and region. Returns the
    result recorded as the 'logs' collection run of that account x region."""
    home = targets[0]
    result = SourceResult(home.account_id, home.region, "logs")
    counter = CallCounter()
    client = home.client("athena", counter)
    database, _name = check_table_name(options.athena_table or "")
    with store.lock:
        start, end = resolve_window(store.db, options, home, "logs", now)
    result.window_start, result.window_end = start, end
    try:
        outcome = run_query(
            client,
            build_query(options.athena_table or "", start, end),
            output=check_s3_uri(options.athena_output or "", "--athena-output"),
            workgroup=options.athena_workgroup,
            database=database,
            sleep=sleep,
            poll_s=options.poll_interval_s,
            stop=stop,
        )
    except ClientError as exc:
        operation = getattr(exc, "operation_name", "") or "StartQueryExecution"
        record_failure(result, client, operation, exc)
        result.status = "failed"
        result.api_calls = counter.calls
        return result
    result.bytes_scanned = outcome.bytes_scanned
    result.estimated_cost_usd = charge_usd(outcome.bytes_scanned)
    result.api_calls = counter.calls
    if outcome.state != "SUCCEEDED":
        if outcome.state == "CANCELLED" and stop():
            result.status = "interrupted"
            result.message = f"query {outcome.execution_id} cancelled on request; nothing stored"
            return result
        result.fail(
            "athena:GetQueryExecution",
            outcome.state,
            f"query {outcome.execution_id} {outcome.state}: {outcome.reason or 'no reason given'}",
        )
        result.status = "failed"
        return result
    facts, skipped = transform_rows(outcome.rows)
    result.items, placement = load_facts(store, facts, targets)
    result.message = (
        f"athena query {outcome.execution_id}: {len(outcome.rows)} rows,"
        f" {len(placement.ids)} functions"
        + (f", {skipped} malformed rows skipped" if skipped else "")
        + (
            f", rows of {len(placement.other_accounts)} accounts not collected left out"
            if placement.other_accounts
            else ""
        )
        + (
            f", rows of {len(placement.ambiguous)} functions left out (in several collected"
            " regions of their account, or unknown to the inventory of an account collected"
            " in several regions)"
            if placement.ambiguous
            else ""
        )
    )
    save_watermark(store, home, "logs", end, now)
    return result


def collect_run(
    store: Store,
    targets: Sequence[Target],
    options: CollectOptions,
    *,
    now: datetime,
    sleep: Sleep = time.sleep,
    stop: Stop = never,
) -> SourceResult:
    """``collect`` plus its collection_runs row (credential problems still stop the run)."""
    started = to_epoch(now)
    try:
        result = collect(store, targets, options, now=now, sleep=sleep, stop=stop)
    except EndpointConnectionError as exc:
        home = targets[0]
        result = SourceResult(home.account_id, home.region, "logs", status="failed")
        result.errors.append(
            {
                "action": "athena:StartQueryExecution",
                "code": "EndpointConnectionError",
                "message": str(exc)[:300],
            }
        )
    record_run(store, result, started, to_epoch(now))
    return result


def window_partitions(start: int, end: int) -> list[str]:
    """The ``dt`` partitions the query of [start, end) reads (for messages and tests)."""
    last = hour_floor(end - 1) + LATE_HOURS * HOUR_S
    first = hour_floor(start) - EARLY_HOURS * HOUR_S
    return [partition(h) for h in range(first, last + 1, HOUR_S)]
