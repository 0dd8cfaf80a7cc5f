"""``lambdascope collect``: pull Lambda inventory, CloudWatch metrics and logs from AWS."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import click

from lambdascope.cli import db_path_of, note_rollup_backlog
from lambdascope.db import open_db
from lambdascope.timeutil import parse_duration, parse_timestamp, utcnow


def _utc(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value).astimezone(UTC)
    except ValueError:
        raise click.BadParameter(f"not a UTC timestamp: {value!r}", param_hint=flag) from None


class TerminalProgress:
    """A progress bar over the account x region x source parts on a terminal (stderr).

    The bar's label names the part that finished last (account, region, source, status);
    parts finish in worker threads, so updates are serialised.
    """

    def __init__(self, file: TextIO) -> None:
        self.file = file
        self._bar: Any = None
        self._lock = threading.Lock()

    def message(self, text: str) -> None:
        if self._bar is None:
            click.echo(text, file=self.file)

    def start(self, total: int) -> Callable[[Any], None]:
        def show(item: str | None) -> str | None:
            return item

        self._bar = click.progressbar(
            None,
            length=total,
            label="collecting",
            file=self.file,
            show_pos=True,
            item_show_func=show,
        )
        self._bar.__enter__()
        return self.part

    def part(self, result: Any) -> None:
        line = f"{result.account_id} {result.region} {result.source}: {result.status}"
        with self._lock:
            self._bar.update(1, line)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


@click.command()
@click.option("--profile", default=None, help="AWS profile (standard credential chain otherwise).")
@click.option("--region", "regions", multiple=True, help="Region to collect (repeatable).")
@click.option("--all-regions", is_flag=True, help="Every region where Lambda is enabled.")
@click.option(
    "--role-arn", "role_arns", multiple=True, help="Role to assume per account (repeatable)."
)
@click.option(
    "--no-default-account",
    is_flag=True,
    help="With --role-arn: skip the default credentials' own account.",
)
@click.option(
    "--since", default=None, help="Window back from now, e.g. 14d, 36h (default: resume)."
)
@click.option("--start", default=None, help="Window start, UTC ISO-8601.")
@click.option("--end", default=None, help="Window end, UTC ISO-8601 (default: now).")
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(["inventory", "metrics", "logs"]),
    help="Collect only these sources (repeatable).",
)
@click.option(
    "--logs-mode",
    type=click.Choice(["insights", "filter"]),
    default="insights",
    show_default=True,
    help="Logs Insights pushdown, or FilterLogEvents for small fleets.",
)
@click.option(
    "--endpoint-url", default=None, help="Endpoint for every AWS service (moto, LocalStack)."
)
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 64))
@click.pass_context
def collect(
    ctx: click.Context,
    profile: str | None,
    regions: tuple[str, ...],
    all_regions: bool,
    role_arns: tuple[str, ...],
    no_default_account: bool,
    since: str | None,
    start: str | None,
    end: str | None,
    only: tuple[str, ...],
    logs_mode: str,
    endpoint_url: str | None,
    concurrency: int,
) -> None:
    """Collect AWS Lambda inventory, CloudWatch metrics and REPORT statistics.

    Exit status 0 when every part succeeded, 2 when some part failed (see the summary).
    """
    from collectors.aws import CollectionAborted, CollectOptions, never, run_collection
    from lambdascope.scheduler import STOP_META_KEY

    if since is not None and start is not None:
        raise click.UsageError("use either --since or --start/--end, not both")
    try:
        since_delta = parse_duration(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    options = CollectOptions(
        profile=profile,
        regions=regions,
        all_regions=all_regions,
        role_arns=role_arns,
        include_default_account=not no_default_account,
        start=_utc(start, "--start"),
        end=_utc(end, "--end"),
        since=since_delta,
        only=only,
        logs_mode=logs_mode,
        endpoint_url=endpoint_url,
        concurrency=concurrency,
    )
    db = open_db(db_path_of(ctx))
    note_rollup_backlog(db)
    # A terminal gets a progress bar; anything else (cron, systemd, pipes) one line per part.
    bar = TerminalProgress(sys.stderr) if sys.stderr.isatty() else None

    def progress(message: str) -> None:
        if bar is not None:
            bar.message(message)
        else:
            click.echo(message, err=True)

    # Run by `schedule`/`serve`: their stop flag (SIGTERM/SIGINT) is checked between batches.
    flag = ctx.meta.get(STOP_META_KEY)
    stop = flag.is_set if flag is not None else never
    try:
        summary = run_collection(
            db,
            options,
            now=utcnow(),
            progress=progress,
            stop=stop,
            parts=bar.start if bar is not None else None,
        )
    except CollectionAborted as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()
    for line in summary.lines():
        click.echo(line)
    if summary.exit_code:
        failed = ", ".join(f"{r.account_id} {r.region} {r.source}" for r in summary.failed)
        click.echo(f"some parts failed: {failed or 'see above'}", err=True)
        ctx.exit(summary.exit_code)
