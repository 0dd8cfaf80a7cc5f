"""The collection schedule: triggers, prune, the single-instance lock, overlap, SIGTERM."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.triggers.interval import IntervalTrigger
from click.testing import CliRunner
from sqlite_utils import Database

from lambdascope import scheduler as sched
from lambdascope.cli import cli
from lambdascope.commands.schedule import report_file_names
from lambdascope.db import function_id, open_db
from lambdascope.scheduler import (
    Job,
    ScheduleError,
    ScheduleLock,
    StopFlag,
    build_scheduler,
    make_trigger,
    next_fire_times,
    prune_raw_invocations,
)

LAMBDASCOPE = [sys.executable, "-m", "lambdascope.cli"]
NOW = datetime(2026, 11, 24, 10, 17, 5, tzinfo=UTC)


def test_cron_fires_at_the_top_of_each_utc_hour() -> None:
    trigger = make_trigger(None, "0 * * * *")
    assert next_fire_times(trigger, NOW, 3) == [
        datetime(2026, 11, 24, 11, 0, tzinfo=UTC),
        datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
        datetime(2026, 11, 24, 13, 0, tzinfo=UTC),
    ]


def test_every_fires_at_a_fixed_interval() -> None:
    trigger = make_trigger("15m", None)
    times = next_fire_times(trigger, NOW, 3)
    assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(minutes=15)] * 2


@pytest.mark.parametrize(
    ("every", "cron", "message"),
    [
        ("1h", "0 * * * *", "either --every or --cron"),
        ("soon", None, "not a duration"),
        (None, "every hour", "bad --cron"),
    ],
)
def test_bad_triggers_are_one_line_errors(
    every: str | None, cron: str | None, message: str
) -> None:
    with pytest.raises(ScheduleError, match=message):
        make_trigger(every, cron)


def _seed_invocations(db: Database, timestamps: list[int]) -> int:
    fid = function_id(db, "orders-api", "111111111111", "eu-west-1")
    with db.conn:
        for n, ts in enumerate(timestamps):
            db.conn.execute(
                "INSERT INTO invocations (function_id, request_id, timestamp, duration_ms)"
                " VALUES (?, ?, ?, 10.0)",
                (fid, f"req-{n}", ts),
            )
        db.conn.execute(
            "INSERT INTO hourly_facts (function_id, hour, memory_mb, source, invocations)"
            " VALUES (?, ?, 512, 'local', 3)",
            (fid, 1_700_000_000 // 3600 * 3600),
        )
    return fid


def test_prune_deletes_only_old_raw_rows_and_keeps_hourly_facts(db: Database) -> None:
    now_s = int(NOW.timestamp())
    day = 86400
    _seed_invocations(db, [now_s - 20 * day, now_s - 15 * day, now_s - 13 * day, now_s - 60])
    deleted = prune_raw_invocations(db, timedelta(days=14), now=NOW)
    assert deleted == 2
    remaining = [r[0] for r in db.conn.execute("SELECT timestamp FROM invocations ORDER BY 1")]
    assert remaining == [now_s - 13 * day, now_s - 60]
    assert db.conn.execute("SELECT COUNT(*) FROM hourly_facts").fetchone()[0] == 1
    run = db.conn.execute("SELECT source, status, items FROM collection_runs").fetchall()
    assert run == [("prune", "ok", 2)]


class _StopAfterChecks(StopFlag):
    def __init__(self, allowed: int) -> None:
        super().__init__()
        self.allowed = allowed

    def check(self) -> None:
        if self.allowed == 0:
            self.set()
        self.allowed -= 1
        super().check()


def test_prune_stops_between_batches_and_keeps_finished_ones(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sched, "PRUNE_BATCH_ROWS", 2)
    old = int(NOW.timestamp()) - 30 * 86400
    _seed_invocations(db, [old + n for n in range(5)])
    deleted = prune_raw_invocations(db, timedelta(days=14), now=NOW, stop=_StopAfterChecks(1))
    assert deleted == 2
    assert db.conn.execute("SELECT COUNT(*) FROM invocations").fetchone()[0] == 3
    assert db.conn.execute("SELECT status FROM collection_runs").fetchone() == ("interrupted",)


def test_second_lock_on_the_same_database_is_refused(tmp_path: Path) -> None:
    first = ScheduleLock(tmp_path / "x.db")
    first.acquire()
    try:
        with pytest.raises(ScheduleError, match=f"pid {os.getpid()}.*already running"):
            ScheduleLock(tmp_path / "x.db").acquire()
    finally:
        first.release()
    with ScheduleLock(tmp_path / "x.db"):
        pass


def test_lock_of_a_killed_process_does_not_block_the_next_start(tmp_path: Path) -> None:
    db_path = tmp_path / "x.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            " from lambdascope.scheduler import ScheduleLock;"
            f" lock = ScheduleLock(Path({str(db_path)!r})); lock.acquire();"
            " print('held', flush=True);"
            " time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(ScheduleError):
        ScheduleLock(db_path).acquire()
    holder.kill()
    holder.wait()
    with ScheduleLock(db_path):
        pass


def test_a_slow_run_is_never_overlapped_by_the_next_one() -> None:
    running = 0
    most_running = 0
    runs = 0
    release = threading.Event()
    skipped = threading.Event()
    second_run = threading.Event()
    guard = threading.Lock()

    def slow(stop: StopFlag) -> str:
        nonlocal running, most_running, runs
        with guard:
            running += 1
            runs += 1
            most_running = max(most_running, running)
            if runs == 2:
                second_run.set()
        release.wait(30)
        with guard:
            running -= 1
        return "done"

    stop = StopFlag()
    job = Job("collect", slow, IntervalTrigger(seconds=0.02, timezone=UTC))
    scheduler = build_scheduler([job], stop, lambda _msg: None, background=True)

    def on_skip(event: JobEvent) -> None:
        skipped.set()

    scheduler.add_listener(on_skip, EVENT_JOB_MAX_INSTANCES)
    scheduler.start()
    try:
        assert skipped.wait(30), "the scheduler never tried to start an overlapping run"
        release.set()
        assert second_run.wait(30)
    finally:
        scheduler.shutdown(wait=True)
    assert most_running == 1


def test_once_runs_prune_and_exits(db_path: Path) -> None:
    db = open_db(db_path)
    _seed_invocations(db, [int(datetime.now(UTC).timestamp()) - 40 * 86400])
    db.conn.close()
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "schedule", "--once", "--job", "prune", "--keep-raw", "7d"]
    )
    assert result.exit_code == 0, result.output
    assert "prune: deleted 1 raw invocation rows older than 7d" in result.output
    db = open_db(db_path)
    assert db.conn.execute("SELECT COUNT(*) FROM invocations").fetchone()[0] == 0


def test_report_job_without_report_dir_is_a_usage_error(db_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "schedule", "--once", "--job", "report"]
    )
    assert result.exit_code == 2
    assert "no job to run (the report job needs --report-dir)" in result.output


def test_daily_report_files_carry_the_date(tmp_path: Path) -> None:
    html, csv = report_file_names(tmp_path, date(2026, 11, 24))
    assert (html.name, csv.name) == (
        "memory-report-2026-11-24.html",
        "memory-report-2026-11-24.csv",
    )


def _start_schedule(db_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*LAMBDASCOPE, "--db", str(db_path), "schedule", "--every", "1h", "--job", "prune"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _read_until(proc: subprocess.Popen[str], needle: str) -> list[str]:
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} never printed: {lines}")


def test_schedule_process_refuses_a_second_instance_and_stops_on_sigterm(db_path: Path) -> None:
    proc = _start_schedule(db_path)
    try:
        _read_until(proc, "prune: deleted 0 raw invocation rows")
        second = subprocess.run(
            [*LAMBDASCOPE, "--db", str(db_path), "schedule", "--once", "--job", "prune"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert f"pid {proc.pid}) is already running on this database" in second.stderr
        assert "Traceback" not in second.stderr
        proc.send_signal(signal.SIGTERM)
        tail = _read_until(proc, "scheduler stopped")
        assert proc.wait(timeout=60) == 0
        assert any("received SIGTERM" in line for line in tail)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    db = open_db(db_path)
    assert db.conn.execute("SELECT source, status FROM collection_runs").fetchall() == [
        ("prune", "ok")
    ]


def test_report_job_writes_dated_html_and_csv_and_records_the_run(
    db_path: Path, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            str(db_path),
            "schedule",
            "--once",
            "--job",
            "report",
            "--report-dir",
            str(reports),
        ],
    )
    assert result.exit_code == 0, result.output
    today = datetime.now(UTC).date()
    html, csv = report_file_names(reports, today)
    assert "<html" in html.read_text(encoding="utf-8").lower()
    assert csv.read_text(encoding="utf-8").startswith("function_name")
    db = open_db(db_path)
    assert db.conn.execute("SELECT source, status, items FROM collection_runs").fetchall() == [
        ("report", "ok", 2)
    ]


def test_serve_runs_the_jobs_and_the_dashboard_in_one_process(db_path: Path) -> None:
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [*LAMBDASCOPE, "--db", str(db_path), "serve", "--job", "prune", "--port", str(port)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # the server is bound (and its URL printed) before the jobs start
        _read_until(proc, f"http://127.0.0.1:{port}/")
        _read_until(proc, "prune: deleted 0 raw invocation rows")
        deadline = 200
        for _ in range(deadline):  # the server binds right after printing its URL
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                    assert page.status == 200
                    break
            except OSError:
                proc.poll()
                assert proc.returncode is None
                threading.Event().wait(0.05)
        else:
            raise AssertionError("the dashboard never answered")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with ScheduleLock(db_path):  # released when serve exits
        pass
