"""``lambdascope demo``: a simulated 60-function fleet served by moto, read by the real collectors.

See ``collectors/demo_fleet.py`` for which data goes through which path: inventory,
recent metrics and recent log lines through the AWS collectors over HTTP against an
in-process moto server; the 14-day history through the local log ingest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from lambdascope.db import StoreError, get_setting, open_db, set_setting

DEMO_MARK = "demo_fleet"


def default_demo_db() -> Path:
    """``$XDG_CACHE_HOME/lambdascope/demo.db`` (default ``~/.cache/lambdascope/demo.db``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lambdascope" / "demo.db"


def _fresh_store(path: Path) -> None:
    """Remove an earlier demo store at ``path``; refuse to touch any other database."""
    if not path.exists():
        return
    try:
        db = open_db(path, readonly=True)
        mark = get_setting(db, DEMO_MARK)
        db.conn.close()
    except StoreError:
        mark = None
    if mark is None:
        raise click.ClickException(f"{path} exists and is not a demo database: choose another --db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _module_attr(module: str, name: str, what: str) -> Any:
    try:
        value = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise click.ClickException(f"{what} is not installed ({module}.{name})") from None
    return value


def _build_options(options_type: Any, candidates: dict[str, Any]) -> Any:
    """CollectOptions from the fields it has (the demo points it at moto)."""
    names = {f.name for f in dataclasses.fields(options_type)}
    return options_type(**{k: v for k, v in candidates.items() if k in names})


@contextlib.contextmanager
def _demo_credentials() -> Iterator[None]:
    """Dummy AWS credentials while the collectors talk to moto (never the user's own)."""
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
    saved = {name: os.environ.pop(name, None) for name in names}
    os.environ["AWS_ACCESS_KEY_ID"] = "demo"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "demo"  # noqa: S105 - moto accepts any key
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def build_demo(db_path: Path, *, now_s: int, say: Any) -> None:
    """Build the demo store at ``db_path``: seed moto, ingest history, run the collectors."""
    from moto.server import ThreadedMotoServer

    from collectors.demo_fleet import (
        ACCOUNTS,
        RECENT_HOURS,
        REGIONS,
        build_fleet,
        moto_percentiles,
        role_arn,
        seed_moto,
        write_local_history,
    )

    started = time.monotonic()

    def step(message: str) -> None:
        say(f"[{time.monotonic() - started:5.1f}s] {message}")

    _fresh_store(db_path)
    ingest_paths = _module_attr("collectors.local", "ingest_paths", "the local log ingest")
    run_collection = _module_attr("collectors.aws", "run_collection", "the AWS collector")
    options_type = _module_attr("collectors.aws", "CollectOptions", "the AWS collector")
    db = open_db(db_path)
    set_setting(db, DEMO_MARK, "1")
    fleet = build_fleet()
    step(f"fleet: {len(fleet)} functions in {len(ACCOUNTS)} accounts x {len(REGIONS)} regions")

    logs_dir = Path(f"{db_path}.logs")
    shutil.rmtree(logs_dir, ignore_errors=True)
    roots = write_local_history(fleet, logs_dir, now_s=now_s, progress=step)

    # moto's HTTP server logs every request; keep the demo's progress readable.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        step(f"moto server on {endpoint}")
        seed_moto(endpoint, fleet, now_s=now_s, progress=step)
        for (account_id, region), root in sorted(roots.items()):
            result = ingest_paths(db, [str(root)], account_id=account_id, region=region)
            step(f"local ingest {account_id}/{region}: {result.summary_line()}")
        from datetime import UTC, datetime, timedelta

        # The collectors read only the recent hours that moto holds; the local files hold
        # everything before them, so no hour comes from both paths.
        recent_start = now_s - now_s % 3600 - RECENT_HOURS * 3600
        options = _build_options(
            options_type,
            {
                "endpoint_url": endpoint,
                "regions": tuple(REGIONS),
                "role_arns": tuple(role_arn(a) for a in ACCOUNTS),
                "include_default_account": False,
                "logs_mode": "filter",
                "since": timedelta(seconds=now_s - recent_start),
            },
        )
        with _demo_credentials(), moto_percentiles():
            summary = run_collection(
                db, options, now=datetime.fromtimestamp(now_s, UTC), progress=step
            )
        statuses = Counter(r.status for r in summary.results)
        not_offered = sorted(
            {e["action"] for r in summary.results for e in r.errors if e["code"] == "NotOffered"}
        )
        step(
            f"AWS collectors over HTTP: {len(summary.results)} runs"
            f" ({', '.join(f'{n} {status}' for status, n in sorted(statuses.items()))}),"
            f" {sum(r.items for r in summary.results):,} items"
            + (f" (not offered by moto: {', '.join(not_offered)})" if not_offered else "")
        )
        from collectors.demo_evidence import seed_evidence

        seed_evidence(db, now_s=now_s, say=step)
        from collectors.demo_evidence import seed_managed_instances

        # two right-sized functions of middling traffic (no planted finding to hide)
        steady = sorted(
            (f for f in fleet if f.kind == "right_sized"), key=lambda f: f.rate_per_hour
        )
        middle = steady[len(steady) // 2 : len(steady) // 2 + 2]
        seed_managed_instances(
            db, [(f.name, f.account_id, f.region) for f in middle], now_s=now_s, say=step
        )
        from collectors.demo_evidence import seed_insights

        seed_insights(db, now_s=now_s, say=step)
    finally:
        server.stop()
        db.conn.close()


def _global_db(ctx: click.Context) -> Path | None:
    """The group's ``--db`` when it was typed on the command line (``lambdascope --db X
    demo``); ``$LAMBDASCOPE_DB`` names the main store, which the demo never uses."""
    root = ctx.find_root()
    if root.get_parameter_source("db_path") is not click.core.ParameterSource.COMMANDLINE:
        return None
    path = (root.obj or {}).get("db_path")
    return path if isinstance(path, Path) else None


@click.command()
@click.option(
    "--db",
    "demo_db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Demo store [default: the group's --db if given, else"
    " ~/.cache/lambdascope/demo.db]; never an existing store that is not a demo.",
)
@click.option("--port", default=8050, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-serve", is_flag=True, help="Only build the demo store, then exit.")
@click.pass_context
def demo(ctx: click.Context, demo_db: Path | None, port: int, no_serve: bool) -> None:
    """Build a simulated 60-function fleet and open the dashboard on it (no AWS account).

    The fleet runs in an in-process moto server; the real collectors read it over
    HTTP and the real ingest reads its 14-day log history from local files.

    Example: lambdascope demo --port 8050
    """
    db_path = demo_db or _global_db(ctx) or default_demo_db()
    click.echo(f"Building the demo fleet in {db_path}", err=True)
    build_demo(db_path, now_s=int(time.time()), say=lambda m: click.echo(m, err=True))
    if no_serve:
        click.echo(f"Demo store ready: {db_path}")
        return
    from lambdascope.commands.dashboard import ServerSettings, start_server

    server = start_server(db_path, ServerSettings("127.0.0.1", port), click.echo)
    server.run()  # until Ctrl-C
