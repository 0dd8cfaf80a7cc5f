"""The /alerts page in a real headless Chromium: grid, filters in the URL, function link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dash.testing.wait import until

from dashboards.app import create_app
from lambdascope.alerts import run_check
from lambdascope.alerts.config import parse_config
from lambdascope.db import open_db
from tests.alerts_store import HOUR, add_function, add_hour

pytestmark = pytest.mark.browser

NOW = 1796397600 + 20 * 60
H = NOW - NOW % HOUR


def test_alerts_page_filters_and_opens_the_function(dash_duo: Any, db_path: Path) -> None:
    db = open_db(db_path)
    checkout, search = add_function(db, "checkout"), add_function(db, "search")
    add_hour(db, checkout, H, durations=[10.0] * 40, out_of_memory=3)
    add_hour(db, search, H, durations=[10.0] * 100, errors=30)
    config = parse_config({"rules": {"newly_under_provisioned": {"enabled": False}}})
    run_check(db, config, now=NOW)
    db.conn.close()

    dash_duo.start_server(create_app(db_path, clock=lambda: NOW + 60))
    dash_duo.wait_for_page(f"{dash_duo.server_url}/alerts")
    dash_duo.wait_for_element('#alerts-grid .ag-row[row-index="1"]', timeout=20)
    assert dash_duo.find_element("#alerts-open .kpi-value").text == "2"

    dash_duo.select_dcc_dropdown("#alerts-rule", value="Out of memory")
    until(lambda: "rule=oom" in dash_duo.driver.current_url, timeout=10)
    until(
        lambda: len(dash_duo.find_elements("#alerts-grid .ag-center-cols-container .ag-row")) == 1,
        timeout=10,
    )
    cell = '#alerts-grid .ag-row[row-index="0"] [col-id="function"]'
    dash_duo.wait_for_text_to_equal(cell, "checkout", timeout=10)
    dash_duo.find_element(cell).click()
    dash_duo.wait_for_text_to_equal(".page-title", "checkout", timeout=20)
    assert "/functions/checkout?account=123456789012&region=us-east-1" in (
        dash_duo.driver.current_url
    )
    assert dash_duo.get_logs() == []
