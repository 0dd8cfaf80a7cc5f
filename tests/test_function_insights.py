"""The function page's Lambda Insights block, rendered without a browser: where the
figures came from, the CPU share and busy vCPUs, memory, init and network, and the
projected duration with and without Insights, as the memory report computes them."""

from __future__ import annotations

import json
from pathlib import Path

import dash
import pytest

from dashboards import format as fmt
from dashboards.app import create_app
from lambdascope import rightsizing
from lambdascope.db import open_db
from lambdascope.evidence import insights
from lambdascope.pricing import cpu_share
from tests.test_cli_report import END
from tests.test_insights import store_with_events

START = END - 14 * 86400


def function_page(db_path: Path, name: str = "orders-api") -> str:
    """The function page's layout for the last 14 days, as text."""
    app = create_app(db_path, clock=lambda: float(END - 1))
    assert app.server.test_client().get("/").status_code == 200  # pages register
    layout = dash.page_registry["dashboards.pages.function_detail"]["layout"]
    with app.server.test_request_context("/"):
        return str(layout(name=name, range="14d"))


def import_events(db_path: Path, lines: list[str]) -> None:
    db = open_db(db_path)
    counts = insights.ReadCounts()
    data = "\n".join(lines).encode()
    insights.store_events(
        db, insights.read_events([data], counts), account_id="111111111111", region="us-east-1"
    )
    db.conn.close()


def test_no_insights_data_shows_no_insights_block(db_path: Path) -> None:
    store_with_events(db_path, io_ms=80.0, cpu_ms=10.0)
    page = function_page(db_path)
    assert "Power Tuning" in page  # the evidence section is there
    assert "function-insights" not in page and "Lambda Insights" not in page


def test_performance_events_show_cpu_share_memory_and_the_narrower_projection(
    db_path: Path,
) -> None:
    import_events(db_path, store_with_events(db_path, io_ms=80.0, cpu_ms=10.0))
    page = function_page(db_path)
    assert "function-insights" in page
    assert "From performance events: 400 invocations." in page
    db = open_db(db_path)
    (rec,) = rightsizing.recommend_all(db, START, END)
    profile = insights.cpu_profiles(db, START, END)[
        ("111111111111", "us-east-1", "orders-api", 512)
    ]
    assert rec.duration_evidence == "lambda-insights"
    assert rec.recommended_memory_mb is not None and rec.recommended_memory_mb != 512
    # the figures are the report's: its CPU profile and its projection
    assert f"{profile.wall_share:.0%} at 512 MB" in page
    assert f"{insights.busy_vcpus(profile):.2f} on average" in page
    assert rec.projected_duration_ms is not None and rec.current_duration_ms is not None
    low, expected, high = insights.project(
        rec.current_duration_ms, 512, rec.recommended_memory_mb, profile
    )
    assert (low, expected, high) == pytest.approx(
        (
            rec.projected_duration_ms.lower,
            rec.projected_duration_ms.expected,
            rec.projected_duration_ms.upper,
        )
    )
    without = rightsizing.project_duration(
        rec.current_duration_ms, 512, rec.recommended_memory_mb, None
    )
    assert (
        f"{fmt.duration_ms(low)} to {fmt.duration_ms(high)} (expected"
        f" {fmt.duration_ms(expected)}) with Lambda Insights;"
        f" {fmt.duration_ms(without.lower)} to {fmt.duration_ms(without.upper)} without,"
    ) in page
    assert "x narrower. The recommendation uses it." in page
    # events carry used memory (max 200 MB of 512 MB in the sample events)
    assert "200 MB used at most of 512 MB (39 % utilisation at most)" in page
    assert "Network" not in page  # performance events stored keep no network figures


def test_lambdainsights_metrics_alone_show_hours_init_and_network(db_path: Path) -> None:
    store_with_events(db_path, io_ms=80.0, cpu_ms=10.0)
    duration = 80.0 + 10.0 / cpu_share(512)
    db = open_db(db_path)
    (fid,) = db.conn.execute(
        "SELECT id FROM functions WHERE function_name = 'orders-api'"
    ).fetchone()
    with db.conn:
        for k in range(1, 41):
            db.conn.execute(
                "INSERT INTO insights_metrics_hourly (function_id, hour, invocations,"
                " cpu_total_ms_sum, total_memory_min_mb, total_memory_max_mb,"
                " used_memory_max_mb, memory_utilization_max_pct, init_duration_max_ms,"
                " init_count, total_network_bytes_sum, duration_ms_sum, duration_count)"
                " VALUES (?, ?, 20, ?, 512, 512, 180, 35.2, ?, 1, 400000, ?, 20)",
                (fid, END - 3600 * k, 20 * 10.0, 300.0 + k, 20 * duration),
            )
    db.conn.close()
    page = function_page(db_path)
    assert "From LambdaInsights metrics: 40 hours (800 invocations)." in page
    assert "180 MB used at most of 512 MB (35 % utilisation at most)" in page
    assert "340 ms at most over 40 cold starts" in page
    assert "Network" in page and "per invocation" in page
    assert "The recommendation uses it." in page


def test_a_power_tuning_run_takes_precedence_and_the_page_says_so(db_path: Path) -> None:
    import_events(db_path, store_with_events(db_path, io_ms=80.0, cpu_ms=10.0))
    from lambdascope.evidence import power_tuning

    output = {
        "power": 256,
        "cost": 1e-7,
        "duration": 150.0,
        "stateMachine": {"executionCost": 0.0004, "lambdaCost": 1e-5, "visualization": ""},
        "stats": [
            {"value": size, "averagePrice": 1e-7, "averageDuration": 100.0 + 10_000 / size}
            for size in (256, 512, 1024)
        ],
    }
    db = open_db(db_path)
    run = power_tuning.parse_run(json.dumps(output))
    power_tuning.store_run(
        db, run, power_tuning.FunctionRef("orders-api", "111111111111", "us-east-1"), now=END - 7200
    )
    db.conn.close()
    page = function_page(db_path)
    assert "function-insights" in page
    assert "Not used: the recommendation projects from the Power Tuning run instead." in page


def test_logs_insights_hourly_sums_count_as_performance_events(db_path: Path) -> None:
    """Hours Logs Insights summed (the logs source in Insights mode) show on the page like
    imported events, and hours with imported events are not counted twice."""
    lines = store_with_events(db_path, io_ms=80.0, cpu_ms=10.0, n=40)
    import_events(db_path, lines)  # 40 events in the 40 hours before END
    duration = 80.0 + 10.0 / cpu_share(512)
    share = 10.0 / cpu_share(512) / duration
    db = open_db(db_path)
    (fid,) = db.conn.execute(
        "SELECT id FROM functions WHERE function_name = 'orders-api'"
    ).fetchone()
    with db.conn:
        for k in range(1, 46):  # hours 1-40 have events: only 41-45 add their 30 each
            db.conn.execute(
                "INSERT INTO insights_hourly (function_id, hour, memory_mb, invocations,"
                " duration_ms_sum, cpu_total_ms_sum, cpu_wall_share_sum, cpu_wall_share_sq_sum)"
                " VALUES (?, ?, 512, 30, ?, ?, ?, ?)",
                (fid, END - 3600 * k, 30 * duration, 30 * 10.0, 30 * share, 30 * share * share),
            )
    db.conn.close()
    page = function_page(db_path)
    assert "From performance events: 190 invocations." in page
