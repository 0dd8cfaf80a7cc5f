"""CloudWatch metrics: hourly GetMetricData packed <= 500 queries per call across functions.

CloudWatch sends no datapoint for an hour with nothing to count: such hours are stored
as absence (NULL column or no row), never as zero.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collectors.aws import CallCounter, SourceResult, Store, Target
from lambdascope.timeutil import HOUR_S, from_epoch, hour_floor, to_epoch

MAX_QUERIES_PER_CALL = 500
PERIOD_S = HOUR_S
# GetMetricData list price (us-east-1): $0.01 per 1,000 metrics requested.
PRICE_PER_METRIC_USD = 0.01 / 1000

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
                {
                    "Id": query_id,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/Lambda",
                            "MetricName": metric,
                            "Dimensions": [{"Name": "FunctionName", "Value": name}],
                        },
                        "Period": PERIOD_S,
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
            )
    return queries, refs


def batches(items: Sequence[Any], size: int = MAX_QUERIES_PER_CALL) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


def get_metric_data(
    client: Any, queries: Sequence[dict[str, Any]], start: int, end: int
) -> Iterator[dict[str, Any]]:
    """Every MetricDataResult of one batch, following NextToken."""
    kwargs: dict[str, Any] = {
        "MetricDataQueries": list(queries),
        "StartTime": from_epoch(hour_floor(start)),
        "EndTime": from_epoch(end),
        "ScanBy": "TimestampAscending",
    }
    while True:
        page = client.get_metric_data(**kwargs)
        yield from page.get("MetricDataResults", [])
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


def transform_results(
    results: Sequence[dict[str, Any]], refs: dict[str, QueryRef]
) -> dict[tuple[int, int], dict[str, float]]:
    """MetricDataResults -> {(function_id, hour): {column: value}} for datapoints present (pure).

    Pages of the same query id are merged; an hour without a datapoint has no entry.
    """
    rows: dict[tuple[int, int], dict[str, float]] = {}
    for result in results:
        ref = refs.get(result["Id"])
        if ref is None:
            continue
        for timestamp, value in zip(
            result.get("Timestamps", []), result.get("Values", []), strict=False
        ):
            moment = timestamp if isinstance(timestamp, datetime) else None
            if moment is None:
                continue
            hour = hour_floor(to_epoch(moment))
            rows.setdefault((ref.function_id, hour), {})[ref.column] = float(value)
    return rows


def load_metrics(store: Store, rows: dict[tuple[int, int], dict[str, float]]) -> int:
    """Upsert hourly_metrics; only columns that had datapoints are written."""
    with store.write() as db:
        for (fid, hour), values in sorted(rows.items()):
            columns = sorted(values)
            names = ", ".join(["function_id", "hour", *columns])
            marks = ", ".join("?" for _ in range(len(columns) + 2))
            updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
            db.conn.execute(
                f"INSERT INTO hourly_metrics ({names}) VALUES ({marks})"
                f" ON CONFLICT (function_id, hour) DO UPDATE SET {updates}",
                (fid, hour, *(values[c] for c in columns)),
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
) -> None:
    """Hourly metrics of every known function of one account/region over [start, end)."""
    client = target.client("cloudwatch", counter)
    functions = functions_of(store, target)
    queries, refs = build_queries(functions)
    stored_keys: set[tuple[int, int]] = set()
    requested = 0
    for batch in batches(queries, batch_size):
        before = counter.calls
        results = list(get_metric_data(client, batch, start, end))
        # Each call (first page or NextToken page) is billed for the metrics it requests.
        requested += len(batch) * max(1, counter.calls - before)
        rows = transform_results(results, refs)
        load_metrics(store, rows)
        stored_keys.update(rows)  # a function's queries may straddle two calls
    result.items = stored = len(stored_keys)
    result.estimated_cost_usd = requested * PRICE_PER_METRIC_USD
    result.message = f"{len(functions)} functions, {len(queries)} queries, {stored} function-hours"
