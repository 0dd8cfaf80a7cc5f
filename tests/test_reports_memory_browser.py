"""The memory report people forward, in a real headless Chromium at 1,280 px."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from selenium import webdriver

from lambdascope.cli import cli
from lambdascope.db import open_db
from lambdascope.synthetic import DEFAULT_END, generate_store
from lambdascope.timeutil import iso
from tests.conftest import pytest_setup_options


@pytest.mark.browser
def test_memory_report_reads_like_a_page_at_1280_px(tmp_path: Path) -> None:
    db_path = tmp_path / "store.db"
    generate_store(open_db(db_path), functions=300, days=14, seed=3)
    target = tmp_path / "memory.html"
    args = ["--db", str(db_path), "report", "memory", "--until", iso(DEFAULT_END) or ""]
    runner = CliRunner()
    assert runner.invoke(cli, [*args, "--format", "html", "-o", str(target)]).exit_code == 0
    rows = json.loads(runner.invoke(cli, args).stdout)
    options = pytest_setup_options()
    options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND")  # offline
    driver = webdriver.Chrome(options=options)
    try:
        driver.set_window_size(1280, 1000)
        driver.get(target.as_uri())
        width = driver.execute_script("return document.documentElement.clientWidth")
        scroll = driver.execute_script("return document.documentElement.scrollWidth")
        assert scroll <= width, "horizontal overflow"
        table = driver.find_element("id", "memory-table")
        assert table.size["width"] <= width
        # every function, in the report's order, one row each, rows of a sane height
        names = [e.text for e in driver.find_elements("css selector", "tr.fn td.name")]
        assert [n.split("\n")[0] for n in names] == [r["function_name"] for r in rows]
        heights = [e.size["height"] for e in driver.find_elements("css selector", "tr.fn")]
        assert max(heights) < 80
        # summary figures and what to do first come before the table
        kpis = driver.find_element("id", "memory-kpis")
        assert "potential savings / 30 days" in kpis.text
        assert kpis.location["y"] < table.location["y"]
        assert driver.find_element("id", "memory-first").text.startswith("First:")
        # two charts drawn; the savings bars are horizontal and labelled with names
        assert len(driver.find_elements("css selector", ".js-plotly-plot .main-svg")) >= 2
        labels = [
            t.text for t in driver.find_elements("css selector", "#memory-savings .ytick text")
        ]
        assert labels and set(labels) <= {r["function_name"] for r in rows}
        # details fold under each row and open on a click
        first = driver.find_element("css selector", "tr.detail details")
        assert not first.find_element("css selector", "ul").is_displayed()
        first.find_element("css selector", "summary").click()
        assert rows[0]["reasons"][0] in first.text
    finally:
        driver.quit()
