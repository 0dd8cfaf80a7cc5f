"""``lambdascope demo --no-serve`` through the real collectors and ingest, then the analyses."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from collectors.demo_fleet import build_fleet
from lambdascope.cli import cli
from lambdascope.db import open_db

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("collectors.local") is None
    or importlib.util.find_spec("collectors.aws") is None,
    reason="the demo needs the local ingest and the AWS collectors",
)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    result = CliRunner().invoke(cli, ["demo", "--no-serve", "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert f"Demo store ready: {path}" in result.output
    return path


def test_demo_store_holds_every_function_of_the_fleet(demo_db: Path) -> None:
    db = open_db(demo_db)
    rows = set(db.conn.execute("SELECT account_id, region, function_name FROM functions"))
    assert rows >= {(f.account_id, f.region, f.name) for f in build_fleet()}
    sources = {r[0] for r in db.conn.execute("SELECT DISTINCT source FROM collection_runs")}
    assert len(sources) >= 2  # the AWS collectors recorded their runs


def test_rightsizing_finds_the_planted_over_and_under_provisioned(demo_db: Path) -> None:
    from lambdascope.rightsizing import recommend_all

    db = open_db(demo_db)
    now = int(time.time())
    recs = recommend_all(db, now - 14 * 86400, now)
    fleet = build_fleet()
    finding = {
        (r.account_id, r.region, r.function_name): r.finding
        for r in recs
        for f in fleet
        if (f.account_id, f.region, f.name) == (r.account_id, r.region, r.function_name)
        and r.memory_mb == f.memory_mb
    }
    for f in fleet:
        key = (f.account_id, f.region, f.name)
        if f.kind == "over":
            assert finding[key] == "over-provisioned", f.name
        if f.kind == "under_oom":
            assert finding[key] == "under-provisioned", f.name


def test_demo_store_has_each_kind_of_evidence(demo_db: Path) -> None:
    db = open_db(demo_db)
    for table in (
        "power_tuning_runs",
        "compute_optimizer_recommendations",
        "provisioned_concurrency_configs",
        "provisioned_concurrency_hourly",
        "capacity_provider_hourly",
    ):
        assert db.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] > 0, table
    result = CliRunner().invoke(
        cli, ["--db", str(demo_db), "report", "provisioned-concurrency", "--format", "md"]
    )
    assert result.exit_code == 0 and "| live |" in result.stdout


def test_demo_functions_with_lambda_insights_use_it_in_the_memory_report(demo_db: Path) -> None:
    db = open_db(demo_db)
    with_events = {
        name
        for (name,) in db.conn.execute(
            "SELECT DISTINCT f.function_name FROM insights_invocations i"
            " JOIN functions f ON f.id = i.function_id"
        )
    }
    with_metrics = {
        name
        for (name,) in db.conn.execute(
            "SELECT DISTINCT f.function_name FROM insights_metrics_hourly h"
            " JOIN functions f ON f.id = h.function_id"
        )
    }
    assert len(with_events) == 2 and len(with_metrics) == 1
    fleet = {f.name: f for f in build_fleet()}
    # the events were stored under each function's own account and region
    for name in with_events:
        ((account, region),) = db.conn.execute(
            "SELECT DISTINCT f.account_id, f.region FROM insights_invocations i"
            " JOIN functions f ON f.id = i.function_id WHERE f.function_name = ?",
            (name,),
        )
        assert (account, region) == (fleet[name].account_id, fleet[name].region)
    result = CliRunner().invoke(cli, ["--db", str(demo_db), "report", "memory", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["function_name"]: r for r in json.loads(result.stdout)}
    for name in with_events | with_metrics:
        assert rows[name]["duration_evidence"] == "lambda-insights", name
        reason = next(r for r in rows[name]["reasons"] if r.startswith("Lambda Insights"))
        source = "events" if name in with_events else "invocations in LambdaInsights metrics"
        assert f" {source})" in reason, reason


def test_stale_report_finds_the_planted_stale_functions(demo_db: Path) -> None:
    from lambdascope.staleness import find_stale

    db = open_db(demo_db)
    report = find_stale(db, int(time.time()))
    flagged = {(s.account_id, s.region, s.function_name) for s in report.functions_to_review}
    fleet = build_fleet()
    assert flagged == {(f.account_id, f.region, f.name) for f in fleet if f.kind == "stale"}
    assert report.versions_to_delete


def test_demo_dashboard_opens_in_a_browser(dash_duo: Any, demo_db: Path) -> None:
    from dashboards.app import create_app

    dash_duo.start_server(create_app(demo_db))
    dash_duo.wait_for_text_to_equal("#overview-kpi-functions .kpi-value", "60", timeout=30)
    dash_duo.wait_for_element("#overview-counts-graph .js-plotly-plot")
    assert dash_duo.get_logs() == []
