"""Migration 0015: histogram columns from JSON text to bytes (lambdascope.histcodec).

The STRICT TEXT columns of ``hourly_facts`` and ``daily_facts`` cannot hold bytes, so each
table is rebuilt (SQLite's procedure for schema changes ALTER TABLE cannot make): a copy
``<table>_compact`` with BLOB histogram columns is filled in chunks of rows, each chunk
its own short write transaction, then one transaction drops the old table, renames the
copy and recreates the old table's indexes and triggers.

A kill at any point leaves a consistent store: the old table stays complete (and is what
readers read, its JSON text decodes as before) until the swap commits; the next opening
continues the copy after the last row the copy holds. Copying never fires the rollup
triggers, so no day is marked for a refresh. Readers (WAL) are never blocked; a writer
waits at most one chunk, or the swap (dropping the old table, building its index).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# the histogram columns of both tables (lambdascope.queries.HIST_COLUMNS)
HIST_COLUMNS = (
    "max_memory_used_hist",
    "duration_hist",
    "billed_duration_hist",
    "init_duration_hist",
)

# Rows per write transaction: about 0.1 s of copying on a small machine.
CHUNK_ROWS = 10_000

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class _Table:
    name: str
    key: tuple[str, ...]  # the copy's order and resume point: the primary key, or rowid

    @property
    def copy(self) -> str:
        return f"{self.name}_compact"


TABLES = (
    _Table("hourly_facts", ("function_id", "hour", "memory_mb", "source")),
    _Table("daily_facts", ("rowid",)),
)


def needs_compaction(conn: sqlite3.Connection) -> bool:
    """True while any histogram column is still TEXT."""
    return any(_text_columns(conn, t.name) for t in TABLES)


def compact(
    conn: sqlite3.Connection,
    progress: Progress | None = None,
    chunk_rows: int = CHUNK_ROWS,
    after_chunk: Callable[[], None] | None = None,
) -> None:
    """Rebuild both tables with BLOB histograms; resumes an interrupted rebuild and does
    nothing on a rebuilt store. Needs ``hist_from_text`` (histcodec.register) on ``conn``.

    ``progress(table, rows_copied, rows_total)`` after each chunk; ``after_chunk`` is
    called after each committed chunk (tests interrupt the rebuild there).
    """
    for table in TABLES:
        if not _text_columns(conn, table.name):
            _drop_copy(conn, table)  # a copy left by a rebuild that another process swapped
            continue
        _create_copy(conn, table)
        total = _count(conn, table.name)
        done = _count(conn, table.copy)
        while True:
            with _write(conn):
                copied = _copy_chunk(conn, table, chunk_rows)
            done += copied
            if progress is not None:
                progress(table.name, min(done, total), total)
            if copied < chunk_rows:
                break
            if after_chunk is not None:
                after_chunk()
        _swap(conn, table)


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken before the first read (concurrent rebuilds queue)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def _text_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [
        row[1]
        for row in conn.execute(f"PRAGMA table_info({table})")
        if row[1] in HIST_COLUMNS and str(row[2]).upper() == "TEXT"
    ]


def _create_copy(conn: sqlite3.Connection, table: _Table) -> None:
    (sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table.name,)
    ).fetchone()
    head = sql[: sql.index("(")]
    new_sql = f"CREATE TABLE IF NOT EXISTS {table.copy} " + sql[len(head) :]
    for column in HIST_COLUMNS:
        new_sql, found = re.subn(
            rf"\b{column} TEXT NOT NULL DEFAULT '{{}}'",
            f"{column} BLOB NOT NULL DEFAULT x''",
            new_sql,
        )
        if found != 1:
            raise sqlite3.DatabaseError(f"unexpected definition of {table.name}.{column}")
    with conn:
        conn.execute(new_sql)


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")]


def _copy_chunk(conn: sqlite3.Connection, table: _Table, limit: int | None) -> int:
    """Copy the next ``limit`` rows (all remaining with None) after the copy's last row,
    in the caller's transaction; returns how many were copied."""
    columns = _columns(conn, table.name)
    select = ", ".join(f"hist_from_text({c})" if c in HIST_COLUMNS else c for c in columns)
    keys = ", ".join(table.key)
    last = conn.execute(
        f"SELECT {keys} FROM {table.copy} ORDER BY "
        + ", ".join(f"{k} DESC" for k in table.key)
        + " LIMIT 1"
    ).fetchone()
    after = ""
    params: tuple[object, ...] = ()
    if last is not None:
        after = f" WHERE ({keys}) > ({', '.join('?' for _ in table.key)})"
        params = tuple(last)
    names = ", ".join(columns)
    if table.key == ("rowid",):
        names, select = f"rowid, {names}", f"rowid, {select}"
    cursor = conn.execute(
        f"INSERT INTO {table.copy} ({names}) SELECT {select} FROM {table.name}{after}"
        f" ORDER BY {keys}" + ("" if limit is None else f" LIMIT {int(limit)}"),
        params,
    )
    return int(cursor.rowcount)


def _swap(conn: sqlite3.Connection, table: _Table) -> None:
    """Drop the old table and put the copy in its place, with the old table's indexes and
    triggers (and those of other tables that name it), in one transaction."""
    with _write(conn):
        if not _text_columns(conn, table.name):  # another process swapped meanwhile
            conn.execute(f"DROP TABLE IF EXISTS {table.copy}")
            return
        _copy_chunk(conn, table, None)  # rows added after the last chunk
        if _count(conn, table.name) != _count(conn, table.copy):
            # rows changed behind the copy (a writer that skipped the migration): copy all
            conn.execute(f"DELETE FROM {table.copy}")
            _copy_chunk(conn, table, None)
        dependants = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
            " AND type IN ('index', 'trigger', 'view') AND name NOT LIKE 'sqlite_%'"
            " AND (tbl_name = ? OR (type != 'index' AND instr(sql, ?) > 0)) ORDER BY rowid",
            (table.name, table.name),
        ).fetchall()
        for kind, name, _ in dependants:
            if kind != "index":
                conn.execute(f'DROP {kind.upper()} "{name}"')
        conn.execute(f"DROP TABLE {table.name}")
        conn.execute(f"ALTER TABLE {table.copy} RENAME TO {table.name}")
        for _, _, sql in dependants:
            conn.execute(sql)


def _count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _drop_copy(conn: sqlite3.Connection, table: _Table) -> None:
    with conn:
        conn.execute(f"DROP TABLE IF EXISTS {table.copy}")
