"""``lambdascope ingest``: load Lambda runtime logs (files, dirs, .gz, stdin) into the store."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from lambdascope.cli import db_path_of, note_rollup_backlog
from lambdascope.db import open_db

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

    def show(result: IngestResult) -> None:
        click.echo("\r" + progress_line(result), err=True, nl=False)

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
        click.echo("", err=True)
    for path in result.without_events:
        click.echo(
            f"warning: no Lambda REPORT or timeout line in {path}: nothing stored for it",
            err=True,
        )
    for path, error in result.unreadable:
        click.echo(f"Error: cannot read {path}: {error}", err=True)
    click.echo(result.summary_line())
    if result.unreadable:
        sys.exit(1)


def progress_line(result: IngestResult, width: int = 24) -> str:
    """The terminal progress bar: share of the bytes to read, then the running totals."""
    counts = f"{result.files:,} files, {result.lines:,} lines, {result.reports:,} reports"
    if result.bytes_total <= 0:  # stdin: nothing to measure against
        return counts
    share = min(result.bytes_done / result.bytes_total, 1.0)
    filled = round(share * width)
    return (
        f"[{'#' * filled}{'-' * (width - filled)}] {share:4.0%}"
        f" {result.bytes_done / 1e6:,.0f}/{result.bytes_total / 1e6:,.0f} MB  {counts}"
    )
