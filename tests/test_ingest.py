"""Local log ingest into a real store: formats, idempotency, resume, bad input."""

from __future__ import annotations

import gzip
import io
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlite_utils import Database

from collectors.local import IngestResult, ingest_paths
from lambdascope import histcodec, histogram
from lambdascope.cli import cli
from lambdascope.db import open_db

DATA = Path(__file__).parent / "data" / "logs"
REPORT = (
    "REPORT RequestId: {rid}\tDuration: {ms:.2f} ms\tBilled Duration: {billed} ms\t"
    "Memory Size: 256 MB\tMax Memory Used: 100 MB\t\n"
)


def _report(rid: str, ms: float = 10.0) -> str:
    return REPORT.format(rid=rid, ms=ms, billed=int(ms) + 1)


def _invocations(db: Database) -> list[tuple[object, ...]]:
    return db.conn.execute(
        "SELECT f.function_name, i.request_id, i.timestamp, i.status, i.out_of_memory,"
        " i.error_type FROM invocations i JOIN functions f ON f.id = i.function_id"
        " ORDER BY f.function_name, i.request_id"
    ).fetchall()


def test_every_fixture_lands_once_with_function_names(db: Database) -> None:
    result = ingest_paths(db, [str(DATA / "envelopes"), str(DATA / "export")])
    assert result.unreadable == []
    rows = _invocations(db)
    assert (
        "checkout",
        "33333333-aaaa-4bbb-8ccc-000000000001",
        1714564800,
        "timeout",
        0,
        None,
    ) in rows
    assert ("payments", "33333333-aaaa-4bbb-8ccc-000000000002", 1714568400, None, 0, None) in rows
    # filter-log-events output has no log group: the directory names the function
    assert ("envelopes", "44444444-aaaa-4bbb-8ccc-000000000001", 1714572000, None, 0, None) in rows
    # MemoryError in the application line marks the invocation of the export file
    assert (
        "export",
        "11111111-aaaa-4bbb-8ccc-000000000001",
        1714561200,
        "error",
        1,
        "Runtime.OutOfMemory",
    ) in rows
    # the same invocations in firehose-1 and firehose-2.gz, and 000000.txt/.gz: stored once
    assert len(rows) == 5
    assert result.reports == 2 * 2 + 1 + 2 * 2
    assert result.added == 5
    assert result.skipped["not_envelope"] == 0
    assert result.functions == {"checkout", "payments", "envelopes", "export"}


def test_hourly_facts_are_rebuilt_from_invocations(db: Database) -> None:
    ingest_paths(db, [str(DATA / "text" / "report_variants.log")], function_name="orders")
    facts = db.conn.execute(
        "SELECT hour, memory_mb, source, invocations, errors, timeouts, out_of_memory,"
        " cold_starts, duration_ms_max, max_memory_used_mb_max, duration_hist"
        " FROM hourly_facts ORDER BY memory_mb"
    ).fetchall()
    hour = 1714557600
    assert [row[:10] for row in facts] == [
        (hour, 128, "local", 1, 1, 0, 1, 0, 800.0, 128),
        (hour, 512, "local", 4, 0, 1, 0, 1, 30030.0, 200),
        (hour, 1024, "local", 1, 0, 0, 0, 0, 45.31, 300),
    ]
    assert histogram.count(histcodec.decode(facts[1][10])) == 4


def test_reingest_adds_nothing_and_grown_file_continues(db: Database, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    log = logs / "fn-a" / "app.log"
    log.parent.mkdir(parents=True)
    log.write_text("2024-05-01T10:00:00.000Z start\n" + _report("r1") + _report("r2"))
    first = ingest_paths(db, [str(logs)])
    assert (first.reports, first.added, first.lines) == (2, 2, 3)
    again = ingest_paths(db, [str(logs)])
    assert (again.reports, again.added, again.lines, again.unchanged_files) == (0, 0, 0, 1)
    with log.open("a") as handle:
        handle.write(_report("r3"))
    grown = ingest_paths(db, [str(logs)])
    assert (grown.reports, grown.added, grown.lines) == (1, 1, 1)
    assert [row[1] for row in _invocations(db)] == ["r1", "r2", "r3"]
    total = db.conn.execute("SELECT SUM(invocations) FROM hourly_facts").fetchone()[0]
    assert total == 3


def test_rewritten_file_starts_over(db: Database, tmp_path: Path) -> None:
    log = tmp_path / "fn" / "app.log"
    log.parent.mkdir()
    log.write_text(_report("r1") + _report("r2"))
    ingest_paths(db, [str(log)])
    log.write_text(_report("x1") + _report("x2") + _report("x3"))
    result = ingest_paths(db, [str(log)])
    assert (result.reports, result.added) == (3, 3)


def test_timeout_line_in_an_earlier_batch_still_marks_the_report(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collectors.local as local

    monkeypatch.setattr(local, "CHUNK_BYTES", 64)
    log = tmp_path / "fn" / "app.log"
    log.parent.mkdir()
    rid = "e5f6a7b8-3333-4444-a555-b66677778805"
    log.write_text(
        f"2024-05-01T10:05:00.000Z {rid} Task timed out after 3.00 seconds\n"
        + "x" * 200
        + "\n"
        + _report(rid, 3000.0)
    )
    ingest_paths(db, [str(log)])
    assert _invocations(db)[0][3] == "timeout"


def test_stdin_and_function_option(db: Database) -> None:
    data = ("2024-05-01T10:00:00.000Z hi\n" + _report("s1")).encode()
    result = ingest_paths(db, ["-"], function_name="from-pipe", stdin=io.BytesIO(data))
    assert result.files == 1
    assert _invocations(db) == [("from-pipe", "s1", 1714557600, None, 0, None)]


def test_bad_input_is_skipped_counted_and_the_run_goes_on(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "fn"
    folder.mkdir()
    (folder / "binary.bin").write_bytes(bytes(range(256)) * 100)
    (folder / "empty.log").write_bytes(b"")
    (folder / "utf8.log").write_bytes(b"\xff\xfe bad \xc3\x28\n" + _report("u1").encode())
    (folder / "long.log").write_bytes(b"a" * (10 * 1024 * 1024) + b"\n" + _report("l1").encode())
    (folder / "badreport.log").write_text(
        "REPORT RequestId: b1\tDuration: fast ms\nREPORT RequestId: b2\tMemory Size: 1 MB\n"
    )
    (folder / "notenvelope.json").write_text('{"events": 3}\n{"hello": "world"}')
    payload = gzip.compress(("".join(_report(f"g{i}") for i in range(2000))).encode())
    (folder / "cut.log.gz").write_bytes(payload[: len(payload) * 2 // 3])
    missing = tmp_path / "nope.log"
    result = ingest_paths(db, [str(folder), str(missing)])
    assert result.unreadable == [(str(missing), "no such file or directory")]
    assert result.files == 7
    # two bad REPORT lines, plus the cut gzip's last line when it stops inside a REPORT
    assert result.skipped["bad_report"] in (2, 3)
    assert result.skipped["truncated_gzip"] == 1
    assert result.skipped["not_envelope"] == 2
    ids = {row[1] for row in _invocations(db)}
    assert {"u1", "l1"} <= ids
    kept = {i for i in ids if str(i).startswith("g")}
    assert 0 < len(kept) < 2000  # the readable part of the cut gzip is kept
    offset = db.conn.execute(
        "SELECT offset_bytes FROM ingested_files WHERE path LIKE '%cut.log.gz'"
    ).fetchone()[0]
    assert offset > 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_reported(db: Database, tmp_path: Path) -> None:
    log = tmp_path / "secret.log"
    log.write_text(_report("p1"))
    log.chmod(0)
    result = ingest_paths(db, [str(log)])
    assert result.unreadable == [(str(log), "Permission denied")]


def test_paths_that_cannot_be_read_are_reported_and_the_rest_goes_on(
    db_path: Path, tmp_path: Path
) -> None:
    """Works as root too (permissions do not stop root): a dangling link inside a
    directory and a path that does not exist, next to a readable file."""
    logs = tmp_path / "logs" / "fn"
    logs.mkdir(parents=True)
    (logs / "ok.log").write_text(_report("ok1"))
    (logs / "gone.log").symlink_to(tmp_path / "nowhere.log")
    missing = tmp_path / "missing.log"
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "ingest", str(tmp_path / "logs"), str(missing)]
    )
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 2
    assert any("gone.log" in line for line in errors)
    assert any("missing.log" in line for line in errors)
    assert "Traceback" not in result.output
    assert "1 reports (1 new)" in result.stdout
    stored = open_db(db_path, readonly=True).conn.execute("SELECT request_id FROM invocations")
    assert stored.fetchall() == [("ok1",)]


def test_the_store_itself_is_never_ingested(db: Database, db_path: Path) -> None:
    (db_path.parent / "fn").mkdir()
    (db_path.parent / "fn" / "a.log").write_text(_report("only"))
    result = ingest_paths(db, [str(db_path.parent)])
    assert (result.files, result.added) == (1, 1)


def test_thousands_of_files(db: Database, tmp_path: Path) -> None:
    for n in range(2000):
        folder = tmp_path / "logs" / f"fn-{n % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n:05d}.log").write_text(_report(f"req-{n}"))
    result = ingest_paths(db, [str(tmp_path / "logs")])
    assert (result.files, result.added, len(result.functions)) == (2000, 2000, 3)


def test_same_invocation_in_two_files_stored_once(db: Database, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("a.log", "b.log"):
        (logs / name).write_text("2024-05-01T10:00:00Z x\n" + _report("dup"))
    shutil.copy(logs / "a.log", logs / "c.log")
    result = ingest_paths(db, [str(logs)], function_name="fn")
    assert (result.reports, result.added) == (3, 1)


def test_sql_and_python_rollups_agree(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import lambdascope.store as store

    ingest_paths(db, [str(DATA / "sample")])
    query = "SELECT * FROM hourly_facts ORDER BY function_id, hour, memory_mb"
    in_sql = db.conn.execute(query).fetchall()
    monkeypatch.setattr(store, "_has_math", lambda _db: False)
    ids = [row[0] for row in db.conn.execute("SELECT id FROM functions")]
    hours = [row[0] for row in db.conn.execute("SELECT DISTINCT hour FROM hourly_facts")]
    with db.conn:
        for fid in ids:
            store.rebuild_hourly_facts(db, fid, hours)
    in_python = db.conn.execute(query).fetchall()
    assert len(in_sql) == 12
    for a, b in zip(in_sql, in_python, strict=True):
        assert a[:9] == b[:9] and a[17:] == b[17:]
        assert a[9:17] == pytest.approx(b[9:17])


def test_envelope_file_with_garbage_between_objects_and_grown_later(
    db: Database, tmp_path: Path
) -> None:
    import json

    def envelope(rid: str) -> str:
        return json.dumps(
            {
                "messageType": "DATA_MESSAGE",
                "logGroup": "/aws/lambda/queue-worker",
                "logEvents": [{"id": "1", "timestamp": 1714564800000, "message": _report(rid)}],
            }
        )

    path = tmp_path / "firehose"
    path.write_text(envelope("e1") + "\n{not json at all\n" + envelope("é2") + "\n")
    first = ingest_paths(db, [str(path)])
    assert first.skipped["bad_json"] == 1
    with path.open("a") as handle:
        handle.write(envelope("e3"))
    grown = ingest_paths(db, [str(path)])
    assert (grown.reports, grown.added) == (1, 1)
    assert [row[:2] for row in _invocations(db)] == [
        ("queue-worker", "e1"),
        ("queue-worker", "e3"),
        ("queue-worker", "é2"),
    ]


def test_incremental_facts_equal_a_rebuild_from_the_invocations(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collectors.local as local
    import lambdascope.store as store

    monkeypatch.setattr(local, "CHUNK_BYTES", 512)  # many batches, marks across them
    logs = tmp_path / "logs" / "fn"
    logs.mkdir(parents=True)
    rid = "e5f6a7b8-3333-4444-a555-b66677778805"
    lines = ["2024-05-01T10:05:00.000Z start"]
    for n in range(40):
        lines.append(
            _report(f"r{n}", 10.0 + n).rstrip("\n")
            + ("\tInit Duration: 5.5 ms" if n % 7 == 0 else "")
        )
        if n == 20:
            lines.append(f"2024-05-01T11:05:00.000Z {rid} Task timed out after 3.00 seconds")
            lines.append("x" * 600)
            lines.append(_report(rid, 3000.0).rstrip("\n"))
            lines.append(f"2024-05-01T11:05:01.000Z {rid} MemoryError")
    (logs / "a.log").write_text("\n".join(lines) + "\n")
    (logs / "b.log").write_text("2024-05-01T12:00:00Z x\n" + _report("r3") + _report("new"))
    for source in (DATA / "sample", DATA / "json", logs):
        ingest_paths(db, [str(source)])
    query = "SELECT * FROM hourly_facts ORDER BY function_id, hour, memory_mb"
    incremental = db.conn.execute(query).fetchall()
    ids = [row[0] for row in db.conn.execute("SELECT id FROM functions")]
    hours = [row[0] for row in db.conn.execute("SELECT DISTINCT hour FROM hourly_facts")]
    with db.conn:
        for fid in ids:
            store.rebuild_hourly_facts(db, fid, hours)
    rebuilt = db.conn.execute(query).fetchall()
    assert len(incremental) == len(rebuilt) > 12
    for a, b in zip(incremental, rebuilt, strict=True):
        assert a[:9] == b[:9] and a[17:] == b[17:]
        assert a[9:17] == pytest.approx(b[9:17])
    assert db.conn.execute(
        "SELECT status, out_of_memory FROM invocations WHERE request_id = ?", (rid,)
    ).fetchone() == ("timeout", 1)


_DYING_READER = """
import json, os, sys
import collectors.local as local
from lambdascope.db import open_db

logs, victim, store = sys.argv[1:4]
read_job = local._read_job
test_process = os.getpid()


def dying(job, stdin=None):
    if job.path == victim and os.getpid() != test_process:
        os._exit(3)  # the reading process (a fork of this one) ends abruptly
    return read_job(job)


local._read_job = dying
result = local.ingest_paths(open_db(store), [logs], workers=2)
print(json.dumps({"unreadable": result.unreadable, "files": result.files}))
"""


def test_a_reading_process_that_dies_costs_only_its_file(tmp_path: Path) -> None:
    # in a process of its own: reading processes are forks, made only while the process
    # runs no other thread (libraries used by other tests keep idle worker threads)
    import json
    import subprocess
    import sys

    logs = tmp_path / "logs"
    shutil.copytree(DATA, logs)
    victim = sorted(p for p in logs.rglob("*") if p.is_file())[0]
    store = tmp_path / "s.db"
    done = subprocess.run(
        [sys.executable, "-c", _DYING_READER, str(logs), str(victim), str(store)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["unreadable"] == [[str(victim), "reading process ended"]]
    assert result["files"] == 8  # every other file was read by the other process
    db = open_db(store)
    stored = {row[0] for row in db.conn.execute("SELECT path FROM ingested_files")}
    assert str(victim.resolve()) not in stored and len(stored) == 8


def test_reading_processes_store_exactly_the_same(tmp_path: Path) -> None:
    from lambdascope.db import open_db

    logs = tmp_path / "logs"
    shutil.copytree(DATA, logs)
    stores = []
    for workers in (0, 1, 2):
        db = open_db(tmp_path / f"w{workers}.db")
        result = ingest_paths(db, [str(logs)], workers=workers)
        again = ingest_paths(db, [str(logs)], workers=workers)
        # by function name: readers working side by side may meet the functions in
        # another order (their ids differ)
        tables = [
            [
                (row[0], *row[2:])
                for row in db.conn.execute(
                    f"SELECT f.function_name, t.* FROM {table} t"
                    " JOIN functions f ON f.id = t.function_id ORDER BY 1, 3, 4, 5"
                )
            ]
            for table in ("invocations", "hourly_facts")
        ]
        files = db.conn.execute(
            "SELECT path, offset_bytes, lines, reports, skipped, completed"
            " FROM ingested_files ORDER BY path"
        ).fetchall()
        stores.append(
            (result.summary_line().split(" in ")[0], again.unchanged_files, tables, files)
        )
    assert stores[0] == stores[1] == stores[2]
    assert stores[1][1] == 9 and len(stores[1][2][0]) > 1000


def test_progress_reports_bytes_read_up_to_the_total(db: Database, tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from lambdascope.commands.ingest import IngestProgress

    logs = tmp_path / "fn"
    logs.mkdir()
    for n in range(3):
        text = "".join(_report(f"r{n}-{i}") for i in range(3000))
        (logs / f"{n}.log").write_text(text)
    seen: list[tuple[int, int, list[str]]] = []
    bar = IngestProgress(Console(file=io.StringIO(), width=120))

    def progress(result: IngestResult) -> None:
        bar.update(result)
        seen.append((result.bytes_done, result.bytes_total, bar.lines()))

    total = sum(p.stat().st_size for p in logs.iterdir())
    ingest_paths(db, [str(logs)], progress=progress, workers=0)
    assert seen and all(t == total for _, t, _ in seen)
    done = [d for d, _, _ in seen]
    assert done == sorted(done) and done[-1] == total
    (last,) = seen[-1][2]
    assert last.startswith("━" * 24 + " 100% ")
    assert f"{total / 1e6:.1f}/{total / 1e6:.1f} MB" in last
    assert " MB/s " in last and last.endswith(" files, 9,000 lines, 9,000 reports")


def test_json_arrays_of_log_events_are_read_whole(db: Database, tmp_path: Path) -> None:
    """``aws logs filter-log-events --query events`` (pretty) and ``jq -c .events`` (one
    line) write a JSON array of events; every event is read, gzip'd or not. A text log
    whose lines start with "[" stays a text log."""
    import json

    events = [
        {"timestamp": 1714557600000 + i * 1000, "message": _report(f"a{i}"), "logStreamName": "s"}
        for i in range(40)
    ]
    logs = tmp_path / "api"
    logs.mkdir()
    (logs / "one-line.json").write_text(json.dumps(events[:20]))
    with gzip.open(logs / "pretty.json.gz", "wt") as out:
        out.write(json.dumps(events[20:], indent=2))
    (logs / "app.log").write_text(
        '[INFO]\t2024-05-01T10:00:00.000Z\treq\t{"message": "hello"}\n' + _report("t1")
    )
    result = ingest_paths(db, [str(logs)])
    assert result.skipped == {} and result.unreadable == []
    ids = {row[1] for row in _invocations(db)}
    assert ids == {f"a{i}" for i in range(40)} | {"t1"}
    stamps = db.conn.execute("SELECT min(timestamp) FROM invocations WHERE request_id = 'a0'")
    assert stamps.fetchone()[0] == 1714557600  # the event's own time
