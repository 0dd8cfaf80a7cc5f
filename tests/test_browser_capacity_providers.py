"""The function page of a Lambda Managed Instances function in a real headless Chromium:
its capacity provider's utilisation is drawn (CPU and memory, mean and peak) with the
peak/mean line, and no memory graphs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dash.testing.wait import until

from dashboards.app import create_app
from lambdascope.db import open_db
from tests.test_dashboard_data import NOW
from tests.test_queries import T0, H, add_fact, add_function

pytestmark = pytest.mark.browser
PROVIDER = "batch-fleet"


def _text(dash_duo: Any, selector: str) -> str:
    value = dash_duo.driver.execute_script(
        f"var e = document.querySelector('{selector}'); return e && e.textContent;"
    )
    return "" if value is None else str(value)


def test_a_managed_instances_page_draws_its_capacity_provider(
    dash_duo: Any, tmp_path: Path
) -> None:
    path = tmp_path / "managed.db"
    db = open_db(path)
    fid = add_function(db, "on-instances", runtime="python3.12")
    for h in range(6):
        add_fact(db, fid, T0 - (h + 1) * H, 2048, durations=[50.0] * 20)
    account, region = db.conn.execute(
        "SELECT account_id, region FROM functions WHERE id = ?", (fid,)
    ).fetchone()
    with db.conn:
        db.conn.execute(
            "UPDATE functions SET capacity_provider_arn = ? WHERE id = ?",
            (f"arn:aws:lambda:us-east-1:111111111111:capacity-provider:{PROVIDER}", fid),
        )
        for h in range(6):
            db.conn.execute(
                "INSERT INTO capacity_provider_hourly (account_id, region,"
                " capacity_provider_name, hour, instance_types, cpu_utilization_avg,"
                " cpu_utilization_max, memory_utilization_avg, memory_utilization_max)"
                " VALUES (?, ?, ?, ?, 1, ?, ?, 35.0, 45.0)",
                (account, region, PROVIDER, T0 - (h + 1) * H, 20.0 + h, 70.0 if h == 0 else 40.0),
            )
    db.conn.close()
    dash_duo.start_server(create_app(path, clock=lambda: NOW))
    dash_duo.wait_for_page(f"{dash_duo.server_url}/functions/on-instances")
    dash_duo.wait_for_element("#function-capacity-graph .js-plotly-plot", timeout=30)
    until(
        lambda: (
            len(
                dash_duo.driver.find_elements(
                    "css selector", "#function-capacity-graph .scatterlayer .trace"
                )
            )
            == 4
        ),
        10,
    )
    legend = _text(dash_duo, "#function-capacity-graph .legend")
    assert "CPU (mean)" in legend and "Memory (peak)" in legend
    assert _text(dash_duo, "#function-capacity-utilisation").startswith(
        f"Capacity provider {PROVIDER} over 6 hours: CPU peak 70.0 %, mean 22.5 %"
    )
    assert dash_duo.driver.find_elements("css selector", "#function-memory-graph") == []
    assert dash_duo.get_logs() == []
