"""Provisioned concurrency per alias or version: the configurations
(lambda:ListProvisionedConcurrencyConfigs) and their hourly CloudWatch metrics
(Resource dimension ``function:qualifier``) for the functions the inventory saw with
provisioned concurrency, or that had some before.

Runs inside the ``metrics`` source: a function without provisioned concurrency costs no
call. ListProvisionedConcurrencyConfigs is a Lambda control-plane call (15 requests/s per
account and region, shared): one per such function and page (MaxItems 50).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from collectors.common import (
    CallCounter,
    SourceResult,
    Store,
    Target,
    error_code,
    iam_action,
    is_not_offered,
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
from lambdascope.timeutil import HOUR_S, parse_timestamp, to_epoch

# (column in provisioned_concurrency_hourly, metric name, statistic); AWS documents MAX for
# the concurrency gauges and SUM for the invocation counts
METRICS: tuple[tuple[str, str, str], ...] = (
    ("concurrent_executions_max", "ConcurrentExecutions", "Maximum"),
    ("provisioned_executions_max", "ProvisionedConcurrentExecutions", "Maximum"),
    ("utilization_max", "ProvisionedConcurrencyUtilization", "Maximum"),
    ("spillover_invocations", "ProvisionedConcurrencySpilloverInvocations", "Sum"),
    ("provisioned_invocations", "ProvisionedConcurrencyInvocations", "Sum"),
    ("invocations", "Invocations", "Sum"),
    ("duration_avg_ms", "Duration", "Average"),
)


@dataclass(frozen=True)
class ProvisionedConfig:
    """One alias's or version's provisioned concurrency as listed."""

    qualifier: str
    requested: int | None
    allocated: int | None
    available: int | None
    status: str | None
    status_reason: str | None
    last_modified: int | None


def get_configs(client: Any, function_name: str) -> list[dict[str, Any]]:
    """Every ProvisionedConcurrencyConfigs item of a function, following NextMarker."""
    kwargs: dict[str, Any] = {"FunctionName": function_name, "MaxItems": 50}
    items: list[dict[str, Any]] = []
    while True:
        page = client.list_provisioned_concurrency_configs(**kwargs)
        items += page.get("ProvisionedConcurrencyConfigs", [])
        marker = page.get("NextMarker")
        if not marker:
            return items
        kwargs["Marker"] = marker


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def transform_configs(items: Sequence[dict[str, Any]]) -> list[ProvisionedConfig]:
    """API items -> configs keyed by the alias or version at the end of FunctionArn (pure)."""
    out = []
    for item in items:
        arn = str(item.get("FunctionArn") or "")
        parts = arn.split(":")
        if len(parts) < 8 or not parts[7]:
            continue  # provisioned concurrency always names an alias or a version
        modified = item.get("LastModified")
        try:
            last_modified = to_epoch(parse_timestamp(str(modified))) if modified else None
        except ValueError:
            last_modified = None
        out.append(
            ProvisionedConfig(
                qualifier=parts[7],
                requested=_int(item.get("RequestedProvisionedConcurrentExecutions")),
                allocated=_int(item.get("AllocatedProvisionedConcurrentExecutions")),
                available=_int(item.get("AvailableProvisionedConcurrentExecutions")),
                status=item.get("Status"),
                status_reason=item.get("StatusReason"),
                last_modified=last_modified,
            )
        )
    return out


QueryRef = tuple[int, str, str]  # function id, qualifier, column


def build_queries(
    configs: Sequence[tuple[int, str, str]],
) -> tuple[list[dict[str, Any]], dict[str, QueryRef]]:
    """MetricDataQueries for (function_id, function_name, qualifier) and what each id means."""
    queries: list[dict[str, Any]] = []
    refs: dict[str, QueryRef] = {}
    for index, (fid, name, qualifier) in enumerate(configs):
        for k, (column, metric, stat) in enumerate(METRICS):
            query_id = f"p{index}_m{k}"
            refs[query_id] = (fid, qualifier, column)
            dimensions = [
                {"Name": "FunctionName", "Value": name},
                {"Name": "Resource", "Value": f"{name}:{qualifier}"},
            ]
            queries.append(metric_query(query_id, "AWS/Lambda", metric, dimensions, HOUR_S, stat))
    return queries, refs


def transform_results(
    results: Sequence[dict[str, Any]], refs: dict[str, QueryRef]
) -> tuple[dict[tuple[int, str, int], dict[str, float]], list[tuple[str, str]]]:
    """MetricDataResults -> {(function_id, qualifier, hour): {column: value}} and the
    (query id, status) of queries CloudWatch did not answer completely (pure)."""
    rows: dict[tuple[int, str, int], dict[str, float]] = {}
    for (fid, qualifier, column), hour, value in hourly_datapoints(results, refs):
        rows.setdefault((fid, qualifier, hour), {})[column] = value
    return rows, incomplete_queries(results, refs)


def load_configs(
    store: Store, function_id: int, configs: Sequence[ProvisionedConfig], now: int
) -> None:
    """Replace a function's configurations with a complete listing (removed ones go)."""
    with store.write() as db:
        db.conn.execute(
            "DELETE FROM provisioned_concurrency_configs WHERE function_id = ?", (function_id,)
        )
        db.conn.executemany(
            "INSERT INTO provisioned_concurrency_configs (function_id, qualifier, requested,"
            " allocated, available, status, status_reason, last_modified, seen_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    function_id,
                    c.qualifier,
                    c.requested,
                    c.allocated,
                    c.available,
                    c.status,
                    c.status_reason,
                    c.last_modified,
                    now,
                )
                for c in configs
            ],
        )


def load_hours(store: Store, rows: dict[tuple[int, str, int], dict[str, float]]) -> int:
    """Upsert the hourly rows; only columns with a datapoint are written."""
    with store.write() as db:
        for (fid, qualifier, hour), values in sorted(rows.items()):
            columns = sorted(values)
            names = ", ".join(["function_id", "qualifier", "hour", *columns])
            marks = ", ".join("?" for _ in range(len(columns) + 3))
            updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
            db.conn.execute(
                f"INSERT INTO provisioned_concurrency_hourly ({names}) VALUES ({marks})"
                f" ON CONFLICT (function_id, qualifier, hour) DO UPDATE SET {updates}",
                (fid, qualifier, hour, *(values[c] for c in columns)),
            )
    return len(rows)


def functions_with_provisioned(store: Store, target: Target) -> list[tuple[int, str]]:
    """(id, name) of live functions the inventory saw with provisioned concurrency, or
    with stored configurations (so a removal is noticed)."""
    with store.lock:
        rows = store.db.conn.execute(
            "SELECT id, function_name FROM functions f WHERE account_id = ? AND region = ?"
            " AND deleted_at IS NULL AND (provisioned_concurrency > 0 OR EXISTS (SELECT 1"
            " FROM provisioned_concurrency_configs c WHERE c.function_id = f.id))"
            " ORDER BY function_name",
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
    now: int,
    batch_size: int = MAX_QUERIES_PER_CALL,
) -> int:
    """Configurations and hourly metrics of one account/region's provisioned concurrency
    over [start, end); failures are recorded on ``result`` (partial), never raised.
    Returns the alias/version-hours stored."""
    functions = functions_with_provisioned(store, target)
    if not functions:
        return 0
    lam = target.client("lambda", counter)
    listed: list[tuple[int, str, str]] = []
    for fid, name in functions:
        try:
            configs = transform_configs(get_configs(lam, name))
        except ClientError as exc:
            if is_not_offered(exc):  # emulators and some regions: nothing to collect
                result.not_offered(
                    iam_action(lam, "ListProvisionedConcurrencyConfigs"), error_code(exc)
                )
                return 0
            record_failure(result, lam, "ListProvisionedConcurrencyConfigs", exc)
            continue
        load_configs(store, fid, configs, now)
        listed += [(fid, name, c.qualifier) for c in configs]
    if not listed:
        return 0
    cw = target.client("cloudwatch", counter)
    queries, refs = build_queries(listed)
    stored = 0
    for batch in batches(queries, batch_size):
        before = counter.calls
        try:
            results = list(get_metric_data(cw, batch, start, end))
        except ClientError as exc:
            record_failure(result, cw, "GetMetricData", exc)
            continue
        result.estimated_cost_usd += (
            len(batch) * max(1, counter.calls - before) * PRICE_PER_METRIC_USD
        )
        rows, incomplete = transform_results(results, refs)
        for query_id, code in incomplete:
            fid, qualifier, column = refs[query_id]
            result.fail("cloudwatch:GetMetricData", code, f"{qualifier} {column}: {code}")
        stored += load_hours(store, rows)
    result.message += f"; provisioned concurrency: {len(listed)} aliases/versions, {stored} hours"
    return stored
