"""Migration 0015: JSON-text histograms rebuilt as bytes, resumable after any interruption."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lambdascope import compaction, histcodec, queries
from lambdascope.alerts.rules import hourly_histograms
from lambdascope.cli import cli
from lambdascope.db import StoreError, open_db
from lambdascope.storeadmin import check
from tests import histstores
from tests.histstores import END, build_store, column_types, downgrade, schema, table_rows

DAY = 86_400


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store written by the code's own writers (read-only for the tests: copy it)."""
    path = tmp_path_factory.mktemp("built") / "store.db"
    build_store(path)
    return path


@pytest.fixture
def old_store(built: Path, tmp_path: Path) -> Path:
    """The built store as a store from before migration 0015 holds it."""
    path = tmp_path / "old.db"
    shutil.copy(built, path)
    downgrade(path)
    return path


def test_old_store_holds_json_text(old_store: Path, built: Path) -> None:
    assert set(column_types(old_store, "hourly_facts").values()) == {"TEXT"}
    assert set(column_types(old_store, "daily_facts").values()) == {"TEXT"}
    text = sqlite3.connect(old_store).execute("SELECT duration_hist FROM hourly_facts").fetchone()
    assert text[0].startswith('{"')
    assert table_rows(old_store) == table_rows(built)


def test_migration_keeps_every_row_indexes_and_triggers(old_store: Path, built: Path) -> None:
    open_db(old_store).conn.close()
    for table in ("hourly_facts", "daily_facts"):
        assert set(column_types(old_store, table).values()) == {"BLOB"}
    assert table_rows(old_store) == table_rows(built)
    assert schema(old_store) == schema(built)
    conn = sqlite3.connect(old_store)
    assert conn.execute("SELECT DISTINCT typeof(duration_hist) FROM hourly_facts").fetchall() == [
        ("blob",)
    ]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    # nothing was marked for a rollup refresh by the copy
    assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone()[0] == 0
    # the rollup triggers work on the rebuilt table
    with conn:
        conn.execute(
            "UPDATE hourly_facts SET errors = errors + 0 WHERE (function_id, hour) ="
            " (SELECT function_id, hour FROM hourly_facts LIMIT 1)"
        )
    assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone()[0] == 1
    conn.close()


def test_store_check_passes_after_migration_and_names_a_corrupt_histogram(
    old_store: Path,
) -> None:
    db = open_db(old_store)
    result = check(db)
    assert result.ok, result.problems
    assert "stored histograms are valid" in result.checks
    with db.conn:
        db.conn.execute(
            "UPDATE daily_facts SET max_memory_used_hist = x'07' WHERE rowid = (SELECT"
            " min(rowid) FROM daily_facts)"
        )
    assert check(db).problems == [
        "1 daily_facts rows hold a histogram that cannot be read (read as empty)"
    ]


class Interrupted(Exception):
    pass


# hourly_facts holds 578 rows, daily_facts 33: with chunks of 10 rows, hourly_facts takes
# 57 full chunks to copy and 57 to empty after the swap, daily_facts 3 to copy
@pytest.mark.parametrize(
    ("stop_after", "state"),
    [
        (3, {"hourly_facts_compact": 30, "hourly_facts": "TEXT", "daily_facts": "TEXT"}),
        (57 + 20, {"hourly_facts_json": 578 - 200, "hourly_facts": "BLOB", "daily_facts": "TEXT"}),
        (114 + 2, {"daily_facts_compact": 20, "hourly_facts": "BLOB", "daily_facts": "TEXT"}),
    ],
)
def test_an_interrupted_rebuild_is_finished_by_the_next_opening(
    old_store: Path, built: Path, stop_after: int, state: dict[str, Any]
) -> None:
    expected_answers = answers(built)
    assert [len(rows) for rows in table_rows(built).values()] == [578, 33]
    conn = sqlite3.connect(old_store)
    histcodec.register(conn)
    chunks = 0

    def stop() -> None:
        nonlocal chunks
        chunks += 1
        if chunks == stop_after:
            raise Interrupted

    with pytest.raises(Interrupted):
        compaction.compact(conn, chunk_rows=10, after_chunk=stop)
    conn.close()
    check_conn = sqlite3.connect(old_store)
    tables = {r[0] for r in check_conn.execute("SELECT name FROM sqlite_master")}
    for name, expected in state.items():
        if isinstance(expected, int):
            assert check_conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == expected
        else:
            assert set(column_types(old_store, name).values()) == {expected}
    assert not {"hourly_facts_compact", "hourly_facts_json", "daily_facts_compact"} & (
        tables - set(state)
    )
    check_conn.close()
    # a reader meanwhile (read-only, as the dashboard) gets every answer unchanged
    assert table_rows(old_store) == table_rows(built)
    assert answers(old_store) == expected_answers

    open_db(old_store).conn.close()
    assert table_rows(old_store) == table_rows(built)
    assert schema(old_store) == schema(built)
    assert answers(old_store) == expected_answers


_KILLER = textwrap.dedent(
    """
    import os, signal, sqlite3, sys
    from lambdascope import compaction, histcodec
    conn = sqlite3.connect(sys.argv[1])
    histcodec.register(conn)
    kill_at, where = int(sys.argv[2]), sys.argv[3]
    calls = 0
    def count(where_now):
        global calls
        if where_now == where:
            calls += 1
            if calls == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
    def convert(value):
        count("in a copy chunk")  # inside the chunk's transaction
        return histcodec.from_text(value)
    conn.create_function("hist_from_text", 1, convert)
    compaction.compact(conn, chunk_rows=100, after_chunk=lambda: count("between chunks"))
    """
)


# hist_from_text runs once per histogram, four times a row; hourly_facts (578 rows) takes
# 5 full chunks of 100 to copy and 5 to empty
@pytest.mark.parametrize(
    ("kill_at", "where", "left"),
    [
        (4 * 250, "in a copy chunk", {"hourly_facts_compact": 200}),
        (4 * (578 + 20), "in a copy chunk", {"daily_facts_compact": 0}),
        (7, "between chunks", {"hourly_facts_json": 578 - 200}),
    ],
)
def test_kill_9_during_the_rebuild(
    old_store: Path, built: Path, kill_at: int, where: str, left: dict[str, int]
) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    done = subprocess.run(
        [sys.executable, "-c", _KILLER, str(old_store), str(kill_at), where], env=env, check=False
    )
    assert done.returncode == -9
    conn = sqlite3.connect(old_store)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    leftovers = {t for t in tables if t.endswith(("_compact", "_json"))}
    assert leftovers == set(left)
    for name, rows in left.items():
        assert conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == rows
    conn.close()
    open_db(old_store).conn.close()
    assert table_rows(old_store) == table_rows(built)
    assert schema(old_store) == schema(built)


def test_a_migrated_store_is_left_alone(old_store: Path) -> None:
    open_db(old_store).conn.close()
    before = old_store.read_bytes()
    conn = sqlite3.connect(old_store)
    histcodec.register(conn)
    assert not compaction.needs_compaction(conn)
    compaction.compact(conn)
    conn.close()
    assert old_store.read_bytes() == before


def test_every_read_answers_the_same_before_and_after_the_migration(
    old_store: Path, built: Path
) -> None:
    reference = answers(built)
    assert answers(old_store) == reference  # the old form, read by this version
    open_db(old_store).conn.close()
    assert answers(old_store) == reference
    # and the daily rollups rebuilt from the migrated hours are the migrated ones
    db = open_db(old_store)
    with db.conn:
        db.conn.execute(
            "INSERT OR IGNORE INTO rollup_dirty SELECT DISTINCT function_id, day FROM daily_facts"
        )
    from lambdascope import rollup

    rollup.refresh(db)
    db.conn.close()
    assert table_rows(old_store)["daily_facts"] != []
    assert answers(old_store) == reference


def answers(path: Path) -> dict[str, Any]:
    """What the reports, dashboards and alerts read from the store at ``path``."""
    db = open_db(path, readonly=True)
    out: dict[str, Any] = {}
    windows = {
        "whole days": (END - 3 * DAY, END),
        "edge hours": (END - 2 * DAY - 5 * 3600, END - 7 * 3600),
        "everything": (0, END + DAY),
    }
    for name, (start, end) in windows.items():
        stats = queries.function_stats(db, start, end)
        out[f"stats {name}"] = [asdict(s) for s in stats]
        out[f"fleet {name}"] = [asdict(p) for p in queries.fleet_timeseries(db, start, end)]
        for s in stats[:4]:
            out[f"memory {name} {s.function_id}"] = queries.memory_histogram(
                db, s.function_id, start, end
            )
    functions = queries.list_functions(db)
    assert len(functions) > 8
    for f in functions:
        out[f"timeseries {f.function_id}"] = [
            asdict(p) for p in queries.function_timeseries(db, f.function_id, 0, END + DAY)
        ]
        out[f"alert hours {f.function_id}"] = hourly_histograms(
            db, f.function_id, END - 2 * DAY, END, "duration_hist"
        )
    db.conn.close()
    runner = CliRunner()
    for command in (
        ["report", "memory", "--format", "json"],
        ["report", "cost", "--format", "json"],
        ["report", "cold-starts", "--format", "json"],
        ["report", "stale", "--format", "json"],
        ["summary", "--format", "json"],
    ):
        for since, until in (("3d", "2026-01-01"), ("50h", "2025-12-31T17:00Z")):
            args = ["--db", str(path), *command, "--since", since, "--until", until]
            result = runner.invoke(cli, args)
            assert result.exit_code == 0, (command, result.output)
            out[" ".join(command[:2]) + since] = json.loads(result.output)
    return out


def test_histstores_tables_cover_every_histogram_column() -> None:
    assert set(histstores.HIST_COLUMNS) == set(queries.HIST_COLUMNS)
    assert set(compaction.HIST_COLUMNS) == set(queries.HIST_COLUMNS)


def test_progress_counts_every_row_copied_then_freed(old_store: Path) -> None:
    conn = sqlite3.connect(old_store)
    histcodec.register(conn)
    seen: list[tuple[str, int, int]] = []
    compaction.compact(conn, progress=lambda *step: seen.append(step), chunk_rows=100)
    conn.close()
    last = {step: (done, total) for step, done, total in seen}
    assert last == {
        "hourly_facts": (578, 578),
        "hourly_facts (freeing)": (578, 578),
        "daily_facts": (33, 33),
        "daily_facts (freeing)": (33, 33),
    }
    assert [s[1] for s in seen if s[0] == "hourly_facts"] == [100, 200, 300, 400, 500, 578]


_REBUILD = textwrap.dedent(
    """
    import sqlite3, sys
    from lambdascope import compaction, histcodec
    from lambdascope.db import open_db
    if sys.argv[2] == "open_db":
        open_db(sys.argv[1])
    else:
        conn = sqlite3.connect(sys.argv[1], timeout=30)
        conn.execute("PRAGMA journal_mode = WAL")
        histcodec.register(conn)
        compaction.compact(conn, chunk_rows=20)
    """
)


@pytest.mark.parametrize("how", ["compact", "open_db"])
def test_two_processes_rebuilding_at_once_give_one_whole_store(
    old_store: Path, built: Path, how: str
) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    command = [sys.executable, "-c", _REBUILD, str(old_store), how]
    first = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    errors = (first.communicate()[1], second.communicate()[1])
    assert (first.returncode, second.returncode) == (0, 0), errors
    open_db(old_store).conn.close()
    assert table_rows(old_store) == table_rows(built)
    assert schema(old_store) == schema(built)


def test_writes_of_an_older_version_during_the_rebuild_are_kept(
    old_store: Path, built: Path
) -> None:
    # a process started before the upgrade still writes JSON text to the old table
    conn = sqlite3.connect(old_store)
    histcodec.register(conn)
    chunks = 0

    def stop() -> None:
        nonlocal chunks
        chunks += 1
        if chunks == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        compaction.compact(conn, chunk_rows=100, after_chunk=stop)
    first, last = conn.execute(
        "SELECT min(function_id), max(function_id) FROM hourly_facts_compact"
    ).fetchone()
    with conn:  # already copied rows change, one goes, one comes before and one after
        conn.execute(
            "UPDATE hourly_facts SET invocations = invocations + 7, duration_hist = '{\"5\":9}'"
            " WHERE function_id = ?",
            (first,),
        )
        conn.execute(
            "DELETE FROM hourly_facts WHERE (function_id, hour) IN"
            " (SELECT function_id, hour FROM hourly_facts WHERE function_id = ? LIMIT 1)",
            (last,),
        )
        newest = conn.execute("SELECT max(id) FROM functions").fetchone()[0]
        assert newest > last
        for fid, hour in ((first, 0), (newest, END)):
            conn.execute(
                "INSERT INTO hourly_facts (function_id, hour, memory_mb, source, invocations,"
                " max_memory_used_hist) VALUES (?, ?, 128, 'local', 2, '{\"z\":2}')",
                (fid, hour),
            )
        conn.execute("UPDATE daily_facts SET init_duration_hist = '{\"-3\":1}' WHERE rowid = 1")
    expected = table_rows(old_store)
    conn.close()
    assert expected != table_rows(built)

    open_db(old_store).conn.close()
    assert table_rows(old_store) == expected
    assert schema(old_store) == schema(built)


def test_a_table_referring_to_the_rebuilt_one_stops_the_migration_loudly(
    old_store: Path, built: Path
) -> None:
    conn = sqlite3.connect(old_store)
    conn.execute(
        "CREATE TABLE notes (function_id INTEGER, hour INTEGER, memory_mb INTEGER, source TEXT,"
        " FOREIGN KEY (function_id, hour, memory_mb, source) REFERENCES hourly_facts)"
    )
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="notes refers to hourly_facts: cannot rebuild it"):
        open_db(old_store)
    assert table_rows(old_store) == table_rows(built)  # nothing lost, still the old form
    assert set(column_types(old_store, "hourly_facts").values()) == {"TEXT"}
