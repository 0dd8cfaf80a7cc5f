"""The dashboard in a real headless Chromium (dash_duo), over one generated store.

Per page: it renders with data, the browser console stays clean, a filter change (region,
runtime, architecture or time range, through the filter bar) updates a figure or grid,
a grid row opens the function page, and an empty store shows the empty state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from dash.testing.wait import until
from selenium.common.exceptions import StaleElementReferenceException

from dashboards.app import create_app
from lambdascope.db import open_db
from lambdascope.synthetic import DEFAULT_END, generate_store

NOW = DEFAULT_END - 1  # the generated fleet's data ends at DEFAULT_END
FUNCTIONS = 40

pytestmark = pytest.mark.browser
T = TypeVar("T")


@pytest.fixture(scope="module")
def fleet_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fleet") / "fleet.db"
    generate_store(open_db(path), functions=FUNCTIONS, days=14, seed=7)
    return path


def _start(dash_duo: Any, db_path: Path, path: str = "/") -> None:
    dash_duo.start_server(create_app(db_path, clock=lambda: NOW))
    if path != "/":
        dash_duo.wait_for_page(f"{dash_duo.server_url}{path}")


def _filter(name: str) -> str:
    """CSS selector of a filter-bar control (Dash stringifies dict ids with sorted keys)."""
    return f'[id=\'{{"name":"{name}","type":"filter"}}\']'


def _choose(dash_duo: Any, name: str, label: str) -> None:
    _retry_stale(lambda: dash_duo.select_dcc_dropdown(_filter(name), value=label))
    until(lambda: name in dash_duo.driver.current_url, timeout=10)


def _retry_stale(action: Callable[[], T]) -> T:
    """Run a UI action again when a re-render replaced the element under it."""
    for _ in range(5):
        try:
            return action()
        except StaleElementReferenceException:
            continue
    return action()


def _js(dash_duo: Any, script: str) -> Any:
    return dash_duo.driver.execute_script(script)


def _trace(dash_duo: Any, graph_id: str, what: str = "total", trace: int = 0) -> float | None:
    """Sum of y (``total``), number of points (``points``) of one trace, or None while the
    graph is not drawn."""
    reduce = (
        "d.y.reduce(function (a, b) { return a + (b || 0); }, 0)"
        if what == "total"
        else "d.x.length"
    )
    value = _js(
        dash_duo,
        f"var g = document.querySelector('#{graph_id} .js-plotly-plot');"
        f"if (!g || !g._fullData || !g._fullData[{trace}]) return null;"
        f"var d = g._fullData[{trace}]; return {reduce};",
    )
    return None if value is None else float(value)


def _all_points(dash_duo: Any, graph_id: str) -> int | None:
    value = _js(
        dash_duo,
        f"var g = document.querySelector('#{graph_id} .js-plotly-plot');"
        "if (!g || !g._fullData) return null;"
        "return g._fullData.filter(function (t) { return t.mode === 'markers'; })"
        ".reduce(function (a, t) { return a + t.x.length; }, 0);",
    )
    return None if value is None else int(value)


def _open_first_row(dash_duo: Any, grid_id: str) -> str:
    """Click the first row of a grid; returns the function name it showed."""
    cell = f'#{grid_id} .ag-row[row-index="0"] [col-id="function_name"]'
    dash_duo.wait_for_element(cell, timeout=20)

    def click() -> str:
        element = dash_duo.find_element(cell)
        text = str(element.text)
        element.click()
        return text

    name = _retry_stale(click)
    dash_duo.wait_for_text_to_equal(".page-title", name, timeout=20)
    assert f"/functions/{name}?" in dash_duo.driver.current_url
    return name


def _kpi(dash_duo: Any, ident: str) -> str:
    return str(dash_duo.find_element(f"#{ident} .kpi-value").text)


def _text(dash_duo: Any, selector: str) -> str | None:
    """Text of an element read in the page (no stale element while the page re-renders)."""
    value = _js(
        dash_duo, f"var e = document.querySelector('{selector}'); return e && e.textContent;"
    )
    return None if value is None else str(value)


def test_overview_region_and_range_filters_update_the_figures(
    dash_duo: Any, fleet_db: Path
) -> None:
    _start(dash_duo, fleet_db)
    dash_duo.wait_for_text_to_equal("#overview-kpi-functions .kpi-value", str(FUNCTIONS), 20)
    until(lambda: _trace(dash_duo, "overview-counts-graph") is not None, timeout=20)
    total = _trace(dash_duo, "overview-counts-graph")
    points = _trace(dash_duo, "overview-counts-graph", "points")
    assert total and points and points >= 24 * 7  # hourly over the default 7 days

    _choose(dash_duo, "region", "eu-west-1")
    until(lambda: (_trace(dash_duo, "overview-counts-graph") or total) < total, timeout=20)
    assert "region=eu-west-1" in dash_duo.driver.current_url
    assert int(_kpi(dash_duo, "overview-kpi-functions")) < FUNCTIONS

    _choose(dash_duo, "range", "Last 24 h")
    until(lambda: (_trace(dash_duo, "overview-counts-graph", "points") or 99) <= 24, 20)
    assert "range=24h" in dash_duo.driver.current_url
    assert "region=eu-west-1" in dash_duo.driver.current_url  # filters compose
    assert dash_duo.get_logs() == []


def test_functions_runtime_filter_and_row_click_to_the_function_page(
    dash_duo: Any, fleet_db: Path
) -> None:
    _start(dash_duo, fleet_db, "/functions")
    dash_duo.wait_for_element("#functions-grid .ag-row", timeout=20)
    dash_duo.wait_for_contains_text("#functions-page", f"{FUNCTIONS} functions", timeout=20)
    _choose(dash_duo, "runtime", "python3.12")

    def narrowed() -> bool:
        text = _text(dash_duo, "#functions-page") or ""
        return "functions · click" in text and f"{FUNCTIONS} functions" not in text

    until(narrowed, 20)
    runtimes = {
        cell.text for cell in dash_duo.find_elements('#functions-grid .ag-row [col-id="runtime"]')
    }
    assert runtimes == {"python3.12"}

    _open_first_row(dash_duo, "functions-grid")
    for graph_id in (
        "function-latency-graph",
        "function-failures-graph",
        "function-memory-graph",
        "function-memory-histogram",
        "function-coldstart-graph",
        "function-cost-graph",
    ):
        dash_duo.wait_for_element(f"#{graph_id} .js-plotly-plot", timeout=20)
    assert "lambdaARN" in dash_duo.find_element("#function-power-tuning").text
    until(lambda: _trace(dash_duo, "function-latency-graph", "points") is not None, 20)
    before = _trace(dash_duo, "function-latency-graph", "points")
    assert before and before > 24
    _choose(dash_duo, "range", "Last 24 h")
    until(lambda: (_trace(dash_duo, "function-latency-graph", "points") or 99) <= 24, 20)
    assert dash_duo.get_logs() == []


def test_rightsizing_arch_filter_and_row_click(dash_duo: Any, fleet_db: Path) -> None:
    _start(dash_duo, fleet_db, "/right-sizing")
    dash_duo.wait_for_element("#rightsizing-grid .ag-row", timeout=20)
    assert dash_duo.find_element("#rightsizing-download-html").text == "Memory report (HTML)"
    until(lambda: _all_points(dash_duo, "rightsizing-scatter"), timeout=20)
    points = _all_points(dash_duo, "rightsizing-scatter")
    assert points
    _choose(dash_duo, "arch", "arm64")
    until(lambda: (_all_points(dash_duo, "rightsizing-scatter") or points) < points, 20)
    _open_first_row(dash_duo, "rightsizing-grid")
    assert dash_duo.get_logs() == []


def test_stale_runtime_filter_and_row_click(dash_duo: Any, fleet_db: Path) -> None:
    _start(dash_duo, fleet_db, "/stale")
    dash_duo.wait_for_element("#stale-grid .ag-row", timeout=20)
    hint = "#stale-kpi-stale .kpi-hint"
    dash_duo.wait_for_text_to_equal(hint, f"of {FUNCTIONS} functions", timeout=20)
    _choose(dash_duo, "runtime", "python3.12")
    until(lambda: _text(dash_duo, hint) not in (None, f"of {FUNCTIONS} functions"), 20)
    _open_first_row(dash_duo, "stale-grid")
    assert dash_duo.get_logs() == []


def test_errors_range_filter_concurrency_and_row_click(dash_duo: Any, fleet_db: Path) -> None:
    _start(dash_duo, fleet_db, "/errors")
    until(lambda: _trace(dash_duo, "errors-breakdown-graph", "points"), timeout=20)
    assert (_trace(dash_duo, "errors-breakdown-graph", "points") or 0) > 24
    until(lambda: _trace(dash_duo, "errors-concurrency-graph", "points"), timeout=20)
    # The generated fleet has no stream or async sources: the page says so.
    dash_duo.wait_for_contains_text("#errors-iterator-graph", "Not collected", timeout=20)
    _choose(dash_duo, "range", "Last 24 h")
    until(lambda: (_trace(dash_duo, "errors-breakdown-graph", "points") or 99) <= 24, 20)
    _open_first_row(dash_duo, "errors-grid")
    assert dash_duo.get_logs() == []


def test_collection_shows_runs_and_freshness(dash_duo: Any, fleet_db: Path) -> None:
    _start(dash_duo, fleet_db, "/collection")
    dash_duo.wait_for_element("#collection-runs .ag-row", timeout=20)
    dash_duo.wait_for_contains_text("#collection-freshness", "Local logs", timeout=20)
    assert dash_duo.get_logs() == []


def test_empty_store_shows_how_to_load_data_on_every_page(dash_duo: Any, db_path: Path) -> None:
    _start(dash_duo, db_path)
    dash_duo.wait_for_contains_text("#overview-empty", "lambdascope ingest", timeout=20)
    for path, page in (
        ("/functions", "functions"),
        ("/functions/anything", "function"),
        ("/right-sizing", "rightsizing"),
        ("/stale", "stale"),
        ("/errors", "errors"),
        ("/collection", "collection"),
    ):
        dash_duo.wait_for_page(f"{dash_duo.server_url}{path}")
        dash_duo.wait_for_element(f"#{page}-empty", timeout=20)
    assert dash_duo.get_logs() == []
