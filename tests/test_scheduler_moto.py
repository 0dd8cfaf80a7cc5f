"""``schedule --once`` against an in-process moto server: fills the store, then is idempotent."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from collectors.demo_fleet import ACCOUNTS, build_fleet, moto_percentiles, role_arn, seed_moto

# "When seen" bookkeeping moves on every run by design; the data must not.
SEEN_COLUMNS = {"functions": ("last_seen", "inventory_at"), "watermarks": ("updated_at",)}


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


def _schedule_once(db_path: Path, endpoint: str) -> subprocess.CompletedProcess[str]:
    roles = [arg for account in ACCOUNTS for arg in ("--role-arn", role_arn(account))]
    args = [
        *("--db", str(db_path), "schedule", "--once", "--job", "collect"),
        *("--endpoint-url", endpoint, "--logs-mode", "filter", "--no-default-account"),
        *("--region", "us-east-1", "--region", "eu-west-1", *roles),
    ]
    return subprocess.run(
        [sys.executable, "-m", "lambdascope.cli", *args],
        env=dict(os.environ, AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo"),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _dump(db_path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(db_path)
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name NOT IN ('collection_runs', '_sqlite_migrations')"
        )
    ]
    dump = {}
    for table in tables:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        kept = [c for c in columns if c not in SEEN_COLUMNS.get(table, ())]
        dump[table] = sorted(conn.execute(f"SELECT {', '.join(kept)} FROM {table}"), key=repr)
    conn.close()
    return dump


def test_schedule_once_fills_the_store_and_a_second_run_changes_nothing(
    tmp_path: Path, endpoint: str
) -> None:
    db_path = tmp_path / "store.db"
    first = _schedule_once(db_path, endpoint)
    # moto does not implement a few inventory calls (GetAccountSettings, ...): those parts
    # are recorded as failed, the job says so in one line, and everything else is stored.
    assert "collect: failed: some parts failed (collect exit status 2)" in first.stderr
    assert "Traceback" not in first.stderr
    before = _dump(db_path)
    assert len(before["functions"]) == 8
    assert before["hourly_metrics"] and before["invocations"] and before["watermarks"]

    second = _schedule_once(db_path, endpoint)
    assert second.returncode == first.returncode
    assert _dump(db_path) == before

    # both runs are on the Collection page: one metrics run per account x region each
    conn = sqlite3.connect(db_path)
    metrics_runs = conn.execute(
        "SELECT status, COUNT(*) FROM collection_runs WHERE source = 'metrics' GROUP BY status"
    ).fetchall()
    assert metrics_runs == [("ok", 2 * 4)]
    # the second run resumed from the watermarks instead of re-reading the default window
    starts = conn.execute(
        "SELECT MIN(window_start), MAX(window_start) FROM collection_runs WHERE source = 'metrics'"
    ).fetchone()
    assert starts[1] - starts[0] > 86400
