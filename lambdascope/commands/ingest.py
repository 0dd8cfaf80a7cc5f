"""``lambdascope ingest``: load Lambda runtime logs (files, dirs, .gz, stdin) into the store."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column

from lambdascope.cli import db_path_of, note_rollup_backlog
from lambdascope.db import open_db
from lambdascope.terminal import frame_text, terminal_console

if TYPE_CHECKING:
    from collectors.local import IngestResult


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--function",
    "function_name",
    default=None,
    help="Function name for files "
    "without a /aws/lambda/<name> envelope [default: the file's directory name].",
)
@click.option("--account", "account_id", default="", help="AWS account id of the logs.")
@click.option("--region", default="", help="AWS region of the logs.")
@click.option(
    "--architecture",
    type=click.Choice(["x86_64", "arm64"]),
    default="x86_64",
    show_default=True,
)
@click.pass_context
def ingest(
    ctx: click.Context,
    paths: tuple[str, ...],
    function_name: str | None,
    account_id: str,
    region: str,
    architecture: str,
) -> None:
    """Ingest Lambda runtime logs from PATHS (files, directories, .gz, - for stdin).

    Idempotent and resumable: a file already ingested adds nothing, a file that grew is
    read from where it stopped, an interrupted run is completed by running it again.

    Example: lambdascope ingest tests/data/logs/sample && lambdascope summary --since 1000d
    """
    from collectors.local import ingest_paths

    db = open_db(db_path_of(ctx))
    note_rollup_backlog(db)
    tty = sys.stderr.isatty()
    # A terminal gets a progress bar, stopped however the run ends; pipes and cron only
    # the summary line.
    bar = IngestProgress(terminal_console(sys.stderr)) if tty else None
    if bar is not None:
        ctx.call_on_close(bar.stop)

    def show(result: IngestResult, last: bool = False) -> None:
        if bar is not None:
            bar.update(result)
            if last:
                bar.stop()  # the final totals stay on screen

    result = ingest_paths(
        db,
        paths,
        function_name=function_name,
        account_id=account_id,
        region=region,
        architecture=architecture,
        progress=show if tty else None,
    )
    if tty:
        show(result, last=True)
    for path, error in result.unreadable:
        click.echo(f"Error: cannot read {path}: {error}", err=True)
    click.echo(result.summary_line())
    if result.unreadable:
        sys.exit(1)


class IngestProgress:
    """The terminal progress bar, drawn by rich: share of the bytes to read (%, MB, MB/s,
    time left), then the running totals. Reading stdin has no total: the totals only."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            DownloadColumn(table_column=Column(no_wrap=True)),
            TransferSpeedColumn(table_column=Column(no_wrap=True)),
            TimeRemainingColumn(table_column=Column(no_wrap=True)),
            # on a narrow terminal the totals are cut, the line never wraps
            TextColumn(
                "{task.fields[counts]}", table_column=Column(no_wrap=True, overflow="ellipsis")
            ),
            console=console,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task("ingest", total=None, counts="")
        self._started = False

    def update(self, result: IngestResult) -> None:
        """Show the progress of ``result`` (called as the files are read)."""
        if not self._started:
            self._started = True
            self._progress.start()
        counts = f"{result.files:,} files, {result.lines:,} lines, {result.reports:,} reports"
        known = result.bytes_total > 0
        self._progress.update(
            self._task,
            total=result.bytes_total if known else None,
            completed=min(result.bytes_done, result.bytes_total) if known else result.bytes_done,
            counts=counts,
        )

    def stop(self) -> None:
        """Stop redrawing; safe to call more than once."""
        if self._started:
            self._started = False
            self._progress.stop()

    def lines(self, width: int = 120) -> list[str]:
        """The plain text of the current frame."""
        return frame_text(self._progress.get_renderable(), width)
