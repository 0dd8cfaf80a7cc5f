"""Shared fixtures. Browser tests use Debian's headless Chromium (see scripts/test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.chrome.options import Options
from sqlite_utils import Database

from lambdascope.db import open_db


def pytest_setup_options() -> Options:
    """Options for dash_duo's Chrome: the Debian binary, headless, as root."""
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ):
        options.add_argument(arg)
    return options


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a fresh, migrated store file."""
    path = tmp_path / "lambdascope.db"
    open_db(path).conn.close()
    return path


@pytest.fixture
def db(db_path: Path) -> Database:
    """A writable, migrated store on a real SQLite file."""
    return open_db(db_path)


@pytest.fixture(params=["native", "python"])
def scanner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with the C accelerator of lambdascope.logscan and without it (the
    same results are expected from both)."""
    import lambdascope.logscan as logscan

    if request.param == "python":
        monkeypatch.setattr(logscan, "_native", None)
    elif logscan._native is None:
        pytest.skip("the C accelerator lambdascope._scan is not built here")
    return str(request.param)
