"""``lambdascope store stats|check|vacuum``: what takes the space, is it sound, give space back."""

from __future__ import annotations

import json
import sys

import click

from lambdascope.cli import db_path_of
from lambdascope.db import open_db
from lambdascope.terminal import TableColumn, render_table
from lambdascope.timeutil import iso


@click.group()
def store() -> None:
    """Look after the store file: sizes, integrity, free space.

    Example: lambdascope store stats
    """


def _size(value: float | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} TB"


@store.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def stats(ctx: click.Context, fmt: str) -> None:
    """Size per table and tier, rows, the oldest data per tier, bytes per function-day.

    Example: lambdascope store stats --format json
    """
    from lambdascope.storeadmin import stats as measure

    path = db_path_of(ctx)
    db = open_db(path, readonly=True)
    found = measure(db, path)
    if fmt == "json":
        click.echo(json.dumps(found.as_dict(), indent=2))
        return
    click.echo(
        f"{path}: {_size(found.file_bytes)} ({_size(found.free_bytes)} free),"
        f" {found.function_days:,} function-days,"
        f" {_size(found.bytes_per_function_day)} per function-day;"
        f" auto-vacuum {found.auto_vacuum}"
    )
    tiers = [
        [
            tier.name,
            _size(tier.bytes),
            _size(tier.bytes_per_function_day),
            f"{tier.function_days:,}",
            f"{iso(tier.oldest)} → {iso(tier.newest)}" if tier.oldest is not None else "-",
        ]
        for tier in found.tiers
    ]
    tables = [
        [t.name, f"{t.rows:,}", _size(t.bytes), _size(t.index_bytes), t.tier or ""]
        for t in found.tables
    ]
    for columns, rows in ((_TIER_COLUMNS, tiers), (_TABLE_COLUMNS, tables)):
        text, _hidden = render_table(columns, rows)
        click.echo("")
        click.echo(text, nl=False)


_TIER_COLUMNS = [
    TableColumn("TIER"),
    TableColumn("SIZE", "right"),
    TableColumn("PER FN-DAY", "right"),
    TableColumn("FN-DAYS", "right"),
    TableColumn("OLDEST → NEWEST"),
]
_TABLE_COLUMNS = [
    TableColumn("TABLE"),
    TableColumn("ROWS", "right"),
    TableColumn("DATA", "right"),
    TableColumn("INDEXES", "right"),
    TableColumn("TIER"),
]


@store.command()
@click.option("--quick", is_flag=True, help="SQLite's quick_check instead of integrity_check.")
@click.pass_context
def check(ctx: click.Context, quick: bool) -> None:
    """SQLite's integrity check and lambdascope's invariants (facts against rollups, raw
    invocations against their hourly facts); exit status 1 when something is wrong.

    Example: lambdascope store check
    """
    from lambdascope.storeadmin import check as run_check

    db = open_db(db_path_of(ctx), readonly=True)
    result = run_check(db, quick=quick)
    for name in result.checks:
        click.echo(f"checked: {name}")
    for problem in result.problems:
        click.echo(f"problem: {problem}", err=True)
    click.echo("ok" if result.ok else f"{len(result.problems)} problems found")
    if not result.ok:
        sys.exit(1)


@store.command()
@click.option(
    "--full",
    is_flag=True,
    help="Rewrite the whole file (VACUUM): needs free disk space about the file's size and"
    " blocks writers while it runs; refused while a schedule runs on this store.",
)
@click.pass_context
def vacuum(ctx: click.Context, full: bool) -> None:
    """Give free space back to the file system.

    In small steps when the store has incremental auto-vacuum (new stores do; readers
    and the dashboard are never blocked), else, or with --full, by rewriting the file
    once (which turns incremental auto-vacuum on for the next times).

    Example: lambdascope store vacuum
    """
    from lambdascope.scheduler import ScheduleError, ScheduleLock
    from lambdascope.storeadmin import full_vacuum, incremental_vacuum

    path = db_path_of(ctx)
    db = open_db(path)
    before = path.stat().st_size
    mode = int(db.conn.execute("PRAGMA auto_vacuum").fetchone()[0])
    if full or mode != 2:
        try:
            with ScheduleLock(path):
                full_vacuum(db)
        except ScheduleError as exc:
            raise click.ClickException(
                f"{exc}: a full VACUUM would block it; run `store vacuum` (incremental) or"
                " stop the schedule first"
            ) from None
    else:
        incremental_vacuum(db)
    after = path.stat().st_size
    click.echo(f"{path}: {_size(before)} → {_size(after)} ({_size(before - after)} given back)")
