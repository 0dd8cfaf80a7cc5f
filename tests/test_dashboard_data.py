"""The dashboard's reads over a real SQLite store, and the small fleet the browser tests use."""

from __future__ import annotations

import json
import random
from pathlib import Path

from sqlite_utils import Database

from dashboards import data
from lambdascope import histogram
from lambdascope.db import function_id, open_db

NOW = 1_795_000_000 - 1_795_000_000 % 3600 + 1800  # a fixed "now", mid-hour, UTC
RUNTIMES = ["python3.12", "nodejs20.x", "java21", "python3.9"]


def make_fleet(db: Database, functions: int = 40, days: int = 14, seed: int = 7) -> None:
    """Insert a small, deterministic fleet: config, hourly facts and metrics, runs."""
    rng = random.Random(seed)
    end_hour = NOW - NOW % 3600
    with db.conn:
        for index in range(functions):
            account = "111111111111" if index % 3 else "222222222222"
            region = "us-east-1" if index % 2 else "eu-west-1"
            name = f"svc-{['orders', 'billing', 'auth', 'search', 'media'][index % 5]}-{index:03d}"
            memory_mb = rng.choice([128, 256, 512, 1024, 2048])
            arch = "arm64" if index % 4 == 0 else "x86_64"
            fid = function_id(db, name, account, region, seen_at=end_hour, architecture=arch)
            db.conn.execute(
                "UPDATE functions SET runtime = ?, memory_mb = ?, timeout_s = ?, "
                "code_size_bytes = ?, tags_json = ?, last_modified = ? WHERE id = ?",
                (
                    RUNTIMES[index % 4],
                    memory_mb,
                    rng.choice([3, 15, 60, 900]),
                    rng.randint(10_000, 50_000_000),
                    json.dumps({"team": ["a", "b"][index % 2]}),
                    end_hour - 86400 * rng.randint(1, 400),
                    fid,
                ),
            )
            if index % 10 == 9:
                continue  # an idle function: no invocations at all
            base_ms = rng.uniform(20, 900)
            used_fraction = rng.uniform(0.15, 0.95)
            rate = rng.randint(5, 400)
            for hour in range(end_hour - days * 86400, end_hour + 1, 3600):
                invocations = max(0, int(rng.gauss(rate, rate * 0.3)))
                if invocations == 0:
                    continue
                durations = [rng.lognormvariate(0, 0.4) * base_ms for _ in range(20)]
                scale = invocations / len(durations)
                dur_hist = {
                    k: max(1, round(c * scale)) for k, c in histogram.from_values(durations).items()
                }
                used = [
                    min(memory_mb, memory_mb * used_fraction * rng.uniform(0.8, 1.1))
                    for _ in range(10)
                ]
                mem_hist = {
                    k: max(1, round(c * invocations / 10))
                    for k, c in histogram.from_values(used).items()
                }
                errors = rng.choice([0, 0, 0, 1, 2]) if index % 7 else int(invocations * 0.05)
                cold = max(0, int(invocations * 0.02))
                total_ms = sum(durations) * scale
                db.conn.execute(
                    "INSERT INTO hourly_facts (function_id, hour, memory_mb, source, invocations,"
                    " errors, timeouts, out_of_memory, cold_starts, duration_ms_sum,"
                    " duration_ms_max, billed_duration_ms_sum, max_memory_used_mb_max,"
                    " init_duration_ms_sum, duration_hist, max_memory_used_hist)"
                    " VALUES (?, ?, ?, 'insights', ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        fid,
                        hour,
                        memory_mb,
                        invocations,
                        errors,
                        int(errors > 1),
                        cold,
                        total_ms,
                        max(durations),
                        total_ms + invocations,
                        int(max(used)),
                        cold * 300.0,
                        histogram.to_json(dur_hist),
                        histogram.to_json(mem_hist),
                    ),
                )
                throttles = rng.choice([0] * 9 + [rng.randint(1, 30)]) if index % 6 == 1 else 0
                db.conn.execute(
                    "INSERT INTO hourly_metrics (function_id, hour, invocations, errors,"
                    " throttles, concurrent_executions_max) VALUES (?, ?, ?, ?, ?, ?)",
                    (fid, hour, invocations, errors, throttles, rng.randint(1, 20)),
                )
        for region in ("us-east-1", "eu-west-1"):
            db.conn.execute(
                "INSERT INTO collection_runs (started_at, finished_at, account_id, region,"
                " source, status, items, api_calls, errors_json) VALUES (?, ?, ?, ?, ?, ?, ?,"
                " ?, ?)",
                (
                    NOW - 900,
                    NOW - 840,
                    "111111111111",
                    region,
                    "metrics",
                    "ok" if region == "us-east-1" else "partial",
                    120,
                    4,
                    "[]" if region == "us-east-1" else '["ListProvisionedConcurrencyConfigs: 404"]',
                ),
            )


def test_stats_totals_match_metrics(db_path: Path) -> None:
    db = open_db(db_path)
    make_fleet(db, functions=6, days=2)
    ro = open_db(db_path, readonly=True)
    filters = data.filters_from_query({"range": "24h"}, NOW)
    stats = data.function_stats(ro.conn, filters)
    expected = ro.conn.execute(
        "SELECT SUM(invocations) FROM hourly_metrics WHERE hour >= ? AND hour < ?",
        (filters.start, filters.end),
    ).fetchone()[0]
    assert len(stats) == 6
    assert stats["invocations"].sum() == expected
    assert (stats["duration_p95"].dropna() >= stats["duration_p50"].dropna()).all()


def test_local_facts_win_over_insights(db: Database, db_path: Path) -> None:
    fid = function_id(db, "fn", "", "")
    hour = NOW - NOW % 3600 - 3600
    with db.conn:
        for source, count in (("local", 3), ("insights", 50)):
            db.conn.execute(
                "INSERT INTO hourly_facts (function_id, hour, memory_mb, source, invocations)"
                " VALUES (?, ?, 128, ?, ?)",
                (fid, hour, source, count),
            )
    ro = open_db(db_path, readonly=True)
    stats = data.function_stats(ro.conn, data.filters_from_query({}, NOW))
    assert stats.loc[0, "invocations"] == 3


def test_filters_narrow_by_tag_and_name(db_path: Path) -> None:
    make_fleet(open_db(db_path), functions=10, days=1)
    ro = open_db(db_path, readonly=True)
    by_tag = data.function_stats(ro.conn, data.filters_from_query({"tag": "team=a"}, NOW))
    by_name = data.function_stats(ro.conn, data.filters_from_query({"q": "BILLING"}, NOW))
    assert len(by_tag) == 5
    assert set(by_name["function_name"]) == {"svc-billing-001", "svc-billing-006"}


def test_custom_range_and_bad_dates(db_path: Path) -> None:
    custom = data.filters_from_query(
        {"range": "custom", "from": "2026-11-01", "to": "2026-11-02"}, NOW
    )
    assert custom.end - custom.start == 2 * 86400
    bad = data.filters_from_query({"range": "custom", "from": "junk", "to": ""}, NOW)
    assert bad.end - bad.start == 7 * 86400


def _render(client: object, path: str) -> str:
    payload = {
        "output": ".._pages_content.children..._pages_store.data..",
        "outputs": [
            {"id": "_pages_content", "property": "children"},
            {"id": "_pages_store", "property": "data"},
        ],
        "inputs": [
            {"id": "_pages_location", "property": "pathname", "value": path},
            {"id": "_pages_location", "property": "search", "value": ""},
        ],
        "changedPropIds": ["_pages_location.pathname"],
        "state": [],
    }
    response = client.post("/_dash-update-component", json=payload)  # type: ignore[attr-defined]
    assert response.status_code == 200
    return str(response.get_data(as_text=True))


def test_rendered_pages_follow_writes_to_the_store(db_path: Path) -> None:
    from dashboards.app import create_app

    db = open_db(db_path)
    make_fleet(db, functions=3, days=1)
    client = create_app(db_path, clock=lambda: NOW).server.test_client()
    assert "svc-orders-003" not in _render(client, "/functions")
    assert _render(client, "/functions") == _render(client, "/functions")
    with db.conn:
        function_id(db, "svc-orders-003", "111111111111", "us-east-1")
    assert "svc-orders-003" in _render(client, "/functions")
