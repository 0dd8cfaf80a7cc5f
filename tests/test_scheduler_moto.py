"""``schedule`` and ``serve`` as real processes against an in-process moto server.

``schedule --once`` fills the store and a second run changes nothing; SIGTERM in the middle
of a collect run stops it at a batch boundary and the next run completes it to the same
store; ``serve`` collects and answers HTTP, then exits cleanly on SIGTERM. Logs are read in
``filter`` mode: moto's Logs Insights ignores the query (see TESTING_NOTES.md).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from collectors.demo_fleet import ACCOUNTS, build_fleet, moto_percentiles, role_arn, seed_moto
from lambdascope.scheduler import ScheduleLock

# "When seen" bookkeeping moves on every run by design; the data must not.
SEEN_COLUMNS = {
    "functions": ("first_seen", "last_seen", "inventory_at"),
    "watermarks": ("updated_at",),
    # an open alert's latest figures follow each check
    "alerts": ("last_seen", "summary", "details_json", "window_end"),
    "alert_destinations": ("last_used",),
    # the collection cadence: when ListMetrics ran and saw a function, when details were read
    "metric_cadence": ("listed_at", "covered_from"),
    "metric_activity": ("active_at",),
    "inventory_cadence": ("details_at",),
}
ENV = dict(os.environ, AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo")
# accounts x regions x (inventory, metrics, logs)
FULL_RUN = len(ACCOUNTS) * 2 * 3


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    fleet = [f for f in build_fleet() if f.kind in ("over", "stale", "throttled")][:8]
    seed_moto(url, fleet, now_s=int(time.time()))
    with moto_percentiles():
        yield url
    server.stop()


def _aws_args(endpoint: str) -> list[str]:
    roles = [arg for account in ACCOUNTS for arg in ("--role-arn", role_arn(account))]
    return [
        *("--endpoint-url", endpoint, "--logs-mode", "filter", "--no-default-account"),
        *("--region", "us-east-1", "--region", "eu-west-1", "--concurrency", "1", *roles),
    ]


def _schedule_args(db_path: Path, endpoint: str) -> list[str]:
    return [
        *(sys.executable, "-m", "lambdascope.cli", "--db", str(db_path)),
        *("schedule", "--once", "--job", "collect", *_aws_args(endpoint)),
    ]


def _schedule_once(db_path: Path, endpoint: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _schedule_args(db_path, endpoint), env=ENV, capture_output=True, text=True, timeout=300
    )


def _dump(db_path: Path, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(db_path)
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name NOT IN ('collection_runs', 'alert_checks', '_sqlite_migrations')"
        )
        if r[0] not in skip
    ]
    dump = {}
    for table in tables:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        kept = [c for c in columns if c not in SEEN_COLUMNS.get(table, ())]
        dump[table] = sorted(conn.execute(f"SELECT {', '.join(kept)} FROM {table}"), key=repr)
    conn.close()
    return dump


def _runs(db_path: Path) -> list[tuple[str, str, str, str]]:
    conn = sqlite3.connect(db_path)
    rows = conn.execute(
        "SELECT account_id, region, source, status FROM collection_runs ORDER BY id"
    ).fetchall()
    conn.close()
    return rows


@pytest.fixture(scope="module")
def full_store(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store filled by one uninterrupted ``schedule --once``."""
    db_path = tmp_path_factory.mktemp("full") / "store.db"
    first = _schedule_once(db_path, endpoint)
    assert first.returncode == 0, first.stderr
    assert "collect: finished (see collection_runs); alerts: " in first.stderr
    assert "Traceback" not in first.stderr
    return db_path


def test_schedule_once_fills_the_store_and_a_second_run_changes_nothing(
    full_store: Path, endpoint: str
) -> None:
    before = _dump(full_store)
    assert len(before["functions"]) == 8
    assert before["hourly_metrics"] and before["invocations"] and before["watermarks"]
    # moto does not offer three optional inventory calls: reported, not failed
    assert {status for *_, status in _runs(full_store)} == {"ok"}

    second = _schedule_once(full_store, endpoint)
    assert second.returncode == 0, second.stderr
    assert _dump(full_store) == before

    conn = sqlite3.connect(full_store)
    # both runs are on the Collection page: one metrics run per account x region each
    assert conn.execute(
        "SELECT status, COUNT(*) FROM collection_runs WHERE source = 'metrics' GROUP BY status"
    ).fetchall() == [("ok", 2 * 4)]
    # the second run resumed from the watermarks instead of re-reading the default window
    starts = conn.execute(
        "SELECT MIN(window_start), MAX(window_start) FROM collection_runs WHERE source = 'metrics'"
    ).fetchone()
    assert starts[1] - starts[0] > 86400
    conn.close()


def _wait_for(condition: Any, what: str, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        threading.Event().wait(0.02)


def _count_runs(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    try:
        conn = sqlite3.connect(db_path, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM collection_runs").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not migrated yet
        return 0


def test_sigterm_stops_collect_at_a_batch_boundary_and_the_next_run_completes_it(
    full_store: Path, endpoint: str, tmp_path: Path
) -> None:
    db_path = tmp_path / "store.db"
    proc = subprocess.Popen(
        _schedule_args(db_path, endpoint), env=ENV, stderr=subprocess.PIPE, text=True
    )
    try:
        # the first account x region inventory is stored: the run is under way
        _wait_for(lambda: _count_runs(db_path) >= 1, "first collection run", proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "received SIGTERM: finishing the current batch" in stderr
    assert "collect: stopped after its current batch" in stderr
    assert "Traceback" not in stderr
    interrupted = _runs(db_path)
    # stopped early: fewer parts than a full run, each either complete or cut at a batch
    assert 1 <= len(interrupted) < FULL_RUN
    assert {status for *_, status in interrupted} <= {"ok", "interrupted"}
    conn = sqlite3.connect(db_path)
    marks = set(conn.execute("SELECT account_id, region, source FROM watermarks").fetchall())
    conn.close()
    # watermarks moved only for the metrics/logs parts that completed
    assert marks == {
        (a, r, s) for a, r, s, status in interrupted if s != "inventory" and status == "ok"
    }

    resumed = _schedule_once(db_path, endpoint)
    assert resumed.returncode == 0, resumed.stderr
    assert "collect: finished (see collection_runs)" in resumed.stderr
    # nothing lost, nothing counted twice: the same store as one uninterrupted run
    # (watermarks hold the hour of the run; compared as a set of parts)
    assert _dump(db_path, skip=("watermarks",)) == _dump(full_store, skip=("watermarks",))
    conn = sqlite3.connect(db_path)
    assert len(conn.execute("SELECT * FROM watermarks").fetchall()) == len(ACCOUNTS) * 2 * 2
    conn.close()


def test_serve_collects_answers_http_and_exits_cleanly_on_sigterm(
    endpoint: str, tmp_path: Path
) -> None:
    db_path = tmp_path / "store.db"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [
        *(sys.executable, "-m", "lambdascope.cli", "--db", str(db_path)),
        *("serve", "--every", "2s", "--job", "collect", "--port", str(port)),
        *_aws_args(endpoint),
    ]
    proc = subprocess.Popen(args, env=ENV, stderr=subprocess.PIPE, text=True)

    def dashboard_answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                return page.status == 200
        except OSError:
            return False

    try:
        _wait_for(lambda: _count_runs(db_path) >= 1, "collection run", proc)
        _wait_for(dashboard_answers, "dashboard answer", proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "received SIGTERM: finishing the current batch" in stderr
    assert "serve stopped" in stderr
    assert "Traceback" not in stderr
    assert {status for *_, status in _runs(db_path)} <= {"ok", "interrupted"}
    with ScheduleLock(db_path):  # released when serve exits
        pass
