"""kill -9 in the middle of an ingest, then a re-run: integrity and totals as uninterrupted."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from gen_logs import generate  # type: ignore[import-not-found]

TOTALS = (
    "SELECT f.function_name, h.hour, h.memory_mb, h.invocations, h.errors, h.timeouts,"
    " h.cold_starts, round(h.duration_ms_sum, 3), h.duration_hist, h.max_memory_used_hist"
    " FROM hourly_facts h JOIN functions f ON f.id = h.function_id"
    " ORDER BY 1, 2, 3"
)


def _ingest(db: Path, logs: Path) -> subprocess.Popen[bytes]:
    # small transactions, so that the run is killed between two of them
    env = {**os.environ, "LAMBDASCOPE_COMMIT_ROWS": "2000"}
    return subprocess.Popen(
        [sys.executable, "-m", "lambdascope.cli", "--db", str(db), "ingest", str(logs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended (nobody waits for it)


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_sigkill_mid_run_then_rerun_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    generate(logs, megabytes=12, seed=7, functions=3)
    killed_db = tmp_path / "killed.db"
    clean_db = tmp_path / "clean.db"

    proc = _ingest(killed_db, logs)
    # kill once the first batches are committed (rows visible), before the run ends
    assert proc.stdout is not None
    while proc.poll() is None:
        if killed_db.exists():
            try:
                done = _rows(killed_db, "SELECT COUNT(*) FROM ingested_files")[0][0]
            except sqlite3.OperationalError:
                done = 0
            if done >= 1:
                readers = _children(proc.pid)
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    # its reading processes notice that the writer is gone and end too
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in readers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert readers and not any(_alive(pid) for pid in readers)
    partial = _rows(killed_db, "SELECT COUNT(*) FROM invocations")[0][0]

    rerun = _ingest(killed_db, logs)
    assert rerun.wait() == 0
    clean = _ingest(clean_db, logs)
    assert clean.wait() == 0

    assert _rows(killed_db, "PRAGMA integrity_check") == [("ok",)]
    count = "SELECT COUNT(*), SUM(duration_ms), SUM(status = 'timeout') FROM invocations"
    assert _rows(killed_db, count) == _rows(clean_db, count)
    assert 0 <= partial < _rows(clean_db, count)[0][0]
    assert _rows(killed_db, TOTALS) == _rows(clean_db, TOTALS)
    assert _rows(killed_db, "SELECT COUNT(*) FROM settings WHERE key LIKE 'local_ingest%'") == [
        (0,)
    ]
