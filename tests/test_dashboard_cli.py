"""`lambdascope dashboard`: refuses unsafe or broken setups with one clear line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from lambdascope.cli import cli
from lambdascope.commands.dashboard import is_loopback, make_app, parse_auth


def test_public_host_without_auth_is_refused(db_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "dashboard", "--host", "0.0.0.0"], env={"LAMBDASCOPE_AUTH": ""}
    )
    assert result.exit_code == 2
    assert "--auth USER:PASSWORD" in result.output
    assert "Traceback" not in result.output


def test_malformed_auth_is_refused(db_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "dashboard", "--host", "0.0.0.0", "--auth", "nopassword"]
    )
    assert result.exit_code == 2
    assert "expected USER:PASSWORD" in result.output


def test_missing_database_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "none.db"), "dashboard"])
    assert result.exit_code != 0
    assert "no database at" in str(result.exception) or "no database at" in result.output


def test_loopback_detection_and_auth_parsing() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5")
    assert parse_auth("admin:s3:cret") == ("admin", "s3:cret")


def test_basic_auth_guards_every_page(db_path: Path) -> None:
    import base64

    client = make_app(db_path, ("admin", "s3cret")).server.test_client()
    assert client.get("/functions").status_code == 401
    token = base64.b64encode(b"admin:s3cret").decode()
    assert client.get("/functions", headers={"Authorization": f"Basic {token}"}).status_code == 200
    wrong = base64.b64encode(b"admin:nope").decode()
    assert client.get("/", headers={"Authorization": f"Basic {wrong}"}).status_code == 401
