"""Retention tiers: hourly data for a span, daily rows beyond it, optionally for a span too.

Raw ``invocations`` are pruned by lambdascope.scheduler.prune_raw_invocations. Here the
hourly tables (hourly_facts, hourly_metrics and the derived merged_hourly) give up the UTC
days before ``now - keep_hourly``: their daily rollups are brought up to date first
(daily_facts through lambdascope.rollup, daily_metrics for the CloudWatch health figures),
then the boundary is written to ``retention_tiers`` in the same transaction that checks no
day before it waits for a refresh, and only then are the hourly rows deleted, in short
batches. From that moment the store's triggers drop writes of hours before the boundary
(counted in ``late_writes``), readers take those days from the daily rows, and a refresh
never recomputes them. An interrupted move leaves the boundary set and some hourly rows
below it, which readers ignore and the next run deletes. With ``keep_daily`` the daily
rows older than it go too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlite_utils import Database

from lambdascope import packing, queries, rollup
from lambdascope.timeutil import to_epoch

DAY_S = 86_400
DEFAULT_KEEP_HOURLY = timedelta(days=90)
MIN_KEEP_HOURLY = timedelta(days=2)  # yesterday and today stay hour by hour
DEFAULT_PACK_AFTER = timedelta(days=14)  # as long as raw invocations are kept
DELETE_BATCH_ROWS = 5_000  # one short write transaction per batch

# hourly tables of the tier and the column holding the hour; sealed_hours only matters
# for hours still in the hourly tier (tiered hours are final anyway)
HOURLY_TABLES: tuple[tuple[str, str], ...] = (
    ("hourly_facts", "hour"),
    ("hourly_metrics", "hour"),
    ("merged_hourly", "hour"),
    ("sealed_hours", "hour"),
    ("packed_hours", "day"),  # packed function-days (lambdascope.packing)
    ("packed_health", "hour"),
)
DAILY_TABLES: tuple[tuple[str, str], ...] = (("daily_facts", "day"), ("daily_metrics", "day"))

Stop = Callable[[], bool]
Progress = Callable[[str, int, int], None]  # (step, done, total)


class TierInterrupted(Exception):
    """The stop flag was seen between two batches; re-running resumes."""


class SpanError(ValueError):
    """Retention spans that make no sense together (one line for the user)."""


@dataclass(frozen=True)
class Spans:
    """How long each tier keeps data; ``keep_daily`` None keeps daily rows for ever."""

    keep_raw: timedelta
    keep_hourly: timedelta = DEFAULT_KEEP_HOURLY
    keep_daily: timedelta | None = None
    # hourly days older than this are packed (lambdascope.packing); None: never
    pack_after: timedelta | None = DEFAULT_PACK_AFTER


def check_spans(spans: Spans, min_keep_raw: timedelta) -> None:
    """Raise SpanError unless raw <= hourly <= daily and each is long enough."""
    if spans.keep_raw < min_keep_raw:
        raise SpanError(
            f"--keep-raw shorter than {min_keep_raw.days}d is refused: late timeout and"
            " out-of-memory lines are matched against recent raw invocations"
        )
    if spans.keep_hourly < MIN_KEEP_HOURLY:
        raise SpanError(
            f"--keep-hourly shorter than {MIN_KEEP_HOURLY.days}d is refused: today's and"
            " yesterday's data are read hour by hour"
        )
    if spans.keep_hourly < spans.keep_raw:
        raise SpanError(
            "--keep-hourly must be at least --keep-raw: raw invocations are summarised in"
            " hourly facts, which must outlive them"
        )
    if spans.pack_after is not None and spans.pack_after < MIN_KEEP_HOURLY:
        raise SpanError(
            f"--pack-after shorter than {MIN_KEEP_HOURLY.days}d is refused: today's and"
            " yesterday's hours are still being written"
        )
    if spans.keep_daily is not None and spans.keep_daily < spans.keep_hourly:
        raise SpanError(
            "--keep-daily must be at least --keep-hourly: days leave the hourly tier for the"
            " daily one, never the other way round"
        )


@dataclass
class TierResult:
    """What a tier move did (or, with dry_run, would do)."""

    hourly_from: int  # the hourly boundary after the move (0: none)
    daily_from: int  # the daily boundary after the move (0: daily rows kept for ever)
    days_refreshed: int = 0
    deleted: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    dry_run: bool = False

    @property
    def hourly_rows(self) -> int:
        """Hourly rows deleted (or to delete) in hourly_facts, hourly_metrics, merged_hourly."""
        return sum(self.deleted.get(t, 0) for t, _c in HOURLY_TABLES[:3])

    @property
    def daily_rows(self) -> int:
        """Daily rows deleted (or to delete)."""
        return sum(self.deleted.get(t, 0) for t, _c in DAILY_TABLES)


def day_floor(epoch: int) -> int:
    """The start of the UTC day holding ``epoch``."""
    return epoch - epoch % DAY_S


def _boundary(conn: sqlite3.Connection, tier: str) -> int:
    row = conn.execute("SELECT kept_from FROM retention_tiers WHERE tier = ?", (tier,)).fetchone()
    return 0 if row is None else int(row[0])


def _below(column: str) -> str:
    """SQL condition: the row's ``column`` is before the parameter. Read function by
    function: the hourly tables are keyed (or indexed) by function first and have no index
    by hour (migration 0018)."""
    return f"function_id IN (SELECT id FROM functions) AND {column} < ?"


def _count_below(
    conn: sqlite3.Connection, tables: tuple[tuple[str, str], ...], limit: int
) -> dict[str, int]:
    return {
        table: int(
            conn.execute(f"SELECT count(*) FROM {table} WHERE {_below(column)}", (limit,))
            .fetchone()[0]
        )
        for table, column in tables
    }


def move(
    db: Database,
    spans: Spans,
    *,
    now: datetime,
    stop: Stop | None = None,
    progress: Progress | None = None,
    dry_run: bool = False,
    batch_rows: int = DELETE_BATCH_ROWS,
) -> TierResult:
    """Move the days older than ``spans.keep_hourly`` out of the hourly tier and delete
    daily rows older than ``spans.keep_daily`` (see the module text). Boundaries never
    move back: a longer span later keeps what is left. Safe to re-run and to interrupt
    (``stop`` is asked between batches; the result says ``interrupted``)."""
    conn = db.conn
    epoch = to_epoch(now)
    hourly_target = max(
        day_floor(epoch - int(spans.keep_hourly.total_seconds())), _boundary(conn, "hourly")
    )
    daily_target = 0
    if spans.keep_daily is not None:
        daily_target = max(
            day_floor(epoch - int(spans.keep_daily.total_seconds())), _boundary(conn, "daily")
        )
    result = TierResult(hourly_target, daily_target, dry_run=dry_run)
    if dry_run:
        result.deleted = _count_below(conn, HOURLY_TABLES, hourly_target)
        if daily_target:
            result.deleted |= _count_below(conn, DAILY_TABLES, daily_target)
        result.days_refreshed = int(
            conn.execute(
                "SELECT count(*) FROM rollup_dirty WHERE day < ?", (hourly_target,)
            ).fetchone()[0]
        )
        return result
    try:
        result.days_refreshed = _seal_hourly(db, hourly_target, epoch, stop, progress)
        for table, column in HOURLY_TABLES:
            _delete_below(
                conn, table, column, hourly_target, result.deleted, stop, progress, batch_rows
            )
        if daily_target:
            _set_boundary(conn, "daily", daily_target, epoch)
            for table, column in DAILY_TABLES:
                _delete_below(
                    conn, table, column, daily_target, result.deleted, stop, progress, batch_rows
                )
    except TierInterrupted:
        result.interrupted = True
    return result


def _set_boundary(conn: sqlite3.Connection, tier: str, kept_from: int, epoch: int) -> None:
    with conn:
        conn.execute(
            "INSERT INTO retention_tiers (tier, kept_from, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (tier) DO UPDATE SET kept_from = max(kept_from, excluded.kept_from),"
            " updated_at = excluded.updated_at",
            (tier, kept_from, epoch),
        )


def _check(stop: Stop | None) -> None:
    if stop is not None and stop():
        raise TierInterrupted("stop requested")


_DAILY_METRICS_SQL = packing.DAILY_METRICS_SQL.format(
    where="function_id IN (SELECT id FROM functions) AND hour >= ? AND hour < ?"
)


def _seal_hourly(
    db: Database, target: int, epoch: int, stop: Stop | None, progress: Progress | None
) -> int:
    """Bring the rollups of the days before ``target`` up to date and set the boundary;
    returns the function-days refreshed. Days already below the current boundary are
    final and left alone."""
    conn = db.conn
    current = _boundary(conn, "hourly")
    if target <= current:
        return 0
    first = conn.execute(
        "SELECT min((SELECT min(h.hour) FROM hourly_metrics h WHERE h.function_id = f.id"
        " AND h.hour >= ?)) FROM functions f",
        (current,),
    ).fetchone()[0]
    days = range(day_floor(int(first)), target, DAY_S) if first is not None else range(0)
    for n, day in enumerate(days, start=1):
        _check(stop)
        with conn:  # the health figures of each day, one day per transaction
            conn.execute(_DAILY_METRICS_SQL, (day, day + DAY_S))
        if progress is not None:
            progress("daily metrics", n, len(days))
    refreshed = 0
    while True:
        _check(stop)
        refreshed += rollup.refresh(
            db,
            None if progress is None else (lambda d, t: progress("daily rollups", d, t)),
            before=target,
        )
        # a writer may have marked a day since: the boundary goes in only when none waits
        conn.execute("BEGIN IMMEDIATE")
        try:
            late = conn.execute(
                "SELECT DISTINCT day FROM rollup_dirty WHERE day < ? AND day >= ?",
                (target, current),
            ).fetchall()
            if not late:
                conn.execute(
                    "INSERT INTO retention_tiers (tier, kept_from, updated_at)"
                    " VALUES ('hourly', ?, ?) ON CONFLICT (tier) DO UPDATE"
                    " SET kept_from = excluded.kept_from, updated_at = excluded.updated_at",
                    (target, epoch),
                )
                conn.execute("DELETE FROM rollup_dirty WHERE day < ?", (target,))
            else:  # their health figures may have changed too
                for (day,) in late:
                    conn.execute(_DAILY_METRICS_SQL, (int(day), int(day) + DAY_S))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if not late:
            return refreshed


def _delete_below(
    conn: sqlite3.Connection,
    table: str,
    column: str,
    limit: int,
    deleted_by_table: dict[str, int],
    stop: Stop | None,
    progress: Progress | None,
    batch_rows: int,
) -> None:
    """Delete the rows of ``table`` with ``column`` < ``limit`` in batches, each its own
    transaction, counting them in ``deleted_by_table`` as they go."""
    keys = ", ".join(_primary_key(conn, table))
    total = _count_below(conn, ((table, column),), limit)[table]
    deleted = deleted_by_table[table] = 0
    while deleted < total:
        _check(stop)
        with conn:
            n = conn.execute(
                f"DELETE FROM {table} WHERE ({keys}) IN"
                f" (SELECT {keys} FROM {table} WHERE {_below(column)} LIMIT ?)",
                (limit, batch_rows),
            ).rowcount
        if n <= 0:
            break
        deleted += n
        deleted_by_table[table] = deleted
        if progress is not None:
            progress(f"deleting {table}", deleted, total)


def _primary_key(conn: sqlite3.Connection, table: str) -> list[str]:
    columns = sorted(
        (int(pk), str(name))
        for _cid, name, _t, _nn, _d, pk in conn.execute(f"PRAGMA table_info({table})")
        if pk
    )
    return [name for _pk, name in columns] or ["rowid"]


def late_writes(db: Database) -> dict[str, int]:
    """Rows dropped so far because their hour had already left the hourly tier, per table."""
    if not queries.hourly_from(db):
        return {}
    return {str(t): int(n) for t, n in db.conn.execute("SELECT table_name, rows FROM late_writes")}


def pack_hours(
    db: Database,
    spans: Spans,
    *,
    now: datetime,
    stop: Stop | None = None,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> packing.PackResult:
    """Pack the function-days of the hourly tier older than ``spans.pack_after``
    (lambdascope.packing), their rollups brought up to date first. Safe to re-run and to
    interrupt (``stop`` is asked between batches). ``dry_run`` counts the function-days
    it would pack."""
    if spans.pack_after is None or not packing.has_packing(db.conn):
        return packing.PackResult()
    conn = db.conn
    before = day_floor(to_epoch(now) - int(spans.pack_after.total_seconds()))
    # days the tier move takes (or, in a dry run, would take) out of the hourly tier
    # are never packed first
    epoch = to_epoch(now)
    start = max(
        _boundary(conn, "hourly"), day_floor(epoch - int(spans.keep_hourly.total_seconds()))
    )
    if before <= start:
        return packing.PackResult()
    if dry_run:
        return packing.PackResult(function_days=len(packing.candidates(conn, start, before)))
    rollup.refresh(
        db,
        None if progress is None else (lambda d, t: progress("daily rollups", d, t)),
        before=before,
    )
    return packing.pack(conn, start, before, stop=stop, progress=progress)
