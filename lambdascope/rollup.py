"""Keeps the derived tables ``merged_hourly`` and ``daily_facts`` up to date.

Triggers on hourly_facts, hourly_metrics and functions.memory_mb record every
(function, UTC day) a write touches in ``rollup_dirty`` (migration 0002). :func:`refresh`
recomputes those function-days from the base tables with the same SQL the readers use
(lambdascope.queries), so a daily row is exactly the aggregate of its merged hours.
Readers use the derived tables only for windows without dirty days, so a store is read
correctly even before a refresh; writers (ingest, collect, the scheduler, the demo and
the synthetic generator) call :func:`refresh` after they commit.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable

from sqlite_utils import Database

from lambdascope import histcodec, queries
from lambdascope.queries import (
    DAY_AGG_SQL,
    DAY_COLUMNS,
    DAY_S,
    HIST_COLUMNS,
    STORED_COLUMNS,
    Filters,
)

# Function ids per statement: keeps the IN list well under SQLite's variable limit.
_CHUNK = 500

Progress = Callable[[int, int], None]


def pending(db: Database | sqlite3.Connection) -> int:
    """How many function-days wait for a refresh."""
    conn = db.conn if isinstance(db, Database) else db
    return int(conn.execute("SELECT count(*) FROM rollup_dirty").fetchone()[0])


def refresh(db: Database, progress: Progress | None = None, *, before: int | None = None) -> int:
    """Recompute every dirty function-day (with ``before``, only days starting before that
    epoch second); returns how many were refreshed.

    Each day is refreshed in its own transaction (derived rows and their dirty marks go
    together), so an interrupted refresh leaves the remaining days dirty and correct to
    read. ``progress(done_days, total_days)`` is called after each day. Days that left the
    hourly tier (lambdascope.tiers) are final: their marks are dropped, never recomputed
    from the hourly tables, which no longer hold them.
    """
    conn = db.conn
    histcodec.register(conn)  # hist_merge, also on a connection not made by open_db
    hourly_from = queries.hourly_from(conn)
    if hourly_from and conn.execute(
        "SELECT 1 FROM rollup_dirty WHERE day < ? LIMIT 1", (hourly_from,)
    ).fetchone():
        with conn:
            conn.execute("DELETE FROM rollup_dirty WHERE day < ?", (hourly_from,))
    dirty: dict[int, list[int]] = defaultdict(list)
    limit = 2**62 if before is None else int(before)
    for function_id, day in conn.execute(
        "SELECT function_id, day FROM rollup_dirty WHERE day < ?", (limit,)
    ):
        dirty[int(day)].append(int(function_id))
    done = 0
    for n, day in enumerate(sorted(dirty), start=1):
        ids = dirty[day]
        with conn:
            for i in range(0, len(ids), _CHUNK):
                _refresh_day(conn, day, tuple(ids[i : i + _CHUNK]))
        done += len(ids)
        if progress is not None:
            progress(n, len(dirty))
    return done


def _refresh_day(conn: sqlite3.Connection, day: int, ids: tuple[int, ...]) -> None:
    marks = ", ".join("?" * len(ids))
    end = day + DAY_S
    conn.execute(
        f"DELETE FROM merged_hourly WHERE function_id IN ({marks}) AND hour >= ? AND hour < ?",
        (*ids, day, end),
    )
    conn.execute(f"DELETE FROM daily_facts WHERE day = ? AND function_id IN ({marks})", (day, *ids))
    sql, params = queries.merged_hourly_sql(
        day, end, Filters(include_deleted=True, function_ids=ids)
    )
    conn.execute(
        f"INSERT INTO merged_hourly ({STORED_COLUMNS}) SELECT {STORED_COLUMNS} FROM ({sql})",
        params,
    )
    # the day's row from the merged hours just written, then its merged histograms
    hours = queries.stored_merged_sql(
        f"m.function_id IN ({marks}) AND m.hour >= {day} AND m.hour < {end}"
    )
    conn.execute(f"INSERT INTO daily_facts ({DAY_COLUMNS}) " + DAY_AGG_SQL.format(rows=hours), ids)
    where, params = queries.filter_sql(Filters(include_deleted=True, function_ids=ids))
    # the day's merged histograms, all four in one pass (hist_merge: lambdascope.histcodec)
    facts = queries.facts_histogram_sql(day, end, where, HIST_COLUMNS)
    merged = ", ".join(f"hist_merge(x.{c}) AS {c}" for c in HIST_COLUMNS)
    conn.execute(
        f"""
        UPDATE daily_facts SET {", ".join(f"{c} = m.{c}" for c in HIST_COLUMNS)}
        FROM (SELECT x.function_id, x.memory_mb, {merged} FROM ({facts}) x
              GROUP BY x.function_id, x.memory_mb) m
        WHERE daily_facts.day = {day} AND daily_facts.function_id = m.function_id
          AND daily_facts.memory_mb = m.memory_mb
        """,
        params,
    )
    conn.execute(
        f"DELETE FROM rollup_dirty WHERE day = ? AND function_id IN ({marks})", (day, *ids)
    )
