"""The HTML report opens offline in a real headless Chromium, charts drawn, no script run."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException

from lambdascope.cli import cli
from tests.conftest import pytest_setup_options
from tests.test_cli_report import UNTIL, fleet  # noqa: F401  (fixture)


@pytest.mark.browser
def test_html_report_renders_offline(fleet: Path, tmp_path: Path) -> None:  # noqa: F811
    target = tmp_path / "memory.html"
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            str(fleet),
            "report",
            "memory",
            "--until",
            UNTIL,
            "--format",
            "html",
            "-o",
            str(target),
        ],
    )
    assert result.exit_code == 0
    options = pytest_setup_options()
    options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND")  # offline
    driver = webdriver.Chrome(options=options)
    try:
        driver.get(target.as_uri())
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018
        plots = driver.find_elements("css selector", ".js-plotly-plot .main-svg")
        assert len(plots) >= 2
        names = [td.text for td in driver.find_elements("css selector", "td.name")]
        assert any(n.startswith("<script>alert(1)</script>") for n in names)
        assert any(n.startswith("orders-api") for n in names)
        # chart labels show the name literally (no markup, no script)
        ticks = [t.text for t in driver.find_elements("css selector", ".ytick text")]
        assert any("<script>alert(1)</script>" in t for t in ticks)
    finally:
        driver.quit()
