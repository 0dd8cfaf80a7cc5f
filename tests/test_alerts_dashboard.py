"""The /alerts page and the deploy markers on the function page, on real stores."""

from __future__ import annotations

import json
import random
from pathlib import Path

from dashboards.alert_figures import REGRESSION_COLOUR, add_deploy_markers
from dashboards.app import create_app
from dashboards.figures import latency_over_time
from lambdascope.alerts import history, run_check
from lambdascope.alerts.config import parse_config
from lambdascope.alerts.history import DeployMarker
from lambdascope.db import open_db
from tests.alerts_store import HOUR, add_function, add_hour, lognormal
from tests.notify_receivers import http_receiver
from tests.test_dashboard_data import _render

NOW = 1796397600 + 20 * 60
H = NOW - NOW % HOUR
QUIET = {
    "rules": {"newly_stale": {"enabled": False}, "newly_under_provisioned": {"enabled": False}}
}


def test_alert_history_page_with_filters_and_delivery_state(db_path: Path) -> None:
    db = open_db(db_path)
    checkout = add_function(db, "checkout")
    search = add_function(db, "search")
    add_hour(db, checkout, H, durations=[10.0] * 40, out_of_memory=3)
    add_hour(db, search, H, durations=[10.0] * 100, errors=30)
    with http_receiver() as hook:
        hook.status = 500
        run_check(db, parse_config(QUIET), notify=[hook.url()], now=NOW)
    rows = history.alert_history(db, NOW - 86400)
    assert sorted((r["rule"], r["function_name"]) for r in rows) == [
        ("error_rate", "search"),
        ("oom", "checkout"),
    ]
    assert all(r["deliveries"] == 1 and r["delivered"] == 0 for r in rows)
    assert "error=500" in rows[0]["delivery_errors"]
    assert history.alert_counts(db, NOW) == {"open": 2, "last_24h": 2, "failing": 2}
    assert [r["function_name"] for r in history.alert_history(db, 0, rule="oom")] == ["checkout"]
    assert history.alert_history(db, 0, status="resolved") == []
    assert [r["function_name"] for r in history.alert_history(db, 0, name_contains="SEA")] == [
        "search"
    ]

    client = create_app(db_path, clock=lambda: NOW + 60).server.test_client()
    page = _render(client, "/alerts")
    assert "alerts-grid" in page
    assert "Out of memory" in page and "3 out-of-memory errors since 14:00Z" in page
    assert "0/1 delivered; failing: json://127.0.0.1" in page
    assert "/functions/checkout?account=123456789012&region=us-east-1" in page
    only_oom = _render(client, "/alerts", "?rule=oom")
    assert "checkout" in only_oom and "search" not in only_oom
    assert "alerts-empty" in _render(client, "/alerts", "?status=resolved")
    assert "alerts-empty" in _render(client, "/alerts", "?function=nothing-like-this")


def test_empty_store_shows_how_alerts_appear(db_path: Path) -> None:
    client = create_app(db_path, clock=lambda: NOW).server.test_client()
    page = _render(client, "/alerts")
    assert "alerts-empty" in page and "lambdascope alerts check" in page


def test_function_page_marks_deploys_and_the_regression_found(db_path: Path) -> None:
    db = open_db(db_path)
    rng = random.Random(11)
    deploy_at = H - 5 * HOUR + 600
    fid = add_function(db, "slower", last_modified=deploy_at)
    for hour in range(H - 8 * 24 * HOUR, H + HOUR, HOUR):
        factor = 1.3 if hour > deploy_at else 1.0
        add_hour(db, fid, hour, durations=lognormal(rng, 100, 80.0 * factor, 0.25))
    result = run_check(db, parse_config(QUIET), now=NOW)
    # +30 % after the deploy: also slower than the same hours last week
    assert sorted(a["rule"] for a in result.new) == ["deploy_regression", "p95_regression"]
    markers = history.deploy_markers(db, fid, H - 24 * HOUR, NOW)
    assert [(m.at, m.detail) for m in markers] == [(deploy_at, "LastModified")]
    assert markers[0].regressions and markers[0].regressions[0].startswith("p95 duration")

    client = create_app(db_path, clock=lambda: NOW).server.test_client()
    page = _render(client, "/functions/slower")
    assert "Deploy</b> 2026-12-04 10:10 UTC<br>LastModified" in page
    assert "<b>Regression:</b> p95 duration" in page


def test_deploy_markers_figure() -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "time": pd.to_datetime([H - HOUR, H], unit="s", utc=True),
            "p50": [10.0, 11.0],
            "p95": [20.0, 30.0],
            "p99": [25.0, 35.0],
            "duration_ms_max": [30.0, 40.0],
        }
    )
    plain = latency_over_time(frame)
    assert add_deploy_markers(plain, []) is plain
    fig = add_deploy_markers(
        latency_over_time(frame),
        [
            DeployMarker(H - 1800, "version 3 published", ("p95 duration 20 -> 30 ms",)),
            DeployMarker(H - 600, "memory 512 MB -> 1024 MB", ()),
        ],
    )
    doc = json.loads(fig.to_json())
    lines = [s for s in doc["layout"]["shapes"] if s["type"] == "line"]
    assert [s["line"]["color"] for s in lines] == [REGRESSION_COLOUR, "#6c757d"]
    deploys = doc["data"][-1]
    assert deploys["name"] == "Deploys" and deploys["yaxis"] == "y3"
    assert "version 3 published" in deploys["hovertext"][0]
    assert "Regression:" in deploys["hovertext"][0] and "Regression" not in deploys["hovertext"][1]
