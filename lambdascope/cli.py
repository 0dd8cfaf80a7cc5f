"""The ``lambdascope`` command line: a click group whose sub-commands load lazily.

Each sub-command lives in ``lambdascope/commands/<name>.py``; this module only maps
names to them, so ``lambdascope --help`` stays fast and never imports boto3 or dash.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import click

from lambdascope import __version__
from lambdascope.db import DEFAULT_DB_ENV, StoreError, default_db_path

# command name -> "module:attribute"; a command appears once its module exists.
COMMANDS: dict[str, str] = {
    "parse": "lambdascope.commands.parse:parse",
    "ingest": "lambdascope.commands.ingest:ingest",
    "athena-table": "lambdascope.commands.athena:athena_table",
    "summary": "lambdascope.commands.summary:summary",
    "report": "lambdascope.commands.report:report",
    "power-tuning": "lambdascope.commands.power_tuning:power_tuning",
    "insights": "lambdascope.commands.insights:insights",
    "collect": "lambdascope.commands.collect:collect",
    "dashboard": "lambdascope.commands.dashboard:dashboard",
    "schedule": "lambdascope.commands.schedule:schedule",
    "serve": "lambdascope.commands.schedule:serve",
    "demo": "lambdascope.commands.demo:demo",
    "function": "lambdascope.commands.function:function",
    "store": "lambdascope.commands.store:store",
    "alerts": "lambdascope.commands.alerts:alerts",
}


def _available(name: str) -> bool:
    module = COMMANDS[name].split(":")[0]
    return importlib.util.find_spec(module) is not None


class LazyGroup(click.Group):
    """A group that imports a sub-command's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if _available(name))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or not _available(cmd_name):
            return None
        module_name, attr = COMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        # a store that cannot be opened ends every command with one line, also when the
        # group is called from Python (tests, notebooks) rather than through main()
        try:
            return super().invoke(ctx)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=DEFAULT_DB_ENV,
    default=None,
    show_envvar=True,
    help="SQLite store [default: ~/.local/share/lambdascope/lambdascope.db].",
)
@click.version_option(__version__, prog_name="lambdascope")
@click.pass_context
def cli(ctx: click.Context, db_path: Path | None) -> None:
    """Observability and memory right-sizing for fleets of AWS Lambda functions.

    Example: lambdascope ingest ./logs && lambdascope summary
    """
    ctx.obj = {"db_path": db_path or default_db_path()}


def db_path_of(ctx: click.Context) -> Path:
    """The store path chosen on the group (``--db`` / ``$LAMBDASCOPE_DB``)."""
    root = ctx.find_root()
    obj: dict[str, Any] = root.obj or {}
    path = obj.get("db_path")
    return path if isinstance(path, Path) else default_db_path()


def window_with_data(
    db: Any, start: int, end: int, since: str, until: str | None
) -> tuple[int, int]:
    """The window a reading command shows: ``[start, end)`` as asked or, when ``--until``
    was not given and the latest stored data is more than a day old (old log exports),
    the window of the same length up to the latest stored data, with a note on stderr."""
    from lambdascope.queries import window_at_latest_data
    from lambdascope.timeutil import iso

    moved = None if until else window_at_latest_data(db, start, end)
    if moved is None:
        return start, end
    gap = f"no data in the last {since}" if moved[1] <= start else "no data in the last day"
    click.echo(
        f"note: {gap}; showing the {since} up to the latest data"
        f" ({iso(moved[1])}). Use --until to choose the window.",
        err=True,
    )
    return moved


def note_rollup_backlog(db: Any, threshold: int = 2000) -> None:
    """Say so when many function-days wait for their daily rollup (the first write after
    upgrading a large store builds them all), so a longer run is not a surprise."""
    from lambdascope import rollup

    pending = rollup.pending(db)
    if pending >= threshold:
        click.echo(
            f"note: building the daily rollups of {pending:,} function-days first"
            " (once after an upgrade; reads stay correct meanwhile)",
            err=True,
        )


def main() -> None:
    """Console-script entry point: user-caused errors end in one line, never a traceback."""
    try:
        cli.main(prog_name="lambdascope", standalone_mode=True)
    except StoreError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
