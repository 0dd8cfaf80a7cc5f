"""Write platform events to the store: invocations, status marks, local hourly facts.

Both functions run inside the caller's transaction (``with db.conn:``) and never
commit on their own, so a caller can make a batch of events, its file offset and its
rollup one atomic step.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from lambdascope import histogram
from lambdascope.models import PlatformEvent
from lambdascope.timeutil import HOUR_S, hour_floor

_INSERT = (
    "INSERT OR IGNORE INTO invocations (function_id, request_id, timestamp, duration_ms,"
    " billed_duration_ms, memory_mb, max_memory_used_mb, init_duration_ms,"
    " restore_duration_ms, billed_restore_duration_ms, status, error_type, out_of_memory)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_MARK_TIMEOUT = (
    "UPDATE invocations SET status = 'timeout'"
    " WHERE function_id = ? AND request_id = ? AND status IS NOT 'timeout'"
)
_MARK_OOM = (
    "UPDATE invocations SET out_of_memory = 1,"
    " status = CASE WHEN status = 'timeout' THEN status ELSE 'error' END,"
    " error_type = COALESCE(error_type, 'Runtime.OutOfMemory')"
    " WHERE function_id = ? AND request_id = ? AND out_of_memory = 0"
)
DIRTY_HOURS_KEY = "local_ingest.dirty_hours"


def _is_oom(error_type: str | None) -> bool:
    return error_type is not None and "OutOfMemory" in error_type


def store_events(db: Database, function_id: int, events: Iterable[PlatformEvent]) -> int:
    """Insert the ``report`` events as invocations (idempotent on (function, request id)),
    then apply ``timeout`` and ``out_of_memory`` events to the matching invocations.

    Reports without a request id or timestamp are ignored. Returns the number of
    invocation rows newly added. Runs in the caller's transaction (no commit).
    """
    rows: list[tuple[Any, ...]] = []
    timeouts: list[tuple[int, str]] = []
    ooms: list[tuple[int, str]] = []
    for event in events:
        if event.request_id is None:
            continue
        if event.kind == "report":
            if event.timestamp is None:
                continue
            oom = _is_oom(event.error_type)
            status = event.status
            if oom and status is None:
                status = "error"
            rows.append(
                (
                    function_id,
                    event.request_id,
                    int(event.timestamp),
                    event.duration_ms,
                    event.billed_duration_ms,
                    event.memory_size_mb,
                    event.max_memory_used_mb,
                    event.init_duration_ms,
                    event.restore_duration_ms,
                    event.billed_restore_duration_ms,
                    status,
                    event.error_type,
                    1 if oom else 0,
                )
            )
        elif event.kind == "timeout":
            timeouts.append((function_id, event.request_id))
        elif event.kind == "out_of_memory":
            ooms.append((function_id, event.request_id))
    conn = db.conn
    added = 0
    if rows:
        added = conn.executemany(_INSERT, rows).rowcount
    if timeouts:
        conn.executemany(_MARK_TIMEOUT, timeouts)
    if ooms:
        conn.executemany(_MARK_OOM, ooms)
    return max(added, 0)


def unmatched_marks(
    db: Database, function_id: int, events: Iterable[PlatformEvent]
) -> list[PlatformEvent]:
    """The timeout / out-of-memory events whose invocation is not (yet) stored."""
    found: list[PlatformEvent] = []
    conn = db.conn
    for event in events:
        if event.kind in ("timeout", "out_of_memory") and event.request_id is not None:
            row = conn.execute(
                "SELECT 1 FROM invocations WHERE function_id = ? AND request_id = ?",
                (function_id, event.request_id),
            ).fetchone()
            if row is None:
                found.append(event)
    return found


def rebuild_hourly_facts(db: Database, function_id: int, hours: Iterable[int]) -> None:
    """Recompute the ``source='local'`` hourly_facts rows of ``function_id`` for the given
    hours (epoch seconds, any time inside the hour) from the invocations table.

    One row per configured memory (unknown memory is 0). Runs in the caller's transaction.
    Aggregates and histogram buckets are computed by SQLite when it has its math
    functions (``ln``), else in Python; both give the same buckets as lambdascope.histogram.
    """
    conn = db.conn
    in_sql = _has_math(db)
    for hour in sorted({hour_floor(h) for h in hours}):
        conn.execute(
            "DELETE FROM hourly_facts WHERE function_id = ? AND hour = ? AND source = 'local'",
            (function_id, hour),
        )
        span = (function_id, hour, hour + HOUR_S)
        groups = _facts_sql(db, span) if in_sql else _facts_python(db, span)
        for memory, fact in sorted(groups.items()):
            for key in _HIST_COLUMNS.values():
                fact[key] = histogram.to_json(fact[key])
            columns = ["function_id", "hour", "memory_mb", "source", *fact]
            conn.execute(
                f"INSERT INTO hourly_facts ({', '.join(columns)})"
                f" VALUES ({', '.join('?' for _ in columns)})",
                (function_id, hour, memory, "local", *fact.values()),
            )


_HIST_COLUMNS = {
    "duration_ms": "duration_hist",
    "billed_duration_ms": "billed_duration_hist",
    "max_memory_used_mb": "max_memory_used_hist",
    "init_duration_ms": "init_duration_hist",
}
_SPAN = "function_id = ? AND timestamp >= ? AND timestamp < ?"


def _has_math(db: Database) -> bool:
    try:
        db.conn.execute("SELECT ln(2.0)").fetchone()
    except Exception:  # sqlite3.OperationalError: built without math functions
        return False
    return True


def _facts_sql(db: Database, span: tuple[int, int, int]) -> dict[int, dict[str, Any]]:
    conn = db.conn
    groups: dict[int, dict[str, Any]] = {}
    for row in conn.execute(
        "SELECT COALESCE(memory_mb, 0), COUNT(*), TOTAL(status = 'error'),"
        " TOTAL(status = 'timeout'), TOTAL(out_of_memory != 0), COUNT(init_duration_ms),"
        " TOTAL(duration_ms), MAX(duration_ms), TOTAL(billed_duration_ms),"
        " MAX(max_memory_used_mb), TOTAL(init_duration_ms), MAX(init_duration_ms),"
        " TOTAL(restore_duration_ms), TOTAL(billed_restore_duration_ms)"
        f" FROM invocations WHERE {_SPAN} GROUP BY 1",
        span,
    ):
        fact = groups[row[0]] = _empty_fact()
        fact.update(
            invocations=row[1],
            errors=int(row[2]),
            timeouts=int(row[3]),
            out_of_memory=int(row[4]),
            cold_starts=row[5],
            duration_ms_sum=row[6],
            duration_ms_max=row[7],
            billed_duration_ms_sum=row[8],
            max_memory_used_mb_max=row[9],
            init_duration_ms_sum=row[10],
            init_duration_ms_max=row[11],
            restore_duration_ms_sum=row[12],
            billed_restore_duration_ms_sum=row[13],
        )
    for column, key in _HIST_COLUMNS.items():
        for memory, bucket, count in conn.execute(
            f"SELECT COALESCE(memory_mb, 0), CASE WHEN {column} > 0"
            f" THEN CAST(floor(ln({column}) / ln(?)) AS INTEGER) ELSE 'z' END, COUNT(*)"
            f" FROM invocations WHERE {_SPAN} AND {column} IS NOT NULL GROUP BY 1, 2",
            (histogram.GAMMA, *span),
        ):
            groups[memory][key][str(bucket)] = count
    return groups


def _facts_python(db: Database, span: tuple[int, int, int]) -> dict[int, dict[str, Any]]:
    groups: dict[int, dict[str, Any]] = {}
    cursor = db.conn.execute(
        "SELECT COALESCE(memory_mb, 0), duration_ms, billed_duration_ms,"
        " max_memory_used_mb, init_duration_ms, restore_duration_ms,"
        f" billed_restore_duration_ms, status, out_of_memory FROM invocations WHERE {_SPAN}",
        span,
    )
    for memory, duration, billed, used, init, restore, billed_restore, status, oom in cursor:
        fact = groups.get(memory)
        if fact is None:
            fact = groups[memory] = _empty_fact()
        fact["invocations"] += 1
        if status == "error":
            fact["errors"] += 1
        elif status == "timeout":
            fact["timeouts"] += 1
        if oom:
            fact["out_of_memory"] += 1
        if duration is not None:
            fact["duration_ms_sum"] += duration
            fact["duration_ms_max"] = _max(fact["duration_ms_max"], duration)
            histogram.add(fact["duration_hist"], duration)
        if billed is not None:
            fact["billed_duration_ms_sum"] += billed
            histogram.add(fact["billed_duration_hist"], billed)
        if used is not None:
            fact["max_memory_used_mb_max"] = _max(fact["max_memory_used_mb_max"], used)
            histogram.add(fact["max_memory_used_hist"], used)
        if init is not None:
            fact["cold_starts"] += 1
            fact["init_duration_ms_sum"] += init
            fact["init_duration_ms_max"] = _max(fact["init_duration_ms_max"], init)
            histogram.add(fact["init_duration_hist"], init)
        if restore is not None:
            fact["restore_duration_ms_sum"] += restore
        if billed_restore is not None:
            fact["billed_restore_duration_ms_sum"] += billed_restore
    return groups


def _max(current: Any, value: Any) -> Any:
    return value if current is None or value > current else current


def _empty_fact() -> dict[str, Any]:
    return {
        "invocations": 0,
        "errors": 0,
        "timeouts": 0,
        "out_of_memory": 0,
        "cold_starts": 0,
        "duration_ms_sum": 0.0,
        "duration_ms_max": None,
        "billed_duration_ms_sum": 0.0,
        "max_memory_used_mb_max": None,
        "init_duration_ms_sum": 0.0,
        "init_duration_ms_max": None,
        "restore_duration_ms_sum": 0.0,
        "billed_restore_duration_ms_sum": 0.0,
        "duration_hist": {},
        "billed_duration_hist": {},
        "max_memory_used_hist": {},
        "init_duration_hist": {},
    }


def add_dirty_hours(db: Database, hours_by_function: dict[int, set[int]]) -> None:
    """Remember hours whose local rollup is stale (same transaction as their inserts)."""
    if not hours_by_function:
        return
    dirty = load_dirty_hours(db)
    for function_id, hours in hours_by_function.items():
        dirty.setdefault(function_id, set()).update(hour_floor(h) for h in hours)
    _save_dirty(db, dirty)


def load_dirty_hours(db: Database) -> dict[int, set[int]]:
    """Hours recorded by add_dirty_hours and not yet rebuilt."""
    row = db.conn.execute("SELECT value FROM settings WHERE key = ?", (DIRTY_HOURS_KEY,)).fetchone()
    if row is None:
        return {}
    try:
        data = json.loads(row[0])
        return {int(k): {int(h) for h in v} for k, v in data.items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def _save_dirty(db: Database, dirty: dict[int, set[int]]) -> None:
    text = json.dumps({str(k): sorted(v) for k, v in dirty.items() if v})
    db.conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (DIRTY_HOURS_KEY, text),
    )


def rebuild_dirty_hours(db: Database) -> int:
    """Rebuild every remembered stale hour and forget them, in one transaction.

    Returns the number of function-hours rebuilt.
    """
    with db.conn:
        dirty = load_dirty_hours(db)
        total = 0
        for function_id, hours in dirty.items():
            rebuild_hourly_facts(db, function_id, hours)
            total += len(hours)
        db.conn.execute("DELETE FROM settings WHERE key = ?", (DIRTY_HOURS_KEY,))
    return total
