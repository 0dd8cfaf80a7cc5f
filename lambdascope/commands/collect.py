"""``lambdascope collect``: pull Lambda inventory, CloudWatch metrics and logs from AWS."""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from lambdascope.cli import db_path_of, note_rollup_backlog
from lambdascope.db import open_db
from lambdascope.terminal import RateColumn, frame_text, terminal_console
from lambdascope.timeutil import parse_duration, parse_timestamp, utcnow


def _utc(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value).astimezone(UTC)
    except ValueError:
        raise click.BadParameter(f"not a UTC timestamp: {value!r}", param_hint=flag) from None


def _account_ids(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    for value in values:
        if not re.fullmatch(r"\d{12}", value):
            raise click.BadParameter(f"not a 12-digit AWS account id: {value!r}")
    return values


def _check_plan(
    ctx: click.Context,
    db: Any,
    options: Any,
    every_s: int,
    plan_only: bool,
    max_cost: float | None,
    output_format: str,
) -> None:
    """Print the plan (--plan) and/or refuse a run estimated above --max-cost (exit 3)."""
    from collectors.aws import CollectionAborted
    from collectors.plan import plan_collection

    try:
        plan = plan_collection(db, options, now=utcnow(), schedule_every_s=every_s)
    except CollectionAborted as exc:
        raise click.ClickException(str(exc)) from None
    if plan_only:
        if output_format == "json":
            payload = plan.to_dict() | {"max_cost_usd": max_cost}
            click.echo(json.dumps(payload, indent=2, sort_keys=True))
        else:
            for line in plan.lines():
                click.echo(line)
    over = max_cost is not None and plan.estimated_cost_usd > max_cost
    if over:
        click.echo(
            f"estimated AWS charge ${plan.estimated_cost_usd:.4f} is above --max-cost"
            f" ${max_cost:.4f}: not collecting",
            err=True,
        )
        ctx.exit(3)
    if plan_only:
        ctx.exit(0)


class TerminalProgress:
    """Progress on a terminal (stderr), drawn by rich: an overall bar over the account x
    region x source parts (done/total, parts/s, elapsed, ETA) and, under it, one bar per
    account x region over its sources, redrawn in place.

    Parts finish in worker threads, so updates are serialised. An account x region line
    appears when its first part finishes; with more of them than the terminal has rows,
    the most recently updated ones are shown.
    """

    BAR_WIDTH = 24

    def __init__(self, console: Console, sources: int) -> None:
        self.console = console
        self.sources = max(sources, 1)
        self.targets: dict[tuple[str, str], list[str]] = {}  # -> "source status" per part
        self._overall = Progress(
            TextColumn("collecting"),
            BarColumn(bar_width=self.BAR_WIDTH),
            MofNCompleteColumn(),
            TextColumn("parts"),
            RateColumn("parts"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self._pairs = Progress(
            TextColumn("  {task.description:<28}"),
            BarColumn(bar_width=self.BAR_WIDTH),
            MofNCompleteColumn(),
            TextColumn(
                "{task.fields[parts]}", table_column=Column(no_wrap=True, overflow="ellipsis")
            ),
            console=console,
        )
        self._overall_task = self._overall.add_task("collecting", total=0)
        self._pair_tasks: dict[tuple[str, str], TaskID] = {}
        self._live: Live | None = None
        self._lock = threading.Lock()

    def message(self, text: str) -> None:
        with self._lock:
            if self._live is None:
                self.console.print(text, markup=False, highlight=False)

    def start(self, total: int) -> Callable[[Any], None]:
        with self._lock:
            self._overall.update(self._overall_task, total=total)
            self._overall.start_task(self._overall_task)
            self._live = Live(
                console=self.console,
                get_renderable=lambda: self.frame(self.console.size.height),
                refresh_per_second=4,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self.part

    def part(self, result: Any) -> None:
        with self._lock:
            key = (str(result.account_id), str(result.region))
            parts = self.targets.pop(key, [])  # most recently updated last
            parts.append(f"{result.source} {result.status}")
            self.targets[key] = parts
            if key not in self._pair_tasks:
                self._pair_tasks[key] = self._pairs.add_task(
                    f"{key[0]} {key[1]}", total=self.sources, parts=""
                )
            self._pairs.update(self._pair_tasks[key], completed=len(parts), parts=", ".join(parts))
            self._overall.advance(self._overall_task)

    def frame(self, rows: int) -> Group:
        """What is drawn: the overall bar, then up to ``rows - 1`` account x region bars."""
        shown = list(self.targets)
        room = max(rows - 2, 1)
        more: list[Text] = []
        if len(shown) > room:
            more = [Text(f"  ... {len(shown) - room + 1} more account x region pairs")]
            shown = shown[-(room - 1) :] if room > 1 else []
        by_id = {task.id: task for task in self._pairs.tasks}
        tasks = [by_id[self._pair_tasks[key]] for key in shown]
        return Group(
            self._overall.make_tasks_table(self._overall.tasks),
            *more,
            self._pairs.make_tasks_table(tasks),
        )

    def lines(self, rows: int, width: int = 120) -> list[str]:
        """The plain text of :meth:`frame`."""
        with self._lock:
            return frame_text(self.frame(rows), width)

    def close(self) -> None:
        with self._lock:
            if self._live is not None:
                self._live.stop()  # leaves the last frame on screen
            self._live = None


@click.command()
@click.option("--profile", default=None, help="AWS profile (standard credential chain otherwise).")
@click.option("--region", "regions", multiple=True, help="Region to collect (repeatable).")
@click.option(
    "--all-regions", is_flag=True, help="Every region each account has enabled (asked per account)."
)
@click.option(
    "--role-arn", "role_arns", multiple=True, help="Role to assume per account (repeatable)."
)
@click.option(
    "--no-default-account",
    is_flag=True,
    help="With --role-arn or --org-role-name: skip the default credentials' own account.",
)
@click.option(
    "--org-role-name",
    default=None,
    help="Collect every ACTIVE account of the AWS organisation through this role"
    " (e.g. OrganizationAccountAccessRole).",
)
@click.option(
    "--org-exclude",
    "org_exclude",
    multiple=True,
    callback=_account_ids,
    help="With --org-role-name: skip this account id (repeatable).",
)
@click.option("--external-id", default=None, help="ExternalId for every role assumed.")
@click.option(
    "--role-duration",
    "role_duration_s",
    default=None,
    type=click.IntRange(900, 43200),
    help="Seconds each assumed-role session lasts before it is renewed (AWS default 3600;"
    " at most 3600 when the default credentials are themselves a role).",
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
    type=click.Choice(["insights", "filter", "athena"]),
    default="insights",
    show_default=True,
    help="Logs Insights pushdown, FilterLogEvents for small fleets, or Athena over a"
    " Firehose archive in S3.",
)
@click.option("--athena-table", default=None, help="Athena mode: DATABASE.TABLE of the archive.")
@click.option(
    "--athena-output", default=None, help="Athena mode: s3://bucket/prefix/ for query results."
)
@click.option("--athena-workgroup", default="primary", show_default=True)
@click.option(
    "--metric-set",
    type=click.Choice(["lean", "full"]),
    default="lean",
    show_default=True,
    help="lean: only what logs cannot give, for active functions, on a cadence;"
    " full: all 14 metrics of every function each run.",
)
@click.option(
    "--endpoint-url", default=None, help="Endpoint for every AWS service (moto, LocalStack)."
)
@click.option(
    "--concurrency",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Accounts, then account x region pairs, collected in parallel.",
)
@click.option(
    "--plan", "plan_only", is_flag=True, help="Print what a run would do and cost; collect nothing."
)
@click.option(
    "--max-cost",
    type=click.FloatRange(min=0),
    default=None,
    help="Refuse a run whose estimated AWS charge (USD) is higher.",
)
@click.option(
    "--schedule-every",
    default="1h",
    show_default=True,
    help="Interval of the schedule the monthly estimate of --plan assumes.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output of --plan.",
)
@click.pass_context
def collect(
    ctx: click.Context,
    profile: str | None,
    regions: tuple[str, ...],
    all_regions: bool,
    role_arns: tuple[str, ...],
    no_default_account: bool,
    org_role_name: str | None,
    org_exclude: tuple[str, ...],
    external_id: str | None,
    role_duration_s: int | None,
    since: str | None,
    start: str | None,
    end: str | None,
    only: tuple[str, ...],
    logs_mode: str,
    athena_table: str | None,
    athena_output: str | None,
    athena_workgroup: str,
    metric_set: str,
    endpoint_url: str | None,
    concurrency: int,
    plan_only: bool,
    max_cost: float | None,
    schedule_every: str,
    output_format: str,
) -> None:
    """Collect AWS Lambda inventory, CloudWatch metrics and REPORT statistics.

    Exit status 0 when every part succeeded, 2 when some part failed (see the summary).
    With --plan nothing is collected: the plan is printed (exit 3 when its estimate is above
    --max-cost); without it, --max-cost refuses (exit 3) a run estimated above it.

    Example: lambdascope collect --region eu-west-1 --plan --max-cost 0.50
    """
    from collectors.aws import CollectionAborted, CollectOptions, never, run_collection
    from lambdascope.scheduler import STOP_META_KEY

    if since is not None and start is not None:
        raise click.UsageError("use either --since or --start/--end, not both")
    if org_exclude and not org_role_name:
        raise click.UsageError("--org-exclude needs --org-role-name")
    # AssumeRole's documented ExternalId: 2-1,224 characters of [\w+=,.@:/-].
    if external_id is not None and not re.fullmatch(r"[\w+=,.@:/-]{2,1224}", external_id):
        raise click.BadParameter(
            "2 to 1224 letters, digits or +=,.@:/-_ characters", param_hint="--external-id"
        )
    try:
        since_delta = parse_duration(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    if since_delta is not None and since_delta.total_seconds() < 1:
        raise click.BadParameter(f"{since} is an empty window", param_hint="--since")
    if logs_mode == "athena":
        from collectors.athena import AthenaSetupError, check_s3_uri, check_table_name

        try:
            check_table_name(athena_table or "")
            check_s3_uri(athena_output or "", "--athena-output")
        except AthenaSetupError as exc:
            raise click.UsageError(str(exc)) from None
    options = CollectOptions(
        profile=profile,
        regions=regions,
        all_regions=all_regions,
        role_arns=role_arns,
        include_default_account=not no_default_account,
        org_role_name=org_role_name,
        org_exclude=org_exclude,
        external_id=external_id,
        role_duration_s=role_duration_s,
        start=_utc(start, "--start"),
        end=_utc(end, "--end"),
        since=since_delta,
        only=only,
        logs_mode=logs_mode,
        athena_table=athena_table,
        athena_output=athena_output,
        athena_workgroup=athena_workgroup,
        metric_set=metric_set,
        endpoint_url=endpoint_url,
        concurrency=concurrency,
    )
    try:
        every = parse_duration(schedule_every)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--schedule-every") from None
    if every.total_seconds() < 60:
        raise click.BadParameter("must be at least 1m", param_hint="--schedule-every")
    db = open_db(db_path_of(ctx))
    if plan_only or max_cost is not None:
        _check_plan(
            ctx, db, options, int(every.total_seconds()), plan_only, max_cost, output_format
        )
    note_rollup_backlog(db)
    # A terminal gets a progress bar; anything else (cron, systemd, pipes) one line per part.
    bar = (
        TerminalProgress(terminal_console(sys.stderr), len(options.sources()))
        if sys.stderr.isatty()
        else None
    )

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
        failed = ", ".join(
            " ".join(part for part in (r.account_id, r.region, r.source) if part)
            for r in summary.failed
        )
        click.echo(f"some parts failed: {failed or 'see above'}", err=True)
        ctx.exit(summary.exit_code)
