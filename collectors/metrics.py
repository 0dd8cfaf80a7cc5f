"""CloudWatch metrics: hourly GetMetricData packed <= 500 queries per call across functions.

CloudWatch sends no datapoint for an hour with nothing to count: such hours are stored
as absence (NULL column or no row), never as zero.

Re-reading a window replaces what CloudWatch revised: within the last REVISION_HORIZON_S
(late datapoints, a partial hour read earlier), a complete answer without a datapoint for
an hour that had one clears that value back to absence (NULL; a row left with no value is
deleted). Older hours are settled: a datapoint missing there means CloudWatch no longer
holds it at this resolution (retention), not that it was revised, so the stored value — the
history lambdascope keeps beyond CloudWatch retention — is never cleared.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from collectors.common import CallCounter, SourceResult, Stop, Store, Target, metric_query, never
from lambdascope import packing
from lambdascope.timeutil import HOUR_S, from_epoch, hour_floor, to_epoch

MAX_QUERIES_PER_CALL = 500
PERIOD_S = HOUR_S
REVISION_HORIZON_S = 24 * HOUR_S
# GetMetricData list price (us-east-1): $0.01 per 1,000 metrics requested.
PRICE_PER_METRIC_USD = 0.01 / 1000
# MetricDataResult statuses asked once more, then recorded as a partial collection.
RETRIED_STATUSES = ("InternalError", "Forbidden")

# (column in hourly_metrics, metric name, statistic)
METRIC_QUERIES: tuple[tuple[str, str, str], ...] = (
    ("invocations", "Invocations", "Sum"),
    ("errors", "Errors", "Sum"),
    ("throttles", "Throttles", "Sum"),
    ("duration_avg_ms", "Duration", "Average"),
    ("duration_p50_ms", "Duration", "p50"),
    ("duration_p95_ms", "Duration", "p95"),
    ("duration_p99_ms", "Duration", "p99"),
    ("duration_max_ms", "Duration", "Maximum"),
    ("concurrent_executions_max", "ConcurrentExecutions", "Maximum"),
    ("iterator_age_max_ms", "IteratorAge", "Maximum"),
    ("async_events_dropped", "AsyncEventsDropped", "Sum"),
    ("dead_letter_errors", "DeadLetterErrors", "Sum"),
    ("destination_delivery_failures", "DestinationDeliveryFailures", "Sum"),
    (
        "provisioned_concurrency_spillover_invocations",
        "ProvisionedConcurrencySpilloverInvocations",
        "Sum",
    ),
)
COLUMNS = tuple(column for column, _, _ in METRIC_QUERIES)


@dataclass(frozen=True)
class QueryRef:
    """What one query id means: which function and which hourly_metrics column."""

    function_id: int
    column: str


def build_queries(
    functions: Sequence[tuple[int, str]], metrics: Sequence[tuple[str, str, str]] = METRIC_QUERIES
) -> tuple[list[dict[str, Any]], dict[str, QueryRef]]:
    """MetricDataQueries for (function_id, function_name) pairs, and what each id means (pure)."""
    queries: list[dict[str, Any]] = []
    refs: dict[str, QueryRef] = {}
    for fid, name in functions:
        for index, (column, metric, stat) in enumerate(metrics):
            query_id = f"f{fid}_m{index}"
            refs[query_id] = QueryRef(fid, column)
            queries.append(
                metric_query(
                    query_id,
                    "AWS/Lambda",
                    metric,
                    [{"Name": "FunctionName", "Value": name}],
                    PERIOD_S,
                    stat,
                )
            )
    return queries, refs


def batches(items: Sequence[Any], size: int = MAX_QUERIES_PER_CALL) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


def get_metric_data(
    client: Any, queries: Sequence[dict[str, Any]], start: int, end: int
) -> Iterator[dict[str, Any]]:
    """Every MetricDataResult of one batch, following NextToken.

    A query answered InternalError or Forbidden is asked once more: with the NextToken
    when the page has one (as the API reference says), else in a request of its own. Its
    last answer is the one that counts (see failed_queries).
    """
    kwargs: dict[str, Any] = {
        "MetricDataQueries": list(queries),
        "StartTime": from_epoch(hour_floor(start)),
        "EndTime": from_epoch(end),
        "ScanBy": "TimestampAscending",
    }
    retried = False
    while True:
        page = client.get_metric_data(**kwargs)
        results = page.get("MetricDataResults", [])
        yield from results
        token = page.get("NextToken")
        if token:
            kwargs["NextToken"] = token
            continue
        failing = {r["Id"] for r in results if r.get("StatusCode") in RETRIED_STATUSES}
        if not failing or retried:
            return
        retried = True
        kwargs.pop("NextToken", None)
        kwargs["MetricDataQueries"] = [q for q in queries if q["Id"] in failing]


Ref = TypeVar("Ref")


def hourly_datapoints(
    results: Sequence[dict[str, Any]], refs: Mapping[str, Ref]
) -> Iterator[tuple[Ref, int, float]]:
    """(the query's ref, start of the hour, value) of every datapoint of the
    MetricDataResults whose Id is in ``refs`` (pure); pages of a query come one after
    the other."""
    for result in results:
        ref = refs.get(str(result.get("Id", "")))
        if ref is None:
            continue
        for timestamp, value in zip(
            result.get("Timestamps", []), result.get("Values", []), strict=False
        ):
            if isinstance(timestamp, datetime):
                yield ref, hour_floor(to_epoch(timestamp)), float(value)


def incomplete_queries(
    results: Sequence[dict[str, Any]], refs: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """(query id, status) of the queries in ``refs`` whose last page was not Complete."""
    status: dict[str, str] = {}
    for result in results:
        if str(result.get("Id", "")) in refs:
            status[result["Id"]] = str(result.get("StatusCode", "Complete"))
    return [(qid, code) for qid, code in status.items() if code != "Complete"]


def transform_results(
    results: Sequence[dict[str, Any]], refs: dict[str, QueryRef]
) -> dict[tuple[int, int], dict[str, float]]:
    """MetricDataResults -> {(function_id, hour): {column: value}} for datapoints present (pure).

    Pages of the same query id are merged; an hour without a datapoint has no entry.
    """
    rows: dict[tuple[int, int], dict[str, float]] = {}
    for ref, hour, value in hourly_datapoints(results, refs):
        rows.setdefault((ref.function_id, hour), {})[ref.column] = value
    return rows


def complete_columns(
    results: Sequence[dict[str, Any]], refs: dict[str, QueryRef]
) -> dict[int, set[str]]:
    """{function_id: columns} whose query CloudWatch answered completely (pure).

    With NextToken paging a query's last page carries its final status; a query that
    ended PartialData or Forbidden (or an unknown id) is not complete.
    """
    status: dict[str, str] = {}
    for result in results:
        status[result["Id"]] = str(result.get("StatusCode", "Complete"))
    complete: dict[int, set[str]] = {}
    for query_id, code in status.items():
        ref = refs.get(query_id)
        if ref is not None and code == "Complete":
            complete.setdefault(ref.function_id, set()).add(ref.column)
    return complete


def failed_queries(results: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """{status: query ids} of the queries whose last answer was InternalError or Forbidden."""
    status: dict[str, str] = {}
    for result in results:
        status[result["Id"]] = str(result.get("StatusCode", "Complete"))
    failed: dict[str, list[str]] = {}
    for query_id, code in status.items():
        if code in RETRIED_STATUSES:
            failed.setdefault(code, []).append(query_id)
    return failed


Revision = tuple[dict[int, set[str]], int, int]  # complete columns, [start, end) to revise


def load_metrics(
    store: Store,
    rows: dict[tuple[int, int], dict[str, float]],
    revise: Revision | None = None,
) -> int:
    """Write hourly_metrics; only columns that had datapoints are written.

    With ``revise`` = (complete columns per function, start, end), those columns are first
    cleared to NULL over [start, end) so an hour CloudWatch no longer answers becomes
    absence again; rows left with no value at all there are deleted.
    """
    with store.write() as db:
        packing.unpack_hours(db.conn, rows)
        if revise is not None:
            complete, start, end = revise
            if start < end:
                packing.unpack(db.conn, complete, start, end)
            for fid, cleared in sorted(complete.items()):
                if start >= end:
                    break
                sets = ", ".join(f"{c} = NULL" for c in sorted(cleared))
                db.conn.execute(
                    f"UPDATE hourly_metrics SET {sets} WHERE function_id = ? AND hour >= ?"
                    " AND hour < ?",
                    (fid, start, end),
                )
        for (fid, hour), values in sorted(rows.items()):
            columns = sorted(values)
            # UPDATE, then INSERT when there was no row (the same as an upsert).
            sets = ", ".join(f"{c} = ?" for c in columns)
            cursor = db.conn.execute(
                f"UPDATE hourly_metrics SET {sets} WHERE function_id = ? AND hour = ?",
                (*(values[c] for c in columns), fid, hour),
            )
            if cursor.rowcount == 0:
                names = ", ".join(["function_id", "hour", *columns])
                marks = ", ".join("?" for _ in range(len(columns) + 2))
                db.conn.execute(
                    f"INSERT INTO hourly_metrics ({names}) VALUES ({marks})",
                    (fid, hour, *(values[c] for c in columns)),
                )
        if revise is not None:
            complete, start, end = revise
            empty = " AND ".join(f"{c} IS NULL" for c in COLUMNS)
            for fid in sorted(complete):
                if start < end:
                    db.conn.execute(
                        "DELETE FROM hourly_metrics WHERE function_id = ? AND hour >= ?"
                        f" AND hour < ? AND {empty}",
                        (fid, start, end),
                    )
    return len(rows)


def functions_of(store: Store, target: Target) -> list[tuple[int, str]]:
    """(id, name) of the account/region's live functions in the store."""
    with store.lock:  # one connection is shared by the collection threads
        rows = store.db.conn.execute(
            "SELECT id, function_name FROM functions WHERE account_id = ? AND region = ?"
            " AND deleted_at IS NULL ORDER BY function_name",
            (target.account_id, target.region),
        ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def collect(
    store: Store,
    target: Target,
    result: SourceResult,
    counter: CallCounter,
    *,
    start: int,
    end: int,
    batch_size: int = MAX_QUERIES_PER_CALL,
    stop: Stop = never,
    now: int | None = None,
) -> None:
    """Hourly metrics of every known function of one account/region over [start, end).

    Each GetMetricData batch is stored on its own; a stop request is honoured between
    batches (the result is then 'interrupted' and the watermark stays where it was).
    Hours of the window within REVISION_HORIZON_S of ``now`` (default: ``end``) are
    revised: what CloudWatch no longer answers there goes back to absence.
    """
    revise_from = max(start, (end if now is None else now) - REVISION_HORIZON_S)
    revise_from = hour_floor(revise_from - 1) + HOUR_S if revise_from % HOUR_S else revise_from
    client = target.client("cloudwatch", counter)
    functions = functions_of(store, target)
    queries, refs = build_queries(functions)
    stored_keys: set[tuple[int, int]] = set()
    requested = 0
    all_batches = list(batches(queries, batch_size))
    done = 0
    for batch in all_batches:
        if stop():
            result.status = "interrupted"
            break
        done += 1
        before = counter.calls
        results = list(get_metric_data(client, batch, start, end))
        # Each call (first page or NextToken page) is billed for the metrics it requests.
        requested += len(batch) * max(1, counter.calls - before)
        rows = transform_results(results, refs)
        load_metrics(store, rows, (complete_columns(results, refs), revise_from, end))
        stored_keys.update(rows)  # a function's queries may straddle two calls
        for code, ids in failed_queries(results).items():
            # The part becomes partial, so its watermark stays and these hours are read again.
            result.fail(
                "cloudwatch:GetMetricData",
                code,
                f"{len(ids)} metric queries answered {code} after a retry (e.g. {ids[0]});"
                " their hours keep what was stored and are read again next run",
            )
    result.items = stored = len(stored_keys)
    result.estimated_cost_usd = requested * PRICE_PER_METRIC_USD
    result.message = f"{len(functions)} functions, {len(queries)} queries, {stored} function-hours"
    if result.status == "interrupted":
        result.message += f"; stopped after {done - 1} of {len(all_batches)} batches"
