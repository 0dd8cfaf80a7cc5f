"""Evidence about a function's size beyond its REPORT lines (measured duration curves,
provisioned-concurrency metrics)."""

from __future__ import annotations

from sqlite_utils import Database


def has_table(db: Database, name: str) -> bool:
    """Whether the store has ``name``: a store opened read-only before its first write
    after an upgrade lacks the newer tables, and reads then find no evidence."""
    row = db.conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None
