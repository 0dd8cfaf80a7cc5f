from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from lambdascope.db import (
    StoreError,
    function_id,
    get_setting,
    migrations,
    open_db,
    set_setting,
)


def test_migrations_apply_once_and_wal(db_path: Path) -> None:
    db = open_db(db_path)
    again = open_db(db_path)
    assert "hourly_facts" in again.table_names()
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = [name for (name,) in db.conn.execute("SELECT name FROM _sqlite_migrations")]
    # each migration once, in the order they were written, none left
    assert names[:3] == ["0001_initial", "0002_rollups", "0003_sealed_hours"]
    assert "0009_alerts" in names and "0008_rightsizing2" in names
    assert "0012_evidence" in names and "0013_evidence_more" in names
    assert "0006_collection_cadence" in names
    assert len(names) == len(set(names))
    assert migrations.pending(db) == []


def test_function_id_natural_key_and_seen_range(db: Database) -> None:
    first = function_id(db, "orders", seen_at=100)
    again = function_id(db, "orders", seen_at=50)
    function_id(db, "orders", seen_at=200)
    other = function_id(db, "orders", "111111111111", "us-east-1")
    db.conn.commit()
    assert first == again != other
    row = db.conn.execute("SELECT first_seen, last_seen FROM functions WHERE id = ?", (first,))
    assert row.fetchone() == (50, 200)


def test_readonly_open_refuses_writes_and_missing_file(db_path: Path, tmp_path: Path) -> None:
    ro = open_db(db_path, readonly=True)
    with pytest.raises(sqlite3.OperationalError):
        ro.conn.execute("INSERT INTO settings VALUES ('a', 'b')")
    with pytest.raises(StoreError, match="no database"):
        open_db(tmp_path / "missing.db", readonly=True)


def test_not_a_database_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open database"):
        open_db(bad)


def test_settings_roundtrip(db: Database) -> None:
    assert get_setting(db, "x", "d") == "d"
    set_setting(db, "x", "1")
    set_setting(db, "x", "2")
    assert get_setting(db, "x") == "2"
