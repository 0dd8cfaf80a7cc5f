"""``lambdascope dashboard``: serve the web dashboard over the store (read-only)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import click

from lambdascope.cli import db_path_of
from lambdascope.db import open_db

AUTH_ENV = "LAMBDASCOPE_AUTH"


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_auth(value: str) -> tuple[str, str]:
    """``USER:PASSWORD`` -> (user, password); raises click.BadParameter."""
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise click.BadParameter("expected USER:PASSWORD", param_hint="--auth")
    return user, password


def make_app(db_path: Path, credentials: tuple[str, str] | None = None) -> Any:
    """The dashboard app, behind HTTP basic auth when ``credentials`` are given."""
    from dashboards.app import create_app

    app = create_app(db_path)
    if credentials is not None:
        import dash_auth

        dash_auth.BasicAuth(app, {credentials[0]: credentials[1]})
    return app


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8050, show_default=True, type=click.IntRange(1, 65535))
@click.option("--debug", is_flag=True, help="Dash debug mode (hot reload, error pop-ups).")
@click.option(
    "--auth",
    envvar=AUTH_ENV,
    show_envvar=True,
    default=None,
    help="USER:PASSWORD for HTTP basic auth (required off loopback).",
)
@click.option("--no-auth", is_flag=True, help="Serve a non-loopback address without auth.")
@click.pass_context
def dashboard(
    ctx: click.Context, host: str, port: int, debug: bool, auth: str | None, no_auth: bool
) -> None:
    """Serve the web dashboard (reads the store read-only; safe while collecting).

    Example: lambdascope dashboard --port 8050
    """
    db_path = db_path_of(ctx)
    credentials = parse_auth(auth) if auth else None
    if credentials is None and not no_auth and not is_loopback(host):
        raise click.UsageError(
            f"--host {host} is reachable from other machines: give --auth USER:PASSWORD "
            f"(or ${AUTH_ENV}), or --no-auth to serve it without a password"
        )
    open_db(db_path, readonly=True).conn.close()  # fail early with one clear line

    app = make_app(db_path, credentials)
    click.echo(f"lambdascope dashboard on http://{host}:{port}/ (store {db_path})", err=True)
    app.run(host=host, port=port, debug=debug)


__all__ = ["dashboard", "is_loopback", "make_app", "parse_auth"]
