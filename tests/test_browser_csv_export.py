"""The dashboard grids' CSV export in a real headless Chromium: a function name that a
spreadsheet would run as a formula is exported as text, other cells as the grid shows them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dash.testing.wait import until

from dashboards.app import create_app
from lambdascope.db import open_db
from lambdascope.synthetic import DEFAULT_END, generate_store

pytestmark = pytest.mark.browser
NAMES = ["=HYPERLINK(1)", "@SUM(A1)", "-cmd", "+1"]


def test_grid_csv_export_neutralises_formulas(dash_duo: Any, tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    db = open_db(path)
    generate_store(db, functions=6, days=2, seed=7)
    with db.conn:
        for fid, name in zip((1, 2, 3, 4), NAMES, strict=True):
            db.conn.execute("UPDATE functions SET function_name = ? WHERE id = ?", (name, fid))
    db.conn.close()
    dash_duo.start_server(create_app(path, clock=lambda: DEFAULT_END - 1))
    dash_duo.wait_for_page(f"{dash_duo.server_url}/functions?range=30d")
    dash_duo.wait_for_element("#functions-grid .ag-row", timeout=20)
    script = "return dash_ag_grid.getApi('functions-grid').getDataAsCsv();"
    until(lambda: dash_duo.driver.execute_script(script), 20)
    csv_text = str(dash_duo.driver.execute_script(script))
    for name in NAMES:
        assert f"\"'{name}\"" in csv_text, (name, csv_text[:400])
        assert f'"{name}"' not in csv_text
    # other cells keep the grid's formatting (a cold start rate in %)
    assert "%" in csv_text
    assert dash_duo.get_logs() == []
