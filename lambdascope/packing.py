"""Packed hours: the older function-days of the hourly tier, one compressed row each.

A function-day of the hourly tier is kept either as rows (``hourly_facts``,
``hourly_metrics`` and the derived ``merged_hourly``, one row per hour) or, once it is
older than the pack span (``store prune --pack-after``, default 14 days) and its rollups
are up to date, as one ``packed_hours`` row holding those same rows column by column,
compressed: about a third of the bytes. Never both: packing deletes the rows in the
transaction that writes the packed row, and a writer that touches a packed day unpacks it
first (:func:`unpack`; a trigger refuses a row for a packed day, so a writer that forgot
fails loudly instead of counting twice). Packing changes no answer: whole days are read
from ``daily_facts`` as before, and the few reads that need the hours of a packed day
(the edge hours of a window, hourly series, health figures, alerts) run the same SQL over
the decoded rows in a scratch in-memory database (:func:`scratch`) and combine the
results with those of the store's rows.

The blob format (version 2): one version byte, then zlib (with the preset dictionary
``_ZDICT_2``; version 1, read too, had none) of: u16 table count; per table
its name and u32 length of its section: u32 rows, u16 columns, the column names joined
by NUL (as one name); per column a kind byte (``i`` 64-bit integers,
``f`` doubles, ``b`` bytes, ``t`` UTF-8 text, ``j`` anything else as JSON of
[tag, value] pairs, bytes in hex), a null flag
byte and, when set, one byte per row (1 = NULL), then the non-NULL values (integers and
doubles as little-endian arrays; bytes and text as u32 lengths, then the data). Names are
u16 length + UTF-8. The column names travel with the data, so rows unpack into a later
schema (a column it lacks takes its default).
"""

from __future__ import annotations

import json
import sqlite3
import struct
import sys
import threading
import zlib
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any

DAY_S = 86_400
FORMAT_VERSION = 2
# Format 2 compresses with this preset dictionary: the table and column names every blob
# carries, as the schema had them when format 2 was made. Never change it (a later column
# is simply not in it); a new dictionary needs a new format version.
_ZDICT_2 = "\x00".join(
    [
        "hourly_facts",
        "function_id\x00hour\x00memory_mb\x00source\x00invocations\x00errors\x00timeouts"
        "\x00out_of_memory\x00cold_starts\x00duration_ms_sum\x00duration_ms_max"
        "\x00billed_duration_ms_sum\x00max_memory_used_mb_max\x00init_duration_ms_sum"
        "\x00init_duration_ms_max\x00restore_duration_ms_sum\x00billed_restore_duration_ms_sum"
        "\x00duration_hist\x00billed_duration_hist\x00max_memory_used_hist\x00init_duration_hist",
        "hourly_metrics",
        "function_id\x00hour\x00invocations\x00errors\x00throttles\x00duration_avg_ms"
        "\x00duration_p50_ms\x00duration_p95_ms\x00duration_p99_ms\x00duration_max_ms"
        "\x00concurrent_executions_max\x00iterator_age_max_ms\x00async_events_dropped"
        "\x00dead_letter_errors\x00destination_delivery_failures"
        "\x00provisioned_concurrency_spillover_invocations",
        "merged_hourly",
        "function_id\x00hour\x00memory_mb\x00source\x00invocations\x00errors\x00throttles"
        "\x00timeouts\x00out_of_memory\x00cold_starts\x00log_invocations\x00duration_ms_sum"
        "\x00duration_ms_max\x00billed_duration_ms_sum\x00max_memory_used_mb_max"
        "\x00init_duration_ms_sum\x00init_duration_ms_max\x00restore_duration_ms_sum"
        "\x00billed_restore_duration_ms_sum\x00has_metrics",
    ]
).encode()
# the tables a packed row holds, with their primary-key order (rows unpack in it)
PACKED_TABLES: tuple[tuple[str, str], ...] = (
    ("hourly_facts", "hour, memory_mb, source"),
    ("hourly_metrics", "hour"),
    ("merged_hourly", "hour, memory_mb, source"),
)
BASE_TABLES = ("hourly_facts", "hourly_metrics")
# hourly_metrics columns kept as rows of packed_health for packed days (health reads)
HEALTH_COLUMNS = (
    "concurrent_executions_max",
    "iterator_age_max_ms",
    "async_events_dropped",
    "dead_letter_errors",
    "destination_delivery_failures",
    "provisioned_concurrency_spillover_invocations",
)

Rows = list[tuple[Any, ...]]
Table = tuple[list[str], Rows]  # column names, rows


# --- the format ---------------------------------------------------------------------------


def _name(out: bytearray, name: str) -> None:
    raw = name.encode()
    out += struct.pack("<H", len(raw)) + raw


def _le(values: array[Any]) -> bytes:
    if sys.byteorder == "big":  # pragma: no cover - the format is little-endian
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _from_le(typecode: str, raw: bytes) -> list[Any]:
    values = array(typecode)
    values.frombytes(raw)
    if sys.byteorder == "big":  # pragma: no cover
        values.byteswap()
    return values.tolist()


def _kind(values: Sequence[Any]) -> str:
    kinds = {type(v) for v in values if v is not None}
    if not kinds or kinds == {int}:
        if all(v is None or -(2**63) <= v < 2**63 for v in values):
            return "i"
        return "j"
    return {frozenset({float}): "f", frozenset({bytes}): "b", frozenset({str}): "t"}.get(
        frozenset(kinds), "j"
    )


def _column(out: bytearray, values: Sequence[Any]) -> None:
    kind = _kind(values)
    out += kind.encode()
    present = [v for v in values if v is not None]
    if len(present) < len(values):
        out += b"\x01" + bytes(1 if v is None else 0 for v in values)
    else:
        out += b"\x00"
    if kind == "i":
        out += _le(array("q", present))
    elif kind == "f":
        out += _le(array("d", present))
    elif kind in "bt":
        raw = [v if kind == "b" else v.encode() for v in present]
        out += _le(array("I", [len(r) for r in raw])) + b"".join(raw)
    else:  # mixed types: each value tagged, bytes as hex
        tagged = [["b", v.hex()] if isinstance(v, bytes) else ["v", v] for v in present]
        text = json.dumps(tagged).encode()
        out += struct.pack("<I", len(text)) + text


def encode(tables: dict[str, Table]) -> bytes:
    """One packed blob of ``tables`` (name -> (columns, rows))."""
    out = bytearray(struct.pack("<H", len(tables)))
    for name, (columns, rows) in tables.items():
        _name(out, name)
        section = bytearray(struct.pack("<IH", len(rows), len(columns)))
        _name(section, "\x00".join(columns))
        by_column = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
        for values in by_column:
            _column(section, values)
        out += struct.pack("<I", len(section)) + section
    packer = zlib.compressobj(6, zdict=_ZDICT_2)
    return bytes([FORMAT_VERSION]) + packer.compress(bytes(out)) + packer.flush()


class PackedFormatError(ValueError):
    """A packed blob this version cannot read (one line for the user)."""


def decode(blob: bytes, tables: Iterable[str] | None = None) -> dict[str, Table]:
    """The tables of a packed blob (the inverse of :func:`encode`); only those named in
    ``tables`` when given (the others are skipped unread)."""
    if not blob or blob[0] not in (1, FORMAT_VERSION):
        raise PackedFormatError(
            f"packed hours in format {blob[0] if blob else '?'}; this lambdascope reads"
            f" formats 1 and {FORMAT_VERSION}"
        )
    if blob[0] == 1:  # no preset dictionary
        raw = zlib.decompress(blob[1:])
    else:
        unpacker = zlib.decompressobj(zdict=_ZDICT_2)
        raw = unpacker.decompress(blob[1:]) + unpacker.flush()
    wanted = None if tables is None else set(tables)
    unpack_from = struct.unpack_from
    out: dict[str, Table] = {}
    (n_tables,) = unpack_from("<H", raw, 0)
    pos = 2
    for _ in range(n_tables):
        (size,) = unpack_from("<H", raw, pos)
        table = raw[pos + 2 : pos + 2 + size].decode()
        pos += 2 + size
        (length,) = unpack_from("<I", raw, pos)
        pos += 4
        end = pos + length
        if wanted is not None and table not in wanted:
            pos = end
            continue
        n_rows, n_columns, size = unpack_from("<IHH", raw, pos)
        pos += 8
        columns = raw[pos : pos + size].decode().split("\x00") if n_columns else []
        pos += size
        data: list[list[Any]] = []
        for _ in range(n_columns):
            kind = chr(raw[pos])
            has_nulls = raw[pos + 1]
            pos += 2
            nulls = raw[pos : pos + n_rows] if has_nulls else b""
            pos += len(nulls)
            n = n_rows - sum(nulls)
            present: list[Any]
            if kind == "i" or kind == "f":
                present = _from_le("q" if kind == "i" else "d", raw[pos : pos + 8 * n])
                pos += 8 * n
            elif kind == "b" or kind == "t":
                lengths = _from_le("I", raw[pos : pos + 4 * n])
                pos += 4 * n
                offsets = list(accumulate(lengths, initial=pos))
                present = [raw[i:j] for i, j in pairwise(offsets)]
                pos = offsets[-1]
                if kind == "t":
                    present = [p.decode() for p in present]
            else:
                (size,) = unpack_from("<I", raw, pos)
                tagged = json.loads(raw[pos + 4 : pos + 4 + size])
                present = [bytes.fromhex(v) if t == "b" else v for t, v in tagged]
                pos += 4 + size
            if has_nulls:
                it = iter(present)
                present = [None if null else next(it) for null in nulls]
            data.append(present)
        if pos != end:
            raise PackedFormatError(f"packed hours: the {table} section is damaged")
        rows = list(zip(*data, strict=True)) if n_columns else [() for _ in range(n_rows)]
        out[table] = (columns, rows)
    return out


# --- packing and unpacking ------------------------------------------------------------------


def has_packing(conn: sqlite3.Connection) -> bool:
    """Whether the store has the packed_hours table (migration 0019)."""
    return _has_table(conn, "packed_hours")


def packed_between(conn: sqlite3.Connection, start: int, end: int) -> bool:
    """Whether any function-day packed overlaps ``[start, end)``."""
    row = conn.execute(
        "SELECT 1 FROM packed_hours WHERE day > ? AND day < ? LIMIT 1",
        (int(start) - DAY_S, int(end)),
    ).fetchone()
    return row is not None


def latest_packed(conn: sqlite3.Connection, column: str, than: int | None) -> int | None:
    """The largest ``column`` (last_hour or a last_*_hour) of the packed rows when it is
    later than ``than`` (the rows' answer), else None. Read only when a packed day could
    hold a later hour: the hours kept as rows are normally the newest."""
    if not has_packing(conn):
        return None
    newest = conn.execute("SELECT max(day) FROM packed_hours").fetchone()[0]
    if newest is None or (than is not None and than >= int(newest) + DAY_S - 3600):
        return None
    found = conn.execute(f"SELECT max({column}) FROM packed_hours").fetchone()[0]
    return int(found) if found is not None and (than is None or found > than) else None


def has_health(conn: sqlite3.Connection) -> bool:
    """Whether the store has the packed_health table (migration 0020)."""
    return _has_table(conn, "packed_health")


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return _table_sql(conn, name) is not None


def _insert_health(conn: sqlite3.Connection, function_id: int, metrics: Table) -> None:
    """The packed_health rows of one packed function-day's hourly_metrics rows."""
    columns, rows = metrics
    if not rows or not has_health(conn):
        return
    at = [columns.index(c) if c in columns else None for c in ("hour", *HEALTH_COLUMNS)]
    conn.executemany(
        f"INSERT OR REPLACE INTO packed_health (function_id, hour, {', '.join(HEALTH_COLUMNS)})"
        f" VALUES (?, ?, {', '.join('?' for _ in HEALTH_COLUMNS)})",
        [(function_id, *(None if i is None else r[i] for i in at)) for r in rows],
    )


def backfill_health(conn: sqlite3.Connection) -> int:
    """packed_health rows for every packed day (stores packed before it existed)."""
    n = 0
    for fid, blob in conn.execute("SELECT function_id, blob FROM packed_hours").fetchall():
        metrics = decode(blob, ("hourly_metrics",)).get("hourly_metrics")
        if metrics is not None:
            _insert_health(conn, int(fid), metrics)
            n += len(metrics[1])
    return n


def _day_rows(conn: sqlite3.Connection, table: str, order: str, fid: int, day: int) -> Table:
    cur = conn.execute(
        f"SELECT * FROM {table} WHERE function_id = ? AND hour >= ? AND hour < ? ORDER BY {order}",
        (fid, day, day + DAY_S),
    )
    return [d[0] for d in cur.description], cur.fetchall()


# the health figures of hourly_metrics per function x UTC day (rows meeting ``{where}``),
# as daily_metrics keeps them (here for a packed day, in lambdascope.tiers for the daily tier)
DAILY_METRICS_SQL = f"""
INSERT OR REPLACE INTO daily_metrics (function_id, day, hours, concurrent_executions_max,
  iterator_age_max_ms, async_events_dropped, dead_letter_errors, destination_delivery_failures,
  provisioned_concurrency_spillover_invocations)
SELECT function_id, hour - hour % {DAY_S}, count(*), max(concurrent_executions_max),
  max(iterator_age_max_ms), sum(async_events_dropped), sum(dead_letter_errors),
  sum(destination_delivery_failures), sum(provisioned_concurrency_spillover_invocations)
FROM hourly_metrics WHERE {{where}}
GROUP BY function_id, hour - hour % {DAY_S}
"""


def pack_day(conn: sqlite3.Connection, function_id: int, day: int) -> int:
    """Pack one function-day (caller's write transaction; its rollups must be current).
    Returns the rows packed (0: nothing to pack, or the day waits for a refresh)."""
    dirty = conn.execute(
        "SELECT 1 FROM rollup_dirty WHERE function_id = ? AND day = ?", (function_id, day)
    ).fetchone()
    if dirty is not None:
        return 0
    tables = {t: _day_rows(conn, t, order, function_id, day) for t, order in PACKED_TABLES}
    n = sum(len(rows) for _c, rows in tables.values())
    if not n:
        return 0
    hours = [r[c.index("hour")] for t, (c, rows) in tables.items() for r in rows]
    conn.execute(
        DAILY_METRICS_SQL.format(where="function_id = ? AND hour >= ? AND hour < ?"),
        (function_id, day, day + DAY_S),
    )
    _insert_health(conn, function_id, tables["hourly_metrics"])
    columns, facts = tables["hourly_facts"]
    at, source = columns.index("hour"), columns.index("source")
    latest = [
        max((r[at] for r in facts if r[source] == s), default=None) for s in ("local", "insights")
    ]
    metrics = tables["hourly_metrics"]
    at = metrics[0].index("hour")
    latest.append(max((r[at] for r in metrics[1]), default=None))
    blob = encode(tables)
    conn.execute(
        "INSERT INTO packed_hours (function_id, day, first_hour, last_hour, last_local_hour,"
        " last_insights_hour, last_metrics_hour, rows, blob, checksum)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (function_id, day, min(hours), max(hours), *latest, n, blob, zlib.crc32(blob)),
    )
    for table, _order in PACKED_TABLES:
        conn.execute(
            f"DELETE FROM {table} WHERE function_id = ? AND hour >= ? AND hour < ?",
            (function_id, day, day + DAY_S),
        )
    # the deletes marked the day for a refresh; it was current and still is (packed)
    conn.execute("DELETE FROM rollup_dirty WHERE function_id = ? AND day = ?", (function_id, day))
    return n


def unpack(
    conn: sqlite3.Connection, function_ids: Iterable[int] | None, start: int, end: int
) -> int:
    """Turn the packed function-days overlapping ``[start, end)`` of ``function_ids``
    (None: every function) back into rows, in the caller's transaction, before a writer
    writes hours there. Returns the function-days unpacked."""
    if not has_packing(conn):
        return 0
    health = has_health(conn)
    lo = int(start) - int(start) % DAY_S
    if function_ids is None:
        found = conn.execute(
            "SELECT function_id, day, blob FROM packed_hours WHERE day >= ? AND day < ?",
            (lo, int(end)),
        ).fetchall()
    else:
        found = []
        for fid in set(function_ids):
            found += conn.execute(
                "SELECT function_id, day, blob FROM packed_hours"
                " WHERE function_id = ? AND day >= ? AND day < ?",
                (fid, lo, int(end)),
            ).fetchall()
    for fid, day, blob in found:
        conn.execute("DELETE FROM packed_hours WHERE function_id = ? AND day = ?", (fid, day))
        if health:
            conn.execute(
                "DELETE FROM packed_health WHERE function_id = ? AND hour >= ? AND hour < ?",
                (fid, day, day + DAY_S),
            )
        _insert(conn, [decode(blob)], None)
    return len(found)


def unpack_hours(conn: sqlite3.Connection, keys: Iterable[tuple[int, int]]) -> int:
    """:func:`unpack` for the (function_id, hour) a writer is about to write (caller's
    transaction): a look-up per function-day no newer than the newest packed day (the
    hours collectors write are normally newer), nothing at all while nothing is packed."""
    if not has_packing(conn):
        return 0
    newest = conn.execute("SELECT max(day) FROM packed_hours").fetchone()[0]
    if newest is None:
        return 0
    days = sorted({(int(f), int(h) - int(h) % DAY_S) for f, h in keys})
    return sum(unpack(conn, (f,), d, d + DAY_S) for f, d in days if d <= newest)


def base_rows(conn: sqlite3.Connection, function_id: int) -> int:
    """hourly_facts and hourly_metrics rows held packed for one function."""
    if not has_packing(conn):
        return 0
    blobs = conn.execute("SELECT blob FROM packed_hours WHERE function_id = ?", (function_id,))
    return sum(len(rows) for (blob,) in blobs for _c, rows in decode(blob, BASE_TABLES).values())


def _schema_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}


def _insert(
    conn: sqlite3.Connection,
    decoded: Iterable[dict[str, Table]],
    hours: tuple[int, int] | None,
) -> int:
    """Insert the rows of decoded blobs (only the hours in ``hours`` when given), one
    executemany per table and column list; returns rows."""
    known: dict[str, set[str]] = {}
    batches: dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]] = {}
    for tables in decoded:
        for table, (columns, rows) in tables.items():
            if table not in known:
                known[table] = _schema_columns(conn, table)
            keep = [i for i, c in enumerate(columns) if c in known[table]]
            if hours is not None:
                at = columns.index("hour")
                lo, hi = hours
                rows = [r for r in rows if lo <= r[at] < hi]
            if not rows:
                continue
            batch = batches.setdefault((table, tuple(columns[i] for i in keep)), [])
            if len(keep) == len(columns):
                batch.extend(rows)
            else:
                batch.extend(tuple(r[i] for i in keep) for r in rows)
    for (table, names), rows in batches.items():
        marks = ", ".join("?" for _ in names)
        conn.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", rows)
    return sum(len(rows) for rows in batches.values())


@dataclass
class PackResult:
    """What a packing run did."""

    function_days: int = 0
    rows: int = 0
    interrupted: bool = False
    skipped: int = 0  # left as rows: written to since the rollup refresh before packing


def candidates(conn: sqlite3.Connection, start: int, before: int) -> list[tuple[int, int]]:
    """(function_id, day) with hourly rows in ``[start, before)``, by function then day
    (read function by function: the hourly tables are keyed by function first)."""
    out: set[tuple[int, int]] = set()
    for table in BASE_TABLES:
        out.update(
            (int(f), int(d))
            for f, d in conn.execute(
                f"SELECT DISTINCT function_id, hour - hour % {DAY_S} FROM {table}"
                " WHERE function_id IN (SELECT id FROM functions) AND hour >= ? AND hour < ?",
                (start, before),
            )
        )
    return sorted(out)


def pack(
    conn: sqlite3.Connection,
    start: int,
    before: int,
    *,
    stop: Callable[[], bool] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    batch_days: int = 200,
) -> PackResult:
    """Pack every function-day with rows in ``[start, before)`` whose rollups are current,
    ``batch_days`` per short write transaction (readers are never held up for longer).
    Interruptible between batches (``stop``) and safe to re-run: it resumes."""
    result = PackResult()
    todo = candidates(conn, start, before)
    for i in range(0, len(todo), batch_days):
        if stop is not None and stop():
            result.interrupted = True
            break
        conn.execute("BEGIN IMMEDIATE")
        try:
            for fid, day in todo[i : i + batch_days]:
                n = pack_day(conn, fid, day)
                if n:
                    result.function_days += 1
                    result.rows += n
                else:
                    result.skipped += 1
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if progress is not None:
            progress("packing hours", min(i + batch_days, len(todo)), len(todo))
    return result


# --- reading packed days ---------------------------------------------------------------------


def _store_path(conn: sqlite3.Connection) -> str:
    for _seq, name, path in conn.execute("PRAGMA database_list"):
        if name == "main":
            return str(path or "")
    return ""


def _overlapping(
    conn: sqlite3.Connection,
    start: int,
    end: int,
    where: str,
    params: Any,
    column: str = "p.blob",
) -> list[tuple[Any, ...]]:
    """Packed (function_id, day, ``column``) with hours in ``[start, end)`` for the
    functions ``where`` (a condition on ``functions f``, with ``params`` positional or
    named) selects, by function and day."""
    lo = int(start) - int(start) % DAY_S
    window = (lo, int(end), int(start), int(end))
    if isinstance(params, dict):
        names = ("_packed_lo", "_packed_end", "_packed_start", "_packed_end2")
        marks = [f":{n}" for n in names]
        bound: Any = {**params, **dict(zip(names, window, strict=True))}
    else:
        marks = ["?"] * 4
        bound = [*params, *window]
    return conn.execute(
        f"SELECT p.function_id, p.day, {column} FROM packed_hours p"
        f" WHERE p.function_id IN (SELECT f.id FROM functions f WHERE {where})"
        f" AND p.day >= {marks[0]} AND p.day < {marks[1]}"
        f" AND p.last_hour >= {marks[2]} AND p.first_hour < {marks[3]}"
        " ORDER BY p.function_id, p.day",
        bound,
    ).fetchall()


def scratch(
    conn: sqlite3.Connection,
    start: int,
    end: int,
    where: str = "1",
    params: Any = (),
    tables: Sequence[str] = ("hourly_facts", "hourly_metrics", "merged_hourly"),
) -> sqlite3.Connection | None:
    """An in-memory database holding, as rows of ``tables`` (same schema as the store's),
    the hours in ``[start, end)`` of the packed function-days of the functions ``where``
    selects (``params`` its parameters, positional or named), with the store attached
    read-only, so that the store's other tables (functions, rollup_dirty, ...) resolve as
    usual: any read of the hourly tables run there sees exactly the packed part of the
    window, and the same read on the store sees the rest. None when nothing packed
    overlaps the window.

    The last few are kept (keyed by the window and by the packed rows' checksums, so a
    packed day changed since is never served stale) and shared: the pages of one window
    decode its packed hours once. Read-only for callers; do not close it."""
    if not has_packing(conn):
        return None
    # the packed rows' checksums say whether a kept decoding still holds (blobs unread)
    summed = any(r[1] == "checksum" for r in conn.execute("PRAGMA table_info(packed_hours)"))
    sums = _overlapping(conn, start, end, where, params, "p.checksum" if summed else "p.blob")
    if not sums:
        return None
    path = _store_path(conn)
    key = (path, int(start), int(end), _fingerprint(sums))
    with _SCRATCH_LOCK:
        cached = _SCRATCHES.pop(key, None)
        if cached is None:
            cached = _Scratch(_new_scratch(conn, path))
        if path:  # kept, the most recent last (an in-memory store's copies would go stale)
            _SCRATCHES[key] = cached
        while len(_SCRATCHES) > _SCRATCH_KEEP:
            _SCRATCHES.pop(next(iter(_SCRATCHES)))
        missing = [t for t in tables if t not in cached.loaded]
        if missing:
            found = _overlapping(conn, start, end, where, params)
            blobs = (_decode_day(fid, day, blob, missing) for fid, day, blob in found)
            with cached.conn:
                _insert(cached.conn, blobs, (int(start), int(end)))
            cached.loaded.update(missing)
    return cached.conn


def _decode_day(fid: int, day: int, blob: bytes, tables: Iterable[str]) -> dict[str, Table]:
    """decode() naming the function-day of a blob that cannot be read."""
    try:
        return decode(blob, tables)
    except (PackedFormatError, zlib.error, struct.error, ValueError, IndexError) as exc:
        raise PackedFormatError(
            f"packed hours of function {fid} on day {day} cannot be read ({exc});"
            " `lambdascope store check` lists every such day"
        ) from exc


@dataclass
class _Scratch:
    conn: sqlite3.Connection
    loaded: set[str] = field(default_factory=set)


_SCRATCH_KEEP = 4
_SCRATCHES: dict[Any, _Scratch] = {}
_SCRATCH_LOCK = threading.Lock()


def _fingerprint(sums: Sequence[tuple[Any, ...]]) -> int:
    """One number for the (function_id, day, checksum) of a window's packed rows."""
    crc = 0
    for fid, day, checksum in sums:  # the blob itself on a store from before 0022
        value = zlib.crc32(checksum) if isinstance(checksum, bytes) else int(checksum or 0)
        crc = zlib.crc32(struct.pack("<qqq", fid, day, value), crc)
    return crc ^ (len(sums) << 32)


def _new_scratch(conn: sqlite3.Connection, path: str) -> sqlite3.Connection:
    mem = sqlite3.connect(":memory:", check_same_thread=False, uri=True)
    if path:  # read-only, whatever the name holds (spaces, '?', '#')
        mem.execute("ATTACH DATABASE ? AS store", (f"{Path(path).as_uri()}?mode=ro",))
    else:  # an in-memory store: copy what the reads refer to
        _copy_tables(conn, mem, ("functions", "rollup_dirty"))
    # every hourly table exists there (empty unless asked for), so that no read run there
    # ever falls through to the store's own rows of it
    for table, _order in PACKED_TABLES:
        mem.execute(str(_table_sql(conn, table)))
    mem.commit()
    return mem


def _table_sql(conn: sqlite3.Connection, table: str) -> str | None:
    """The CREATE TABLE statement of ``table`` in the store (None: no such table)."""
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return None if row is None else str(row[0])


def _copy_tables(src: sqlite3.Connection, dst: sqlite3.Connection, tables: Sequence[str]) -> None:
    for table in tables:
        sql = _table_sql(src, table)
        if sql is None:
            continue
        dst.execute(sql)
        cur = src.execute(f"SELECT * FROM {table}")
        marks = ", ".join("?" for _ in cur.description)
        dst.executemany(f"INSERT INTO {table} VALUES ({marks})", cur.fetchall())
