"""From URL to reads: filter parsing, calls into lambdascope's read and analysis API, and
conversion of their results to pandas DataFrames for the pure figure builders.

No SQL lives here: every read is ``lambdascope.queries`` (the merged view), cost is
``lambdascope.cost``, findings are ``lambdascope.rightsizing`` / ``lambdascope.staleness``.
Conventions: epoch seconds UTC, durations in ms, memory in MB, money in USD.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from lambdascope import cost, histogram, managed_instances, queries, rightsizing, staleness
from lambdascope.queries import Conn, Filters, FunctionInfo, FunctionStats

RANGES: dict[str, int] = {"24h": 1, "7d": 7, "14d": 14, "30d": 30, "90d": 90}
DEFAULT_RANGE = "7d"
DAY_S = 86400
# Histograms the fleet pages read: duration percentiles and p99 memory used.
FLEET_HISTOGRAMS = ("duration_hist", "max_memory_used_hist")


@dataclass(frozen=True)
class View:
    """What a page shows: the window ``[start, end)`` (epoch seconds) and the functions."""

    start: int
    end: int
    filters: Filters

    @property
    def window_s(self) -> int:
        return max(self.end - self.start, 3600)

    @property
    def days(self) -> float:
        return self.window_s / DAY_S

    @property
    def bucket_s(self) -> int:
        """Hourly points up to 14 days, daily beyond."""
        return DAY_S if self.days > 14 else 3600


def view_from_query(query: dict[str, Any], now: int) -> View:
    """The view asked for by URL parameters: ``range`` (24h|7d|14d|30d|90d|custom with
    ``from``/``to`` as YYYY-MM-DD, both days included), ``account``, ``region``,
    ``runtime``, ``arch``, ``tag`` (key or key=value) and ``q`` (name contains)."""
    end = (now // 3600 + 1) * 3600
    key = str(query.get("range") or DEFAULT_RANGE)
    start = end - RANGES.get(key, RANGES[DEFAULT_RANGE]) * DAY_S
    if key == "custom":
        start, end = _custom_range(query, start, end)

    def many(name: str) -> tuple[str, ...]:
        value = query.get(name)
        return (str(value),) if value not in (None, "") else ()

    return View(
        start=start,
        end=end,
        filters=Filters(
            account_ids=many("account"),
            regions=many("region"),
            runtimes=many("runtime"),
            architectures=many("arch"),
            tag=str(query["tag"]) if query.get("tag") else None,
            name_contains=str(query["q"]) if query.get("q") else None,
        ),
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


def filter_options(db: Conn) -> dict[str, list[str]]:
    """Choices for the filter drop-downs, keyed like the URL parameters."""
    found = queries.filter_options(db)
    return {
        "account": list(found.account_ids),
        "region": list(found.regions),
        "runtime": list(found.runtimes),
        "arch": list(found.architectures),
        "tag": list(queries.tag_choices(db)),
    }


# --- cost ---------------------------------------------------------------------------------


def _scale(invocations: float, log_invocations: int) -> float:
    """Factor from what the logs saw to all invocations (never below 1)."""
    return max(1.0, invocations / log_invocations) if log_invocations else 1.0


def stats_cost_usd(stat: FunctionStats) -> float:
    """Cost of one function x memory row (lambdascope.cost, first-tier list prices).

    Billed duration is what the logs saw, scaled up to CloudWatch's invocation count where
    metrics counted more invocations than the logs (without logs only requests count);
    INIT time is added where it is billed and not already inside the billed duration
    (decided at the row's last invocation), and SnapStart's billed restore time.
    """
    init_billed = cost.init_billed(
        float(stat.last_seen or 0), package_type=stat.package_type, runtime=stat.runtime
    )
    usage = cost.UsageTotals(
        invocations=stat.invocations,
        memory_mb=int(stat.memory_mb or 0),
        billed_duration_ms=stat.billed_duration_ms_sum
        * _scale(stat.invocations, stat.log_invocations),
        billable_init_ms=cost.billable_init_ms(
            stat.init_duration_ms_sum,
            stat.duration_ms_sum,
            stat.billed_duration_ms_sum,
            stat.log_invocations,
        )
        if init_billed
        else 0.0,
        billed_restore_duration_ms=stat.billed_restore_duration_ms_sum,
    )
    return cost.window_cost(usage, architecture=stat.architecture, region=stat.region).total_usd


def _hour_cost_usd(point: queries.HourPoint, info: FunctionInfo) -> float:
    usage = cost.UsageTotals(
        invocations=point.invocations,
        memory_mb=int(point.memory_mb or info.memory_mb or 0),
        billed_duration_ms=point.billed_duration_ms_sum
        * _scale(point.invocations, point.log_invocations),
    )
    return cost.window_cost(usage, architecture=info.architecture, region=info.region).total_usd


# --- per-function table -----------------------------------------------------------------

STATS_COLUMNS = [
    "id",
    "account_id",
    "region",
    "function_name",
    "runtime",
    "architecture",
    "memory_mb",
    "memory_sizes",
    "timeout_s",
    "invocations",
    "errors",
    "throttles",
    "timeouts",
    "out_of_memory",
    "cold_starts",
    "log_invocations",
    "error_rate",
    "cold_start_rate",
    "duration_p50",
    "duration_p95",
    "duration_p99",
    "duration_ms_max",
    "max_memory_used_mb",
    "memory_used_p99",
    "memory_used_ratio",
    "init_p95",
    "cost_usd",
    "last_seen",
]


def _combine(rows: Sequence[FunctionStats]) -> dict[str, Any]:
    """One function's memory rows as one table row (histograms merged for percentiles)."""
    first = rows[0]
    busiest = max(rows, key=lambda s: (s.invocations, s.log_invocations))
    current = next((s for s in rows if s.memory_mb == first.inventory_memory_mb), busiest)
    invocations = sum(s.invocations for s in rows)
    log_invocations = sum(s.log_invocations for s in rows)
    durations = histogram.merge(s.duration_hist for s in rows)
    memory = histogram.merge(s.memory_hist for s in rows)

    def top(values: Iterable[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return max(present) if present else None

    duration_max = top(s.duration_max_ms for s in rows)
    memory_max = top(s.max_memory_used_mb for s in rows)
    if durations:
        p50, p95, p99 = (histogram.quantile(durations, q, duration_max) for q in (0.5, 0.95, 0.99))
    else:  # CloudWatch statistics (no log distribution)
        p50 = busiest.duration_p50_ms
        p95 = top(s.duration_p95_ms for s in rows)
        p99 = top(s.duration_p99_ms for s in rows)
    configured = first.inventory_memory_mb or current.memory_mb
    used_now = current.max_memory_used_mb
    errors = sum(s.errors for s in rows)
    cold = sum(s.cold_starts for s in rows)
    return {
        "id": first.function_id,
        "account_id": first.account_id,
        "region": first.region,
        "function_name": first.function_name,
        "runtime": first.runtime,
        "architecture": first.architecture,
        "memory_mb": configured,
        "memory_sizes": ", ".join(str(s.memory_mb) for s in rows if s.memory_mb),
        "timeout_s": first.timeout_s,
        "invocations": invocations,
        "errors": errors,
        "throttles": sum(s.throttles for s in rows),
        "timeouts": sum(s.timeouts for s in rows),
        "out_of_memory": sum(s.out_of_memory for s in rows),
        "cold_starts": cold,
        "log_invocations": log_invocations,
        "error_rate": errors / invocations if invocations else None,
        "cold_start_rate": cold / log_invocations if log_invocations else None,
        "duration_p50": p50,
        "duration_p95": p95,
        "duration_p99": p99,
        "duration_ms_max": duration_max,
        "max_memory_used_mb": memory_max,
        "memory_used_p99": histogram.quantile(memory, 0.99, memory_max),
        "memory_used_ratio": used_now / configured if used_now and configured else None,
        "init_p95": histogram.quantile(histogram.merge(s.init_hist for s in rows), 0.95),
        "cost_usd": sum(stats_cost_usd(s) for s in rows),
        "last_seen": top(s.last_seen for s in rows),
    }


def stats_frame(stats: Sequence[FunctionStats]) -> pd.DataFrame:
    """``queries.function_stats`` rows as one DataFrame row per function (STATS_COLUMNS)."""
    groups: dict[int, list[FunctionStats]] = defaultdict(list)
    for stat in stats:
        groups[stat.function_id].append(stat)
    rows = [_combine(group) for group in groups.values()]
    return pd.DataFrame(rows, columns=STATS_COLUMNS)


def function_table(
    db: Conn, view: View, histograms: Sequence[str] = FLEET_HISTOGRAMS
) -> pd.DataFrame:
    """Per-function stats over the view (see :func:`stats_frame`)."""
    return stats_frame(
        queries.function_stats(db, view.start, view.end, view.filters, histograms=histograms)
    )


def fleet_histogram(stats: Sequence[FunctionStats]) -> histogram.Histogram:
    """All functions' duration histograms merged (for fleet-wide percentiles)."""
    return histogram.merge(s.duration_hist for s in stats)


# --- time series --------------------------------------------------------------------------

FLEET_SERIES = (
    "invocations",
    "errors",
    "throttles",
    "timeouts",
    "out_of_memory",
    "cold_starts",
    "active_functions",
)


def _times(starts: Iterable[int]) -> pd.Series:
    return pd.to_datetime(pd.Series(list(starts), dtype="int64"), unit="s", utc=True)


def capacity_frame(hours: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A capacity provider's hours (``managed_instances.provider_hours``) with ``time``."""
    frame = pd.DataFrame(list(hours), columns=list(managed_instances.HOUR_COLUMNS), dtype="float64")
    frame["time"] = _times(int(h["hour"]) for h in hours)
    return frame


def fleet_frame(db: Conn, view: View) -> pd.DataFrame:
    """Fleet counts per bucket (``time`` + FLEET_SERIES) from ``queries.fleet_timeseries``."""
    points = queries.fleet_timeseries(db, view.start, view.end, view.filters, view.bucket_s)
    frame = pd.DataFrame(
        [{name: getattr(p, name) for name in FLEET_SERIES} for p in points],
        columns=list(FLEET_SERIES),
    )
    frame.insert(0, "time", _times(p.start for p in points))
    return frame


HEALTH_SERIES = (
    "concurrency_sum_max",
    "iterator_age_max_ms",
    "async_events_dropped",
    "dead_letter_errors",
    "destination_delivery_failures",
)


def health_frame(db: Conn, view: View) -> pd.DataFrame:
    """Fleet concurrency, iterator age and async delivery per bucket (NaN: not collected)."""
    points = queries.health_timeseries(db, view.start, view.end, view.filters, view.bucket_s)
    frame = pd.DataFrame(
        [{name: getattr(p, name) for name in HEALTH_SERIES} for p in points],
        columns=list(HEALTH_SERIES),
        dtype="float64",
    )
    frame.insert(0, "time", _times(p.start for p in points))
    return frame


def health_table(db: Conn, view: View) -> pd.DataFrame:
    """Per function: concurrency vs reserved, iterator age and async delivery figures."""
    found = queries.function_health(db, view.start, view.end, view.filters)
    columns = list(queries.FunctionHealth.__dataclass_fields__)
    return pd.DataFrame([[getattr(h, c) for c in columns] for h in found], columns=columns)


def function_series(db: Conn, info: FunctionInfo, view: View) -> pd.DataFrame:
    """One function per hour: counts, p50/p95/p99/max duration (ms), max and p99 memory
    used and configured memory (MB), init p95 (ms) and cost (USD). A day's point (before
    the hourly boundary) carries its counts and cost as the day's average per hour, so
    they stand on the same scale as the hours after it."""
    points = queries.function_timeseries(db, info.function_id, view.start, view.end)
    rows = [
        {
            "invocations": p.invocations * 3600 / p.span_s,
            "errors": p.errors * 3600 / p.span_s,
            "throttles": p.throttles * 3600 / p.span_s,
            "timeouts": p.timeouts * 3600 / p.span_s,
            "out_of_memory": p.out_of_memory * 3600 / p.span_s,
            "cold_starts": p.cold_starts * 3600 / p.span_s,
            "p50": p.duration_p50_ms,
            "p95": p.duration_p95_ms,
            "p99": p.duration_p99_ms,
            "duration_ms_max": p.duration_max_ms,
            "max_memory_used_mb": p.max_memory_used_mb,
            "memory_used_p99": p.p99_memory_used_mb,
            "configured_memory_mb": p.memory_mb or info.memory_mb,
            "init_p95_ms": p.init_p95_ms,
            "cost_usd": _hour_cost_usd(p, info) * 3600 / p.span_s,
        }
        for p in points
    ]
    frame = pd.DataFrame(rows, columns=SERIES_COLUMNS, dtype="float64")
    frame.insert(0, "time", _times(p.hour for p in points))
    return frame


SERIES_COLUMNS = [
    "invocations",
    "errors",
    "throttles",
    "timeouts",
    "out_of_memory",
    "cold_starts",
    "p50",
    "p95",
    "p99",
    "duration_ms_max",
    "max_memory_used_mb",
    "memory_used_p99",
    "configured_memory_mb",
    "init_p95_ms",
    "cost_usd",
]


def daily_cost(series: pd.DataFrame) -> pd.DataFrame:
    """``cost_usd`` of an hourly series summed per UTC day (columns ``day``, ``cost_usd``)."""
    if series.empty:
        return pd.DataFrame(columns=["day", "cost_usd"])
    frame = series.assign(day=series["time"].dt.floor("D"))
    return frame.groupby("day", as_index=False).agg(cost_usd=("cost_usd", "sum"))


# --- findings -----------------------------------------------------------------------------


def _key(item: Any) -> tuple[str, str, str]:
    return (item.account_id, item.region, item.function_name)


def analysis_filter(view: View, infos: Sequence[FunctionInfo]) -> rightsizing.StatsFilter:
    """The analyses filter on name, region and account only: when the view narrows by
    runtime, architecture, tag or name search, pass the matching names."""
    f = view.filters
    narrowed = bool(f.runtimes or f.architectures or f.tag or f.name_contains)
    names = tuple(sorted({i.function_name for i in infos})) if narrowed else ()
    return rightsizing.StatsFilter(
        function_names=names, regions=f.regions, account_ids=f.account_ids
    )


def recommendations(
    db: Conn,
    view: View,
    infos: Sequence[FunctionInfo],
    stats: Sequence[FunctionStats] | None = None,
) -> list[rightsizing.Recommendation]:
    """Memory recommendations (lambdascope.rightsizing) for the functions ``infos``;
    ``stats``: the view's function_stats when already read with
    ``rightsizing.WINDOW_HISTOGRAMS`` (saves reading the window twice)."""
    if not infos:
        return []
    from sqlite_utils import Database

    database = db if isinstance(db, Database) else Database(db)
    wanted = {_key(i) for i in infos}
    found = rightsizing.recommend_all(
        database,
        view.start,
        view.end,
        analysis_filter(view, infos),
        window_stats=None if stats is None else [s for s in stats if _key(s) in wanted],
    )
    return [r for r in found if _key(r) in wanted]


def recommendations_frame(recs: Sequence[rightsizing.Recommendation]) -> pd.DataFrame:
    """Recommendations as rows (the memory report's keys; ``reasons`` joined)."""
    rows = []
    for rec in recs:
        row = rec.as_dict()
        row["reasons"] = "; ".join(rec.reasons)
        rows.append(row)
    columns = list(rightsizing.Recommendation.__dataclass_fields__)
    return pd.DataFrame(rows, columns=columns)


def stale_report(
    db: Conn, at: int, view: View, infos: Sequence[FunctionInfo]
) -> staleness.StaleReport:
    """Staleness (lambdascope.staleness) at ``at`` for the functions ``infos``."""
    from sqlite_utils import Database

    database = db if isinstance(db, Database) else Database(db)
    if not infos:
        return staleness.StaleReport()
    report = staleness.find_stale(database, at, analysis_filter(view, infos))
    wanted = {_key(i) for i in infos}
    return replace(report, functions=[f for f in report.functions if _key(f) in wanted])


def primary_finding(recs: Sequence[rightsizing.Recommendation]) -> dict[tuple[str, str, str], str]:
    """Per function, the finding at its busiest memory size."""
    best: dict[tuple[str, str, str], rightsizing.Recommendation] = {}
    for rec in recs:
        key = _key(rec)
        if key not in best or rec.invocations > best[key].invocations:
            best[key] = rec
    return {key: rec.finding for key, rec in best.items()}
