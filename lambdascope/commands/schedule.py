"""``lambdascope schedule`` and ``lambdascope serve``: keep the store fresh on a schedule.

The collect job runs the ``collect`` command in-process with the same AWS options (its
options are copied onto these commands when it is installed), so both stay in step.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click
from apscheduler.triggers.cron import CronTrigger

from lambdascope.alerts.jobs import AlertSettings
from lambdascope.cli import db_path_of
from lambdascope.commands.alerts import ALERT_KWARGS, alert_options, alert_settings
from lambdascope.db import StoreError, open_db
from lambdascope.scheduler import (
    MIN_KEEP_RAW,
    STOP_META_KEY,
    Job,
    JobInterrupted,
    ScheduleError,
    ScheduleLock,
    StopFlag,
    build_scheduler,
    daily_trigger,
    make_trigger,
    prune_store,
    record_run,
    run_blocking,
    run_once,
    stop_on_signals,
)
from lambdascope.tiers import SpanError, Spans, check_spans
from lambdascope.timeutil import parse_duration, to_epoch

JOB_NAMES = ("collect", "prune", "report", "digest")


def _log(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    click.echo(f"{stamp} {message}", err=True)


def _collect_command() -> click.Command | None:
    # Looked up by name: the collect command ships with the AWS collectors.
    try:
        command = getattr(importlib.import_module("lambdascope.commands.collect"), "collect", None)
    except ImportError:
        return None
    return command if isinstance(command, click.Command) else None


def _alerts_after(db_path: Path, alerts: AlertSettings | None) -> str:
    """The alert check after a collection: one log fragment, never an exception."""
    if alerts is None or not alerts.enabled:
        return ""
    from lambdascope.alerts.jobs import run_alert_job

    try:
        return "; alerts: " + run_alert_job(db_path, alerts)
    except Exception as exc:  # alerting problems never fail the collection
        return f"; alerts: failed: {exc}"


def _collect_job(
    ctx: click.Context, collect_kwargs: dict[str, Any], alerts: AlertSettings | None = None
) -> Callable[[StopFlag], str]:
    command = _collect_command()

    def run(stop: StopFlag) -> str:
        if command is None:
            raise click.ClickException("the collect command is not installed")
        stop.check()
        # The collectors commit per batch and check the flag between batches; watermarks
        # advance only for sources that completed, so the next run (or the next start
        # after a stop) resumes where this one ended.
        ctx.meta[STOP_META_KEY] = stop
        try:
            ctx.invoke(command, **collect_kwargs)
        except click.exceptions.Exit as exc:
            if stop.is_set():
                raise JobInterrupted("stop requested") from None
            if exc.exit_code:
                raise click.ClickException(
                    f"some parts failed (collect exit status {exc.exit_code});"
                    " the rest was stored, see collection_runs"
                    + _alerts_after(db_path_of(ctx), alerts)
                ) from None
        if stop.is_set():
            raise JobInterrupted("stop requested")
        return "finished (see collection_runs)" + _alerts_after(db_path_of(ctx), alerts)

    return run


def _prune_job(db_path: Path, spans: Spans, keep_raw: str) -> Callable[[StopFlag], str]:
    def run(stop: StopFlag) -> str:
        db = open_db(db_path)
        try:
            # raw rows, then the hourly tier, then the pages freed, a short step at a time
            summary = prune_store(db, spans, now=datetime.now(UTC), stop=stop)
        finally:
            db.conn.close()
        return summary.line(keep_raw)

    return run


def retention_spans(
    keep_raw: str, keep_hourly: str, keep_daily: str | None, pack_after: str = "14d"
) -> Spans:
    """The three ``--keep-*`` options and ``--pack-after`` ('never' to not pack) as Spans;
    click.UsageError (one line) when one is not a duration or they make no sense together."""
    try:
        spans = Spans(
            parse_duration(keep_raw),
            parse_duration(keep_hourly),
            None if keep_daily is None else parse_duration(keep_daily),
            None if pack_after.strip().lower() == "never" else parse_duration(pack_after),
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if spans.keep_raw < MIN_KEEP_RAW:
        raise click.UsageError(
            f"--keep-raw {keep_raw} would delete raw invocations that late timeout and"
            f" out-of-memory lines are still matched against: keep at least"
            f" {MIN_KEEP_RAW.days}d (hourly facts are kept whatever the value)"
        )
    try:
        check_spans(spans, MIN_KEEP_RAW)
    except SpanError as exc:
        raise click.UsageError(str(exc)) from None
    return spans


def report_file_names(report_dir: Path, day: date) -> tuple[Path, Path]:
    """The daily memory report files: ``memory-report-YYYY-MM-DD.html`` and ``.csv``."""
    stem = f"memory-report-{day.isoformat()}"
    return report_dir / f"{stem}.html", report_dir / f"{stem}.csv"


def _report_job(ctx: click.Context, db_path: Path, report_dir: Path) -> Callable[[StopFlag], str]:
    def run(stop: StopFlag) -> str:
        group = getattr(importlib.import_module("lambdascope.commands.report"), "report", None)
        memory = group.get_command(ctx, "memory") if isinstance(group, click.Group) else None
        if not isinstance(memory, click.Command):
            raise click.ClickException("the memory report is not installed")
        now = datetime.now(UTC)
        report_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for path in report_file_names(report_dir, now.date()):
            stop.check()
            # Through the command's own flags, exactly as `report memory` is run by hand.
            args = ["--format", path.suffix.lstrip("."), "--output", str(path)]
            with memory.make_context("memory", args, parent=ctx) as sub_ctx:
                memory.invoke(sub_ctx)
            written.append(path.name)
        db = open_db(db_path)
        try:
            record_run(
                db,
                "report",
                started_at=to_epoch(now),
                finished_at=to_epoch(datetime.now(UTC)),
                status="ok",
                items=len(written),
                message="wrote " + ", ".join(written),
            )
        finally:
            db.conn.close()
        return "wrote " + ", ".join(str(report_dir / name) for name in written)

    return run


def build_jobs(
    ctx: click.Context,
    *,
    every: str | None,
    cron: str | None,
    keep_raw: str,
    report_dir: Path | None,
    only: tuple[str, ...],
    collect_kwargs: dict[str, Any],
    alerts: AlertSettings | None = None,
    keep_hourly: str = "90d",
    keep_daily: str | None = None,
    pack_after: str = "14d",
) -> list[Job]:
    """The jobs of one schedule, in the order ``--once`` runs them. With ``alerts``
    enabled, the alert check runs after each collection and the digest weekly."""
    db_path = db_path_of(ctx)
    try:
        trigger = make_trigger(every, cron)
    except (ScheduleError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    spans = retention_spans(keep_raw, keep_hourly, keep_daily, pack_after)
    wanted = set(only or JOB_NAMES)
    jobs: list[Job] = []
    if "collect" in wanted:
        if _collect_command() is None:
            raise click.ClickException("the collect command is not installed")
        jobs.append(Job("collect", _collect_job(ctx, collect_kwargs, alerts), trigger))
    if "prune" in wanted:
        jobs.append(Job("prune", _prune_job(db_path, spans, keep_raw), daily_trigger(hour=3)))
    if "report" in wanted and report_dir is not None:
        jobs.append(Job("report", _report_job(ctx, db_path, report_dir), daily_trigger(hour=6)))
    if "digest" in wanted and alerts is not None and alerts.enabled:
        from lambdascope.alerts.jobs import run_alert_job

        jobs.append(
            Job(
                "digest",
                lambda stop: run_alert_job(db_path, alerts, digest=True),
                CronTrigger(day_of_week="mon", hour=7, timezone=UTC),
            )
        )
    if not jobs:
        raise click.UsageError("no job to run (the report job needs --report-dir)")
    return jobs


def _common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--every", default=None, help="Collect at this interval, e.g. 15m [default: 1h]."
        ),
        click.option("--cron", default=None, help='Collect on a crontab in UTC, e.g. "0 * * * *".'),
        click.option(
            "--keep-raw",
            default="14d",
            show_default=True,
            help="Prune raw invocation rows older than this, at least 1d (hourly facts are"
            " kept; pruned hours are sealed so re-ingested logs are not counted twice).",
        ),
        click.option(
            "--keep-hourly",
            default="90d",
            show_default=True,
            help="Keep hourly facts and metrics this long, at least --keep-raw; older days"
            " are kept as daily rows (totals, daily percentiles, right-sizing unchanged).",
        ),
        click.option(
            "--keep-daily",
            default=None,
            help="Delete daily rows older than this, at least --keep-hourly [default: keep"
            " for ever].",
        ),
        click.option(
            "--pack-after",
            default="14d",
            show_default=True,
            help="Pack the hours of days older than this (under half the space, same"
            " answers); 'never' keeps them as rows.",
        ),
        click.option(
            "--report-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Write the memory report (html + csv, dated) here once a day.",
        ),
        click.option(
            "--job",
            "only",
            multiple=True,
            type=click.Choice(JOB_NAMES),
            help="Run only these jobs (repeatable) [default: all].",
        ),
        *alert_options(),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def serve_alert_settings(mine: dict[str, Any]) -> AlertSettings:
    """``serve``'s alert settings: messages link to its own dashboard unless
    ``--dashboard-url`` says otherwise."""
    from dashboards.server import url_of  # IPv6 hosts in brackets

    given = {k: v for k, v in mine.items() if v is not None}
    own = url_of(mine["host"], mine["port"]).rstrip("/")
    return alert_settings({"dashboard_url": own, **given})


def _split_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    own = {"every", "cron", "keep_raw", "keep_hourly", "keep_daily", "pack_after", "report_dir"}
    own |= {"only"}
    own |= {"once", "host", "port", "debug"}
    own |= ALERT_KWARGS
    mine = {k: v for k, v in kwargs.items() if k in own}
    return mine, {k: v for k, v in kwargs.items() if k not in own}


@click.command()
@_common_options
@click.option("--once", is_flag=True, help="Run every job once and exit (for cron/systemd timers).")
@click.pass_context
def schedule(ctx: click.Context, /, **kwargs: Any) -> None:
    """Run collection, pruning and reports on a schedule until SIGTERM/SIGINT.

    Only one schedule per database: a second one refuses to start. On SIGTERM the
    running job finishes its current batch; the next start resumes from the watermarks.

    Example: lambdascope schedule --every 1h --region eu-west-1 --report-dir ./reports
    """
    mine, collect_kwargs = _split_kwargs(kwargs)
    jobs = build_jobs(
        ctx,
        every=mine["every"],
        cron=mine["cron"],
        keep_raw=mine["keep_raw"],
        keep_hourly=mine["keep_hourly"],
        keep_daily=mine["keep_daily"],
        pack_after=mine["pack_after"],
        report_dir=mine["report_dir"],
        only=mine["only"],
        collect_kwargs=collect_kwargs,
        alerts=alert_settings(mine),
    )
    lock = ScheduleLock(db_path_of(ctx))
    try:
        lock.acquire()
    except ScheduleError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        open_db(db_path_of(ctx)).conn.close()
        if mine["once"]:
            with stop_on_signals(StopFlag(), _log) as stop:
                ok = run_once(jobs, stop, _log)
            if not ok:
                raise click.ClickException("a job failed (see above)")
            return
        run_blocking(jobs, _log)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        lock.release()


def _server_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The dashboard's own --host, --port, --threads, --auth and --no-auth."""
    from lambdascope.commands.dashboard import server_options

    return server_options(func)


@click.command()
@_common_options
@_server_options
@click.pass_context
def serve(ctx: click.Context, /, **kwargs: Any) -> None:
    """Serve the dashboard and run the collection job in the same process.

    Example: lambdascope serve --every 1h --region eu-west-1
    """
    from lambdascope.commands.dashboard import server_settings, start_server

    # The address and auth are checked before anything starts (host and port stay for
    # the settings that name the dashboard's address).
    settings, warnings = server_settings(
        kwargs["host"],
        kwargs["port"],
        kwargs.pop("threads"),
        kwargs.pop("auth"),
        kwargs.pop("no_auth"),
    )
    mine, collect_kwargs = _split_kwargs(kwargs)
    jobs = build_jobs(
        ctx,
        every=mine["every"],
        cron=mine["cron"],
        keep_raw=mine["keep_raw"],
        keep_hourly=mine["keep_hourly"],
        keep_daily=mine["keep_daily"],
        pack_after=mine["pack_after"],
        report_dir=mine["report_dir"],
        only=mine["only"],
        collect_kwargs=collect_kwargs,
        alerts=serve_alert_settings(mine),
    )
    db_path = db_path_of(ctx)
    lock = ScheduleLock(db_path)
    try:
        lock.acquire()
    except ScheduleError as exc:
        raise click.ClickException(str(exc)) from None
    stop = StopFlag()
    scheduler = build_scheduler(jobs, stop, _log, background=True)

    def _stop_server() -> None:
        # waitress's loop ends on KeyboardInterrupt (SIGINT's default too).
        raise KeyboardInterrupt

    try:
        open_db(db_path).conn.close()
        for line in warnings:
            _log(line)
        # Bound before the jobs start: a taken port or an unreadable store ends here.
        server = start_server(db_path, settings, _log)
        now = datetime.now(UTC)
        for job in jobs:
            scheduler.modify_job(job.name, next_run_time=now)
        with stop_on_signals(stop, _log, _stop_server):
            scheduler.start()
            with contextlib.suppress(KeyboardInterrupt):
                server.run()
        # The running job finishes its current batch before the process exits.
        if scheduler.running:
            scheduler.shutdown(wait=True)
        _log("serve stopped")
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        stop.set()
        if scheduler.running:
            scheduler.shutdown(wait=True)
        lock.release()


def _adopt_collect_options() -> None:
    """Give ``schedule``/``serve`` the same AWS options as ``collect`` (when installed)."""
    command = _collect_command()
    if command is None:
        return
    for target in (schedule, serve):
        # The cost preview options describe one run; a schedule keeps --max-cost only.
        taken = {p.name for p in target.params} | {"plan_only", "output_format", "schedule_every"}
        for param in command.params:
            if param.name not in taken and param.name != "help":
                target.params.append(param)


_adopt_collect_options()
