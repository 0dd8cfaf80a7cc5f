"""Looking after the store file: what takes the space, whether it is sound, giving space back.

``stats`` measures every table and index with SQLite's ``dbstat`` (page bytes, as on
disk), the age of the data in each tier (raw invocations, hourly facts, daily facts) and
the bytes per function-day. ``check`` runs SQLite's integrity and foreign-key checks and
lambdascope's own invariants (the derived tables are the aggregate of the base tables,
raw rows and their hourly facts agree). ``vacuum`` gives free pages back to the file
system, in small steps that never hold the write lock for long.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from lambdascope import compaction, histcodec, packing, queries
from lambdascope.timeutil import HOUR_S

DAY_S = 86_400
# tier -> (tables, the column that dates a row)
TIERS: dict[str, tuple[tuple[str, ...], str]] = {
    "raw": (("invocations",), "timestamp"),
    "hourly": (
        ("hourly_facts", "hourly_metrics", "merged_hourly", "packed_hours", "packed_health"),
        "hour",
    ),
    "daily": (("daily_facts", "daily_metrics"), "day"),
}
# tables of a tier dated by another column than the tier's (packed function-days)
_DATED_BY = {"packed_hours": "day"}


@dataclass
class TableStats:
    """One table with its indexes: rows and bytes of its pages."""

    name: str
    rows: int
    bytes: int
    index_bytes: int
    tier: str | None


@dataclass
class TierStats:
    """A tier's tables together: bytes, oldest and newest data, function-days covered."""

    name: str
    bytes: int
    oldest: int | None
    newest: int | None
    function_days: int

    @property
    def bytes_per_function_day(self) -> float | None:
        """Bytes of the tier's tables and indexes per function-day it covers."""
        return self.bytes / self.function_days if self.function_days else None


@dataclass
class StoreStats:
    """What ``lambdascope store stats`` prints."""

    path: str
    file_bytes: int
    free_bytes: int
    page_size: int
    auto_vacuum: str
    tables: list[TableStats]
    tiers: list[TierStats]
    hourly_from: int = 0  # hours before this day live only in daily rows (0: none moved)
    daily_from: int = 0  # daily rows before this day were deleted (0: kept for ever)
    late_writes: dict[str, int] = field(default_factory=dict)  # dropped: hour already tiered

    @property
    def function_days(self) -> int:
        """Function-days with any daily data (the store's history)."""
        return max((t.function_days for t in self.tiers if t.name == "daily"), default=0)

    @property
    def bytes_per_function_day(self) -> float | None:
        """Whole file per function-day of history."""
        days = self.function_days
        return self.file_bytes / days if days else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "path": self.path,
            "file_bytes": self.file_bytes,
            "free_bytes": self.free_bytes,
            "page_size": self.page_size,
            "auto_vacuum": self.auto_vacuum,
            "function_days": self.function_days,
            "bytes_per_function_day": self.bytes_per_function_day,
            "hourly_from": self.hourly_from or None,
            "daily_from": self.daily_from or None,
            "late_writes": self.late_writes,
            "tables": [t.__dict__ for t in self.tables],
            "tiers": [
                {**t.__dict__, "bytes_per_function_day": t.bytes_per_function_day}
                for t in self.tiers
            ],
        }


def _table_of(conn: sqlite3.Connection) -> dict[str, str]:
    """Every b-tree (table or index) -> the table it belongs to."""
    owner: dict[str, str] = {}
    for kind, name, table in conn.execute("SELECT type, name, tbl_name FROM sqlite_master"):
        if kind in ("table", "index"):
            owner[name] = table
    return owner


def stats(db: Database, path: Path) -> StoreStats:
    """Sizes per table and tier, rows, oldest data per tier, bytes per function-day."""
    conn = db.conn
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    mode = {0: "none", 1: "full", 2: "incremental"}.get(
        int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]), "unknown"
    )
    owner = _table_of(conn)
    sizes: dict[str, list[int]] = {}
    for name, size in conn.execute(
        "SELECT name, SUM(pgsize) FROM dbstat WHERE aggregate = FALSE GROUP BY name"
    ):
        table = owner.get(name, name)
        entry = sizes.setdefault(table, [0, 0])
        entry[0 if name == table else 1] += int(size or 0)
    tier_of = {t: tier for tier, (tables, _c) in TIERS.items() for t in tables}
    tables = []
    for table in sorted(n for n, t in owner.items() if n == t):
        rows = int(conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
        own, index = sizes.get(table, [0, 0])
        tables.append(TableStats(table, rows, own, index, tier_of.get(table)))
    tables.sort(key=lambda t: -(t.bytes + t.index_bytes))
    by_name = {t.name: t for t in tables}
    tiers = []
    for tier, (names, column) in TIERS.items():
        present = [n for n in names if n in by_name]
        span = [
            conn.execute(
                f"SELECT MIN({_DATED_BY.get(n, column)}), MAX({_DATED_BY.get(n, column)})"
                f" FROM {n}"
            ).fetchone()
            for n in present
        ]
        oldest = min((s[0] for s in span if s[0] is not None), default=None)
        newest = max((s[1] for s in span if s[1] is not None), default=None)
        days = _function_days(conn, present, column)
        size = sum(by_name[n].bytes + by_name[n].index_bytes for n in present)
        tiers.append(TierStats(tier, size, oldest, newest, days))
    found = StoreStats(
        str(path), page_size * pages, page_size * free, page_size, mode, tables, tiers
    )
    if "retention_tiers" in by_name:
        bounds = dict(conn.execute("SELECT tier, kept_from FROM retention_tiers").fetchall())
        found.hourly_from = int(bounds.get("hourly", 0))
        found.daily_from = int(bounds.get("daily", 0))
        found.late_writes = {
            str(t): int(n) for t, n in conn.execute("SELECT table_name, rows FROM late_writes")
        }
    return found


def _function_days(conn: sqlite3.Connection, tables: list[str], column: str) -> int:
    if not tables:
        return 0
    dated = {t: _DATED_BY.get(t, column) for t in tables}
    union = " UNION ".join(
        f"SELECT DISTINCT function_id, {c} - {c} % {DAY_S} FROM {t}" for t, c in dated.items()
    )
    return int(conn.execute(f"SELECT COUNT(*) FROM ({union})").fetchone()[0])


# ---------------------------------------------------------------- check


@dataclass
class CheckResult:
    """What ``lambdascope store check`` found: every check run, and the problems."""

    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


_SAMPLE = 5


def check(db: Database, *, quick: bool = False) -> CheckResult:
    """SQLite's integrity and foreign-key checks, then lambdascope's invariants:
    merged_hourly and daily_facts equal what the base tables give for every function-day
    not waiting for a refresh, and raw invocations agree with their local hourly facts
    (hours whose raw rows were pruned are sealed and exempt)."""
    conn = db.conn
    result = CheckResult()
    pragma = "quick_check" if quick else "integrity_check"
    result.checks.append(f"SQLite {pragma}")
    messages = [row[0] for row in conn.execute(f"PRAGMA {pragma}")]
    if messages != ["ok"]:
        result.problems.extend(f"{pragma}: {m}" for m in messages[:20])
    result.checks.append("foreign keys")
    broken = conn.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({row[0] for row in broken})
        result.problems.append(f"{len(broken):,} rows refer to missing rows ({', '.join(tables)})")
    if queries._has_rollups(conn):
        _check_rollups(conn, result, quick=quick)
    _check_raw_against_facts(conn, result)
    _check_histograms(conn, result)
    return result


def _check_histograms(conn: sqlite3.Connection, result: CheckResult) -> None:
    if compaction.needs_compaction(conn):  # JSON text: a store opened read-only, not migrated
        return
    result.checks.append("stored histograms are valid")
    histcodec.register(conn)
    for table in ("hourly_facts", "daily_facts"):
        valid = " AND ".join(f"hist_valid({c})" for c in compaction.HIST_COLUMNS)
        bad = conn.execute(f"SELECT count(*) FROM {table} WHERE NOT ({valid})").fetchone()[0]
        if bad:
            result.problems.append(
                f"{bad:,} {table} rows hold a histogram that cannot be read (read as empty)"
            )


def _check_rollups(conn: sqlite3.Connection, result: CheckResult, *, quick: bool) -> None:
    # days before the hourly boundary are final daily rows: nothing left to compare with
    boundary = queries.hourly_from(conn)
    result.checks.append("merged_hourly = the merged view of the base tables")
    result.checks.append("daily_facts = the sum of merged_hourly per day")
    span = conn.execute(
        "SELECT MIN(hour), MAX(hour) FROM (SELECT hour FROM hourly_facts"
        " UNION ALL SELECT hour FROM hourly_metrics) WHERE hour >= ?",
        (boundary,),
    ).fetchone()
    if span[0] is not None:
        start, end = int(span[0]) - int(span[0]) % DAY_S, int(span[1]) + HOUR_S
        result.problems += _rollup_problems(conn, boundary, start, end)
    if quick or not packing.has_packing(conn):
        return
    # packed days: the same comparisons over their decoded rows, a day at a time
    result.checks.append("packed hours: readable, and their rollups as above")
    days = [int(d) for (d,) in conn.execute("SELECT DISTINCT day FROM packed_hours ORDER BY day")]
    for day in days:
        try:
            scratch = packing.scratch(conn, day, day + DAY_S, "1", ())
        except packing.PackedFormatError as exc:
            result.problems.append(f"packed hours of {_day(day)} cannot be read: {exc}")
            continue
        if scratch is not None:
            found = _rollup_problems(scratch, boundary, day, day + DAY_S)
            result.problems += [f"{p} (packed hours of {_day(day)})" for p in found]


def _day(epoch: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def _rollup_problems(conn: sqlite3.Connection, boundary: int, start: int, end: int) -> list[str]:
    """What disagrees between the base tables, merged_hourly and daily_facts over
    ``[start, end)`` on ``conn`` (the store, or a scratch database of packed hours)."""
    problems = []
    sql, params = queries.merged_hourly_sql(start, end, queries.Filters(include_deleted=True))
    columns = queries.STORED_COLUMNS
    clean = f"NOT ({queries._dirty('m')})"
    expected = f"SELECT {columns} FROM ({sql}) m WHERE {clean}"
    stored = (
        f"SELECT {columns} FROM merged_hourly m WHERE {clean} AND m.hour >= {boundary}"
        f" AND m.hour >= {start} AND m.hour < {end}"
    )
    missing = conn.execute(
        f"SELECT function_id, hour FROM ({expected} EXCEPT {stored}) LIMIT {_SAMPLE + 1}",
        params,
    ).fetchall()
    extra = conn.execute(
        f"SELECT function_id, hour FROM ({stored} EXCEPT {expected}) LIMIT {_SAMPLE + 1}",
        params,
    ).fetchall()
    for label, rows in (("differ from or miss in", missing), ("are stale in", extra)):
        if rows:
            shown = ", ".join(f"function {f} hour {h}" for f, h in rows[:_SAMPLE])
            problems.append(
                f"merged hours {label} merged_hourly ({shown}); `lambdascope store vacuum"
                " --rebuild-rollups` rebuilds them"
            )
    day_rows = queries.DAY_AGG_SQL.format(
        rows=queries.stored_merged_sql(
            f"m.hour >= {boundary} AND m.hour >= {start} AND m.hour < {end}"
        )
    )
    diff = conn.execute(
        f"SELECT function_id, day FROM (SELECT {queries.DAY_COLUMNS} FROM ({day_rows}) m"
        f" WHERE NOT ({queries._dirty('m', 'day')})"
        f" EXCEPT SELECT {queries.DAY_COLUMNS} FROM daily_facts m"
        f" WHERE NOT ({queries._dirty('m', 'day')})) LIMIT {_SAMPLE + 1}"
    ).fetchall()
    if diff:
        shown = ", ".join(f"function {f} day {d}" for f, d in diff[:_SAMPLE])
        problems.append(f"daily_facts disagree with merged_hourly ({shown})")
    return problems


def _check_raw_against_facts(conn: sqlite3.Connection, result: CheckResult) -> None:
    result.checks.append("raw invocations = local hourly facts (hours not sealed)")
    boundary = queries.hourly_from(conn)
    packed = packing.has_packing(conn)
    sql = f"""
        SELECT r.function_id, r.hour, r.n, COALESCE(f.n, 0) FROM (
            SELECT function_id, timestamp - timestamp % {HOUR_S} AS hour, COUNT(*) AS n
            FROM invocations GROUP BY 1, 2) r
        LEFT JOIN (
            SELECT function_id, hour, SUM(invocations) AS n FROM hourly_facts
            WHERE source = 'local' GROUP BY 1, 2) f
          ON f.function_id = r.function_id AND f.hour = r.hour
        WHERE r.n != COALESCE(f.n, 0) AND r.hour >= {boundary}
          AND NOT EXISTS (SELECT 1 FROM sealed_hours s
                          WHERE s.function_id = r.function_id AND s.hour = r.hour)
          {{packed}}
        LIMIT {_SAMPLE + 1}
        """
    in_packed = (
        "EXISTS (SELECT 1 FROM packed_hours p WHERE p.function_id = r.function_id"
        f" AND p.day = r.hour - r.hour % {DAY_S})"
    )
    rows = conn.execute(sql.format(packed=f"AND NOT {in_packed}" if packed else "")).fetchall()
    span = conn.execute("SELECT min(timestamp), max(timestamp) FROM invocations").fetchone()
    if packed and span[0] is not None:  # raw rows of packed days: against the packed facts
        first = int(span[0]) - int(span[0]) % HOUR_S  # from the start of its hour
        scratch = packing.scratch(conn, first, int(span[1]) + 1, tables=("hourly_facts",))
        if scratch is not None:
            rows += scratch.execute(sql.format(packed=f"AND {in_packed}")).fetchall()
    if rows:
        shown = ", ".join(
            f"function {f} hour {h}: {raw} raw, {facts} in facts"
            for f, h, raw, facts in rows[:_SAMPLE]
        )
        result.problems.append(f"raw invocations and local facts disagree ({shown})")


# ---------------------------------------------------------------- vacuum

VACUUM_STEP_PAGES = 2_000  # ~32 MB with 16 KiB pages: one short write transaction


def enable_incremental_vacuum(conn: sqlite3.Connection) -> bool:
    """Switch a store to incremental auto-vacuum (takes effect at the next VACUUM);
    returns True when it was not on."""
    mode = int(conn.execute("PRAGMA auto_vacuum").fetchone()[0])
    if mode == 2:
        return False
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    return True


def incremental_vacuum(
    db: Database,
    *,
    step_pages: int = VACUUM_STEP_PAGES,
    pause_s: float = 0.05,
    stop: Callable[[], bool] | None = None,
) -> int:
    """Give the free pages back in steps of ``step_pages`` (each step a short write,
    readers are never blocked in WAL mode); returns the bytes given back. A store without
    incremental auto-vacuum gives nothing back this way (see full_vacuum)."""
    conn = db.conn
    if int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) != 2:
        return 0
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    given = 0
    while True:
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        if free == 0 or (stop is not None and stop()):
            break
        step = min(free, step_pages)
        # stepped to the end by sqlite3_exec: through execute() it frees one page only
        conn.executescript(f"PRAGMA incremental_vacuum({int(step)});")
        given += step * page_size
        if pause_s:
            time.sleep(pause_s)  # let a waiting writer or checkpoint in between steps
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return given


def full_vacuum(db: Database) -> None:
    """VACUUM the whole file (rewrites it; needs free disk space about its size) and turn
    on incremental auto-vacuum so later prunes give space back in small steps."""
    conn = db.conn
    enable_incremental_vacuum(conn)
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
