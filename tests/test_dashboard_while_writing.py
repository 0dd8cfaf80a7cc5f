"""The dashboard keeps answering while a writer commits to the same store (WAL, read-only
connection): no "database is locked", no error page, fresh data once the writer is done."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from dashboards.app import create_app
from lambdascope.db import open_db
from lambdascope.synthetic import generate_store

END = 1_767_225_600  # 2026-01-01T00:00:00Z
H = 3600

# Upserts hourly facts (histograms {"81": 1} and {"245": 1} as lambdascope.histcodec stores
# them) in many small transactions and refreshes the rollups after each,
# like an ingest or a collection does, for about three seconds.
WRITER = """
import sys, time
from lambdascope import rollup
from lambdascope.db import open_db
db = open_db(sys.argv[1])
fids = [r[0] for r in db.conn.execute("SELECT id FROM functions ORDER BY id")]
deadline = time.monotonic() + 3.0
n = 0
while time.monotonic() < deadline:
    with db.conn:
        for fid in fids:
            db.conn.execute(
                "INSERT INTO hourly_facts (function_id, hour, memory_mb, source, invocations,"
                " duration_ms_sum, duration_hist, max_memory_used_hist)"
                " VALUES (?, ?, 128, 'local', 1, 5.0, x'01a20101', x'01ea0301')"
                " ON CONFLICT (function_id, hour, memory_mb, source)"
                " DO UPDATE SET invocations = invocations + 1",
                (fid, int(sys.argv[2]) - 3600),
            )
    rollup.refresh(db)
    n += 1
print(n)
"""


def _render(client: object, path: str) -> str:
    payload = {
        "output": ".._pages_content.children..._pages_store.data..",
        "outputs": [
            {"id": "_pages_content", "property": "children"},
            {"id": "_pages_store", "property": "data"},
        ],
        "inputs": [
            {"id": "_pages_location", "property": "pathname", "value": path},
            {"id": "_pages_location", "property": "search", "value": "?range=24h"},
        ],
        "changedPropIds": ["_pages_location.pathname"],
        "state": [],
    }
    response = client.post("/_dash-update-component", json=payload)  # type: ignore[attr-defined]
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return str(response.get_data(as_text=True))


def test_pages_render_while_a_writer_commits(db_path: Path) -> None:
    db = open_db(db_path)
    generate_store(db, functions=15, days=2, seed=4, end=END)
    db.conn.close()
    client = create_app(db_path, clock=lambda: END + 600).server.test_client()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db_path), str(END)],
        stdout=subprocess.PIPE,
        text=True,
    )
    renders = 0
    try:
        while writer.poll() is None:
            for path in ("/", "/functions", "/right-sizing", "/errors"):
                body = _render(client, path)
                assert "locked" not in body.lower()
                renders += 1
            time.sleep(0.05)
    finally:
        out, _ = writer.communicate(timeout=60)
    assert writer.returncode == 0
    assert int(out) >= 3 and renders >= 4  # both sides really ran at the same time
    # after the writer: every write reached the rollups the dashboard reads
    extra = int(out) * 15
    overview = json.loads(_render(client, "/"))
    assert overview["response"]
    reader = open_db(db_path, readonly=True)
    total = reader.conn.execute(
        "SELECT sum(log_invocations) FROM merged_hourly WHERE hour = ?", (END - H,)
    ).fetchone()[0]
    assert total >= extra
