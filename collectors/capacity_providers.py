"""Lambda Managed Instances: the hourly utilisation of the capacity providers the inventory
saw functions run on.

AWS's "Monitoring Lambda Managed Instances" lists capacity-provider metrics published by
Lambda (namespace AWS/Lambda) with the dimensions CapacityProviderName and InstanceType:
CPUUtilization and MemoryUtilization (percent), vCPUAvailable / vCPUAllocated (count) and
MemoryAvailable / MemoryAllocated (bytes). The instance types are not known up front, so
each capacity provider's series are listed first (ListMetrics, billed per request), then
fetched hourly with GetMetricData (billed per metric requested).

Runs inside the ``metrics`` source: an account x region without a function on a capacity
provider makes no call. The instance types are aggregated per provider x hour (see
``aggregate``); a failed call makes the part partial and never deletes stored hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from collectors.common import CallCounter, SourceResult, Store, Target, metric_query, record_failure
from collectors.metrics import (
    MAX_QUERIES_PER_CALL,
    PRICE_PER_METRIC_USD,
    batches,
    get_metric_data,
    hourly_datapoints,
    incomplete_queries,
)
from lambdascope.managed_instances import provider_name
from lambdascope.timeutil import HOUR_S

NAMESPACE = "AWS/Lambda"
# ListMetrics list price (us-east-1): $0.01 per 1,000 requests.
PRICE_PER_LIST_REQUEST_USD = 0.01 / 1000
SERIES_DIMENSIONS = frozenset({"CapacityProviderName", "InstanceType"})

# (column in capacity_provider_hourly, metric name, statistic, how instance types combine)
METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("cpu_utilization_avg", "CPUUtilization", "Average", "mean"),
    ("cpu_utilization_max", "CPUUtilization", "Maximum", "max"),
    ("memory_utilization_avg", "MemoryUtilization", "Average", "mean"),
    ("memory_utilization_max", "MemoryUtilization", "Maximum", "max"),
    ("vcpu_available", "vCPUAvailable", "Average", "sum"),
    ("vcpu_allocated", "vCPUAllocated", "Average", "sum"),
    ("memory_available_bytes", "MemoryAvailable", "Average", "sum"),
    ("memory_allocated_bytes", "MemoryAllocated", "Average", "sum"),
)
METRIC_NAMES = frozenset(metric for _, metric, _, _ in METRICS)
COLUMNS = tuple(column for column, _, _, _ in METRICS)


@dataclass(frozen=True)
class Series:
    """One capacity provider x instance type x metric CloudWatch holds."""

    provider: str
    instance_type: str
    metric: str


def providers_of(store: Store, target: Target) -> list[str]:
    """Names of the capacity providers live functions of the account/region run on."""
    with store.lock:
        rows = store.db.conn.execute(
            "SELECT DISTINCT capacity_provider_arn FROM functions WHERE account_id = ?"
            " AND region = ? AND deleted_at IS NULL AND capacity_provider_arn IS NOT NULL"
            " AND capacity_provider_arn != ''",
            (target.account_id, target.region),
        ).fetchall()
    return sorted({provider_name(str(r[0])) for r in rows})


def list_series(client: Any, provider: str) -> tuple[list[Series], int]:
    """The capacity-provider-level series of one provider, and the pages read (one
    ListMetrics request each). The dimension filter also matches the execution-environment
    metrics (further dimensions), so the dimensions are checked here."""
    kwargs: dict[str, Any] = {
        "Namespace": NAMESPACE,
        "Dimensions": [{"Name": "CapacityProviderName", "Value": provider}],
    }
    found: set[Series] = set()
    pages = 0
    while True:
        page = client.list_metrics(**kwargs)
        pages += 1
        for item in page.get("Metrics", []):
            found.update(transform_listing(item, provider))
        token = page.get("NextToken")
        if not token:
            return sorted(found, key=lambda s: (s.instance_type, s.metric)), pages
        kwargs["NextToken"] = token


def transform_listing(item: dict[str, Any], provider: str) -> list[Series]:
    """A ListMetrics item -> the series it names, if it is one this module reads (pure)."""
    metric = str(item.get("MetricName", ""))
    dims = {str(d.get("Name")): str(d.get("Value", "")) for d in item.get("Dimensions") or []}
    if metric not in METRIC_NAMES or set(dims) != SERIES_DIMENSIONS:
        return []
    if dims["CapacityProviderName"] != provider:
        return []
    return [Series(provider, dims["InstanceType"], metric)]


QueryRef = tuple[str, str, str]  # provider, instance type, column


def build_queries(series: Sequence[Series]) -> tuple[list[dict[str, Any]], dict[str, QueryRef]]:
    """MetricDataQueries (hourly, one per series x statistic) and what each id means (pure)."""
    queries: list[dict[str, Any]] = []
    refs: dict[str, QueryRef] = {}
    for index, one in enumerate(series):
        for k, (column, metric, stat, _) in enumerate(METRICS):
            if metric != one.metric:
                continue
            query_id = f"c{index}_m{k}"
            refs[query_id] = (one.provider, one.instance_type, column)
            queries.append(
                metric_query(
                    query_id,
                    NAMESPACE,
                    metric,
                    [
                        {"Name": "CapacityProviderName", "Value": one.provider},
                        {"Name": "InstanceType", "Value": one.instance_type},
                    ],
                    HOUR_S,
                    stat,
                )
            )
    return queries, refs


Values = dict[tuple[str, int], dict[str, dict[str, float]]]  # (provider, hour) -> column -> type


def transform_results(
    results: Sequence[dict[str, Any]], refs: dict[str, QueryRef]
) -> tuple[Values, list[tuple[str, str]]]:
    """MetricDataResults -> {(provider, hour): {column: {instance type: value}}} and the
    (query id, status) of queries CloudWatch did not answer completely (pure)."""
    values: Values = {}
    for (provider, instance_type, column), hour, value in hourly_datapoints(results, refs):
        values.setdefault((provider, hour), {}).setdefault(column, {})[instance_type] = value
    return values, incomplete_queries(results, refs)


def aggregate(values: Values) -> dict[tuple[str, int], dict[str, float]]:
    """Instance types -> one row per provider x hour (pure): utilisation averages are the
    mean of the types' averages (equal weights: CloudWatch gives no instance counts), maxima
    the largest maximum, capacities the sum. ``instance_types`` counts the types seen."""
    how = {column: combine for column, _, _, combine in METRICS}
    rows: dict[tuple[str, int], dict[str, float]] = {}
    for key, columns in values.items():
        row: dict[str, float] = {}
        types: set[str] = set()
        for column, by_type in columns.items():
            types.update(by_type)
            numbers = list(by_type.values())
            if how[column] == "max":
                row[column] = max(numbers)
            elif how[column] == "sum":
                row[column] = sum(numbers)
            else:
                row[column] = sum(numbers) / len(numbers)
        row["instance_types"] = float(len(types))
        rows[key] = row
    return rows


def load_hours(
    store: Store, account_id: str, region: str, rows: dict[tuple[str, int], dict[str, float]]
) -> int:
    """Upsert provider-hours; only columns with a datapoint are written (none is cleared)."""
    with store.write() as db:
        for (provider, hour), values in sorted(rows.items()):
            columns = sorted(values)
            names = ", ".join(["account_id", "region", "capacity_provider_name", "hour", *columns])
            marks = ", ".join("?" for _ in range(len(columns) + 4))
            updates = ", ".join(
                f"{c} = MAX({c}, excluded.{c})" if c == "instance_types" else f"{c} = excluded.{c}"
                for c in columns
            )
            db.conn.execute(
                f"INSERT INTO capacity_provider_hourly ({names}) VALUES ({marks})"
                " ON CONFLICT (account_id, region, capacity_provider_name, hour)"
                f" DO UPDATE SET {updates}",
                (
                    account_id,
                    region,
                    provider,
                    hour,
                    *(int(values[c]) if c == "instance_types" else values[c] for c in columns),
                ),
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
    batch_size: int = MAX_QUERIES_PER_CALL,
) -> int:
    """Hourly utilisation of the account/region's capacity providers over [start, end);
    failures are recorded on ``result`` (partial), never raised. Returns provider-hours
    stored; calls and their estimated charge are added to ``result``."""
    providers = providers_of(store, target)
    if not providers or start >= end:
        return 0
    cw = target.client("cloudwatch", counter)
    series: list[Series] = []
    pages = 0
    for provider in providers:
        try:
            found, read = list_series(cw, provider)
        except ClientError as exc:
            pages += 1
            record_failure(result, cw, "ListMetrics", exc)
            continue
        pages += read
        series += found
    result.estimated_cost_usd += pages * PRICE_PER_LIST_REQUEST_USD
    queries, refs = build_queries(series)
    collected: Values = {}
    requested = 0
    for batch in batches(queries, batch_size):
        before = counter.calls
        try:
            results = list(get_metric_data(cw, batch, start, end))
        except ClientError as exc:
            record_failure(result, cw, "GetMetricData", exc)
            continue
        requested += len(batch) * max(1, counter.calls - before)
        values, incomplete = transform_results(results, refs)
        for key, columns in values.items():
            for column, by_type in columns.items():
                collected.setdefault(key, {}).setdefault(column, {}).update(by_type)
        for query_id, code in incomplete:
            provider, instance_type, column = refs[query_id]
            result.fail(
                "cloudwatch:GetMetricData", code, f"{provider} {instance_type} {column}: {code}"
            )
    result.estimated_cost_usd += requested * PRICE_PER_METRIC_USD
    stored = load_hours(store, target.account_id, target.region, aggregate(collected))
    result.message += (
        f"; capacity providers: {len(providers)}, {len(series)} series listed,"
        f" {requested} metrics requested, {stored} provider-hours"
    )
    return stored
