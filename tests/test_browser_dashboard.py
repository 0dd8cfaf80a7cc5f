"""The dashboard in a real headless Chromium (dash_duo), over a generated store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.keys import Keys

from dashboards.app import create_app
from lambdascope.db import open_db
from lambdascope.synthetic import DEFAULT_END, generate_store

NOW = DEFAULT_END - 1  # the generated fleet's data ends at DEFAULT_END

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")
T = TypeVar("T")


@pytest.fixture(scope="module")
def fleet_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fleet") / "fleet.db"
    generate_store(open_db(path), functions=40, days=14, seed=7)
    return path


def _start(dash_duo: Any, db_path: Path, path: str = "/") -> None:
    dash_duo.start_server(create_app(db_path, clock=lambda: NOW))
    if path != "/":
        dash_duo.wait_for_page(f"{dash_duo.server_url}{path}")


def _shot(dash_duo: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(SHOTS / f"{name}.png"))


def _retry_stale(action: Callable[[], T]) -> T:
    """Run a UI action again when the grid re-rendered the element under it."""
    for _ in range(5):
        try:
            return action()
        except StaleElementReferenceException:
            continue
    return action()


def _trace_total(dash_duo: Any, graph_id: str) -> float:
    return float(
        dash_duo.driver.execute_script(
            f"var g = document.querySelector('#{graph_id} .js-plotly-plot');"
            "return Array.from(g._fullData[0].y)"
            ".reduce(function (a, b) { return a + (b || 0); }, 0);"
        )
    )


def test_overview_renders_and_name_filter_updates_url_and_figure(
    dash_duo: Any, fleet_db: Path
) -> None:
    _start(dash_duo, fleet_db)
    dash_duo.wait_for_text_to_equal("#overview-kpi-functions .kpi-value", "40", timeout=20)
    dash_duo.wait_for_element("#overview-counts-graph .js-plotly-plot")
    before = _trace_total(dash_duo, "overview-counts-graph")
    _shot(dash_duo, "overview")
    _retry_stale(
        lambda: dash_duo.find_element('input[id*="\\"name\\":\\"q\\""]').send_keys(
            "payments", Keys.ENTER
        )
    )
    dash_duo.wait_for_text_to_equal("#overview-kpi-functions .kpi-value", "8", timeout=20)
    assert "q=payments" in dash_duo.driver.current_url
    after = _trace_total(dash_duo, "overview-counts-graph")
    assert 0 < after < before
    assert dash_duo.get_logs() == []


def test_grid_row_click_opens_function_page(dash_duo: Any, fleet_db: Path) -> None:
    _start(dash_duo, fleet_db, "/functions")
    dash_duo.wait_for_element("#functions-grid .ag-row", timeout=20)
    _shot(dash_duo, "functions")
    cell = '#functions-grid .ag-row[row-index="0"] [col-id="function_name"]'

    def click_first_row() -> str:
        element = dash_duo.find_element(cell)
        text = str(element.text)
        element.click()
        return text

    name = _retry_stale(click_first_row)
    dash_duo.wait_for_text_to_equal(".page-title", name, timeout=20)
    assert f"/functions/{name}?" in dash_duo.driver.current_url
    for graph_id in (
        "function-latency-graph",
        "function-memory-graph",
        "function-memory-histogram",
        "function-cost-graph",
    ):
        dash_duo.wait_for_element(f"#{graph_id} .js-plotly-plot")
    assert "lambdaARN" in dash_duo.find_element("#function-power-tuning").text
    _shot(dash_duo, "function")
    assert dash_duo.get_logs() == []


@pytest.mark.parametrize(
    ("path", "element", "shot"),
    [
        ("/right-sizing", "#rightsizing-grid .ag-row", "rightsizing"),
        ("/stale", "#stale-grid .ag-row", "stale"),
        ("/errors", "#errors-breakdown-graph .js-plotly-plot", "errors"),
        ("/collection", "#collection-runs .ag-row", "collection"),
    ],
)
def test_page_renders_with_data(
    dash_duo: Any, fleet_db: Path, path: str, element: str, shot: str
) -> None:
    _start(dash_duo, fleet_db, path)
    dash_duo.wait_for_element(element, timeout=20)
    _shot(dash_duo, shot)
    assert dash_duo.get_logs() == []


def test_empty_store_shows_how_to_load_data(dash_duo: Any, db_path: Path) -> None:
    _start(dash_duo, db_path)
    dash_duo.wait_for_element("#overview-empty", timeout=20)
    assert "lambdascope ingest" in dash_duo.find_element("#overview-empty").text
    dash_duo.wait_for_page(f"{dash_duo.server_url}/functions")
    dash_duo.wait_for_element("#functions-empty", timeout=20)
    assert dash_duo.get_logs() == []
