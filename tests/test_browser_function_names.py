"""Function names that need URL encoding (a space, '/', '?', '#', '%') in a real headless
Chromium: the grid's links open the right function page, and so does a typed URL.

Such names come from local logs ingested without --function (the folder's name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from dashboards.app import create_app
from dashboards.components import function_href
from lambdascope.db import open_db
from lambdascope.synthetic import DEFAULT_END, generate_store

pytestmark = pytest.mark.browser
NAMES = ("orders api", "team/etl", "what?now", "c#-50%off")


@pytest.fixture(scope="module")
def odd_names_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("names") / "names.db"
    db = open_db(path)
    generate_store(db, functions=len(NAMES), days=3, seed=3)
    ids = [row[0] for row in db.conn.execute("SELECT id FROM functions ORDER BY id")]
    for function_id, name in zip(ids, NAMES, strict=True):
        db.conn.execute("UPDATE functions SET function_name = ? WHERE id = ?", (name, function_id))
    db.conn.commit()
    db.conn.close()
    return path


def test_links_quote_the_name_as_one_path_segment() -> None:
    assert function_href("team/etl", "", "", {}) == "/functions/team%2Fetl"
    assert (
        function_href("what?now #1", "123456789012", "eu-west-1", {"range": "7d"})
        == "/functions/what%3Fnow%20%231?range=7d&account=123456789012&region=eu-west-1"
    )


def _click_row(dash_duo: Any, name: str) -> None:
    dash_duo.wait_for_element("#functions-grid .ag-row", timeout=20)
    clicked = dash_duo.driver.execute_script(
        "var cells = document.querySelectorAll("
        "  '#functions-grid .ag-row [col-id=\"function_name\"]');"
        "for (var i = 0; i < cells.length; i++) {"
        "  if (cells[i].textContent === arguments[0]) { cells[i].click(); return true; } }"
        "return false;",
        name,
    )
    assert clicked, f"no grid row shows {name!r}"


def test_grid_links_and_typed_urls_open_the_function_page(
    dash_duo: Any, odd_names_db: Path
) -> None:
    dash_duo.start_server(create_app(odd_names_db, clock=lambda: DEFAULT_END - 1))
    for name in NAMES:
        dash_duo.wait_for_page(f"{dash_duo.server_url}/functions")
        _click_row(dash_duo, name)
        dash_duo.wait_for_text_to_equal(".page-title", name, timeout=20)
        assert f"/functions/{quote(name, safe='')}?" in dash_duo.driver.current_url
        dash_duo.wait_for_element("#function-latency-graph .js-plotly-plot", timeout=20)
        assert not dash_duo.find_elements("#function-empty")

    for name in NAMES:  # a shared link, typed or pasted
        dash_duo.wait_for_page(f"{dash_duo.server_url}/functions/{quote(name, safe='')}")
        dash_duo.wait_for_text_to_equal(".page-title", name, timeout=20)
        dash_duo.wait_for_element("#function-power-tuning", timeout=20)
    assert dash_duo.get_logs() == []
