"""``lambdascope dashboard``: serve the web dashboard over the store (read-only).

The server is waitress (a production WSGI server); ``serve`` shares these options and
checks, so both refuse the same unsafe or broken setups with one clear line.
"""

from __future__ import annotations

import ipaddress
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from lambdascope.cli import db_path_of
from lambdascope.db import StoreError, migrations, open_db

AUTH_ENV = "LAMBDASCOPE_AUTH"
DEFAULT_THREADS = 8
# NIST SP 800-63B asks for at least 8; a password guarded by nothing but basic auth on a
# reachable port (no lockout, no rate limit) deserves more.
MIN_PASSWORD_LENGTH = 12


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_auth(value: str) -> tuple[str, str]:
    """``USER:PASSWORD`` -> (user, password); raises click.BadParameter."""
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise click.BadParameter("expected USER:PASSWORD", param_hint="--auth")
    return user, password


@dataclass(frozen=True)
class ServerSettings:
    """Where and how the dashboard is served (checked by :func:`server_settings`)."""

    host: str
    port: int
    threads: int = DEFAULT_THREADS
    credentials: tuple[str, str] | None = None
    debug: bool = False


def server_settings(
    host: str,
    port: int,
    threads: int = DEFAULT_THREADS,
    auth: str | None = None,
    no_auth: bool = False,
    debug: bool = False,
) -> tuple[ServerSettings, list[str]]:
    """The checked settings and the warnings to show; raises click.UsageError when a
    reachable address has neither ``--auth`` nor ``--no-auth``."""
    credentials = parse_auth(auth) if auth else None
    local = is_loopback(host)
    if credentials is None and not no_auth and not local:
        raise click.UsageError(
            f"--host {host} is reachable from other machines: give --auth USER:PASSWORD "
            f"(or ${AUTH_ENV}), or --no-auth to serve it without a password"
        )
    warnings: list[str] = []
    if credentials is not None and len(credentials[1]) < MIN_PASSWORD_LENGTH:
        warnings.append(
            f"warning: the --auth password has {len(credentials[1])} characters; basic auth"
            f" has no lockout, so use {MIN_PASSWORD_LENGTH} or more"
        )
    if credentials is not None and not local:
        warnings.append(
            f"warning: basic auth on {host} is plain HTTP: the password and the pages cross"
            " the network unencrypted; put a TLS reverse proxy in front (docs/deploy.md)"
            " and bind 127.0.0.1"
        )
    if credentials is None and not local:
        warnings.append(
            f"warning: serving {host} without a password: anyone who can reach it reads the store"
        )
    if debug and not local:
        warnings.append(
            "warning: --debug shows tracebacks and the app's structure to every visitor"
        )
    settings = ServerSettings(host, port, threads, credentials, debug)
    return settings, warnings


def check_store(db_path: Path) -> None:
    """Refuse, with one line, a store the dashboard cannot show: missing, not SQLite,
    unreadable, another application's database, or one whose schema is out of date."""
    try:
        db = open_db(db_path, readonly=True)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        tables = {
            str(name)
            for (name,) in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        applied = migrations.applied(db)
        pending = migrations.pending(db)
    except sqlite3.Error as exc:
        raise click.ClickException(f"cannot read the store {db_path}: {exc}") from None
    finally:
        db.conn.close()
    if not applied or "functions" not in tables:
        what = "an empty database" if not tables else "another application's SQLite database"
        raise click.ClickException(
            f"{db_path} is not a lambdascope store ({what}): check --db / $LAMBDASCOPE_DB,"
            " or fill a new store with `lambdascope ingest` or `collect`"
        )
    if pending:
        raise click.ClickException(
            f"the store {db_path} was written by an older lambdascope ({len(pending)} schema"
            " changes pending): run `lambdascope ingest` or `collect` on it once to upgrade it"
        )


def make_app(db_path: Path, credentials: tuple[str, str] | None = None) -> Any:
    """The dashboard app, behind HTTP basic auth when ``credentials`` are given."""
    from dashboards.app import create_app
    from dashboards.auth import require_basic_auth

    app = create_app(db_path)
    if credentials is not None:
        require_basic_auth(app.server, *credentials)
    return app


def start_server(db_path: Path, settings: ServerSettings, echo: Callable[[str], None]) -> Any:
    """Check the store, build the app and bind its waitress server (not yet running);
    ``echo`` gets the URL lines. One clear line (click.ClickException) on failure."""
    from dashboards.server import bind, listening_on, url_of

    check_store(db_path)
    # waitress logs a line per request that waits for a free thread; busy moments would
    # flood the terminal or the journal (--threads is the remedy, see the README)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    app = make_app(db_path, settings.credentials)
    if settings.debug:
        app.enable_dev_tools(debug=True)
    try:
        server = bind(app.server, settings.host, settings.port, settings.threads)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise click.ClickException(
            f"cannot listen on {settings.host} port {settings.port}: {reason}"
        ) from None
    for host, port in listening_on(server):
        echo(f"lambdascope dashboard on {url_of(host, port)} (store {db_path})")
    return server


def server_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--host``, ``--port``, ``--threads``, ``--auth`` and ``--no-auth``."""
    options = [
        click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind."),
        click.option(
            "--port",
            default=8050,
            show_default=True,
            type=click.IntRange(0, 65535),
            help="Port to listen on (0: any free port, printed).",
        ),
        click.option(
            "--threads",
            default=DEFAULT_THREADS,
            show_default=True,
            type=click.IntRange(1, 256),
            help="Requests served at once (waitress worker threads).",
        ),
        click.option(
            "--auth",
            envvar=AUTH_ENV,
            show_envvar=True,
            default=None,
            help="USER:PASSWORD for HTTP basic auth (required off loopback).",
        ),
        click.option("--no-auth", is_flag=True, help="Serve a non-loopback address without auth."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _echo_err(text: str) -> None:
    click.echo(text, err=True)


@click.command()
@server_options
@click.option(
    "--debug", is_flag=True, help="Dash dev tools (error pop-ups, callback graph, reload)."
)
@click.pass_context
def dashboard(
    ctx: click.Context,
    host: str,
    port: int,
    threads: int,
    auth: str | None,
    no_auth: bool,
    debug: bool,
) -> None:
    """Serve the web dashboard (reads the store read-only; safe while collecting).

    Example: lambdascope dashboard --port 8050
    """
    db_path = db_path_of(ctx)
    settings, warnings = server_settings(host, port, threads, auth, no_auth, debug)
    for line in warnings:
        _echo_err(line)
    server = start_server(db_path, settings, _echo_err)
    server.run()  # until Ctrl-C: waitress closes on KeyboardInterrupt and returns


__all__ = [
    "ServerSettings",
    "check_store",
    "dashboard",
    "is_loopback",
    "make_app",
    "parse_auth",
    "server_options",
    "server_settings",
    "start_server",
]
