"""Lambda Insights metrics: the ``LambdaInsights`` CloudWatch namespace (dimension
``function_name``; the extension also publishes ``function_name, version``, not read) per
function x hour, stored in ``insights_metrics_hourly`` next to the hour's AWS/Lambda
Duration sum, so the CPU share is known for functions whose performance events are not read.

Runs inside the ``metrics`` source, only for functions that have the extension: those
whose layers include ``LambdaInsightsExtension`` in the inventory, and those the namespace's
ListMetrics lists (container images carry the extension without a layer). A function
without the extension costs no query. Cost: one ListMetrics listing per account x region
and fetch ($0.01 per 1,000 requests, a page per 500 series), then ``len(METRICS)`` metrics
per such function in GetMetricData calls ($0.01 per 1,000 metrics requested). Fetches
run once a day per account x region (a day of hours costs what one hour costs), and skip
functions whose performance events were read for those hours.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from collectors.common import (
    CallCounter,
    SourceResult,
    Store,
    Target,
    metric_query,
    record_failure,
)
from collectors.metrics import (
    MAX_QUERIES_PER_CALL,
    PRICE_PER_METRIC_USD,
    batches,
    get_metric_data,
    hourly_datapoints,
    incomplete_queries,
)
from lambdascope.timeutil import HOUR_S, hour_floor

NAMESPACE = "LambdaInsights"
# ListMetrics list price (us-east-1): $0.01 per 1,000 requests
PRICE_PER_LIST_REQUEST_USD = 0.01 / 1000
LAYER_NAME = "LambdaInsightsExtension"  # also LambdaInsightsExtension-Arm64
# (column in insights_metrics_hourly, namespace, metric, statistic); names and units from
# the Lambda Insights metrics reference (ms, MB, percent, bytes)
METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("invocations", NAMESPACE, "cpu_total_time", "SampleCount"),
    ("cpu_total_ms_sum", NAMESPACE, "cpu_total_time", "Sum"),
    ("total_memory_min_mb", NAMESPACE, "total_memory", "Minimum"),
    ("total_memory_max_mb", NAMESPACE, "total_memory", "Maximum"),
    ("used_memory_max_mb", NAMESPACE, "used_memory_max", "Maximum"),
    ("memory_utilization_max_pct", NAMESPACE, "memory_utilization", "Maximum"),
    ("init_duration_max_ms", NAMESPACE, "init_duration", "Maximum"),
    ("init_count", NAMESPACE, "init_duration", "SampleCount"),
    ("total_network_bytes_sum", NAMESPACE, "total_network", "Sum"),
    ("duration_ms_sum", "AWS/Lambda", "Duration", "Sum"),
    ("duration_count", "AWS/Lambda", "Duration", "SampleCount"),
)
COLUMNS = tuple(column for column, _, _, _ in METRICS)

QueryRef = tuple[int, str]  # function id, column
# Fetched once a day (evidence for right-sizing needs no fresher data, and a day of hours
# costs the same GetMetricData charge as one), at most the last 14 days at a time.
FETCH_EVERY_S = 24 * HOUR_S
MAX_FETCH_S = 14 * 24 * HOUR_S


def listed_functions(client: Any) -> set[str]:
    """Function names with a ``cpu_total_time`` series of dimension ``function_name`` alone
    in the LambdaInsights namespace (ListMetrics, every page)."""
    kwargs: dict[str, Any] = {
        "Namespace": NAMESPACE,
        "MetricName": "cpu_total_time",
        "Dimensions": [{"Name": "function_name"}],
    }
    names: set[str] = set()
    while True:
        page = client.list_metrics(**kwargs)
        for metric in page.get("Metrics", []):
            dims = metric.get("Dimensions") or []
            if len(dims) == 1 and dims[0].get("Name") == "function_name":
                names.add(str(dims[0].get("Value", "")))
        token = page.get("NextToken")
        if not token:
            return names
        kwargs["NextToken"] = token


def has_extension_layer(layers_json: str | None) -> bool:
    """Whether a function's layer ARNs (inventory's JSON list) include the extension (pure)."""
    try:
        layers = json.loads(layers_json or "[]")
    except json.JSONDecodeError:
        return False
    return any(f":layer:{LAYER_NAME}" in str(arn) for arn in layers or [])


def functions_with_extension(
    store: Store, target: Target, listed: set[str], start: int, end: int
) -> list[tuple[int, str]]:
    """(id, name) of the account/region's live functions with the extension's layer or a
    listed LambdaInsights series, except those whose performance events were read for
    hours in [start, end) (they give per-invocation CPU time; the metrics would be paid
    for nothing)."""
    with store.lock:
        rows = store.db.conn.execute(
            "SELECT id, function_name, layers_json FROM functions f WHERE account_id = ?"
            " AND region = ? AND deleted_at IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM insights_hourly h WHERE h.function_id = f.id"
            "  AND h.hour >= ? AND h.hour < ?)"
            " AND NOT EXISTS (SELECT 1 FROM insights_invocations i WHERE i.function_id = f.id"
            "  AND i.hour >= ? AND i.hour < ?)"
            " ORDER BY function_name",
            (target.account_id, target.region, start, end, start, end),
        ).fetchall()
    return [
        (int(fid), str(name))
        for fid, name, layers in rows
        if name in listed or has_extension_layer(layers)
    ]


def fetched_until(store: Store, target: Target) -> int | None:
    """Up to which hour the account/region's metrics were fetched, or None."""
    with store.lock:
        row = store.db.conn.execute(
            "SELECT fetched_until FROM insights_metrics_fetched WHERE account_id = ?"
            " AND region = ?",
            (target.account_id, target.region),
        ).fetchone()
    return None if row is None else int(row[0])


def save_fetched_until(store: Store, target: Target, hour: int) -> None:
    with store.write() as db:
        db.conn.execute(
            "INSERT INTO insights_metrics_fetched (account_id, region, fetched_until)"
            " VALUES (?, ?, ?) ON CONFLICT (account_id, region)"
            " DO UPDATE SET fetched_until = excluded.fetched_until",
            (target.account_id, target.region, hour),
        )


def build_queries(
    functions: Sequence[tuple[int, str]],
) -> tuple[list[dict[str, Any]], dict[str, QueryRef]]:
    """MetricDataQueries for (function_id, function_name) pairs and what each id means (pure)."""
    queries: list[dict[str, Any]] = []
    refs: dict[str, QueryRef] = {}
    for fid, name in functions:
        for k, (column, namespace, metric, stat) in enumerate(METRICS):
            query_id = f"i{fid}_m{k}"
            refs[query_id] = (fid, column)
            dimension = "function_name" if namespace == NAMESPACE else "FunctionName"
            queries.append(
                metric_query(
                    query_id, namespace, metric, [{"Name": dimension, "Value": name}], HOUR_S, stat
                )
            )
    return queries, refs


def transform_results(
    results: Sequence[dict[str, Any]], refs: dict[str, QueryRef]
) -> tuple[dict[tuple[int, int], dict[str, float]], list[tuple[str, str]]]:
    """MetricDataResults -> {(function_id, hour): {column: value}} and the (query id,
    status) of queries not answered completely (pure)."""
    rows: dict[tuple[int, int], dict[str, float]] = {}
    for (fid, column), hour, value in hourly_datapoints(results, refs):
        rows.setdefault((fid, hour), {})[column] = value
    return rows, incomplete_queries(results, refs)


def load_hours(store: Store, rows: dict[tuple[int, int], dict[str, float]]) -> int:
    """Upsert the hourly rows; only columns with a datapoint are written (idempotent)."""
    with store.write() as db:
        for (fid, hour), values in sorted(rows.items()):
            columns = sorted(values)
            names = ", ".join(["function_id", "hour", *columns])
            marks = ", ".join("?" for _ in range(len(columns) + 2))
            updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
            db.conn.execute(
                f"INSERT INTO insights_metrics_hourly ({names}) VALUES ({marks})"
                f" ON CONFLICT (function_id, hour) DO UPDATE SET {updates}",
                (fid, hour, *(values[c] for c in columns)),
            )
    return len(rows)


def collect(
    store: Store,
    target: Target,
    result: SourceResult,
    counter: CallCounter,
    *,
    start: int,
    end: int,
    now: int,
    batch_size: int = MAX_QUERIES_PER_CALL,
) -> int:
    """Hourly LambdaInsights metrics of one account/region's functions with the extension,
    once a day: from where the last complete fetch ended (or ``start``) to the last whole
    hour before ``end`` and ``now`` (the hour under way is asked again next time).
    Failures are recorded on ``result`` (partial), never raised, and leave the fetch to be
    done again. Returns the function-hours stored."""
    until = hour_floor(min(end, now))
    last = fetched_until(store, target)
    if last is not None and until - last < FETCH_EVERY_S:
        return 0
    begin = start if last is None else max(min(start, last), until - MAX_FETCH_S)
    if begin >= until:
        return 0
    cw = target.client("cloudwatch", counter)
    before = counter.calls
    complete = True
    try:
        listed = listed_functions(cw)
    except ClientError as exc:
        record_failure(result, cw, "ListMetrics", exc)
        listed = set()  # the layers still say which functions have the extension
        complete = False
    result.estimated_cost_usd += (counter.calls - before) * PRICE_PER_LIST_REQUEST_USD
    functions = functions_with_extension(store, target, listed, begin, until)
    queries, refs = build_queries(functions)
    stored = 0
    for batch in batches(queries, batch_size):
        before = counter.calls
        try:
            results = list(get_metric_data(cw, batch, begin, until))
        except ClientError as exc:
            record_failure(result, cw, "GetMetricData", exc)
            complete = False
            continue
        result.estimated_cost_usd += (
            len(batch) * max(1, counter.calls - before) * PRICE_PER_METRIC_USD
        )
        rows, incomplete = transform_results(results, refs)
        for query_id, code in incomplete:
            _, column = refs[query_id]
            result.fail("cloudwatch:GetMetricData", code, f"Lambda Insights {column}: {code}")
            complete = False
        stored += load_hours(store, rows)
    if complete:
        save_fetched_until(store, target, until)
    if functions:
        result.message += f"; Lambda Insights metrics: {len(functions)} functions, {stored} hours"
    return stored
