"""A mistyped --db that is another application's SQLite file is refused by every command,
with one line, and left exactly as it was."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from lambdascope.cli import cli
from lambdascope.db import StoreError, open_db

LOG = (
    "REPORT RequestId: 0f0e0d0c-aaaa-4bbb-8ccc-000000000001\tDuration: 10.00 ms\t"
    "Billed Duration: 10 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\t\n"
)


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    path = tmp_path / "browser-history.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
    conn.execute("CREATE TABLE moz_bookmarks (id INTEGER PRIMARY KEY, title TEXT)")
    conn.execute("INSERT INTO moz_places (url) VALUES ('https://example.org/')")
    conn.commit()
    conn.close()
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


COMMANDS = [
    ["ingest", "{log}"],
    ["summary"],
    ["report", "memory"],
    ["report", "cost"],
    ["report", "stale"],
    ["report", "cold-starts"],
    ["power-tuning", "orders-api"],
    ["schedule", "--once", "--job", "prune"],
    ["collect", "--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9"],
    ["dashboard", "--port", "8999"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_refuses_a_foreign_sqlite_file(
    foreign: Path, tmp_path: Path, command: list[str]
) -> None:
    log = tmp_path / "orders-api" / "a.log"
    log.parent.mkdir()
    log.write_text(LOG)
    before = _digest(foreign)
    args = [part.replace("{log}", str(log)) for part in command]
    result = CliRunner().invoke(cli, ["--db", str(foreign), *args])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "is not a lambdascope store" in result.output
    assert "moz_bookmarks, moz_places" in result.output
    assert "Traceback" not in result.output
    assert _digest(foreign) == before
    conn = sqlite3.connect(foreign)
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master ORDER BY 1")] == [
        "moz_bookmarks",
        "moz_places",
    ]
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_an_empty_sqlite_file_becomes_a_store_and_reads_say_it_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    path.touch()
    with pytest.raises(StoreError, match="holds no lambdascope data yet"):
        open_db(path, readonly=True)
    db = open_db(path)
    assert "hourly_facts" in db.table_names()
    db.conn.close()
    open_db(path, readonly=True).conn.close()
