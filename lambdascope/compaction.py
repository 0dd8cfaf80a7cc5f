"""Migration 0015: histogram columns from JSON text to bytes (lambdascope.histcodec).

The STRICT TEXT columns of ``hourly_facts`` and ``daily_facts`` cannot hold bytes, so each
table is rebuilt (SQLite's procedure for the schema changes ALTER TABLE cannot make):

1. one transaction creates ``<table>_compact`` with BLOB histogram columns, moves the
   table's indexes onto it (so they grow with the copy instead of being built at the end)
   and adds triggers recording the key of any row written to the old table meanwhile
   (by a process of an older lambdascope still running) in ``<table>_compact_redo``;
2. rows are copied in key order in chunks, each its own short write transaction;
3. one transaction copies the rows added since and again those recorded, renames the old
   table ``<table>_json`` and the copy to ``<table>``, and recreates the triggers (the
   rollup triggers of 0002);
4. the old table is emptied in chunks, then dropped.

A kill at any point leaves a consistent store: until step 3 commits the old table is
complete and is what readers read (its JSON text decodes as before); the next opening
continues after the last row the copy holds, or the emptying. Copying fires no rollup
trigger, so no day is marked for a refresh. Readers (WAL) are never blocked; a writer
waits for one chunk at most. The freed pages stay in the file for later writes until
``lambdascope store vacuum`` gives them back.
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

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class _Table:
    name: str
    key: tuple[str, ...]  # the copy's order and resume point: the primary key, or rowid
    chunk_rows: int  # rows per write transaction: about 0.1 s of work on a small machine

    @property
    def copy(self) -> str:
        return f"{self.name}_compact"

    @property
    def old(self) -> str:
        return f"{self.name}_json"

    @property
    def redo(self) -> str:
        return f"{self.name}_compact_redo"


TABLES = (
    _Table("hourly_facts", ("function_id", "hour", "memory_mb", "source"), 1_000),
    _Table("daily_facts", ("rowid",), 250),
)


def needs_compaction(conn: sqlite3.Connection) -> bool:
    """True while any histogram column is still TEXT."""
    return any(_text_columns(conn, t.name) for t in TABLES)


def pending(conn: sqlite3.Connection) -> bool:
    """True while :func:`compact` has work left: TEXT columns, or an old table to drop."""
    return needs_compaction(conn) or any(_exists(conn, t.old) for t in TABLES)


def compact(
    conn: sqlite3.Connection,
    progress: Progress | None = None,
    chunk_rows: int | None = None,
    after_chunk: Callable[[], None] | None = None,
) -> None:
    """Rebuild both tables with BLOB histograms; resumes an interrupted rebuild and does
    nothing on a rebuilt store. Needs ``hist_from_text`` (histcodec.register) on ``conn``.

    ``progress(step, rows_done, rows_total)`` after each chunk of the copy (step: the
    table's name) and of the emptying (step: "<table> (freeing)"); ``chunk_rows`` overrides
    the rows per transaction; ``after_chunk`` is called after each committed chunk of the
    copy or of the emptying (tests interrupt the rebuild there).
    """
    for table in TABLES:
        rows = chunk_rows or table.chunk_rows
        if _text_columns(conn, table.name) and _start_copy(conn, table):
            total = _count(conn, table.name)
            with _write(conn):  # rows a killed rebuild copied already
                done = _count(conn, table.copy) if _exists(conn, table.copy) else total
            while True:
                with _write(conn):
                    # another process rebuilding at the same time may have swapped already
                    live = _exists(conn, table.copy)
                    copied = _copy_chunk(conn, table, rows) if live else 0
                done += copied
                if progress is not None:
                    progress(table.name, min(done, total), total)
                if copied < rows:
                    break
                if after_chunk is not None:
                    after_chunk()
            _swap(conn, table)
        _drop_old(conn, table, rows, progress, after_chunk)


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


def _exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row.fetchone() is not None


def _start_copy(conn: sqlite3.Connection, table: _Table) -> bool:
    """Create the copy and move the table's indexes onto it (once: both or neither);
    False when another process has rebuilt the table meanwhile."""
    with _write(conn):
        if not _text_columns(conn, table.name):
            return False
        if _exists(conn, table.copy):
            return True
        (sql,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table.name,)
        ).fetchone()
        new_sql = f"CREATE TABLE {table.copy} " + sql[sql.index("(") :]
        for column in HIST_COLUMNS:
            new_sql, found = re.subn(
                rf"\b{column} TEXT NOT NULL DEFAULT '{{}}'",
                f"{column} BLOB NOT NULL DEFAULT x''",
                new_sql,
            )
            if found != 1:
                raise sqlite3.DatabaseError(f"unexpected definition of {table.name}.{column}")
        conn.execute(new_sql)
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
            " AND sql IS NOT NULL ORDER BY rowid",
            (table.name,),
        ).fetchall()
        for name, index_sql in indexes:
            conn.execute(f'DROP INDEX "{name}"')
            moved, found = re.subn(
                rf'\bON\s+"?{table.name}"?\s*\(', f"ON {table.copy} (", index_sql, count=1
            )
            if found != 1:
                raise sqlite3.DatabaseError(f"unexpected definition of index {name}")
            conn.execute(moved)
        _track_changes(conn, table)
    return True


def _track_changes(conn: sqlite3.Connection, table: _Table) -> None:
    """Record the key of every row written to the old table from now on (a process of an
    older lambdascope, still running, writes there): the swap copies those rows again."""
    keys = [f"k{i}" for i in range(len(table.key))]
    conn.execute(f"CREATE TABLE {table.redo} ({', '.join(keys)})")
    for event, rows in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",))):
        inserts = "".join(
            f"INSERT INTO {table.redo} VALUES ({', '.join(f'{row}.{k}' for k in table.key)});\n"
            for row in rows
        )
        conn.execute(
            f"CREATE TRIGGER {table.redo}_{event.lower()} AFTER {event} ON {table.name}"
            f" BEGIN\n{inserts}END"
        )


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
    """Put the copy in the old table's place, with the triggers (and views) that name the
    table, in one transaction; the old table stays, renamed, to be emptied in chunks."""
    with _write(conn):
        if not _text_columns(conn, table.name):  # another process swapped meanwhile
            return
        _copy_chunk(conn, table, None)  # rows added after the last chunk
        _redo(conn, table)
        dependants = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
            " AND type IN ('index', 'trigger', 'view') AND name NOT LIKE 'sqlite_%'"
            " AND (tbl_name = ? OR (type != 'index' AND instr(sql, ?) > 0)) ORDER BY rowid",
            (table.name, table.name),
        ).fetchall()
        _refuse_references(conn, table)
        for kind, name, _ in dependants:
            conn.execute(f'DROP {kind.upper()} "{name}"')
        conn.execute(f"DROP TABLE {table.redo}")
        conn.execute(f"ALTER TABLE {table.name} RENAME TO {table.old}")
        conn.execute(f"ALTER TABLE {table.copy} RENAME TO {table.name}")
        for _, name, sql in dependants:
            if not name.startswith(table.redo):
                conn.execute(sql)


def _refuse_references(conn: sqlite3.Connection, table: _Table) -> None:
    """Renaming the old table would carry a foreign key of another table along to it (and
    to its drop); no table refers to these two, and this keeps it a loud failure."""
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        for reference in conn.execute(f'PRAGMA foreign_key_list("{name}")'):
            if reference[2] == table.name:
                raise sqlite3.DatabaseError(f"{name} refers to {table.name}: cannot rebuild it")


def _redo(conn: sqlite3.Connection, table: _Table) -> None:
    """Copy again the rows written to the old table after its copy began."""
    keys = ", ".join(table.key)
    recorded = ", ".join(f"k{i}" for i in range(len(table.key)))
    changed = f"({keys}) IN (SELECT {recorded} FROM {table.redo})"
    conn.execute(f"DELETE FROM {table.copy} WHERE {changed}")
    columns = _columns(conn, table.name)
    select = ", ".join(f"hist_from_text({c})" if c in HIST_COLUMNS else c for c in columns)
    names = ", ".join(columns)
    if table.key == ("rowid",):
        names, select = f"rowid, {names}", f"rowid, {select}"
    conn.execute(
        f"INSERT INTO {table.copy} ({names}) SELECT {select} FROM {table.name} WHERE {changed}"
    )


def _drop_old(
    conn: sqlite3.Connection,
    table: _Table,
    rows: int,
    progress: Progress | None,
    after_chunk: Callable[[], None] | None,
) -> None:
    """Empty the renamed old table in chunks (each a short transaction), then drop it."""
    if not _exists(conn, table.old):
        return
    keys = ", ".join(table.key)
    total = _count(conn, table.old)
    done = 0
    while True:
        with _write(conn):
            if not _exists(conn, table.old):  # another process finished it meanwhile
                return
            deleted = conn.execute(
                f"DELETE FROM {table.old} WHERE ({keys}) IN"
                f" (SELECT {keys} FROM {table.old} ORDER BY {keys} LIMIT {int(rows)})"
            ).rowcount
        done += deleted
        if progress is not None:
            progress(f"{table.name} (freeing)", min(done, total), total)
        if deleted < rows:
            break
        if after_chunk is not None:
            after_chunk()
    _drop(conn, table.old)


def _drop(conn: sqlite3.Connection, name: str) -> None:
    with _write(conn):
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def _count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
