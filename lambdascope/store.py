"""Write platform events to the store: invocations, status marks, local hourly facts.

Both functions run inside the caller's transaction (``with db.conn:``) and never
commit on their own, so a caller can make a batch of events, its file offset and its
rollup one atomic step.
"""

from __future__ import annotations

import json
import math
import operator
from collections import Counter
from collections.abc import Iterable
from itertools import pairwise, repeat
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlite_utils import Database

from lambdascope import histcodec, histogram, packing
from lambdascope.logscan import FastColumns
from lambdascope.models import PlatformEvent
from lambdascope.queries import hourly_from
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


def sealed_hours(db: Database, function_id: int, first: int, last: int) -> set[int]:
    """The hours from ``first`` to ``last`` (epoch seconds) of this function whose raw
    invocations were pruned: their local facts are final, and a report that falls in one
    was counted when its hour was summarised (see prune_raw_invocations). Hours before
    the hourly boundary (lambdascope.tiers) are sealed too: their day is final."""
    sealed = {
        int(hour)
        for (hour,) in db.conn.execute(
            "SELECT hour FROM sealed_hours WHERE function_id = ? AND hour BETWEEN ? AND ?",
            (function_id, hour_floor(first), hour_floor(last)),
        )
    }
    boundary = hourly_from(db)
    if hour_floor(first) < boundary:
        sealed.update(range(hour_floor(first), min(hour_floor(last) + HOUR_S, boundary), HOUR_S))
    return sealed


def store_events(db: Database, function_id: int, events: Iterable[PlatformEvent]) -> int:
    """Insert the ``report`` events as invocations (idempotent on (function, request id)),
    then apply ``timeout`` and ``out_of_memory`` events to the matching invocations.

    Reports without a request id or timestamp, and reports in sealed hours (already
    summarised, their raw rows pruned) are ignored. Returns the number of invocation rows
    newly added. Runs in the caller's transaction (no commit).
    """
    events = list(events)
    stamps = [int(e.timestamp) for e in events if e.kind == "report" and e.timestamp]
    sealed = sealed_hours(db, function_id, min(stamps), max(stamps)) if stamps else set()
    rows: list[tuple[Any, ...]] = []
    timeouts: list[tuple[int, str]] = []
    ooms: list[tuple[int, str]] = []
    for event in events:
        if event.request_id is None:
            continue
        if event.kind == "report":
            row = event_row(event)
            if row is not None and hour_floor(row[1]) not in sealed:
                rows.append((function_id, *row))
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
    hours (epoch seconds, any time inside the hour) from the invocations table. Sealed
    hours (raw rows pruned) are left as they are.

    One row per configured memory (unknown memory is 0). Runs in the caller's transaction.
    Aggregates and histogram buckets are computed by SQLite when it has its math
    functions (``ln``), else in Python; both give the same buckets as lambdascope.histogram.
    """
    conn = db.conn
    in_sql = _has_math(db)
    wanted = {hour_floor(h) for h in hours}
    packing.unpack_hours(conn, ((function_id, h) for h in wanted))
    if wanted:
        # a sealed hour's facts are all that is left of its pruned invocations
        wanted -= sealed_hours(db, function_id, min(wanted), max(wanted))
    for hour in sorted(wanted):
        conn.execute(
            "DELETE FROM hourly_facts WHERE function_id = ? AND hour = ? AND source = 'local'",
            (function_id, hour),
        )
        span = (function_id, hour, hour + HOUR_S)
        groups = _facts_sql(db, span) if in_sql else _facts_python(db, span)
        for memory, fact in sorted(groups.items()):
            for key in _HIST_COLUMNS.values():
                fact[key] = histcodec.encode(fact[key])
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
    if value is None:
        return current
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


def forget_dirty_hours(db: Database, function_id: int) -> None:
    """Drop a (deleted) function's remembered stale hours (caller's transaction)."""
    dirty = load_dirty_hours(db)
    if dirty.pop(function_id, None) is not None:
        _save_dirty(db, dirty)


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


# --- batch writes for the local ingest: rows by shape, facts added incrementally ---

Shape = tuple[str, ...]
ROW_COLUMNS: Shape = (
    "request_id",
    "timestamp",
    "duration_ms",
    "billed_duration_ms",
    "memory_mb",
    "max_memory_used_mb",
    "init_duration_ms",
    "restore_duration_ms",
    "billed_restore_duration_ms",
    "status",
    "error_type",
    "out_of_memory",
)
TEXT_SHAPE: Shape = ROW_COLUMNS[:6]
TEXT_INIT_SHAPE: Shape = ROW_COLUMNS[:7]
JSON_SHAPE: Shape = (*ROW_COLUMNS[:6], "status")
JSON_INIT_SHAPE: Shape = (*ROW_COLUMNS[:7], "status")
FactKey = tuple[int, int]  # (hour, memory_mb or 0)
Facts = dict[FactKey, dict[str, Any]]


def event_row(event: PlatformEvent) -> tuple[Any, ...] | None:
    """The ROW_COLUMNS row store_events would insert for a report event, else None."""
    if event.kind != "report" or event.request_id is None or event.timestamp is None:
        return None
    oom = _is_oom(event.error_type)
    status = event.status
    if oom and status is None:
        status = "error"
    return (
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


def facts_of(rows_by_shape: dict[Shape, list[tuple[Any, ...]]]) -> Facts:
    """Hourly facts (as rebuild_hourly_facts computes them) of these invocation rows."""
    facts: Facts = {}
    for shape, rows in rows_by_shape.items():
        if not rows:
            continue
        at = {name: i for i, name in enumerate(shape)}
        stamp_i, memory_i = at["timestamp"], at["memory_mb"]
        groups: dict[FactKey, list[tuple[Any, ...]]] = {}
        for row in rows:
            stamp = row[stamp_i]
            key = (stamp - stamp % HOUR_S, row[memory_i] or 0)
            group = groups.get(key)
            if group is None:
                groups[key] = [row]
            else:
                group.append(row)
        for key, group in groups.items():
            fact = facts.get(key)
            if fact is None:
                fact = facts[key] = _empty_fact()
            _add_group(fact, dict(zip(shape, zip(*group, strict=True), strict=True)), len(group))
    return facts


def facts_of_columns(columns: FastColumns) -> Facts:
    """facts_of for fast-path lines (every one with a timestamp), grouped column-wise."""
    count = len(columns)
    if count == 0:
        return {}
    stamps = columns.timestamps.astype(np.int64)  # int(): towards zero
    hours = stamps - stamps % HOUR_S
    order = np.lexsort((columns.memory_mb, hours))
    hours, memory = hours[order], columns.memory_mb[order]
    cuts = np.flatnonzero((np.diff(hours) != 0) | (np.diff(memory) != 0)) + 1
    bounds = [0, *cuts.tolist(), count]
    duration = columns.duration_ms[order]
    billed = columns.billed_duration_ms[order]
    used = columns.max_memory_used_mb[order]
    init = columns.init_duration_ms[order]
    buckets = {
        "duration_hist": _buckets(duration),
        "billed_duration_hist": _buckets(billed),
        "max_memory_used_hist": _buckets(used.astype(np.float64)),
    }
    has_init = ~np.isnan(init)
    init_buckets = _buckets(np.where(has_init, init, 1.0))
    status = None if columns.status is None else np.asarray(columns.status)[order]
    facts: Facts = {}
    for a, b in pairwise(bounds):
        fact = facts[(int(hours[a]), int(memory[a]))] = _empty_fact()
        fact["invocations"] = b - a
        if status is not None:
            fact["errors"] = int((status[a:b] == "error").sum())
            fact["timeouts"] = int((status[a:b] == "timeout").sum())
        for key, values in buckets.items():
            fact[key] = _bucket_counts(values[a:b])
        fact["duration_ms_sum"] = math.fsum(duration[a:b].tolist())
        fact["duration_ms_max"] = float(duration[a:b].max())
        fact["billed_duration_ms_sum"] = math.fsum(billed[a:b].tolist())
        fact["max_memory_used_mb_max"] = int(used[a:b].max())
        cold = has_init[a:b]
        if cold.any():
            present = init[a:b][cold]
            fact["cold_starts"] = len(present)
            fact["init_duration_ms_sum"] = math.fsum(present.tolist())
            fact["init_duration_ms_max"] = float(present.max())
            fact["init_duration_hist"] = _bucket_counts(init_buckets[a:b][cold])
    return facts


_ZERO_BUCKET = np.iinfo(np.int64).min


def _buckets(values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """histogram.bucket_of of each value (math.log, as _histogram), the zero bucket as
    _ZERO_BUCKET."""
    out = np.full(len(values), _ZERO_BUCKET, np.int64)
    valid = (values > 0) & np.isfinite(values)
    if valid.any():
        logs = np.fromiter(map(math.log, values[valid].tolist()), np.float64, int(valid.sum()))
        out[valid] = np.floor(logs / _LOG_G).astype(np.int64)
    return out


def _bucket_counts(buckets: npt.NDArray[np.int64]) -> dict[str, int]:
    keys, counts = np.unique(buckets, return_counts=True)
    return {
        histogram.ZERO_KEY if key == _ZERO_BUCKET else str(key): count
        for key, count in zip(keys.tolist(), counts.tolist(), strict=True)
    }


def _present(values: tuple[Any, ...] | None) -> list[Any]:
    if values is None:
        return []
    return list(values) if None not in values else [v for v in values if v is not None]


def _add_group(fact: dict[str, Any], columns: dict[str, tuple[Any, ...]], count: int) -> None:
    fact["invocations"] += count
    status = columns.get("status")
    if status is not None:
        fact["errors"] += status.count("error")
        fact["timeouts"] += status.count("timeout")
    oom = columns.get("out_of_memory")
    if oom is not None:
        fact["out_of_memory"] += sum(oom)
    for column, hist_key in _HIST_COLUMNS.items():
        values = _present(columns.get(column))
        if not values:
            continue
        _merge_hist(fact[hist_key], _histogram(values))
        if column == "duration_ms":
            fact["duration_ms_sum"] += math.fsum(values)
            fact["duration_ms_max"] = _max(fact["duration_ms_max"], max(values))
        elif column == "billed_duration_ms":
            fact["billed_duration_ms_sum"] += math.fsum(values)
        elif column == "max_memory_used_mb":
            fact["max_memory_used_mb_max"] = _max(fact["max_memory_used_mb_max"], max(values))
        else:
            fact["cold_starts"] += len(values)
            fact["init_duration_ms_sum"] += math.fsum(values)
            fact["init_duration_ms_max"] = _max(fact["init_duration_ms_max"], max(values))
    for column in ("restore_duration_ms", "billed_restore_duration_ms"):
        values = _present(columns.get(column))
        if values:
            fact[f"{column}_sum"] += math.fsum(values)


def _histogram(values: list[Any]) -> dict[str, int]:
    """histogram.from_values, with the bucket arithmetic mapped over the list in C."""
    if all(map(operator.lt, repeat(0), values)) and max(values) < math.inf:
        buckets = map(math.floor, map(operator.truediv, map(math.log, values), repeat(_LOG_G)))
        return {str(k): n for k, n in Counter(buckets).items()}
    return histogram.from_values(values)


_LOG_G = math.log(histogram.GAMMA)


def _merge_hist(into: dict[str, int], other: dict[str, int]) -> None:
    for key, n in other.items():
        into[key] = into.get(key, 0) + n


def _merge_fact(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if key.endswith("_hist"):
            _merge_hist(into[key], value)
        elif key.endswith("_max"):
            into[key] = _max(into[key], value)
        else:
            into[key] += value


_FACT_KEYS = tuple(_empty_fact())


def merge_facts(into: Facts, other: Facts) -> None:
    """Add ``other`` to ``into`` in place."""
    for key, fact in other.items():
        if key in into:
            _merge_fact(into[key], fact)
        else:
            into[key] = fact


def add_facts(db: Database, function_id: int, facts: Facts) -> None:
    """Add these facts to the ``source='local'`` hourly_facts rows (caller's transaction).

    Only the touched (hour, memory) rows are read and rewritten. A change that finds no
    row to add to (a store whose facts lag its invocations) rebuilds that hour instead.
    """
    conn = db.conn
    columns = ", ".join(_FACT_KEYS)
    rebuild: set[int] = set()
    packing.unpack_hours(conn, ((function_id, hour) for hour, _memory in facts))
    for (hour, memory), fact in sorted(facts.items()):
        row = conn.execute(
            f"SELECT {columns} FROM hourly_facts WHERE function_id = ? AND hour = ?"
            " AND memory_mb = ? AND source = 'local'",
            (function_id, hour, memory),
        ).fetchone()
        if row is None:
            if fact["invocations"] <= 0:
                rebuild.add(hour)
                continue
            merged = _empty_fact()
        else:
            merged = dict(zip(_FACT_KEYS, row, strict=True))
            for key in _HIST_COLUMNS.values():
                merged[key] = histcodec.decode(merged[key])
        _merge_fact(merged, fact)
        for key in _HIST_COLUMNS.values():
            merged[key] = histcodec.encode({k: n for k, n in merged[key].items() if n})
        conn.execute(
            f"INSERT INTO hourly_facts (function_id, hour, memory_mb, source, {columns})"
            f" VALUES (?, ?, ?, 'local', {', '.join('?' for _ in _FACT_KEYS)})"
            " ON CONFLICT (function_id, hour, memory_mb, source) DO UPDATE SET "
            + ", ".join(f"{key} = excluded.{key}" for key in _FACT_KEYS),
            (function_id, hour, memory, *merged.values()),
        )
    if rebuild:
        rebuild_hourly_facts(db, function_id, rebuild)


def insert_rows(
    db: Database,
    function_id: int,
    rows_by_shape: dict[Shape, list[tuple[Any, ...]]],
    span: tuple[int, int] | None = None,
) -> tuple[int, dict[Shape, list[tuple[Any, ...]]] | None, int]:
    """INSERT OR IGNORE the rows (no request id twice among them); returns the number
    added, the rows that were new when some were not (else None: all were), and the
    number of rows dropped because their hour is sealed (already summarised, its raw rows
    pruned). ``span``: the rows' first and last timestamp when the caller knows them.
    Runs in the caller's transaction."""
    conn = db.conn
    rows_by_shape, sealed = _drop_sealed(db, function_id, rows_by_shape, span)
    total = sum(len(rows) for rows in rows_by_shape.values())
    if total == 0:
        return 0, ({} if sealed else None), sealed
    conn.execute("SAVEPOINT ingest_rows")
    added = _insert(conn, function_id, rows_by_shape)
    if added == total:
        conn.execute("RELEASE ingest_rows")
        return added, (rows_by_shape if sealed else None), sealed
    # some were stored before (another file, an earlier run): keep only the new ones
    conn.execute("ROLLBACK TO ingest_rows")
    ids = [row[0] for rows in rows_by_shape.values() for row in rows]
    existing = {
        rid
        for (rid,) in conn.execute(
            "SELECT i.request_id FROM json_each(?) j JOIN invocations i"
            " ON i.function_id = ? AND i.request_id = j.value",
            (json.dumps(ids), function_id),
        )
    }
    new = {
        shape: [row for row in rows if row[0] not in existing]
        for shape, rows in rows_by_shape.items()
    }
    added = _insert(conn, function_id, new)
    conn.execute("RELEASE ingest_rows")
    return added, new, sealed


def _drop_sealed(
    db: Database,
    function_id: int,
    rows_by_shape: dict[Shape, list[tuple[Any, ...]]],
    span: tuple[int, int] | None,
) -> tuple[dict[Shape, list[tuple[Any, ...]]], int]:
    """The rows whose hour is not sealed, and how many were dropped (every shape has the
    timestamp second, after the request id)."""
    if span is None:
        stamps = [row[1] for rows in rows_by_shape.values() for row in rows]
        if not stamps:
            return rows_by_shape, 0
        span = (min(stamps), max(stamps))
    sealed = sealed_hours(db, function_id, *span)
    if not sealed:
        return rows_by_shape, 0
    total = sum(len(rows) for rows in rows_by_shape.values())
    kept = {
        shape: [row for row in rows if hour_floor(row[1]) not in sealed]
        for shape, rows in rows_by_shape.items()
    }
    return kept, total - sum(len(rows) for rows in kept.values())


def _insert(conn: Any, function_id: int, rows_by_shape: dict[Shape, list[tuple[Any, ...]]]) -> int:
    added = 0
    for shape, rows in rows_by_shape.items():
        if rows:
            # the function id is an int written into the statement: one less bound value
            sql = (
                f"INSERT OR IGNORE INTO invocations (function_id, {', '.join(shape)})"
                f" VALUES ({int(function_id)}, {', '.join('?' for _ in shape)})"
            )
            added += max(conn.executemany(sql, rows).rowcount, 0)
    return added


def apply_marks(
    db: Database, function_id: int, marks: list[tuple[str, str]]
) -> tuple[list[int], Facts]:
    """Apply timeout / out-of-memory marks ((kind, request id)) to stored invocations as
    store_events does. Returns the indexes of marks whose invocation is not stored, and
    the change to the hourly facts. Runs in the caller's transaction."""
    conn = db.conn
    missing: list[int] = []
    delta: Facts = {}
    for index, (kind, request_id) in enumerate(marks):
        row = conn.execute(
            "SELECT timestamp, COALESCE(memory_mb, 0), status, out_of_memory FROM invocations"
            " WHERE function_id = ? AND request_id = ?",
            (function_id, request_id),
        ).fetchone()
        if row is None:
            missing.append(index)
            continue
        stamp, memory, old_status, old_oom = row
        sql = _MARK_TIMEOUT if kind == "timeout" else _MARK_OOM
        if conn.execute(sql, (function_id, request_id)).rowcount <= 0:
            continue
        new_status, new_oom = conn.execute(
            "SELECT status, out_of_memory FROM invocations WHERE function_id = ?"
            " AND request_id = ?",
            (function_id, request_id),
        ).fetchone()
        key = (stamp - stamp % HOUR_S, memory)
        fact = delta.get(key)
        if fact is None:
            fact = delta[key] = _empty_fact()
        fact["errors"] += (new_status == "error") - (old_status == "error")
        fact["timeouts"] += (new_status == "timeout") - (old_status == "timeout")
        fact["out_of_memory"] += (new_oom != 0) - (old_oom != 0)
    return missing, delta
