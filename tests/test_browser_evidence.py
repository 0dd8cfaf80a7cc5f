"""The evidence blocks in a real headless Chromium: the function page shows the Power
Tuning run, Compute Optimizer's answer, Lambda Insights and provisioned concurrency; the
right-sizing grid has Compute Optimizer's size next to lambdascope's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dash.testing.wait import until

from collectors.demo_evidence import seed_evidence, seed_insights
from dashboards.app import create_app
from lambdascope.db import open_db
from lambdascope.synthetic import DEFAULT_END, generate_store

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def evidence_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    path = tmp_path_factory.mktemp("evidence") / "fleet.db"
    db = open_db(path)
    generate_store(db, functions=24, days=14, seed=7)
    said: list[str] = []
    seed_evidence(db, now_s=DEFAULT_END, say=said.append)
    seed_insights(db, now_s=DEFAULT_END, say=said.append)
    db.conn.close()
    return path, said


def _names(said: list[str]) -> tuple[str, str]:
    # "evidence: Power Tuning run for A, Compute Optimizer answers for N functions,
    #  provisioned concurrency on B:live"
    line = said[0]
    tuned = line.split("Power Tuning run for ")[1].split(",")[0]
    provisioned = line.split("provisioned concurrency on ")[1].split(":")[0]
    return tuned, provisioned


def _text(dash_duo: Any, selector: str) -> str:
    """Text of an element read in the page (no stale element while the page re-renders)."""
    value = dash_duo.driver.execute_script(
        f"var e = document.querySelector('{selector}'); return e && e.textContent;"
    )
    return "" if value is None else str(value)


def test_function_pages_show_each_kind_of_evidence(
    dash_duo: Any, evidence_db: tuple[Path, list[str]]
) -> None:
    path, said = evidence_db
    tuned, provisioned = _names(said)
    dash_duo.start_server(create_app(path, clock=lambda: DEFAULT_END - 1))
    dash_duo.wait_for_page(f"{dash_duo.server_url}/functions/{tuned}")
    dash_duo.wait_for_element("#function-power-tuning-table", timeout=30)
    until(lambda: "Measured on" in _text(dash_duo, "#function-power-tuning-measured"), 10)
    rows = dash_duo.driver.execute_script(
        "return document.querySelectorAll('#function-power-tuning-table tbody tr').length;"
    )
    assert rows >= 5
    dash_duo.wait_for_page(f"{dash_duo.server_url}/functions/{provisioned}")
    dash_duo.wait_for_element("#function-provisioned-table", timeout=30)
    until(lambda: "(lower)" in _text(dash_duo, "#function-provisioned-table"), 10)
    assert "live" in _text(dash_duo, "#function-provisioned-table")
    assert _text(dash_duo, "#function-compute-optimizer").startswith("Optimized")
    assert dash_duo.get_logs() == []


def test_function_page_shows_lambda_insights(
    dash_duo: Any, evidence_db: tuple[Path, list[str]]
) -> None:
    path, said = evidence_db
    # "Lambda Insights: N performance events for A, B; LambdaInsights metrics for C"
    line = said[1]
    with_events = line.split("performance events for ")[1].split(",")[0]
    with_metrics = line.split("LambdaInsights metrics for ")[1]
    dash_duo.start_server(create_app(path, clock=lambda: DEFAULT_END - 1))
    dash_duo.wait_for_page(f"{dash_duo.server_url}/functions/{with_events}")
    dash_duo.wait_for_element("#function-insights-table", timeout=30)
    until(lambda: "performance events" in _text(dash_duo, "#function-insights-source"), 10)
    assert "Busy vCPUs" in _text(dash_duo, "#function-insights-table")
    assert "The recommendation uses it." in _text(dash_duo, "#function-insights-projection")
    dash_duo.wait_for_page(f"{dash_duo.server_url}/functions/{with_metrics}")
    until(lambda: "LambdaInsights metrics" in _text(dash_duo, "#function-insights-source"), 30)
    assert "per invocation" in _text(dash_duo, "#function-insights-table")  # network
    assert dash_duo.get_logs() == []


def test_rightsizing_grid_has_compute_optimizer_column(
    dash_duo: Any, evidence_db: tuple[Path, list[str]]
) -> None:
    path, _ = evidence_db
    dash_duo.start_server(create_app(path, clock=lambda: DEFAULT_END - 1))
    dash_duo.wait_for_page(f"{dash_duo.server_url}/right-sizing")
    header = '#rightsizing-grid .ag-header-cell[col-id="compute_optimizer_memory_mb"]'
    dash_duo.wait_for_element(header, timeout=30)
    cells = dash_duo.find_elements('#rightsizing-grid [col-id="compute_optimizer_memory_mb"]')
    assert any("MB" in c.text for c in cells[1:])
    assert dash_duo.get_logs() == []
