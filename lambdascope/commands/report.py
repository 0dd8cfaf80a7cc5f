"""``lambdascope report memory|cost|stale|cold-starts`` and ``lambdascope power-tuning``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import click
from sqlite_utils import Database

from lambdascope.cli import db_path_of, window_with_data
from lambdascope.db import StoreError, open_db
from lambdascope.timeutil import UNTIL_HELP, parse_window, utcnow


def _open(ctx: click.Context) -> Database:
    path = db_path_of(ctx)
    if not Path(path).exists():
        raise click.ClickException(
            f"no database at {path} (run `lambdascope ingest` or `collect` first)"
        )
    try:
        return open_db(path, readonly=True)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


def _window(since: str, until: str | None) -> tuple[int, int]:
    try:
        return parse_window(since, until, utcnow())
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _filters(
    db: Database, functions: tuple[str, ...], regions: tuple[str, ...], accounts: tuple[str, ...]
) -> Any:
    from lambdascope.rightsizing import StatsFilter
    from lambdascope.validate import filter_warnings

    for warning in filter_warnings(accounts, regions):
        click.echo(warning, err=True)
    for name in functions:
        if (
            db.conn.execute("SELECT 1 FROM functions WHERE function_name = ?", (name,)).fetchone()
            is None
        ):
            raise click.ClickException(f"unknown function: {name}")
    return StatsFilter(functions, regions, accounts)


def _store_empty(db: Database) -> bool:
    return db.conn.execute("SELECT 1 FROM functions LIMIT 1").fetchone() is None


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
        click.echo(f"wrote {output}", err=True)


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--format",
            "fmt",
            type=click.Choice(["json", "csv", "md", "html"]),
            default="json",
            show_default=True,
        ),
        click.option(
            "--output",
            "-o",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Write to FILE instead of stdout.",
        ),
        click.option(
            "--since",
            default="14d",
            show_default=True,
            help="Window length before --until (e.g. 7d, 36h, 2w).",
        ),
        click.option("--until", default=None, help=UNTIL_HELP),
        click.option("--function", "functions", multiple=True, help="Only this function."),
        click.option("--region", "regions", multiple=True, help="Only this region."),
        click.option("--account", "accounts", multiple=True, help="Only this account id."),
    ]
    for option in reversed(options):
        func = option(func)
    return click.pass_context(func)


@click.group()
def report() -> None:
    """Reports: memory right-sizing, cost, stale functions, cold starts.

    Example: lambdascope report memory --format md --since 14d
    """


def _run(
    ctx: click.Context,
    kind: str,
    fmt: str,
    output: Path | None,
    since: str,
    until: str | None,
    functions: tuple[str, ...],
    regions: tuple[str, ...],
    accounts: tuple[str, ...],
    **extra: Any,
) -> None:
    from lambdascope import coldstarts, rightsizing, staleness
    from lambdascope.reports import build, render

    start, end = _window(since, until)
    db = _open(ctx)
    if _store_empty(db):
        click.echo(
            "The store has no functions yet: the report is empty "
            "(run `lambdascope ingest` or `collect` first).",
            err=True,
        )
    filters = _filters(db, functions, regions, accounts)
    if kind != "stale":  # the stale report looks back from now
        start, end = window_with_data(db, start, end, since, until)
    window = f"{since} ending {parse_timestamp_text(end)}"
    if kind == "memory":
        policy = rightsizing.Policy(
            extra["strategy"], extra["max_slowdown"], extra["max_cost_increase"]
        )
        recs = rightsizing.recommend_all(
            db,
            start,
            end,
            filters,
            min_invocations=extra["min_invocations"],
            free_tier=extra["free_tier"],
            policy=policy,
        )
        data = build.memory_report(recs, window, free_tier=extra["free_tier"])
        from lambdascope.evidence import compute_optimizer

        data.columns = list(data.columns)  # not the module's list: columns are added
        if compute_optimizer.attach(db, recs, data.rows, data.columns):
            data.summary.append(
                "Compute Optimizer: its latest collected answer per function, and why it"
                " differs from lambdascope's where it does"
            )
        from lambdascope import managed_instances

        if managed_instances.attach(db, data.rows, data.columns, start, end):
            data.summary.append(
                "Lambda Managed Instances: no memory advice; their capacity provider's CPU and"
                " memory utilisation (peak and mean) instead"
            )
        levels = _provisioned(db, start, end, functions, regions, accounts)
        if levels:
            from lambdascope.evidence import provisioned

            data.sections.append(provisioned.section(levels))
            data.summary.append(provisioned.price_note())
    elif kind == "provisioned-concurrency":
        from lambdascope.evidence import provisioned
        from lambdascope.reports import Report

        levels = _provisioned(db, start, end, functions, regions, accounts)
        data = Report(
            kind,
            provisioned.TITLE,
            [r.as_dict() for r in levels],
            provisioned.COLUMNS,
            [f"window: {window}; aliases or versions: {len(levels)}", provisioned.price_note()],
        )
    elif kind == "cost":
        stats = rightsizing.read_memory_stats(db, start, end, filters)
        data = build.cost_report(stats, window, float(end - start), free_tier=extra["free_tier"])
    elif kind == "cold-starts":
        stats = rightsizing.read_memory_stats(db, start, end, filters)
        data = build.coldstarts_report(
            coldstarts.analyse_all(stats, window_s=float(end - start)), window
        )
    else:
        data = build.stale_report(
            staleness.find_stale(
                db,
                end,
                filters,
                idle_days=extra["idle_days"],
                modified_days=extra["modified_days"],
            )
        )
    _emit(render(data, fmt), output)


def _provisioned(
    db: Database,
    start: int,
    end: int,
    functions: tuple[str, ...],
    regions: tuple[str, ...],
    accounts: tuple[str, ...],
) -> list[Any]:
    from lambdascope.evidence import provisioned

    return provisioned.recommend_all(
        db, start, end, function_names=functions, regions=regions, account_ids=accounts
    )


def parse_timestamp_text(epoch: int) -> str:
    from lambdascope.timeutil import iso

    return iso(epoch) or ""


_FREE_TIER = click.option(
    "--free-tier",
    is_flag=True,
    default=False,
    help="Take off the Lambda free tier (1M requests and 400,000 GB-s per account and"
    " month), prorated to the window and shared by each account's functions in"
    " proportion to their use [default: off, list prices].",
)


class Multiple(click.ParamType[float]):
    """A slowdown limit: ``1.25`` or ``1.25x`` (at least 1)."""

    name = "multiple"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip().lower().removesuffix("x").removesuffix("×")
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        if not number >= 1.0 or number == float("inf"):
            self.fail(f"{value!r} is not a multiple of 1 or more (e.g. 1.25 or 1.5x)", param, ctx)
        return number


class Fraction(click.ParamType[float]):
    """A cost increase: ``25%`` or ``0.25`` (0 or more)."""

    name = "fraction"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        scale = 100.0 if text.endswith("%") else 1.0
        try:
            number = float(text.removesuffix("%")) / scale
        except ValueError:
            number = float("nan")
        if not number >= 0.0 or number == float("inf"):
            self.fail(f"{value!r} is not a share of 0 or more (e.g. 25% or 0.25)", param, ctx)
        return number


@report.command()
@_common
@_FREE_TIER
@click.option(
    "--strategy",
    type=click.Choice(["cost", "balanced", "speed"]),
    default="balanced",
    show_default=True,
    help="cost: the cheapest safe size; balanced: the cheapest safe size whose expected"
    " duration stays within --max-slowdown of today's; speed: the fastest safe size whose"
    " cost rises at most --max-cost-increase.",
)
@click.option(
    "--max-slowdown",
    type=Multiple(),
    default="1.25",
    show_default=True,
    help="balanced: the expected duration may grow to this multiple of today's.",
)
@click.option(
    "--max-cost-increase",
    type=Fraction(),
    default="25%",
    show_default=True,
    help="speed: the cost may rise by this share (25% or 0.25).",
)
@click.option(
    "--min-invocations",
    default=50,
    show_default=True,
    type=click.IntRange(1),
    help="Fewer invocations in the window give insufficient-data.",
)
def memory(ctx: click.Context, **kw: Any) -> None:
    """Memory right-sizing: one answer per function, for its current memory size.

    Earlier sizes in the window are evidence and appear under `history`. Each answer
    says which strategy produced it and what the other two would pick.

    Example: lambdascope report memory --strategy speed --format html -o memory.html
    """
    _run(ctx, "memory", **kw)


@report.command(name="provisioned-concurrency")
@_common
def provisioned_concurrency(ctx: click.Context, **kw: Any) -> None:
    """Provisioned concurrency per alias or version: a level and its cost against on-demand.

    Raise when invocations spilled over to on-demand, lower when utilisation stays low;
    costs per 30 days at the configured level, the recommended one and on-demand.

    Example: lambdascope report provisioned-concurrency --format md --since 14d
    """
    _run(ctx, "provisioned-concurrency", **kw)


@report.command()
@_common
@_FREE_TIER
def cost(ctx: click.Context, **kw: Any) -> None:
    """Cost per function over the window and per 30 days.

    Example: lambdascope report cost --format csv --since 30d
    """
    _run(ctx, "cost", **kw)


@report.command(name="cold-starts")
@_common
def cold_starts(ctx: click.Context, **kw: Any) -> None:
    """Cold starts, INIT cost, timeouts, errors and throttles per function.

    Example: lambdascope report cold-starts --format md
    """
    _run(ctx, "cold-starts", **kw)


@report.command()
@_common
@click.option(
    "--idle-days",
    default=30,
    show_default=True,
    type=click.IntRange(1),
    help="Days without invocations that count as idle.",
)
@click.option(
    "--modified-days",
    default=30,
    show_default=True,
    type=click.IntRange(1),
    help="Days without a code or configuration change that count as not modified.",
)
def stale(ctx: click.Context, **kw: Any) -> None:
    """Stale functions, versions safe to delete, code storage per region.

    Example: lambdascope report stale --format md --idle-days 90
    """
    _run(ctx, "stale", **kw)


@click.command(name="power-tuning")
@click.argument("function_name")
@click.option("--since", default="14d", show_default=True)
@click.option("--until", default=None, help=UNTIL_HELP)
@click.option("--region", default=None)
@click.option("--account", default=None)
@click.option("--num", default=50, show_default=True, type=click.IntRange(5))
@click.option(
    "--strategy",
    type=click.Choice(["cost", "speed", "balanced"]),
    default="balanced",
    show_default=True,
    help="Power Tuning's strategy; the recommendation it centres on uses the same one.",
)
@click.pass_context
def power_tuning(
    ctx: click.Context,
    function_name: str,
    since: str,
    until: str | None,
    region: str | None,
    account: str | None,
    num: int,
    strategy: str,
) -> None:
    """Print the AWS Lambda Power Tuning input for FUNCTION_NAME around the recommendation.

    Example: lambdascope power-tuning checkout-api | aws stepfunctions start-execution ...
    """
    from lambdascope import rightsizing

    start, end = _window(since, until)
    db = _open(ctx)
    filters = _filters(
        db, (function_name,), (region,) if region else (), (account,) if account else ()
    )
    start, end = window_with_data(db, start, end, since, until)
    policy = rightsizing.Policy(cast("rightsizing.Strategy", strategy))
    recs = rightsizing.recommend_all(db, start, end, filters, policy=policy)
    if not recs:
        raise click.ClickException(f"no data for {function_name} in the last {since}")
    # one answer per function, at its current size; the busiest when several match
    rec = max(recs, key=lambda r: r.invocations)
    arn_row = db.conn.execute(
        "SELECT function_arn FROM functions WHERE function_name = ? AND account_id = ?"
        " AND region = ?",
        (rec.function_name, rec.account_id, rec.region),
    ).fetchone()
    arn = arn_row[0] if arn_row and arn_row[0] else None
    payload = rightsizing.power_tuning_input(rec, arn, num=num, strategy=strategy)
    if arn is None and not (rec.account_id and rec.region):
        click.echo("ARN unknown: fill in <region> / <account-id> in lambdaARN", err=True)
    click.echo(json.dumps(payload, indent=2))
