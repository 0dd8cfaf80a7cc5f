"""Stores for the histogram-format tests: one written by the code's own writers, and the
same store turned back into the form a store had before migration 0015 (JSON text)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from collectors.aws import Store
from collectors.local import ingest_paths
from collectors.logs import Facts, load_facts, transform_rows
from lambdascope import histcodec, histogram, rollup
from lambdascope.db import function_id, open_db
from lambdascope.synthetic import DEFAULT_END, generate_store
from tests.test_logs_insights import ACCOUNT, GROUP_A, insights_rows, sample_lines

DATA = Path(__file__).parent / "data" / "logs"
HIST_COLUMNS = (
    "duration_hist",
    "billed_duration_hist",
    "max_memory_used_hist",
    "init_duration_hist",
)
TABLES = {"hourly_facts": "function_id, hour, memory_mb, source", "daily_facts": "rowid"}
END = DEFAULT_END


def build_store(path: Path, functions: int = 8, days: int = 3) -> None:
    """Synthetic fleet, ingested runtime logs (tests/data) and Logs Insights facts."""
    db = open_db(path)
    generate_store(db, functions=functions, days=days, seed=3, end=END)
    ingest_paths(db, [str(DATA / "envelopes"), str(DATA / "export"), str(DATA / "text")])
    facts = Facts()
    transform_rows(insights_rows(GROUP_A, sample_lines(json_from=None), missing=None), facts)
    load_facts(Store(db), facts, {GROUP_A: function_id(db, "orders", ACCOUNT, "us-east-1")})
    rollup.refresh(db)
    db.conn.close()


def downgrade(path: Path) -> None:
    """Rewrite the histogram columns of ``path`` as the JSON text of TEXT columns, with the
    table definitions of migrations 0001/0002, as a store before migration 0015 has them."""
    conn = sqlite3.connect(path)
    conn.create_function("hist_json", 1, lambda b: histogram.to_json(histcodec.decode(b)))
    with conn:
        for table, key in TABLES.items():
            (sql,) = conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            deps = conn.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type != 'table'"
                " AND sql IS NOT NULL ORDER BY rowid",
                (table,),
            ).fetchall()
            old = re.sub(r"BLOB NOT NULL DEFAULT x''", "TEXT NOT NULL DEFAULT '{}'", sql)
            old = re.sub(r'^CREATE TABLE "?\w+"?', f"CREATE TABLE {table}_old", old)
            conn.execute(old)
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            select = ", ".join(f"hist_json({c})" if c in HIST_COLUMNS else c for c in columns)
            names = ", ".join(columns)
            if key == "rowid":
                names, select = f"rowid, {names}", f"rowid, {select}"
            conn.execute(f"INSERT INTO {table}_old ({names}) SELECT {select} FROM {table}")
            conn.execute(f"DROP TABLE {table}")
            conn.execute(f"ALTER TABLE {table}_old RENAME TO {table}")
            for (dep,) in deps:
                conn.execute(dep)
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = '0015_compact_histograms'")
    conn.close()


def table_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of both tables, histograms decoded, in key order."""
    conn = sqlite3.connect(path)
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table, key in TABLES.items():
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        rows = conn.execute(f"SELECT {key}, * FROM {table} ORDER BY {key}").fetchall()
        hist = {i + len(key.split(", ")) for i, c in enumerate(columns) if c in HIST_COLUMNS}
        out[table] = [
            tuple(histcodec.decode(v) if i in hist else v for i, v in enumerate(row))
            for row in rows
        ]
    conn.close()
    return out


def schema(path: Path) -> list[tuple[str, str, str]]:
    """(type, name, sql) of every schema object, table names unquoted."""
    conn = sqlite3.connect(path)
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name"
    ).fetchall()
    conn.close()
    return [(t, n, re.sub(r'^CREATE TABLE "(\w+)"', r"CREATE TABLE \1", s)) for t, n, s in rows]


def column_types(path: Path, table: str) -> dict[str, str]:
    conn = sqlite3.connect(path)
    types = {
        r[1]: r[2] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] in HIST_COLUMNS
    }
    conn.close()
    return types
