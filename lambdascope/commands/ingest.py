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
    from sqlite_utils import Database

    from collectors.local import IngestResult


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--endpoint-url", default=None, help="S3 endpoint for s3:// paths (moto, LocalStack, MinIO)."
)
@click.option(
    "--function",
    "function_name",
    default=None,
    help="Function name for files without a /aws/lambda/<name> envelope [default: the"
    " file's directory name; required for stdin without envelopes].",
)
@click.option("--account", "account_id", default="", help="AWS account id of the logs.")
@click.option("--region", default="", help="AWS region of the logs.")
@click.option(
    "--architecture",
    type=click.Choice(["x86_64", "arm64"]),
    default=None,
    help="Architecture of the functions (prices their duration) [default: x86_64 for new"
    " functions]; applied to known ones too, unless the AWS inventory says otherwise.",
)
@click.pass_context
def ingest(
    ctx: click.Context,
    paths: tuple[str, ...],
    endpoint_url: str | None,
    function_name: str | None,
    account_id: str,
    region: str,
    architecture: str | None,
) -> None:
    """Ingest Lambda runtime logs from PATHS (files, directories, .gz, - for stdin,
    s3://bucket/prefix/ with the standard AWS credential chain).

    Idempotent and resumable: a file already ingested adds nothing, a file that grew is
    read from where it stopped, an interrupted run is completed by running it again.

    Objects in S3 are identified by key and ETag: a re-run reads only new or replaced ones.

    Lambda Insights performance events among them (/aws/lambda-insights envelopes, JSON
    lines) are stored as `lambdascope insights import` stores them.

    Example: lambdascope ingest tests/data/logs/sample && lambdascope summary --since 1000d
    """
    from collectors.local import UNNAMED, ingest_paths
    from lambdascope.validate import account_warning, function_name_warning, region_warning

    for warning in (
        account_warning(account_id),
        region_warning(region),
        function_name_warning(function_name),
    ):
        if warning is not None:
            click.echo(warning, err=True)
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

    s3_uris = [p for p in paths if p.startswith("s3://")]
    paths = tuple(p for p in paths if not p.startswith("s3://"))  # local ones
    result = ingest_paths(
        db,
        paths,
        function_name=function_name,
        account_id=account_id,
        region=region,
        architecture=architecture or "x86_64",
        progress=show if tty else None,
    )
    if s3_uris:
        from collectors.s3 import S3AccessError, ingest_s3

        try:
            ingest_s3(
                db,
                s3_uris,
                function_name=function_name,
                account_id=account_id,
                region=region,
                architecture=architecture or "x86_64",
                endpoint_url=endpoint_url,
                progress=show if tty else None,
                result=result,
            )
        except S3AccessError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
    if tty:
        show(result, last=True)
    for path in result.without_events:
        click.echo(
            f"warning: no Lambda REPORT or timeout line in {path}: nothing stored for it",
            err=True,
        )
    for path, error in result.unreadable:
        click.echo(f"Error: cannot read {path}: {error}", err=True)
    # where names were guessed (a folder) or read (a log group); --function needs no line
    stored = {
        n: src
        for n, src in result.name_sources.items()
        if n in result.functions and src != "--function"
    }
    for line in name_lines(stored):
        click.echo(line, err=True)
    if architecture is not None:
        names = result.functions | ({function_name} if function_name else set())
        for note in _apply_architecture(db, names, account_id, region, architecture):
            click.echo(f"note: {note}", err=True)
    click.echo(result.summary_line())
    unnamed = result.skipped.get(UNNAMED, 0)
    if unnamed:
        click.echo(
            f"Error: {unnamed:,} events read from stdin have no function: give --function"
            " NAME (only CloudWatch subscription / Firehose envelopes name their own)",
            err=True,
        )
    if result.unreadable or unnamed:
        sys.exit(1)


def name_lines(sources: dict[str, str], shown: int = 5) -> list[str]:
    """One line per origin of the function names (``--function``, a log group, a
    folder), naming the functions, so a wrong guess is seen at once."""
    by_source: dict[str, list[str]] = {}
    for name, source in sorted(sources.items()):
        by_source.setdefault(source, []).append(name)
    lines = []
    for source, names in sorted(by_source.items()):
        listed = ", ".join(names[:shown]) + (
            f" and {len(names) - shown:,} more" if len(names) > shown else ""
        )
        hint = ""
        if source.startswith("the folder"):
            hint = " (give --function NAME to choose; `lambdascope function rename` fixes it)"
        lines.append(f"names: {listed} from {source}{hint}")
    return lines


def _apply_architecture(
    db: Database, names: set[str], account_id: str, region: str, architecture: str
) -> list[str]:
    from lambdascope.catalog import CatalogError, apply_architecture, find_function

    notes = []
    for name in sorted(names):
        try:
            found = find_function(db, name, account_id, region)
        except CatalogError:
            continue
        note = apply_architecture(db, found, architecture)
        if note:
            notes.append(note)
    return notes


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
