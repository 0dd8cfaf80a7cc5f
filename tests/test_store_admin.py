"""``lambdascope store stats|check|vacuum`` on real store files."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from lambdascope import rollup
from lambdascope.cli import cli
from lambdascope.db import function_id, open_db
from lambdascope.synthetic import generate_store

END = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())


def _run(db_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--db", str(db_path), "store", *args])
    return result.exit_code, result.stdout, result.stderr


def test_stats_measure_tables_and_tiers(db_path: Path) -> None:
    db = open_db(db_path)
    generate_store(db, functions=6, days=3, seed=2, end=END)
    db.conn.close()
    code, out, _err = _run(db_path, "stats", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    tables = {t["name"]: t for t in doc["tables"]}
    assert tables["hourly_facts"]["rows"] == sum(
        1 for _ in sqlite3.connect(db_path).execute("SELECT 1 FROM hourly_facts")
    )
    assert tables["hourly_facts"]["bytes"] > 0 and tables["hourly_facts"]["tier"] == "hourly"
    # every page of the file belongs to a table, an index, the schema or the free list
    counted = sum(t["bytes"] + t["index_bytes"] for t in doc["tables"])
    assert counted + doc["free_bytes"] <= doc["file_bytes"]
    tiers = {t["name"]: t for t in doc["tiers"]}
    assert tiers["daily"]["function_days"] == doc["function_days"] > 0
    assert tiers["hourly"]["newest"] < END <= tiers["hourly"]["newest"] + 3600
    assert tiers["hourly"]["oldest"] >= END - 3 * 86400
    assert tiers["raw"]["function_days"] == 0 and tiers["raw"]["oldest"] is None
    assert doc["bytes_per_function_day"] == doc["file_bytes"] / doc["function_days"]
    code, out, _err = _run(db_path, "stats")
    assert code == 0
    assert "hourly_facts" in out and "per function-day" in out


def test_check_passes_on_a_sound_store_and_names_what_is_broken(db_path: Path) -> None:
    db = open_db(db_path)
    generate_store(db, functions=5, days=2, seed=3, end=END)
    code, out, err = _run(db_path, "check")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "ok"
    assert "checked: merged_hourly = the merged view of the base tables" in out
    with db.conn:
        db.conn.execute(
            "UPDATE merged_hourly SET invocations = invocations + 1 WHERE rowid IN"
            " (SELECT rowid FROM merged_hourly LIMIT 1)"
        )
    code, out, err = _run(db_path, "check")
    assert code == 1
    assert "problem: merged hours differ from or miss in merged_hourly" in err
    assert "problem: daily_facts disagree with merged_hourly" in err
    # a day waiting for its refresh is not a problem: the readers do not trust it
    rollup_day = db.conn.execute(
        "SELECT function_id, hour - hour % 86400 FROM merged_hourly LIMIT 1"
    ).fetchone()
    with db.conn:
        db.conn.execute("INSERT INTO rollup_dirty (function_id, day) VALUES (?, ?)", rollup_day)
    rollup.refresh(db)
    assert _run(db_path, "check")[0] == 0


def test_check_compares_raw_invocations_with_their_facts(db_path: Path) -> None:
    db = open_db(db_path)
    fid = function_id(db, "api")
    hour = END - 7200
    with db.conn:
        db.conn.execute(
            "INSERT INTO invocations (function_id, request_id, timestamp) VALUES (?, 'a', ?),"
            " (?, 'b', ?)",
            (fid, hour + 5, fid, hour + 6),
        )
        db.conn.execute(
            "INSERT INTO hourly_facts (function_id, hour, memory_mb, source, invocations)"
            " VALUES (?, ?, 0, 'local', 1)",
            (fid, hour),
        )
    code, _out, err = _run(db_path, "check")
    assert code == 1
    assert f"function {fid} hour {hour}: 2 raw, 1 in facts" in err
    with db.conn:
        db.conn.execute("INSERT INTO sealed_hours VALUES (?, ?)", (fid, hour))
    rollup.refresh(db)
    assert _run(db_path, "check")[0] == 0


def _fill_raw(db_path: Path, rows: int, stamp: int) -> None:
    db = open_db(db_path)
    fid = function_id(db, "api")
    with db.conn:
        db.conn.executemany(
            "INSERT INTO invocations (function_id, request_id, timestamp, error_type)"
            " VALUES (?, ?, ?, ?)",
            ((fid, f"request-{n:08d}", stamp + n % 3600, "x" * 200) for n in range(rows)),
        )
    db.conn.close()


def test_prune_gives_space_back_without_a_full_vacuum(db_path: Path) -> None:
    old = int((datetime.now(UTC) - timedelta(days=30)).timestamp())
    _fill_raw(db_path, 40_000, old)
    before = db_path.stat().st_size
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "schedule", "--once", "--job", "prune"]
    )
    assert result.exit_code == 0, result.output
    after = db_path.stat().st_size
    assert after < before / 3
    assert sqlite3.connect(db_path).execute("PRAGMA freelist_count").fetchone() == (0,)


def test_vacuum_of_an_older_store_rewrites_it_once_then_steps(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = open_db(path)
    # a store made before new stores had incremental auto-vacuum
    db.conn.execute("PRAGMA auto_vacuum = NONE")
    db.conn.execute("VACUUM")
    db.conn.close()
    assert sqlite3.connect(path).execute("PRAGMA auto_vacuum").fetchone() == (0,)
    _fill_raw(path, 30_000, END - 86400)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM invocations")
    before = path.stat().st_size
    code, out, _err = _run(path, "vacuum")
    assert code == 0, out
    assert path.stat().st_size < before / 3
    assert sqlite3.connect(path).execute("PRAGMA auto_vacuum").fetchone() == (2,)
    assert "given back" in out
