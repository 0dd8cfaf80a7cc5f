"""Every read the summary, reports, analyses and dashboards need. All SQL for reads lives here.

Functions take a sqlite_utils ``Database`` (or a plain ``sqlite3.Connection``), a window
``start``/``end`` in epoch seconds (``start`` inclusive, ``end`` exclusive, compared with
the ``hour`` column) and a :class:`Filters`.

The merged view ("one view of a function"), per function x hour:

- hourly_facts rows with source ``'local'`` beat ``'insights'`` rows for the same
  function-hour (all memory rows of the losing source are dropped for that hour);
- ``errors`` counts what CloudWatch's ``Errors`` metric counts, whichever the source:
  every failed invocation, timeouts and out-of-memory failures included. hourly_facts
  keeps timeouts apart (its ``errors`` are the other failures), so a log-only row's
  errors are its facts' errors + timeouts; ``timeouts`` and ``out_of_memory`` are parts
  of ``errors``, never to be added to it;
- invocations / errors / throttles come from hourly_metrics (CloudWatch) when that
  function-hour has a metrics row; they are allocated to the hour's memory rows in
  proportion to the invocations the logs saw at each memory size (equally when the logs
  saw none). Without metrics they come from hourly_facts (throttles are then 0, logs do
  not show throttles); so do invocations and errors of an hour whose metrics row holds
  neither (the lean metric set asks CloudWatch only for what logs cannot give). A
  metrics hour without any facts counts at the function's inventory memory size;
- distributions (memory used, duration, billed duration, init) come from the fact
  histograms. When a row has no log data at all, duration percentiles fall back to
  CloudWatch: p50 = invocation-weighted mean of hourly p50, p95/p99 = max of hourly
  p95/p99 (an upper bound, not an exact percentile), max = max of hourly max.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from lambdascope import histcodec, histogram, packing
from lambdascope.histogram import Histogram

Conn = Database | sqlite3.Connection

MEMORY_HIST = "max_memory_used_hist"
HIST_COLUMNS = (
    "max_memory_used_hist",
    "duration_hist",
    "billed_duration_hist",
    "init_duration_hist",
)


def _conn(db: Conn) -> sqlite3.Connection:
    return db.conn if isinstance(db, Database) else db


def _tags(alias: str) -> str:
    """SQL for a function's tags as a JSON object ('{}' when missing or invalid)."""
    return f"CASE WHEN json_valid({alias}.tags_json) THEN {alias}.tags_json ELSE '{{}}' END"


@dataclass(frozen=True)
class Filters:
    """Which functions a read covers. Empty tuples / None mean "all".

    ``tag`` is ``"key=value"`` (exact value) or ``"key"`` (tag present);
    ``name_contains`` is a case-insensitive substring; ``function_names`` are exact names.
    Deleted functions (``deleted_at`` set) are left out unless ``include_deleted``.
    ``function_ids`` restricts to those ids (fast: reads only their rows).
    """

    account_ids: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    runtimes: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    tag: str | None = None
    name_contains: str | None = None
    function_names: tuple[str, ...] = ()
    include_deleted: bool = False
    function_ids: tuple[int, ...] = ()

    def where(self, alias: str = "f") -> tuple[str, list[Any]]:
        """SQL condition over the functions table (aliased ``alias``) and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, values in (
            ("account_id", self.account_ids),
            ("region", self.regions),
            ("runtime", self.runtimes),
            ("architecture", self.architectures),
            ("function_name", self.function_names),
            ("id", self.function_ids),
        ):
            if values:
                clauses.append(f"{alias}.{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        if self.name_contains:
            clauses.append(f"instr(lower({alias}.function_name), ?) > 0")
            params.append(self.name_contains.lower())
        if self.tag:
            key, sep, value = self.tag.partition("=")
            if sep:
                clauses.append(
                    f"EXISTS (SELECT 1 FROM json_each({_tags(alias)}) t"
                    " WHERE t.key = ? AND t.value = ?)"
                )
                params.extend([key, value])
            else:
                clauses.append(
                    f"EXISTS (SELECT 1 FROM json_each({_tags(alias)}) t WHERE t.key = ?)"
                )
                params.append(key)
        if not self.include_deleted:
            clauses.append(f"{alias}.deleted_at IS NULL")
        return (" AND ".join(clauses) or "1"), params


ALL = Filters()


@dataclass(frozen=True)
class FunctionInfo:
    """Identity and inventory configuration of one function."""

    function_id: int
    account_id: str
    region: str
    function_name: str
    function_arn: str | None
    runtime: str | None
    architecture: str | None
    memory_mb: int | None
    timeout_s: int | None
    last_modified: int | None
    tags: dict[str, str]
    first_seen: int | None
    last_seen: int | None
    inventory_at: int | None
    deleted_at: int | None
    package_type: str | None = None


@dataclass(frozen=True)
class FunctionStats:
    """One function x configured memory size over a window (the merged view).

    Counts are floats because CloudWatch counts allocated over several memory sizes may be
    fractional; ``log_invocations`` is what the logs saw (the population of the
    histograms and of ``billed_duration_ms_sum``). ``memory_mb`` is the configured memory
    of this row (the inventory value for a function without activity);
    ``inventory_memory_mb`` is the current configuration. ``first_seen``/``last_seen``
    are the first/last invocation (exact from raw invocations when stored, else the
    start of the first/last active hour). ``sources`` is a sorted subset of
    ``{"local", "insights", "metrics"}``.
    """

    function_id: int
    account_id: str
    region: str
    function_name: str
    runtime: str | None
    architecture: str | None
    timeout_s: int | None
    memory_mb: int | None
    inventory_memory_mb: int | None
    invocations: float = 0.0
    errors: float = 0.0
    throttles: float = 0.0
    timeouts: int = 0
    out_of_memory: int = 0
    cold_starts: int = 0
    log_invocations: int = 0
    duration_p50_ms: float | None = None
    duration_p95_ms: float | None = None
    duration_p99_ms: float | None = None
    duration_max_ms: float | None = None
    duration_ms_sum: float = 0.0
    billed_duration_ms_sum: float = 0.0
    init_duration_ms_sum: float = 0.0
    restore_duration_ms_sum: float = 0.0
    billed_restore_duration_ms_sum: float = 0.0
    init_p50_ms: float | None = None
    init_p95_ms: float | None = None
    init_max_ms: float | None = None
    max_memory_used_mb: int | None = None
    p99_memory_used_mb: float | None = None
    memory_hist: Histogram = field(default_factory=dict)
    duration_hist: Histogram = field(default_factory=dict)
    billed_duration_hist: Histogram = field(default_factory=dict)
    init_hist: Histogram = field(default_factory=dict)
    first_seen: int | None = None
    last_seen: int | None = None
    hours_with_data: int = 0
    sources: tuple[str, ...] = ()
    deleted_at: int | None = None
    package_type: str | None = None

    @property
    def billed_gb_seconds(self) -> float:
        """GB-seconds billed for the invocations the logs saw (memory in MiB / 1024)."""
        return self.billed_duration_ms_sum / 1000.0 * (self.memory_mb or 0) / 1024.0


# --- the merged hourly view -------------------------------------------------------------

# Facts in the window for the filtered functions, 'local' beating 'insights' per hour.
_FACTS_SQL = """
SELECT {columns} FROM hourly_facts hf
WHERE hf.hour >= {start} AND hf.hour < {end}
  AND hf.function_id IN (SELECT f.id FROM functions f WHERE {where}){only_dirty_hf}
  AND (hf.source = 'local' OR NOT EXISTS (
        SELECT 1 FROM hourly_facts l
        WHERE l.function_id = hf.function_id AND l.hour = hf.hour AND l.source = 'local'))
"""

_FACT_COLUMNS = (
    "hf.function_id, hf.hour, hf.memory_mb, hf.source, hf.invocations, hf.errors, hf.timeouts,"
    " hf.out_of_memory, hf.cold_starts, hf.duration_ms_sum, hf.duration_ms_max,"
    " hf.billed_duration_ms_sum, hf.max_memory_used_mb_max, hf.init_duration_ms_sum,"
    " hf.init_duration_ms_max, hf.restore_duration_ms_sum, hf.billed_restore_duration_ms_sum,"
    " sum(hf.invocations) OVER (PARTITION BY hf.function_id, hf.hour) AS hour_invocations,"
    " count(*) OVER (PARTITION BY hf.function_id, hf.hour) AS hour_rows"
)

# Columns of one merged row (function x hour x memory), in this order, both in the
# merged_hourly table and in _MERGED_SQL.
MERGED_COLUMNS = (
    "function_id, hour, memory_mb, source, invocations, errors, throttles, timeouts,"
    " out_of_memory, cold_starts, log_invocations, duration_ms_sum, duration_ms_max,"
    " billed_duration_ms_sum, max_memory_used_mb_max, init_duration_ms_sum,"
    " init_duration_ms_max, restore_duration_ms_sum, billed_restore_duration_ms_sum,"
    " has_metrics, duration_p50_ms, duration_p95_ms, duration_p99_ms, duration_max_ms"
)

# The CloudWatch duration percentiles of a merged row: the merged_hourly table does not
# copy them (migration 0018); reads of the stored rows join hourly_metrics for them.
CW_PERCENTILES = ("duration_p50_ms", "duration_p95_ms", "duration_p99_ms", "duration_max_ms")
# Columns of the merged_hourly table: MERGED_COLUMNS without CW_PERCENTILES.
STORED_COLUMNS = MERGED_COLUMNS.replace(", " + ", ".join(CW_PERCENTILES), "")


def stored_merged_sql(condition: str, *, percentiles: bool = True) -> str:
    """SELECT of MERGED_COLUMNS from the merged_hourly rows (alias ``m``) meeting
    ``condition``: CloudWatch's percentiles from hourly_metrics (a primary-key look-up per
    row), or NULL without ``percentiles`` (for reads that only count and sum)."""
    columns = ", ".join(f"m.{c.strip()}" for c in STORED_COLUMNS.split(","))
    if not percentiles:
        nulls = ", ".join(f"NULL AS {c}" for c in CW_PERCENTILES)
        return f"SELECT {columns}, {nulls} FROM merged_hourly m WHERE {condition}"
    joined = ", ".join(f"hm.{c} AS {c}" for c in CW_PERCENTILES)
    return (
        f"SELECT {columns}, {joined} FROM merged_hourly m LEFT JOIN hourly_metrics hm"
        f" ON hm.function_id = m.function_id AND hm.hour = m.hour WHERE {condition}"
    )


# The merged view computed from the base tables. ``share`` is the row's part of the
# hour's invocations (only used where CloudWatch counts exist).
_MERGED_SQL = """
SELECT function_id, hour, memory_mb, source,
  CASE WHEN m_inv IS NULL THEN invocations ELSE m_inv * share END AS invocations,
  CASE WHEN m_inv IS NOT NULL OR m_err IS NOT NULL THEN coalesce(m_err, 0) * share
       ELSE errors + timeouts END AS errors,
  CASE WHEN has_metrics THEN coalesce(m_thr, 0) * share ELSE 0 END AS throttles,
  timeouts, out_of_memory, cold_starts, invocations AS log_invocations,
  duration_ms_sum, duration_ms_max, billed_duration_ms_sum, max_memory_used_mb_max,
  init_duration_ms_sum, init_duration_ms_max, restore_duration_ms_sum,
  billed_restore_duration_ms_sum, has_metrics,
  duration_p50_ms, duration_p95_ms, duration_p99_ms, duration_max_ms
FROM (
  SELECT fx.function_id, fx.hour, fx.memory_mb, fx.source, fx.invocations, fx.errors,
    fx.timeouts, fx.out_of_memory, fx.cold_starts, fx.duration_ms_sum, fx.duration_ms_max,
    fx.billed_duration_ms_sum, fx.max_memory_used_mb_max, fx.init_duration_ms_sum,
    fx.init_duration_ms_max, fx.restore_duration_ms_sum, fx.billed_restore_duration_ms_sum,
    m.invocations AS m_inv, m.errors AS m_err, m.throttles AS m_thr,
    m.function_id IS NOT NULL AS has_metrics,
    m.duration_p50_ms, m.duration_p95_ms, m.duration_p99_ms, m.duration_max_ms,
    CASE WHEN fx.hour_invocations > 0 THEN fx.invocations * 1.0 / fx.hour_invocations
         ELSE 1.0 / fx.hour_rows END AS share
  FROM ({facts}) fx
  LEFT JOIN hourly_metrics m ON m.function_id = fx.function_id AND m.hour = fx.hour
)
UNION ALL
SELECT mx.function_id, mx.hour, f.memory_mb, 'metrics',
  coalesce(mx.invocations, 0), coalesce(mx.errors, 0), coalesce(mx.throttles, 0),
  0, 0, 0, 0, 0, NULL, 0, NULL, 0, NULL, 0, 0, 1,
  mx.duration_p50_ms, mx.duration_p95_ms, mx.duration_p99_ms, mx.duration_max_ms
FROM hourly_metrics mx JOIN functions f ON f.id = mx.function_id
WHERE mx.hour >= {start} AND mx.hour < {end}
  AND mx.function_id IN (SELECT f.id FROM functions f WHERE {where}){only_dirty_mx}
  AND NOT EXISTS (
    SELECT 1 FROM hourly_facts h WHERE h.function_id = mx.function_id AND h.hour = mx.hour)
"""

DAY_S = 86400

# Per function x day x memory aggregates of merged rows: (column, aggregate over merged
# rows, how two such aggregates combine). The daily_facts table holds these columns (plus
# merged histograms); reads combine daily rows with the same aggregate of edge hours.
_DAY_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("invocations", "sum(invocations)", "sum"),
    ("errors", "sum(errors)", "sum"),
    ("throttles", "sum(throttles)", "sum"),
    ("timeouts", "sum(timeouts)", "sum"),
    ("out_of_memory", "sum(out_of_memory)", "sum"),
    ("cold_starts", "sum(cold_starts)", "sum"),
    ("log_invocations", "sum(log_invocations)", "sum"),
    ("duration_ms_sum", "sum(duration_ms_sum)", "sum"),
    ("duration_ms_max", "max(duration_ms_max)", "max"),
    ("billed_duration_ms_sum", "sum(billed_duration_ms_sum)", "sum"),
    ("max_memory_used_mb_max", "max(max_memory_used_mb_max)", "max"),
    ("init_duration_ms_sum", "sum(init_duration_ms_sum)", "sum"),
    ("init_duration_ms_max", "max(init_duration_ms_max)", "max"),
    ("restore_duration_ms_sum", "sum(restore_duration_ms_sum)", "sum"),
    ("billed_restore_duration_ms_sum", "sum(billed_restore_duration_ms_sum)", "sum"),
    (
        "active_first_hour",
        "min(CASE WHEN invocations > 0 OR log_invocations > 0 THEN hour END)",
        "min",
    ),
    (
        "active_last_hour",
        "max(CASE WHEN invocations > 0 OR log_invocations > 0 THEN hour END)",
        "max",
    ),
    ("hours", "count(DISTINCT hour)", "sum"),
    ("has_local", "max(source = 'local')", "max"),
    ("has_insights", "max(source = 'insights')", "max"),
    ("has_metrics", "max(has_metrics)", "max"),
    ("cw_p50_weighted", "sum(duration_p50_ms * invocations)", "sum"),
    ("cw_p50_weight", "sum(CASE WHEN duration_p50_ms IS NOT NULL THEN invocations END)", "sum"),
    ("cw_p95_max", "max(duration_p95_ms)", "max"),
    ("cw_p99_max", "max(duration_p99_ms)", "max"),
    ("cw_max", "max(duration_max_ms)", "max"),
)
DAY_COLUMNS = "function_id, day, memory_mb, " + ", ".join(f[0] for f in _DAY_FIELDS)
DAY_AGG_SQL = (
    f"SELECT function_id, hour - hour % {DAY_S} AS day, memory_mb, "
    + ", ".join(f"{agg} AS {name}" for name, agg, _ in _DAY_FIELDS)
    + " FROM ({rows}) GROUP BY function_id, day, memory_mb"
)
# Combined over days, per function x memory; same column names as _DAY_FIELDS.
_WINDOW_AGG = ", ".join(f"{how}({name}) AS {name}" for name, _, how in _DAY_FIELDS)


def filter_sql(filters: Filters) -> tuple[str, dict[str, Any]]:
    """The filter's SQL condition with named parameters (:p0, :p1, ...)."""
    where, plist = filters.where("f")
    count = iter(range(len(plist)))
    where_named = "".join(f":p{next(count)}" if ch == "?" else ch for ch in where)
    return where_named, {f"p{i}": value for i, value in enumerate(plist)}


def _dirty(alias: str, time_column: str = "hour") -> str:
    """SQL condition: the row's (function, day) waits for a rollup refresh."""
    return (
        f"{alias}.function_id IN (SELECT function_id FROM rollup_dirty)"
        f" AND EXISTS (SELECT 1 FROM rollup_dirty d WHERE d.function_id = {alias}.function_id"
        f" AND d.day = {alias}.{time_column} - {alias}.{time_column} % {DAY_S})"
    )


def merged_hourly_sql(
    start: int, end: int, filters: Filters = ALL, *, only_dirty: bool = False
) -> tuple[str, dict[str, Any]]:
    """SQL text and parameters of the merged view computed from the base tables, one row
    per function x hour x memory, columns :data:`MERGED_COLUMNS`.

    ``source`` is 'local', 'insights' or 'metrics'; ``has_metrics`` says whether the
    counts came from CloudWatch; duration_p50/p95/p99/max_ms are CloudWatch's.
    ``only_dirty`` keeps the function-days that wait for a rollup refresh. Readers use
    the precomputed ``merged_hourly`` table for the other days (see :func:`_hourly_rows`).
    """
    where, params = filter_sql(filters)
    window = {
        "start": int(start),
        "end": int(end),
        "where": where,
        "only_dirty_hf": f" AND {_dirty('hf')}" if only_dirty else "",
        "only_dirty_mx": f" AND {_dirty('mx')}" if only_dirty else "",
    }
    facts = _FACTS_SQL.format(columns=_FACT_COLUMNS, **window)
    return _MERGED_SQL.format(facts=facts, **window), params


def _has_rollups(conn: sqlite3.Connection) -> bool:
    """Whether the store has the derived tables (migration 0002; a read-only reader of a
    store no writer has opened since the upgrade sees none)."""
    row = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'rollup_dirty'"
    ).fetchone()
    return bool(row[0])


def hourly_from(db: Conn) -> int:
    """The first UTC day (epoch seconds) the hourly tier keeps: hours before it were
    rolled up into daily rows and deleted (lambdascope.tiers); 0 when nothing was."""
    conn = _conn(db)
    has_table = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'retention_tiers'"
    ).fetchone()[0]
    if not has_table:
        return 0
    row = conn.execute("SELECT kept_from FROM retention_tiers WHERE tier = 'hourly'").fetchone()
    return 0 if row is None else int(row[0])


def _dirty_span(conn: sqlite3.Connection, start: int, end: int) -> tuple[int, int] | None:
    """The part of ``[start, end)`` covered by function-days that wait for a refresh (from
    the first such day to the end of the last), None when there are none. Days before the
    hourly boundary are final whatever their marks say."""
    row = conn.execute(
        "SELECT min(day), max(day) FROM rollup_dirty WHERE day >= ? AND day < ?",
        (max(int(start) - int(start) % DAY_S, hourly_from(conn)), int(end)),
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return max(int(start), int(row[0])), min(int(end), int(row[1]) + DAY_S)


def _hourly_rows(
    conn: sqlite3.Connection,
    start: int,
    end: int,
    filters: Filters,
    *,
    percentiles: bool = True,
) -> tuple[str, dict[str, Any]]:
    """Merged rows (MERGED_COLUMNS) in the window: from merged_hourly, and computed from
    the base tables for the function-days that wait for a rollup refresh. Without
    ``percentiles`` the stored rows' CloudWatch percentiles are NULL (not looked up)."""
    if not _has_rollups(conn):
        return merged_hourly_sql(start, end, filters)
    where, params = filter_sql(filters)
    condition = (
        f"m.hour >= {int(start)} AND m.hour < {int(end)}"
        f" AND m.function_id IN (SELECT f.id FROM functions f WHERE {where})"
    )
    span = _dirty_span(conn, start, end)
    if span is None:
        return stored_merged_sql(condition, percentiles=percentiles), params
    dirty, _ = merged_hourly_sql(*span, filters, only_dirty=True)
    stored = stored_merged_sql(f"{condition} AND NOT ({_dirty('m')})", percentiles=percentiles)
    return f"{stored} UNION ALL {dirty}", params


# SQL condition: function ``f`` has hourly facts or metrics in [:lo, :hi). The hourly
# tables have no index by hour (migration 0018): an hour range is read function by
# function through their primary keys.
_HAS_HOURS = (
    "(EXISTS (SELECT 1 FROM hourly_facts h WHERE h.function_id = f.id"
    " AND h.hour >= :lo AND h.hour < :hi)"
    " OR EXISTS (SELECT 1 FROM hourly_metrics h WHERE h.function_id = f.id"
    " AND h.hour >= :lo AND h.hour < :hi))"
)
# the tables a read of merged rows needs (CloudWatch's percentiles from hourly_metrics)
_MERGED_TABLES = ("merged_hourly", "hourly_metrics")
_ALL_TABLES = ("hourly_facts", "hourly_metrics", "merged_hourly")
# ... or packed hours there (lambdascope.packing)
_HAS_PACKED_HOURS = (
    " OR EXISTS (SELECT 1 FROM packed_hours p WHERE p.function_id = f.id"
    f" AND p.day > :lo - {DAY_S} AND p.day < :hi AND p.last_hour >= :lo AND p.first_hour < :hi)"
)


def _has_hours(conn: sqlite3.Connection) -> str:
    if packing.has_packing(conn):
        return f"({_HAS_HOURS}{_HAS_PACKED_HOURS})"
    return _HAS_HOURS


def last_hour_sql(table: str, condition: str = "1") -> str:
    """SQL of the latest ``hour`` in ``table`` (hourly_facts or hourly_metrics) among its
    rows meeting ``condition``: the latest of each function's, found from the end of its
    primary-key range."""
    return (
        f"SELECT max((SELECT max(h.hour) FROM {table} h WHERE h.function_id = f.id"
        f" AND {condition})) FROM functions f"
    )


def _split(conn: sqlite3.Connection, start: int, end: int) -> tuple[int, int]:
    """Days ``[d0, d1)`` whose daily rows exactly cover part of ``[start, end)`` (d0 >= d1
    when none); the hours of ``[start, d0)`` and ``[d1, end)`` are read hour by hour.

    Whole UTC days inside the window qualify, and so does a partial day at either edge
    when nothing is stored in its part outside the window: the usual window ending now
    ends after the latest stored hour, so today's daily rows serve it. A partial day
    before the hourly boundary (lambdascope.tiers) is read whole: its hours are gone.
    """
    d0 = -(-int(start) // DAY_S) * DAY_S
    d1 = int(end) // DAY_S * DAY_S
    # a partial day before the hourly boundary has only its daily row: read it whole
    boundary = hourly_from(conn)
    if start < d0 and d0 - DAY_S < boundary:
        d0 -= DAY_S
    if d1 < end and d1 < boundary:
        d1 += DAY_S
    if d0 > d1:  # inside one day
        return d0, d1

    def empty(lo: int, hi: int) -> bool:
        row = conn.execute(
            f"SELECT NOT EXISTS (SELECT 1 FROM functions f WHERE {_has_hours(conn)})",
            {"lo": lo, "hi": hi},
        ).fetchone()
        return bool(row[0])

    if d1 < end and empty(end, d1 + DAY_S):
        d1 += DAY_S
    if start < d0 and empty(d0 - DAY_S, start):
        d0 -= DAY_S
    return d0, d1


def _window_day_rows(
    conn: sqlite3.Connection, start: int, end: int, filters: Filters
) -> tuple[str, dict[str, Any]]:
    """Day-shaped rows (DAY_COLUMNS) covering ``[start, end)``: whole days from
    daily_facts (computed from the base tables for function-days that wait for a
    refresh), the partial days at either edge aggregated from merged hours."""
    where, params = filter_sql(filters)
    d0, d1 = _split(conn, start, end) if _has_rollups(conn) else (0, 0)
    if d0 >= d1:
        sql, params = _hourly_rows(conn, start, end, filters)
        parts = [DAY_AGG_SQL.format(rows=sql)]
        parts += _packed_day_rows(conn, start, end, filters, parts[0], params)
        return " UNION ALL ".join(parts), params
    parts = [
        f"SELECT {DAY_COLUMNS} FROM daily_facts df WHERE df.day >= {d0} AND df.day < {d1}"
        f" AND df.function_id IN (SELECT f.id FROM functions f WHERE {where})"
    ]
    span = _dirty_span(conn, d0, d1)
    if span is not None:
        parts[0] += f" AND NOT ({_dirty('df', 'day')})"
        dirty, _ = merged_hourly_sql(*span, filters, only_dirty=True)
        parts.append(DAY_AGG_SQL.format(rows=dirty))
    for lo, hi in ((start, d0), (d1, end)):
        if lo < hi:
            hours, _ = _hourly_rows(conn, lo, hi, filters)
            parts.append(DAY_AGG_SQL.format(rows=hours))
            parts += _packed_day_rows(conn, lo, hi, filters, parts[-1], params)
    return " UNION ALL ".join(parts), params


def _packed_day_rows(
    conn: sqlite3.Connection,
    start: int,
    end: int,
    filters: Filters,
    day_sql: str,
    params: dict[str, Any],
) -> list[str]:
    """The day rows ``day_sql`` gives over the packed hours of ``[start, end)``, as an SQL
    part (rows handed over in a JSON parameter added to ``params``); none when nothing
    packed overlaps. Run over the decoded hours (lambdascope.packing.scratch) with the
    same SQL, so they are exactly what the rows would give."""
    rows = _packed_rows(conn, start, end, filters, day_sql, params, _MERGED_TABLES)
    if not rows:
        return []
    names = [c.strip() for c in DAY_COLUMNS.split(",")]
    key = f"_packed_rows_{len([k for k in params if k.startswith('_packed_rows_')])}"
    params[key] = json.dumps(rows)
    columns = ", ".join(f"value ->> {i} AS {name}" for i, name in enumerate(names))
    return [f"SELECT {columns} FROM json_each(:{key})"]


def _packed_rows(
    conn: sqlite3.Connection,
    start: int,
    end: int,
    filters: Filters,
    sql: str,
    params: Any,
    tables: Sequence[str] = ("hourly_facts",),
) -> list[tuple[Any, ...]]:
    """The rows ``sql`` gives over the packed hours of ``[start, end)`` of the functions
    ``filters`` selects (the ``tables`` it reads decoded into a scratch database); none
    when nothing packed overlaps."""
    where, fparams = filter_sql(filters)
    packed = packing.scratch(conn, start, end, where, fparams, tables)
    if packed is None:
        return []
    return packed.execute(sql, params).fetchall()


def rows_with_packed(
    db: Conn, start: int, end: int, filters: Filters, sql: str, params: Any
) -> list[tuple[Any, ...]]:
    """The rows ``sql`` (a read of the hourly tables over ``[start, end)``) gives on the
    store, then over the packed hours of the window (lambdascope.packing): for reads whose
    groups never span two function-days, so each group comes from one side whole."""
    conn = _conn(db)
    found = conn.execute(sql, params).fetchall()
    return found + _packed_rows(conn, start, end, filters, sql, params, _ALL_TABLES)


def facts_histogram_sql(
    start: int, end: int, where: str, columns: Sequence[str], *, only_dirty: bool = False
) -> str:
    """Rows (function_id, memory_mb, *columns) of histogram columns from the facts of the
    merged view in ``[start, end)``; ``where`` as returned by :func:`filter_sql`;
    ``only_dirty`` keeps the function-days that wait for a rollup refresh."""
    assert columns and all(c in HIST_COLUMNS for c in columns)
    names = "hf.function_id, hf.memory_mb, " + ", ".join(f"hf.{c}" for c in columns)
    return _FACTS_SQL.format(
        columns=names,
        start=int(start),
        end=int(end),
        where=where,
        only_dirty_hf=f" AND {_dirty('hf')}" if only_dirty else "",
    )


def _merged_histograms(
    conn: sqlite3.Connection, start: int, end: int, filters: Filters, columns: Sequence[str]
) -> dict[str, dict[tuple[int, int], Histogram]]:
    """Histogram ``columns`` merged per (function_id, memory_mb), in one pass: whole days
    from daily_facts (from the facts for function-days that wait for a refresh), edge
    hours from the facts of the merged view. Merged in Python (lambdascope.histcodec)."""
    where, params = filter_sql(filters)
    d0, d1 = _split(conn, start, end) if _has_rollups(conn) else (0, 0)
    ranges = [(start, end)]
    parts: list[str] = []
    if d0 < d1:
        daily = (
            f"SELECT function_id, memory_mb, {', '.join(columns)} FROM daily_facts df"
            f" WHERE df.day >= {d0} AND df.day < {d1}"
            f" AND df.function_id IN (SELECT f.id FROM functions f WHERE {where})"
        )
        span = _dirty_span(conn, d0, d1)
        if span is not None:
            daily += f" AND NOT ({_dirty('df', 'day')})"
            parts.append(facts_histogram_sql(*span, where, columns, only_dirty=True))
        parts.append(daily)
        ranges = [(start, d0), (d1, end)]
    edges = [(lo, hi) for lo, hi in ranges if lo < hi]
    parts.extend(facts_histogram_sql(lo, hi, where, columns) for lo, hi in edges)
    out: dict[str, dict[tuple[int, int], Histogram]] = {c: {} for c in columns}
    targets = [out[c] for c in columns]
    decode = histcodec.decode
    found: list[Iterable[tuple[Any, ...]]] = [conn.execute(" UNION ALL ".join(parts), params)]
    for lo, hi in edges:
        found.append(
            _packed_rows(conn, lo, hi, filters, facts_histogram_sql(lo, hi, where, columns), params)
        )
    for row in itertools.chain.from_iterable(found):
        key = (row[0], row[1])
        for target, stored in zip(targets, row[2:], strict=True):
            if not stored or stored == "{}":
                continue
            merged = target.get(key)
            if merged is None:
                target[key] = decode(stored)
                continue
            get = merged.get
            for bucket, count in decode(stored).items():
                merged[bucket] = get(bucket, 0) + count
    return out


_INFO_COLUMNS = (
    "f.id, f.account_id, f.region, f.function_name, f.function_arn, f.runtime,"
    " f.architecture, f.memory_mb, f.timeout_s, f.last_modified, f.tags_json,"
    " f.first_seen, f.last_seen, f.inventory_at, f.deleted_at, f.package_type"
)


def _functions(conn: sqlite3.Connection, filters: Filters) -> dict[int, FunctionInfo]:
    where, params = filters.where("f")
    rows = conn.execute(
        f"SELECT {_INFO_COLUMNS} FROM functions f WHERE {where}"
        " ORDER BY f.function_name, f.account_id, f.region",
        params,
    ).fetchall()
    return {row[0]: _info(row) for row in rows}


def _info(row: tuple[Any, ...]) -> FunctionInfo:
    tags: dict[str, str] = {}
    if row[10]:
        try:
            loaded = json.loads(row[10])
            if isinstance(loaded, dict):
                tags = {str(k): str(v) for k, v in loaded.items()}
        except ValueError:
            tags = {}
    return FunctionInfo(
        function_id=row[0],
        account_id=row[1],
        region=row[2],
        function_name=row[3],
        function_arn=row[4],
        runtime=row[5],
        architecture=row[6],
        memory_mb=row[7],
        timeout_s=row[8],
        last_modified=row[9],
        tags=tags,
        first_seen=row[11],
        last_seen=row[12],
        inventory_at=row[13],
        deleted_at=row[14],
        package_type=row[15],
    )


def function_stats(
    db: Conn,
    start: int,
    end: int,
    filters: Filters = ALL,
    *,
    histograms: bool | Sequence[str] = True,
) -> list[FunctionStats]:
    """Per function x configured memory in ``[start, end)``, from the merged view.

    Functions matching ``filters`` with no activity in the window are included once, with
    zero counts, at their inventory memory size, so stale and empty functions show.
    ``histograms``: True merges all four histograms (HIST_COLUMNS), False none, or a
    sequence of HIST_COLUMNS names; each merged histogram costs one more pass over the
    window, so ask only for what you read (percentiles of a skipped histogram are None,
    or CloudWatch's for duration). Whole UTC days are read from the daily rollup.
    Sorted by function name, account, region, memory.
    """
    conn = _conn(db)
    infos = _functions(conn, filters)
    rows_sql, params = _window_day_rows(conn, start, end, filters)
    cur = conn.execute(
        f"SELECT function_id, memory_mb, {_WINDOW_AGG} FROM ({rows_sql})"
        " GROUP BY function_id, memory_mb",
        params,
    )
    names = [d[0] for d in cur.description]
    agg = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    wanted = HIST_COLUMNS if histograms is True else () if histograms is False else histograms
    hists = _merged_histograms(conn, start, end, filters, wanted) if wanted else {}
    exact = _exact_seen(conn, start, end, filters)

    out: list[FunctionStats] = []
    active: set[int] = set()
    for row in agg:
        fid, mem = row["function_id"], row["memory_mb"]
        info = infos.get(fid)
        if info is None:
            continue
        active.add(fid)
        sources = tuple(
            name
            for name, flag in (
                ("insights", row["has_insights"]),
                ("local", row["has_local"]),
                ("metrics", row["has_metrics"]),
            )
            if flag
        )
        mem_hist = hists.get("max_memory_used_hist", {}).get((fid, mem), {})
        dur_hist = hists.get("duration_hist", {}).get((fid, mem), {})
        billed_hist = hists.get("billed_duration_hist", {}).get((fid, mem), {})
        init_hist = hists.get("init_duration_hist", {}).get((fid, mem), {})
        if dur_hist:
            dmax = row["duration_ms_max"]
            p50 = histogram.quantile(dur_hist, 0.50, dmax)
            p95 = histogram.quantile(dur_hist, 0.95, dmax)
            p99 = histogram.quantile(dur_hist, 0.99, dmax)
        else:  # no log distribution: CloudWatch's hourly statistics, where collected
            weight = row["cw_p50_weight"]
            p50 = row["cw_p50_weighted"] / weight if weight else None
            p95, p99 = row["cw_p95_max"], row["cw_p99_max"]
            dmax = row["duration_ms_max"]
            if dmax is None:
                dmax = row["cw_max"]
        first, last = row["active_first_hour"], row["active_last_hour"]
        seen = exact.get((fid, mem))
        if seen is not None:
            first, last = seen
        out.append(
            FunctionStats(
                function_id=fid,
                account_id=info.account_id,
                region=info.region,
                function_name=info.function_name,
                runtime=info.runtime,
                architecture=info.architecture,
                timeout_s=info.timeout_s,
                memory_mb=mem,
                inventory_memory_mb=info.memory_mb,
                invocations=float(row["invocations"] or 0),
                errors=float(row["errors"] or 0),
                throttles=float(row["throttles"] or 0),
                timeouts=int(row["timeouts"] or 0),
                out_of_memory=int(row["out_of_memory"] or 0),
                cold_starts=int(row["cold_starts"] or 0),
                log_invocations=int(row["log_invocations"] or 0),
                duration_p50_ms=p50,
                duration_p95_ms=p95,
                duration_p99_ms=p99,
                duration_max_ms=dmax,
                duration_ms_sum=float(row["duration_ms_sum"] or 0),
                billed_duration_ms_sum=float(row["billed_duration_ms_sum"] or 0),
                init_duration_ms_sum=float(row["init_duration_ms_sum"] or 0),
                restore_duration_ms_sum=float(row["restore_duration_ms_sum"] or 0),
                billed_restore_duration_ms_sum=float(row["billed_restore_duration_ms_sum"] or 0),
                init_p50_ms=histogram.quantile(init_hist, 0.50, row["init_duration_ms_max"]),
                init_p95_ms=histogram.quantile(init_hist, 0.95, row["init_duration_ms_max"]),
                init_max_ms=row["init_duration_ms_max"],
                max_memory_used_mb=row["max_memory_used_mb_max"],
                p99_memory_used_mb=histogram.quantile(
                    mem_hist, 0.99, row["max_memory_used_mb_max"]
                ),
                memory_hist=mem_hist,
                duration_hist=dur_hist,
                billed_duration_hist=billed_hist,
                init_hist=init_hist,
                first_seen=first,
                last_seen=last,
                hours_with_data=int(row["hours"] or 0),
                sources=sources,
                deleted_at=info.deleted_at,
                package_type=info.package_type,
            )
        )
    for fid, info in infos.items():
        if fid in active:
            continue
        out.append(
            FunctionStats(
                function_id=fid,
                account_id=info.account_id,
                region=info.region,
                function_name=info.function_name,
                runtime=info.runtime,
                architecture=info.architecture,
                timeout_s=info.timeout_s,
                memory_mb=info.memory_mb,
                inventory_memory_mb=info.memory_mb,
                deleted_at=info.deleted_at,
                package_type=info.package_type,
            )
        )
    out.sort(key=lambda s: (s.function_name, s.account_id, s.region, s.memory_mb or 0))
    return out


def functions_with_several_memory_sizes(
    db: Conn, start: int, end: int, filters: Filters = ALL
) -> list[int]:
    """Ids of functions whose logs show invocations at two or more configured memory
    sizes in ``[start, end)`` (someone changed the size: a natural experiment)."""
    conn = _conn(db)
    rows_sql, params = _window_day_rows(conn, start, end, filters)
    rows = conn.execute(
        f"SELECT function_id FROM ({rows_sql}) WHERE log_invocations > 0"
        " GROUP BY function_id HAVING count(DISTINCT memory_mb) > 1 ORDER BY function_id",
        params,
    )
    return [int(r[0]) for r in rows]


def activity(db: Conn, filters: Filters = ALL) -> dict[int, tuple[int | None, float | None]]:
    """Per function over all stored history: the last hour with invocations (logs or
    CloudWatch) and the longest duration seen (ms; CloudWatch's maximum on days no log
    saw the function), None when absent."""
    conn = _conn(db)
    end = 2**62
    if _has_rollups(conn):  # index-only over the daily rollup
        where, params = filter_sql(filters)
        rows_sql = (
            "SELECT function_id, active_last_hour, duration_ms_max, cw_max FROM daily_facts df"
            f" WHERE df.function_id IN (SELECT f.id FROM functions f WHERE {where})"
        )
        span = _dirty_span(conn, 0, end)
        if span is not None:
            dirty, _ = merged_hourly_sql(*span, filters, only_dirty=True)
            rows_sql += (
                f" AND NOT ({_dirty('df', 'day')}) UNION ALL"
                " SELECT function_id, active_last_hour, duration_ms_max, cw_max FROM"
                f" ({DAY_AGG_SQL.format(rows=dirty)})"
            )
    else:
        rows_sql, params = _window_day_rows(conn, 0, end, filters)
    sql = (
        "SELECT function_id, max(active_last_hour), max(coalesce(duration_ms_max, cw_max))"
        f" FROM ({rows_sql}) GROUP BY function_id"
    )
    return {
        int(fid): (None if last is None else int(last), None if dmax is None else float(dmax))
        for fid, last, dmax in conn.execute(sql, params)
    }


def latest_data_hour(db: Conn) -> int | None:
    """The latest hour with any fact or metric stored (None for an empty store)."""
    conn = _conn(db)
    row = conn.execute(
        f"SELECT max(h) FROM (SELECT ({last_hour_sql('hourly_facts')}) AS h"
        f" UNION ALL SELECT ({last_hour_sql('hourly_metrics')}))"
    ).fetchone()
    latest = packing.latest_packed(conn, "last_hour", None if row is None else row[0])
    if latest is not None:
        row = (latest,)
    if (row is None or row[0] is None) and hourly_from(conn):
        # only daily rows left (all data older than the hourly span): their last hour
        row = conn.execute(f"SELECT max(day) + {DAY_S - 3600} FROM daily_facts").fetchone()
    return None if row is None or row[0] is None else int(row[0])


STALE_DATA_S = 86400  # data older than a day before the window's end moves the window


def window_at_latest_data(db: Conn, start: int, end: int) -> tuple[int, int] | None:
    """When the latest stored hour ends more than a day before ``end`` (old log exports,
    a collector that stopped), the window of the same length ending after it; else None."""
    latest = latest_data_hour(db)
    if latest is None or latest + 3600 > end - STALE_DATA_S:
        return None
    return latest + 3600 - (end - start), latest + 3600


def _exact_seen(
    conn: sqlite3.Connection, start: int, end: int, filters: Filters
) -> dict[tuple[int, int], tuple[int, int]]:
    """First/last raw invocation per (function, memory) in the window, where stored."""
    where, params = filters.where("f")
    rows = conn.execute(
        "SELECT i.function_id, i.memory_mb, min(i.timestamp), max(i.timestamp)"
        " FROM invocations i"
        " WHERE i.timestamp >= ? AND i.timestamp < ?"
        f" AND i.function_id IN (SELECT f.id FROM functions f WHERE {where})"
        " GROUP BY i.function_id, i.memory_mb",
        [int(start), int(end), *params],
    ).fetchall()
    return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}


# --- time series ------------------------------------------------------------------------


@dataclass(frozen=True)
class HourPoint:
    """One function-hour of the merged view (all memory rows of that hour combined).

    ``memory_mb`` is the largest configured memory seen in the hour; ``gb_seconds`` the
    billed GB-seconds of the invocations the logs saw. Percentiles come from the hour's
    histograms, else from CloudWatch's hourly statistics.
    """

    hour: int
    invocations: float
    errors: float
    throttles: float
    timeouts: int
    out_of_memory: int
    cold_starts: int
    log_invocations: int
    duration_p50_ms: float | None
    duration_p95_ms: float | None
    duration_p99_ms: float | None
    duration_max_ms: float | None
    max_memory_used_mb: int | None
    p99_memory_used_mb: float | None
    memory_mb: int | None
    init_p95_ms: float | None
    billed_duration_ms_sum: float
    gb_seconds: float
    span_s: int = 3600  # a day (86400) before the hourly boundary: the day's totals


def function_timeseries(db: Conn, function_id: int, start: int, end: int) -> list[HourPoint]:
    """Hourly merged view of one function in ``[start, end)``; hours without data are absent
    (treat them as zero invocations). Before the hourly boundary (lambdascope.tiers) one
    point per UTC day (``span_s`` 86400) with the day's totals and percentiles."""
    conn = _conn(db)
    one = Filters(include_deleted=True, function_ids=(function_id,))
    boundary = hourly_from(conn)
    days: list[HourPoint] = []
    if start < boundary:
        days = _day_points(conn, function_id, start, min(end, boundary))
        start = boundary
        if start >= end:
            return days
    sql, params = _hourly_rows(conn, start, end, one)
    sql = f"SELECT * FROM ({sql}) ORDER BY hour, memory_mb"
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    found = cur.fetchall()
    where, fparams = filter_sql(one)
    packed = packing.scratch(conn, start, end, where, fparams)
    if packed is not None:  # its packed days, read the same way
        found = sorted([*found, *packed.execute(sql, params)], key=lambda r: (r[1], r[2]))
    rows = [dict(zip(names, row, strict=True)) for row in found]
    columns = "hf.hour, hf.duration_hist, hf.max_memory_used_hist, hf.init_duration_hist"
    hist_sql = _FACTS_SQL.format(
        columns=columns, start=int(start), end=int(end), where=where, only_dirty_hf=""
    )
    hist_rows = conn.execute(hist_sql, fparams).fetchall()
    if packed is not None:
        hist_rows += packed.execute(hist_sql, fparams).fetchall()
    hour_hists: dict[int, list[Histogram]] = {}
    for hour, dh, mh, ih in hist_rows:
        hists = hour_hists.setdefault(hour, [{}, {}, {}])
        for i, text in enumerate((dh, mh, ih)):
            for key, cnt in histcodec.decode(text).items():
                hists[i][key] = hists[i].get(key, 0) + cnt
    by_hour: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_hour[row["hour"]].append(row)
    points: list[HourPoint] = []
    for hour in sorted(by_hour):
        rs = by_hour[hour]
        dur, mem, init = hour_hists.get(hour, [{}, {}, {}])
        if dur:
            dmax = _max(r["duration_ms_max"] for r in rs)
            p50, p95, p99 = (histogram.quantile(dur, q, dmax) for q in (0.5, 0.95, 0.99))
        else:  # CloudWatch's statistics of the hour
            first = rs[0]
            p50, p95 = first["duration_p50_ms"], first["duration_p95_ms"]
            p99, dmax = first["duration_p99_ms"], first["duration_max_ms"]
        points.append(_point(hour, rs, mem, init, (p50, p95, p99, dmax), 3600))
    return [*days, *points]


def _day_points(
    conn: sqlite3.Connection, function_id: int, start: int, end: int
) -> list[HourPoint]:
    """One :class:`HourPoint` per UTC day of one function from the daily rows (the days
    that left the hourly tier); a partial day counts whole."""
    one = Filters(include_deleted=True, function_ids=(function_id,))
    sql, params = _window_day_rows(conn, start, end, one)
    cur = conn.execute(f"SELECT * FROM ({sql}) ORDER BY day, memory_mb", params)
    names = [d[0] for d in cur.description]
    by_day: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in cur.fetchall():
        by_day[row[1]].append(dict(zip(names, row, strict=True)))
    d0, d1 = _split(conn, start, end)
    day_hists: dict[int, list[Histogram]] = {}
    for day, dh, mh, ih in conn.execute(
        "SELECT day, duration_hist, max_memory_used_hist, init_duration_hist FROM daily_facts"
        " WHERE function_id = ? AND day >= ? AND day < ?",
        (function_id, d0, d1),
    ):
        hists = day_hists.setdefault(day, [{}, {}, {}])
        for i, stored in enumerate((dh, mh, ih)):
            for key, cnt in histcodec.decode(stored).items():
                hists[i][key] = hists[i].get(key, 0) + cnt
    points = []
    for day in sorted(by_day):
        rs = by_day[day]

        def total(column: str, day_rows: list[dict[str, Any]] = rs) -> float:
            return float(sum(r[column] or 0 for r in day_rows))

        dur, mem, init = day_hists.get(day, [{}, {}, {}])
        dmax = _max(r["duration_ms_max"] for r in rs)
        if dur:
            p50, p95, p99 = (histogram.quantile(dur, q, dmax) for q in (0.5, 0.95, 0.99))
        else:  # CloudWatch's hourly statistics of the day
            weight = total("cw_p50_weight")
            p50 = total("cw_p50_weighted") / weight if weight else None
            p95, p99 = _max(r["cw_p95_max"] for r in rs), _max(r["cw_p99_max"] for r in rs)
            dmax = _max(r["cw_max"] for r in rs) if dmax is None else dmax
        points.append(_point(day, rs, mem, init, (p50, p95, p99, dmax), DAY_S))
    return points


def _point(
    at: int,
    rs: list[dict[str, Any]],
    mem: Histogram,
    init: Histogram,
    durations: tuple[float | None, float | None, float | None, float | None],
    span_s: int,
) -> HourPoint:
    """One series point from the merged rows of an hour or a day (per memory size), its
    memory and init histograms and its duration p50, p95, p99 and max."""

    def total(column: str) -> float:
        return float(sum(r[column] or 0 for r in rs))

    mmax = _max(r["max_memory_used_mb_max"] for r in rs)
    p50, p95, p99, dmax = durations
    return HourPoint(
        hour=at,
        invocations=total("invocations"),
        errors=total("errors"),
        throttles=total("throttles"),
        timeouts=int(total("timeouts")),
        out_of_memory=int(total("out_of_memory")),
        cold_starts=int(total("cold_starts")),
        log_invocations=int(total("log_invocations")),
        duration_p50_ms=p50,
        duration_p95_ms=p95,
        duration_p99_ms=p99,
        duration_max_ms=dmax,
        max_memory_used_mb=mmax,
        p99_memory_used_mb=histogram.quantile(mem, 0.99, mmax),
        memory_mb=_max(r["memory_mb"] for r in rs),
        init_p95_ms=histogram.quantile(init, 0.95, _max(r["init_duration_ms_max"] for r in rs)),
        billed_duration_ms_sum=total("billed_duration_ms_sum"),
        gb_seconds=sum(
            (r["billed_duration_ms_sum"] or 0) / 1000.0 * (r["memory_mb"] or 0) / 1024.0 for r in rs
        ),
        span_s=span_s,
    )


def _max(values: Any) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None


ALL_WITH_DELETED = Filters(include_deleted=True)


@dataclass(frozen=True)
class FleetPoint:
    """Fleet totals over one time bucket (merged view)."""

    start: int
    invocations: float
    errors: float
    throttles: float
    timeouts: int
    out_of_memory: int
    cold_starts: int
    active_functions: int
    duration_ms_sum: float
    billed_duration_ms_sum: float
    gb_seconds: float
    span_s: int = 3600  # the bucket's length: a day before the hourly boundary


def fleet_timeseries(
    db: Conn, start: int, end: int, filters: Filters = ALL, bucket_s: int = 3600
) -> list[FleetPoint]:
    """Fleet totals per ``bucket_s`` bucket (aligned on epoch multiples of ``bucket_s``) in
    ``[start, end)``; buckets without data are absent. Buckets shorter than a day become
    UTC days before the hourly boundary (lambdascope.tiers; ``span_s`` says which)."""
    if bucket_s <= 0:
        raise ValueError("bucket_s must be positive")
    conn = _conn(db)
    boundary = hourly_from(conn)
    if bucket_s % DAY_S and start < boundary:
        days = fleet_timeseries(conn, start, min(end, boundary), filters, DAY_S)
        rest = fleet_timeseries(conn, boundary, end, filters, bucket_s) if boundary < end else []
        return [*days, *rest]
    if bucket_s % DAY_S == 0:  # whole-day buckets: read the daily rollup
        sql, params = _window_day_rows(conn, start, end, filters)
        time_column = "day"
    else:
        sql, params = _hourly_rows(conn, start, end, filters, percentiles=False)
        time_column = "hour"
        packed = packing.scratch(conn, start, end, *filter_sql(filters), _MERGED_TABLES)
        if packed is not None:
            rows = _fleet_buckets_both(conn, packed, sql, {**params, "bucket": bucket_s})
            return [_fleet_point(r, bucket_s) for r in rows]
    rows = conn.execute(
        f"""
        SELECT ({time_column} / :bucket) * :bucket AS b, sum(invocations), sum(errors),
          sum(throttles), sum(timeouts), sum(out_of_memory), sum(cold_starts),
          count(DISTINCT CASE WHEN invocations > 0 THEN function_id END),
          sum(duration_ms_sum), sum(billed_duration_ms_sum),
          sum(billed_duration_ms_sum / 1000.0 * coalesce(memory_mb, 0) / 1024.0)
        FROM ({sql}) GROUP BY b ORDER BY b
        """,
        {**params, "bucket": int(bucket_s)},
    ).fetchall()
    return [_fleet_point(r, bucket_s) for r in rows]


def _fleet_point(r: Sequence[Any], bucket_s: int) -> FleetPoint:
    return FleetPoint(
        start=int(r[0]),
        invocations=float(r[1] or 0),
        errors=float(r[2] or 0),
        throttles=float(r[3] or 0),
        timeouts=int(r[4] or 0),
        out_of_memory=int(r[5] or 0),
        cold_starts=int(r[6] or 0),
        active_functions=int(r[7] or 0),
        duration_ms_sum=float(r[8] or 0),
        billed_duration_ms_sum=float(r[9] or 0),
        gb_seconds=float(r[10] or 0),
        span_s=int(bucket_s),
    )


def _fleet_buckets_both(
    conn: sqlite3.Connection, packed: sqlite3.Connection, sql: str, params: dict[str, Any]
) -> list[list[Any]]:
    """fleet_timeseries' bucket rows over the store's merged rows and the packed ones: per
    bucket and function on each side, then summed per bucket in Python (a function counts
    once in a bucket that holds hours of both)."""
    per_function = f"""
        SELECT (hour / :bucket) * :bucket AS b, function_id, sum(invocations), sum(errors),
          sum(throttles), sum(timeouts), sum(out_of_memory), sum(cold_starts),
          max(invocations > 0), sum(duration_ms_sum), sum(billed_duration_ms_sum),
          sum(billed_duration_ms_sum / 1000.0 * coalesce(memory_mb, 0) / 1024.0)
        FROM ({sql}) GROUP BY b, function_id
        """
    buckets: dict[int, list[Any]] = {}
    active: dict[int, set[int]] = defaultdict(set)
    for row in [*conn.execute(per_function, params), *packed.execute(per_function, params)]:
        b, fid = int(row[0]), int(row[1])
        totals = buckets.setdefault(b, [b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        for i, value in zip((1, 2, 3, 4, 5, 6, 8, 9, 10), (*row[2:8], *row[9:]), strict=True):
            totals[i] += value or 0
        if row[8]:
            active[b].add(fid)
    for b, totals in buckets.items():
        totals[7] = len(active[b])
    return [buckets[b] for b in sorted(buckets)]


def memory_histogram(
    db: Conn, function_id: int, start: int, end: int, memory_mb: int | None = None
) -> Histogram:
    """Merged max-memory-used histogram of one function (optionally one memory size)."""
    hists = _merged_histograms(
        _conn(db),
        start,
        end,
        Filters(include_deleted=True, function_ids=(function_id,)),
        (MEMORY_HIST,),
    )[MEMORY_HIST]
    if memory_mb is not None:
        return dict(hists.get((function_id, memory_mb), {}))
    return histogram.merge(hists.values())


# --- identity, runs, freshness, filter choices ------------------------------------------


def function_by_id(db: Conn, function_id: int) -> FunctionInfo | None:
    """One function by id (deleted ones included)."""
    row = (
        _conn(db)
        .execute(
            f"SELECT {_INFO_COLUMNS} FROM functions f WHERE f.id = ?",
            (function_id,),
        )
        .fetchone()
    )
    return None if row is None else _info(row)


def function_by_name(
    db: Conn, function_name: str, account_id: str | None = None, region: str | None = None
) -> FunctionInfo | None:
    """A function by name (and optionally account/region); None when not found.

    When the name exists in several accounts/regions and they are not given, the first by
    (account_id, region) is returned; use :func:`functions_by_name` to see them all.
    """
    found = functions_by_name(db, function_name, account_id, region)
    return found[0] if found else None


def functions_by_name(
    db: Conn, function_name: str, account_id: str | None = None, region: str | None = None
) -> list[FunctionInfo]:
    """Every function with that exact name, ordered by account and region."""
    rows = (
        _conn(db)
        .execute(
            f"SELECT {_INFO_COLUMNS} FROM functions f WHERE f.function_name = ?"
            " AND (? IS NULL OR f.account_id = ?) AND (? IS NULL OR f.region = ?)"
            " ORDER BY f.account_id, f.region",
            (function_name, account_id, account_id, region, region),
        )
        .fetchall()
    )
    return [_info(r) for r in rows]


def list_functions(db: Conn, filters: Filters = ALL) -> list[FunctionInfo]:
    """Inventory rows matching ``filters``, ordered by name, account, region."""
    return list(_functions(_conn(db), filters).values())


def collection_runs(
    db: Conn, since: int | None = None, limit: int = 200, source: str | None = None
) -> list[dict[str, Any]]:
    """Collection runs, newest first (``errors`` parsed from errors_json)."""
    conn = _conn(db)
    cur = conn.execute(
        "SELECT id, started_at, finished_at, account_id, region, source, status, window_start,"
        " window_end, items, api_calls, bytes_scanned, estimated_cost_usd, errors_json, message"
        " FROM collection_runs WHERE (? IS NULL OR started_at >= ?) AND (? IS NULL OR source = ?)"
        " ORDER BY started_at DESC, id DESC LIMIT ?",
        (since, since, source, source, int(limit)),
    )
    names = [d[0] for d in cur.description]
    out: list[dict[str, Any]] = []
    for row in cur.fetchall():
        item = dict(zip(names, row, strict=True))
        try:
            item["errors"] = json.loads(item.pop("errors_json") or "[]")
        except ValueError:
            item["errors"] = []
        out.append(item)
    return out


def data_freshness(db: Conn) -> dict[str, Any]:
    """How recent each kind of data is (epoch seconds, None when absent).

    Keys: ``local_hour``, ``insights_hour`` (latest hourly_facts hour per source),
    ``metrics_hour``, ``inventory_at``, ``last_invocation`` (raw invocations),
    ``last_run`` (latest finished collection run), ``last_ok_run`` (latest with status
    'ok'), and ``runs``: the latest run per (account_id, region, source) as dicts.
    """
    conn = _conn(db)

    def one(sql: str) -> Any:
        row = conn.execute(sql).fetchone()
        return None if row is None else row[0]

    runs_cur = conn.execute(
        "SELECT account_id, region, source, status, max(started_at) AS started_at, finished_at,"
        " window_end, message FROM collection_runs GROUP BY account_id, region, source"
        " ORDER BY account_id, region, source"
    )
    names = [d[0] for d in runs_cur.description]

    def latest(table: str, condition: str, source: str) -> Any:
        """The latest hour of ``source`` in the rows or the packed hours."""
        found = one(last_hour_sql(table, condition))
        packed = packing.latest_packed(conn, f"last_{source}_hour", found)
        return found if packed is None else packed

    return {
        "local_hour": latest("hourly_facts", "h.source = 'local'", "local"),
        "insights_hour": latest("hourly_facts", "h.source = 'insights'", "insights"),
        "metrics_hour": latest("hourly_metrics", "1", "metrics"),
        "inventory_at": one("SELECT max(inventory_at) FROM functions"),
        "last_invocation": one("SELECT max(timestamp) FROM invocations"),
        "last_run": one("SELECT max(finished_at) FROM collection_runs"),
        "last_ok_run": one("SELECT max(finished_at) FROM collection_runs WHERE status = 'ok'"),
        "runs": [dict(zip(names, r, strict=True)) for r in runs_cur.fetchall()],
    }


@dataclass(frozen=True)
class FilterOptions:
    """Distinct values for filter drop-downs (deleted functions excluded)."""

    account_ids: tuple[str, ...]
    regions: tuple[str, ...]
    runtimes: tuple[str, ...]
    architectures: tuple[str, ...]
    tag_keys: tuple[str, ...]


def filter_options(db: Conn) -> FilterOptions:
    """Distinct accounts, regions, runtimes, architectures and tag keys in the store."""
    conn = _conn(db)

    def distinct(column: str) -> tuple[str, ...]:
        rows = conn.execute(
            f"SELECT DISTINCT {column} FROM functions WHERE deleted_at IS NULL"
            f" AND {column} IS NOT NULL ORDER BY {column}"
        ).fetchall()
        return tuple(str(r[0]) for r in rows)

    tag_keys = conn.execute(
        f"SELECT DISTINCT t.key FROM functions f, json_each({_tags('f')}) t"
        " WHERE f.deleted_at IS NULL ORDER BY t.key"
    ).fetchall()
    return FilterOptions(
        account_ids=distinct("account_id"),
        regions=distinct("region"),
        runtimes=distinct("runtime"),
        architectures=distinct("architecture"),
        tag_keys=tuple(str(r[0]) for r in tag_keys),
    )


# --- dashboard reads: inventory detail, concurrency and delivery health -----------------


def has_functions(db: Conn) -> bool:
    """True when the store knows at least one function (deleted ones included)."""
    return _conn(db).execute("SELECT 1 FROM functions LIMIT 1").fetchone() is not None


def function_config(db: Conn, function_id: int) -> dict[str, Any] | None:
    """Every inventory column of one function as a dict (``tags`` parsed from tags_json,
    ``layers`` from layers_json); None when the id is unknown. Units as in the column names."""
    cur = _conn(db).execute("SELECT * FROM functions WHERE id = ?", (function_id,))
    row = cur.fetchone()
    if row is None:
        return None
    out = dict(zip([d[0] for d in cur.description], row, strict=True))
    for column, key, empty in (("tags_json", "tags", {}), ("layers_json", "layers", [])):
        try:
            loaded = json.loads(out.get(column) or "null")
        except ValueError:
            loaded = None
        out[key] = loaded if isinstance(loaded, type(empty)) else empty
    return out


def function_versions(db: Conn, function_id: int) -> list[dict[str, Any]]:
    """Published versions of one function (not deleted), oldest first, with code size
    (bytes), last modified (epoch s) and the aliases pointing at each (comma separated)."""
    cur = _conn(db).execute(
        "SELECT v.version, v.code_size_bytes, v.last_modified, v.runtime, v.memory_mb,"
        " (SELECT group_concat(a.alias_name, ', ') FROM function_aliases a"
        "   WHERE a.function_id = v.function_id AND a.function_version = v.version) AS aliases"
        " FROM function_versions v WHERE v.function_id = ? AND v.deleted_at IS NULL"
        " ORDER BY v.version = '$LATEST', CAST(v.version AS INTEGER)",
        (function_id,),
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


@dataclass(frozen=True)
class FunctionHealth:
    """CloudWatch concurrency, stream and async-delivery figures of one function in a window.

    A figure is None when CloudWatch sent no datapoint for it in the window (not collected,
    or the function has no stream / async source). ``concurrency_max`` and
    ``iterator_age_max_ms`` are the highest hourly maxima; the others are sums (counts).
    ``reserved_concurrency`` / ``provisioned_concurrency`` come from the inventory.
    """

    function_id: int
    reserved_concurrency: int | None
    provisioned_concurrency: int | None
    concurrency_max: float | None
    iterator_age_max_ms: float | None
    async_events_dropped: float | None
    dead_letter_errors: float | None
    destination_delivery_failures: float | None
    provisioned_spillover_invocations: float | None


def function_health(db: Conn, start: int, end: int, filters: Filters = ALL) -> list[FunctionHealth]:
    """Per function matching ``filters``, hourly_metrics in ``[start, end)`` (see
    :class:`FunctionHealth`); functions without metrics come back with None figures.
    Days before the hourly boundary come from daily_metrics (a partial day counts whole)."""
    conn = _conn(db)
    boundary = hourly_from(conn)
    # aggregated per function inside the window first (each table read through its key),
    # then joined to every function
    fwhere, fparams = filter_sql(filters)
    first = int(start) - int(start) % DAY_S if start < boundary else int(start)
    per_function = _health_agg(conn, first, int(end), fwhere, "function_id")
    rows = conn.execute(
        "SELECT f.id, f.reserved_concurrency, f.provisioned_concurrency, a.cmax, a.i, a.d,"
        f" a.l, a.x, a.s FROM functions f LEFT JOIN ({per_function}) a ON a.k = f.id"
        f" WHERE {fwhere} ORDER BY f.id",
        fparams,
    )
    return [FunctionHealth(*row) for row in rows]


@dataclass(frozen=True)
class HealthPoint:
    """Fleet concurrency and delivery figures over one time bucket (None: no datapoint).

    ``concurrency_sum_max`` is the largest hourly sum of per-function peak concurrency in
    the bucket (an upper bound of the fleet's peak concurrency); ``iterator_age_max_ms``
    the oldest stream record seen; the rest are counts summed over the bucket.
    """

    start: int
    concurrency_sum_max: float | None
    iterator_age_max_ms: float | None
    async_events_dropped: float | None
    dead_letter_errors: float | None
    destination_delivery_failures: float | None
    span_s: int = 3600  # the bucket's length: a day before the hourly boundary




def _health_agg(
    conn: sqlite3.Connection,
    start: int,
    end: int,
    where: str,
    key: str,
    *,
    hourly: bool = True,
) -> str:
    """Health figures in ``[start, end)`` of the functions ``where`` selects (a condition
    on ``functions f`` from :func:`filter_sql`) per ``key`` ('function_id' or 'hour'):
    ``key, concurrency_max, concurrency_sum, iterator_age_max, async_events_dropped,
    dead_letter_errors, destination_delivery_failures, spillover`` (sums and maxima of the
    rows; None where no row had the figure). From the hourly boundary on the rows are
    hourly_metrics and, for packed days (lambdascope.packing; a function-day is in one or
    the other), packed_health; before it daily_metrics, dated by the day's first hour;
    without ``hourly`` daily_metrics only. Each table is aggregated on its own, read
    through its key function by function, then the parts are combined."""

    def arm(table: str, time: str, lo: int, hi: int) -> str:
        group = time if key == "hour" else key
        return (
            f"SELECT {group} AS k, max(concurrent_executions_max) AS cmax,"
            " sum(concurrent_executions_max) AS csum, max(iterator_age_max_ms) AS i,"
            " sum(async_events_dropped) AS d, sum(dead_letter_errors) AS l,"
            " sum(destination_delivery_failures) AS x,"
            f" sum(provisioned_concurrency_spillover_invocations) AS s FROM {table}"
            f" WHERE function_id IN (SELECT f.id FROM functions f WHERE {where})"
            f" AND {time} >= {int(lo)} AND {time} < {int(hi)} GROUP BY {group}"
        )

    boundary = hourly_from(conn) if hourly else 2**62
    arms = []
    if max(start, boundary) < end:
        arms.append(arm("hourly_metrics", "hour", max(start, boundary), end))
        if packing.has_health(conn) and packing.packed_between(conn, max(start, boundary), end):
            arms.append(arm("packed_health", "hour", max(start, boundary), end))
    if start < min(end, boundary):
        arms.append(arm("daily_metrics", "day", start, min(end, boundary)))
    if len(arms) <= 1:
        return arms[0] if arms else arm("hourly_metrics", "hour", 0, 0)
    return (
        "SELECT k, max(cmax) AS cmax, sum(csum) AS csum, max(i) AS i, sum(d) AS d,"
        f" sum(l) AS l, sum(x) AS x, sum(s) AS s FROM ({' UNION ALL '.join(arms)}) GROUP BY k"
    )


def health_timeseries(
    db: Conn, start: int, end: int, filters: Filters = ALL, bucket_s: int = 3600
) -> list[HealthPoint]:
    """:class:`HealthPoint` per ``bucket_s`` bucket (aligned on epoch multiples) in
    ``[start, end)`` from hourly_metrics; buckets without metrics rows are absent. Before
    the hourly boundary the buckets are UTC days from daily_metrics (``span_s``)."""
    if bucket_s <= 0:
        raise ValueError("bucket_s must be positive")
    conn = _conn(db)
    boundary = hourly_from(conn)
    if start < boundary:
        days = _daily_health(conn, start, min(end, boundary), filters, max(bucket_s, DAY_S))
        rest = health_timeseries(conn, boundary, end, filters, bucket_s) if boundary < end else []
        return [*days, *rest]
    where, params = filter_sql(filters)
    return _health_buckets(conn, _health_agg(conn, start, end, where, "hour"), params, bucket_s)


def _daily_health(
    conn: sqlite3.Connection, start: int, end: int, filters: Filters, bucket_s: int
) -> list[HealthPoint]:
    """:class:`HealthPoint` per day-multiple bucket from daily_metrics (partial days whole):
    the concurrency figure sums each function's peak of the day, an upper bound again."""
    day0 = int(start) - int(start) % DAY_S
    where, params = filter_sql(filters)
    rows = _health_agg(conn, day0, end, where, "hour", hourly=False)
    return _health_buckets(conn, rows, params, bucket_s)


def _health_buckets(
    conn: sqlite3.Connection, per_time: str, params: dict[str, Any], bucket_s: int
) -> list[HealthPoint]:
    """:class:`HealthPoint` per bucket of ``bucket_s`` from health figures per row time
    (:func:`_health_agg` by 'hour'): concurrency sums the functions' peaks per row time."""
    found = conn.execute(
        "SELECT (k / :bucket) * :bucket AS b, max(csum), max(i), sum(d), sum(l), sum(x)"
        f" FROM ({per_time}) GROUP BY b ORDER BY b",
        {**params, "bucket": int(bucket_s)},
    ).fetchall()
    return [
        HealthPoint(int(r[0]), r[1], r[2], r[3], r[4], r[5], span_s=int(bucket_s)) for r in found
    ]


def tag_choices(db: Conn) -> tuple[str, ...]:
    """Every tag key and every ``key=value`` pair of not-deleted functions, sorted (the
    values a :class:`Filters` ``tag`` accepts)."""
    rows = (
        _conn(db)
        .execute(
            f"SELECT DISTINCT t.key, t.value FROM functions f, json_each({_tags('f')}) t"
            " WHERE f.deleted_at IS NULL"
        )
        .fetchall()
    )
    keys = {str(k) for k, _ in rows}
    pairs = {f"{k}={v}" for k, v in rows if v is not None}
    return tuple(sorted(keys | pairs))
