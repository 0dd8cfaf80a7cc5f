"""Reads the dashboard needs, over a read-only store.

Everything returns plain pandas DataFrames / dicts so figure builders stay pure.
Conventions: epoch seconds UTC; per function-hour, 'local' facts win over 'insights'
and CloudWatch counts (hourly_metrics) win over counts from facts.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from lambdascope import histogram

RANGES: dict[str, int] = {"24h": 1, "7d": 7, "14d": 14, "30d": 30, "90d": 90}
DEFAULT_RANGE = "7d"

# Estimated on-demand list prices (us-east-1); tiers and free tier are ignored.
REQUEST_PRICE_USD = 0.20 / 1_000_000
GB_SECOND_PRICE_USD = {"x86_64": 0.0000166667, "arm64": 0.0000133334}


@dataclass(frozen=True)
class Filters:
    """Global dashboard filters; ``start``/``end`` are epoch seconds (end exclusive)."""

    start: int
    end: int
    account: str | None = None
    region: str | None = None
    runtime: str | None = None
    architecture: str | None = None
    tag: str | None = None  # "key=value" or "key"
    name: str | None = None  # substring, case-insensitive

    @property
    def days(self) -> float:
        return max(self.end - self.start, 3600) / 86400


def filters_from_query(query: dict[str, Any], now: int) -> Filters:
    """Filters from URL query parameters (``range``, ``from``, ``to``, ``account``...)."""
    end = (now // 3600 + 1) * 3600
    key = str(query.get("range") or DEFAULT_RANGE)
    start = end - RANGES.get(key, RANGES[DEFAULT_RANGE]) * 86400
    if key == "custom":
        start, end = _custom_range(query, start, end)

    def opt(name: str) -> str | None:
        value = query.get(name)
        return str(value) if value not in (None, "") else None

    return Filters(
        start=start,
        end=end,
        account=opt("account"),
        region=opt("region"),
        runtime=opt("runtime"),
        architecture=opt("arch"),
        tag=opt("tag"),
        name=opt("q"),
    )


def _custom_range(query: dict[str, Any], start: int, end: int) -> tuple[int, int]:
    try:
        first = pd.Timestamp(str(query.get("from")), tz="UTC")
        last = pd.Timestamp(str(query.get("to")), tz="UTC") + pd.Timedelta(days=1)
    except (ValueError, TypeError):
        return start, end
    if pd.isna(first) or pd.isna(last) or last <= first:
        return start, end
    return int(first.timestamp()), int(last.timestamp())


def _function_where(filters: Filters, alias: str = "fn") -> tuple[str, list[Any]]:
    clauses = [f"{alias}.deleted_at IS NULL"]
    params: list[Any] = []
    for column, value in (
        ("account_id", filters.account),
        ("region", filters.region),
        ("runtime", filters.runtime),
        ("architecture", filters.architecture),
    ):
        if value is not None:
            clauses.append(f"{alias}.{column} = ?")
            params.append(value)
    if filters.name:
        clauses.append(f"instr(lower({alias}.function_name), lower(?)) > 0")
        params.append(filters.name)
    if filters.tag:
        tag_key, _, tag_value = filters.tag.partition("=")
        if tag_value:
            clauses.append(f"json_extract({alias}.tags_json, ?) = ?")
            params += [f'$."{tag_key}"', tag_value]
        else:
            clauses.append(f"json_type({alias}.tags_json, ?) IS NOT NULL")
            params.append(f'$."{tag_key}"')
    return " AND ".join(clauses), params


def _facts_cte(filters: Filters) -> tuple[str, list[Any]]:
    """CTE ``f``: facts in range for matching functions, 'local' preferred over 'insights'."""
    where, params = _function_where(filters)
    sql = f"""
    fns AS (SELECT fn.id FROM functions fn WHERE {where}),
    f AS (
      SELECT hf.* FROM hourly_facts hf JOIN fns ON fns.id = hf.function_id
      WHERE hf.hour >= ? AND hf.hour < ?
        AND (hf.source = 'local' OR NOT EXISTS (
          SELECT 1 FROM hourly_facts l WHERE l.function_id = hf.function_id
            AND l.hour = hf.hour AND l.source = 'local'))
    ),
    fh AS (
      SELECT function_id, hour, SUM(invocations) AS invocations, SUM(errors) AS errors,
        SUM(timeouts) AS timeouts, SUM(out_of_memory) AS out_of_memory,
        SUM(cold_starts) AS cold_starts, SUM(duration_ms_sum) AS duration_ms_sum,
        SUM(billed_duration_ms_sum * memory_mb) AS billed_mb_ms,
        MAX(duration_ms_max) AS duration_ms_max,
        MAX(max_memory_used_mb_max) AS max_memory_used_mb,
        SUM(init_duration_ms_sum) AS init_duration_ms_sum
      FROM f GROUP BY function_id, hour
    ),
    m AS (
      SELECT hm.* FROM hourly_metrics hm JOIN fns ON fns.id = hm.function_id
      WHERE hm.hour >= ? AND hm.hour < ?
    ),
    hours AS (
      SELECT function_id, hour FROM fh UNION SELECT function_id, hour FROM m
    ),
    h AS (
      SELECT hours.function_id, hours.hour,
        COALESCE(m.invocations, fh.invocations, 0) AS invocations,
        COALESCE(m.errors, fh.errors, 0) AS errors,
        COALESCE(m.throttles, 0) AS throttles,
        COALESCE(fh.timeouts, 0) AS timeouts,
        COALESCE(fh.out_of_memory, 0) AS out_of_memory,
        COALESCE(fh.cold_starts, 0) AS cold_starts,
        fh.invocations AS fact_invocations,
        fh.duration_ms_sum, fh.duration_ms_max, fh.billed_mb_ms, fh.max_memory_used_mb,
        fh.init_duration_ms_sum,
        m.duration_avg_ms AS metric_duration_avg_ms,
        m.concurrent_executions_max, m.iterator_age_max_ms, m.async_events_dropped
      FROM hours
      LEFT JOIN fh ON fh.function_id = hours.function_id AND fh.hour = hours.hour
      LEFT JOIN m ON m.function_id = hours.function_id AND m.hour = hours.hour
    )"""
    return sql, [*params, filters.start, filters.end, filters.start, filters.end]


def _frame(conn: sqlite3.Connection, sql: str, params: list[Any]) -> pd.DataFrame:
    cursor = conn.execute(sql, params)
    columns = [c[0] for c in cursor.description]
    return pd.DataFrame(cursor.fetchall(), columns=columns)


def store_is_empty(conn: sqlite3.Connection) -> bool:
    """True when the store has no functions at all."""
    return conn.execute("SELECT 1 FROM functions LIMIT 1").fetchone() is None


def filter_options(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Distinct values for the filter dropdowns."""
    options: dict[str, list[str]] = {}
    for key, column in (
        ("account", "account_id"),
        ("region", "region"),
        ("runtime", "runtime"),
        ("arch", "architecture"),
    ):
        rows = conn.execute(
            f"SELECT DISTINCT {column} FROM functions WHERE {column} IS NOT NULL"
            f" AND {column} != '' ORDER BY 1"
        ).fetchall()
        options[key] = [str(r[0]) for r in rows]
    tags: set[str] = set()
    for (text,) in conn.execute(
        "SELECT DISTINCT tags_json FROM functions WHERE tags_json IS NOT NULL"
    ):
        try:
            for tag_key, tag_value in json.loads(text).items():
                tags.add(f"{tag_key}={tag_value}")
        except (ValueError, AttributeError):
            continue
    options["tag"] = sorted(tags)
    return options


def estimated_cost_usd(invocations: float, billed_mb_ms: float, architecture: str | None) -> float:
    """On-demand list-price estimate: requests plus GB-seconds (no tiers, no free tier)."""
    price = GB_SECOND_PRICE_USD.get(architecture or "x86_64", GB_SECOND_PRICE_USD["x86_64"])
    return invocations * REQUEST_PRICE_USD + billed_mb_ms / 1000 / 1024 * price


def function_stats(conn: sqlite3.Connection, filters: Filters) -> pd.DataFrame:
    """One row per matching function with config and totals/percentiles over the range.

    Durations in ms, memory in MB, cost in USD (estimate), rates as fractions.
    """
    cte, params = _facts_cte(filters)
    where, fparams = _function_where(filters)
    sql = f"""WITH {cte},
    agg AS (
      SELECT function_id, SUM(invocations) AS invocations, SUM(errors) AS errors,
        SUM(throttles) AS throttles, SUM(timeouts) AS timeouts,
        SUM(out_of_memory) AS out_of_memory, SUM(cold_starts) AS cold_starts,
        SUM(fact_invocations) AS fact_invocations, SUM(duration_ms_sum) AS duration_ms_sum,
        MAX(duration_ms_max) AS duration_ms_max, SUM(billed_mb_ms) AS billed_mb_ms,
        MAX(max_memory_used_mb) AS max_memory_used_mb,
        MAX(CASE WHEN invocations > 0 THEN hour END) AS last_active_hour,
        MAX(concurrent_executions_max) AS concurrency_max,
        MAX(iterator_age_max_ms) AS iterator_age_max_ms,
        SUM(async_events_dropped) AS async_events_dropped
      FROM h GROUP BY function_id
    )
    SELECT fn.id, fn.account_id, fn.region, fn.function_name, fn.runtime, fn.architecture,
      fn.memory_mb, fn.timeout_s, fn.code_size_bytes, fn.last_modified, fn.tags_json,
      COALESCE(agg.invocations, 0) AS invocations, COALESCE(agg.errors, 0) AS errors,
      COALESCE(agg.throttles, 0) AS throttles, COALESCE(agg.timeouts, 0) AS timeouts,
      COALESCE(agg.out_of_memory, 0) AS out_of_memory,
      COALESCE(agg.cold_starts, 0) AS cold_starts,
      COALESCE(agg.fact_invocations, 0) AS fact_invocations,
      agg.duration_ms_sum, agg.duration_ms_max, COALESCE(agg.billed_mb_ms, 0) AS billed_mb_ms,
      agg.max_memory_used_mb, agg.last_active_hour, agg.concurrency_max,
      agg.iterator_age_max_ms, agg.async_events_dropped, fn.reserved_concurrency, fn.last_seen,
      (SELECT COUNT(*) FROM function_versions v WHERE v.function_id = fn.id
        AND v.deleted_at IS NULL AND v.version != '$LATEST') AS versions,
      (SELECT COALESCE(SUM(v.code_size_bytes), 0) FROM function_versions v
        WHERE v.function_id = fn.id AND v.deleted_at IS NULL) AS versions_code_bytes
    FROM functions fn LEFT JOIN agg ON agg.function_id = fn.id
    WHERE {where}
    ORDER BY fn.function_name, fn.account_id, fn.region"""
    frame = _frame(conn, sql, [*params, *fparams])
    if frame.empty:
        return frame
    quantiles = _function_quantiles(conn, filters)
    frame = frame.merge(quantiles, how="left", left_on="id", right_index=True)
    fact_inv = frame["fact_invocations"].where(frame["fact_invocations"] > 0)
    invocations = frame["invocations"].where(frame["invocations"] > 0)
    frame["error_rate"] = frame["errors"] / invocations
    frame["cold_start_rate"] = frame["cold_starts"] / fact_inv
    frame["duration_avg_ms"] = frame["duration_ms_sum"] / fact_inv
    # Billed MB-ms observed in facts, scaled to all invocations when metrics count more.
    scale = (frame["invocations"] / fact_inv).fillna(1.0).clip(lower=1.0)
    frame["cost_usd"] = [
        estimated_cost_usd(inv, mbms * s, arch)
        for inv, mbms, s, arch in zip(
            frame["invocations"], frame["billed_mb_ms"], scale, frame["architecture"], strict=True
        )
    ]
    frame["memory_used_ratio"] = frame["max_memory_used_mb"] / frame["memory_mb"]
    return frame


def _function_quantiles(conn: sqlite3.Connection, filters: Filters) -> pd.DataFrame:
    """p50/p95/p99 duration and p99 max memory used per function from merged histograms."""
    cte, params = _facts_cte(filters)
    result: dict[int, dict[str, float | None]] = {}
    for column, prefix, qs in (
        ("duration_hist", "duration", (0.5, 0.95, 0.99)),
        ("max_memory_used_hist", "memory_used", (0.99,)),
    ):
        sql = f"""WITH {cte}
        SELECT f.function_id, j.key, SUM(j.value) FROM f, json_each(f.{column}) j
        GROUP BY f.function_id, j.key"""
        merged: dict[int, dict[str, int]] = {}
        for function_id, key, count in conn.execute(sql, params):
            merged.setdefault(function_id, {})[key] = int(count)
        for function_id, hist in merged.items():
            row = result.setdefault(function_id, {})
            for q in qs:
                row[f"{prefix}_p{round(q * 100)}"] = histogram.quantile(hist, q)
    columns = ["duration_p50", "duration_p95", "duration_p99", "memory_used_p99"]
    frame = pd.DataFrame.from_dict(result, orient="index")
    for column in columns:
        if column not in frame:
            frame[column] = None
    return frame[columns]


def fleet_timeseries(conn: sqlite3.Connection, filters: Filters) -> pd.DataFrame:
    """Per hour (or per day past 14 days): invocations, errors, throttles, timeouts, OOMs."""
    cte, params = _facts_cte(filters)
    bucket = 86400 if filters.days > 14 else 3600
    sql = f"""WITH {cte}
    SELECT (hour / {bucket}) * {bucket} AS time, SUM(invocations) AS invocations,
      SUM(errors) AS errors, SUM(throttles) AS throttles, SUM(timeouts) AS timeouts,
      SUM(out_of_memory) AS out_of_memory, SUM(async_events_dropped) AS async_events_dropped
    FROM h GROUP BY 1 ORDER BY 1"""
    frame = _frame(conn, sql, params)
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    return frame


def find_functions(
    conn: sqlite3.Connection, name: str, account: str | None, region: str | None
) -> pd.DataFrame:
    """Functions named ``name`` (optionally narrowed by account/region)."""
    sql = "SELECT * FROM functions WHERE function_name = ?"
    params: list[Any] = [name]
    if account is not None:
        sql += " AND account_id = ?"
        params.append(account)
    if region is not None:
        sql += " AND region = ?"
        params.append(region)
    return _frame(conn, sql + " ORDER BY account_id, region", params)


def function_timeseries(
    conn: sqlite3.Connection, function_id: int, filters: Filters
) -> pd.DataFrame:
    """Hourly series of one function: counts, latency percentiles (ms), memory (MB)."""
    only = replace(
        filters, account=None, region=None, runtime=None, architecture=None, tag=None, name=None
    )
    cte, params = _facts_cte(only)
    sql = f"""WITH {cte}
    SELECT hour, invocations, errors, throttles, timeouts, out_of_memory, cold_starts,
      fact_invocations, duration_ms_max, billed_mb_ms, max_memory_used_mb,
      init_duration_ms_sum, concurrent_executions_max
    FROM h WHERE function_id = ? ORDER BY hour"""
    frame = _frame(conn, sql, [*params, function_id])
    hist_sql = f"""WITH {cte}
    SELECT hour, duration_hist, max_memory_used_hist, memory_mb FROM f
    WHERE function_id = ? ORDER BY hour"""
    per_hour: dict[int, dict[str, Any]] = {}
    for hour, dur, mem, memory_mb in conn.execute(hist_sql, [*params, function_id]):
        row = per_hour.setdefault(hour, {"d": [], "m": [], "mb": memory_mb})
        row["d"].append(histogram.from_json(dur))
        row["m"].append(histogram.from_json(mem))
        row["mb"] = max(row["mb"], memory_mb)
    extra = []
    for hour, row in per_hour.items():
        dur_hist = histogram.merge(row["d"])
        mem_hist = histogram.merge(row["m"])
        extra.append(
            {
                "hour": hour,
                "p50": histogram.quantile(dur_hist, 0.5),
                "p95": histogram.quantile(dur_hist, 0.95),
                "p99": histogram.quantile(dur_hist, 0.99),
                "memory_used_p99": histogram.quantile(mem_hist, 0.99),
                "configured_memory_mb": row["mb"],
            }
        )
    if extra:
        frame = frame.merge(pd.DataFrame(extra), how="left", on="hour")
    else:
        for column in ("p50", "p95", "p99", "memory_used_p99", "configured_memory_mb"):
            frame[column] = None
    frame["time"] = pd.to_datetime(frame["hour"], unit="s", utc=True)
    return frame


def memory_histogram(
    conn: sqlite3.Connection, function_id: int, filters: Filters
) -> histogram.Histogram:
    """Merged histogram of max memory used (MB) for one function over the range."""
    only = replace(
        filters, account=None, region=None, runtime=None, architecture=None, tag=None, name=None
    )
    cte, params = _facts_cte(only)
    sql = f"WITH {cte} SELECT max_memory_used_hist FROM f WHERE function_id = ?"
    return histogram.merge(
        histogram.from_json(r[0]) for r in conn.execute(sql, [*params, function_id])
    )


def function_versions(conn: sqlite3.Connection, function_id: int) -> pd.DataFrame:
    """Published versions with code size and aliases pointing at them."""
    sql = """SELECT v.version, v.code_size_bytes, v.last_modified, v.runtime, v.memory_mb,
      (SELECT group_concat(a.alias_name, ', ') FROM function_aliases a
        WHERE a.function_id = v.function_id AND a.function_version = v.version) AS aliases
    FROM function_versions v WHERE v.function_id = ? AND v.deleted_at IS NULL
    ORDER BY CAST(v.version AS INTEGER)"""
    return _frame(conn, sql, [function_id])


def collection_runs(conn: sqlite3.Connection, limit: int = 200) -> pd.DataFrame:
    """Most recent collection runs, newest first."""
    sql = """SELECT id, started_at, finished_at, account_id, region, source, status,
      window_start, window_end, items, api_calls, estimated_cost_usd, errors_json, message
    FROM collection_runs ORDER BY started_at DESC LIMIT ?"""
    return _frame(conn, sql, [limit])


def data_freshness(conn: sqlite3.Connection) -> pd.DataFrame:
    """Latest hour of data per account/region and source (epoch seconds)."""
    sql = """SELECT fn.account_id, fn.region, 'facts:' || hf.source AS source,
      MAX(hf.hour) AS latest_hour
    FROM hourly_facts hf JOIN functions fn ON fn.id = hf.function_id
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT fn.account_id, fn.region, 'metrics' AS source, MAX(hm.hour) AS latest_hour
    FROM hourly_metrics hm JOIN functions fn ON fn.id = hm.function_id
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3"""
    return _frame(conn, sql, [])


def account_storage(conn: sqlite3.Connection) -> pd.DataFrame:
    """Code storage used vs quota per account/region (bytes)."""
    sql = """SELECT account_id, region, code_storage_bytes, code_storage_limit_bytes,
      concurrent_executions_limit, unreserved_concurrent_executions, function_count
    FROM account_settings ORDER BY account_id, region"""
    return _frame(conn, sql, [])


def recommendations(
    conn: sqlite3.Connection, filters: Filters, stats: pd.DataFrame
) -> pd.DataFrame:
    """Memory recommendations (lambdascope.rightsizing) for the functions in ``stats``.

    One row per function x configured memory; money in USD, memory in MB.
    """
    from sqlite_utils import Database

    from lambdascope import rightsizing

    if stats.empty:
        return pd.DataFrame()
    accounts = tuple(sorted(set(stats["account_id"])))
    regions = tuple(sorted(set(stats["region"])))
    names = tuple(sorted(set(stats["function_name"]))) if len(stats) <= 50 else ()
    recs = rightsizing.recommend_all(
        Database(conn),
        filters.start,
        filters.end,
        rightsizing.StatsFilter(function_names=names, regions=regions, account_ids=accounts),
    )
    wanted = set(zip(stats["account_id"], stats["region"], stats["function_name"], strict=True))
    rows = []
    for rec in recs:
        if (rec.account_id, rec.region, rec.function_name) not in wanted:
            continue
        row = rec.as_dict()
        row["reasons"] = "; ".join(rec.reasons)
        row["options"] = [o.as_dict() for o in rec.options]
        row["recommendation"] = rec
        rows.append(row)
    return pd.DataFrame(rows)
