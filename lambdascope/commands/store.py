"""``lambdascope store stats|check|vacuum|prune``: what takes the space, is it sound, give
space back, move old data to coarser tiers."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

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
    if found.hourly_from:
        dropped = sum(found.late_writes.values())
        click.echo(
            f"hourly tier from {iso(found.hourly_from)} (daily rows before it"
            + (
                f", deleted before {iso(found.daily_from)}"
                if found.daily_from
                else ", kept for ever"
            )
            + f"); {dropped:,} late hourly writes dropped"
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
@click.option(
    "--quick",
    is_flag=True,
    help="SQLite's quick_check instead of integrity_check; packed days are not decoded.",
)
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


@store.command()
@click.option(
    "--keep-raw",
    default="14d",
    show_default=True,
    help="Delete raw invocation rows older than this (at least 1d).",
)
@click.option(
    "--keep-hourly",
    default="90d",
    show_default=True,
    help="Keep hourly facts and metrics this long (at least --keep-raw); older days stay as"
    " daily rows.",
)
@click.option(
    "--keep-daily",
    default=None,
    help="Delete daily rows older than this (at least --keep-hourly) [default: keep for ever].",
)
@click.option(
    "--pack-after",
    default="14d",
    show_default=True,
    help="Pack the hours of days older than this, one compressed row per function-day"
    " (under half the space, same answers); 'never' keeps them as rows.",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@click.pass_context
def prune(
    ctx: click.Context,
    keep_raw: str,
    keep_hourly: str,
    keep_daily: str | None,
    pack_after: str,
    dry_run: bool,
) -> None:
    """Move old data to coarser tiers, as the schedule's prune job does: raw invocations
    beyond --keep-raw, hourly facts beyond --keep-hourly (their days stay as daily rows),
    daily rows beyond --keep-daily, and packs the hours of days older than --pack-after;
    then give the freed space back in short steps.

    Interrupt it at any time (Ctrl-C finishes the current batch); running it again
    resumes. Readers and the dashboard are never blocked for more than one batch.

    Example: lambdascope store prune --keep-hourly 60d --dry-run
    """
    from lambdascope.commands.schedule import retention_spans
    from lambdascope.scheduler import StopFlag, prune_store, stop_on_signals

    spans = retention_spans(keep_raw, keep_hourly, keep_daily, pack_after)
    path = db_path_of(ctx)
    db = open_db(path)
    bar = _PruneProgress() if sys.stderr.isatty() and not dry_run else None
    try:
        with stop_on_signals(StopFlag(), lambda m: click.echo(m, err=True)) as stop:
            summary = prune_store(
                db,
                spans,
                now=datetime.now(UTC),
                stop=stop,
                progress=None if bar is None else bar.update,
                dry_run=dry_run,
            )
    finally:
        if bar is not None:
            bar.close()
    click.echo(f"{path}: {summary.line(keep_raw)}")
    if summary.tiers.interrupted:
        sys.exit(1)


class _PruneProgress:
    """One rich progress bar per step of the tier move (on a terminal only)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from lambdascope.terminal import terminal_console

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=terminal_console(sys.stderr),
            transient=True,
        )
        self._tasks: dict[str, Any] = {}
        self._progress.start()

    def update(self, step: str, done: int, total: int) -> None:
        task = self._tasks.get(step)
        if task is None:
            task = self._tasks[step] = self._progress.add_task(step, total=total)
        self._progress.update(task, completed=done, total=total)

    def close(self) -> None:
        self._progress.stop()
