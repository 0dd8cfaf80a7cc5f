"""``lambdascope summary``: one line per function over a window, from the merged view."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from lambdascope import histogram, terminal
from lambdascope.cli import db_path_of, window_with_data
from lambdascope.db import StoreError, open_db
from lambdascope.queries import Filters, FunctionStats, function_stats
from lambdascope.timeutil import UNTIL_HELP, iso, parse_window, utcnow

EMPTY_MESSAGE = (
    "No data yet: run `lambdascope ingest <logs>` or `lambdascope collect` to fill the store."
)


@dataclass(frozen=True)
class SummaryRow:
    """One function over the window (all its memory sizes combined)."""

    function_name: str
    account_id: str
    region: str
    runtime: str | None
    architecture: str | None
    memory_mb: tuple[int, ...]
    invocations: int
    errors: int
    throttles: int
    timeouts: int
    out_of_memory: int
    cold_starts: int
    duration_p50_ms: float | None
    duration_p95_ms: float | None
    duration_p99_ms: float | None
    duration_max_ms: float | None
    max_memory_used_mb: int | None
    p99_memory_used_mb: float | None
    first_seen: int | None
    last_seen: int | None
    sources: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "function_name": self.function_name,
            "account_id": self.account_id,
            "region": self.region,
            "runtime": self.runtime,
            "architecture": self.architecture,
            "memory_mb": list(self.memory_mb),
            "invocations": self.invocations,
            "errors": self.errors,
            "throttles": self.throttles,
            "timeouts": self.timeouts,
            "out_of_memory": self.out_of_memory,
            "cold_starts": self.cold_starts,
            "duration_p50_ms": _r(self.duration_p50_ms),
            "duration_p95_ms": _r(self.duration_p95_ms),
            "duration_p99_ms": _r(self.duration_p99_ms),
            "duration_max_ms": _r(self.duration_max_ms),
            "max_memory_used_mb": self.max_memory_used_mb,
            "p99_memory_used_mb": _r(self.p99_memory_used_mb, 0),
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "sources": list(self.sources),
        }


def _r(value: float | None, digits: int = 1) -> float | int | None:
    if value is None:
        return None
    return round(value) if digits == 0 else round(value, digits)


def _cap(value: float | None, ceiling: float | None) -> float | None:
    """A histogram percentile never above the exact maximum."""
    if value is None or ceiling is None:
        return value
    return min(value, ceiling)


def _max(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def summarize(stats: list[FunctionStats]) -> list[SummaryRow]:
    """Combine the per-memory rows of each function into one row (order kept)."""
    groups: dict[int, list[FunctionStats]] = {}
    for s in stats:
        groups.setdefault(s.function_id, []).append(s)
    rows: list[SummaryRow] = []
    for parts in groups.values():
        first = parts[0]
        dur = histogram.merge(p.duration_hist for p in parts)
        mem = histogram.merge(p.memory_hist for p in parts)
        dmax = _max([p.duration_max_ms for p in parts])
        mmax = _max([p.max_memory_used_mb for p in parts])
        if dur:
            p50 = histogram.quantile(dur, 0.50)
            p95 = histogram.quantile(dur, 0.95)
            p99 = histogram.quantile(dur, 0.99)
        elif len(parts) == 1:
            p50, p95, p99 = first.duration_p50_ms, first.duration_p95_ms, first.duration_p99_ms
        else:  # CloudWatch statistics of several memory sizes: upper bounds
            p50 = _max([p.duration_p50_ms for p in parts])
            p95 = _max([p.duration_p95_ms for p in parts])
            p99 = _max([p.duration_p99_ms for p in parts])
        p99_mem = histogram.quantile(mem, 0.99) if mem else None
        active = [p for p in parts if p.invocations or p.log_invocations]
        # 0 is the store's "unknown memory" (logs without a memory size).
        memories = sorted({p.memory_mb for p in (active or parts) if p.memory_mb})
        rows.append(
            SummaryRow(
                function_name=first.function_name,
                account_id=first.account_id,
                region=first.region,
                runtime=first.runtime,
                architecture=first.architecture,
                memory_mb=tuple(memories),
                invocations=round(sum(p.invocations for p in parts)),
                errors=round(sum(p.errors for p in parts)),
                throttles=round(sum(p.throttles for p in parts)),
                timeouts=sum(p.timeouts for p in parts),
                out_of_memory=sum(p.out_of_memory for p in parts),
                cold_starts=sum(p.cold_starts for p in parts),
                duration_p50_ms=_cap(p50, dmax),
                duration_p95_ms=_cap(p95, dmax),
                duration_p99_ms=_cap(p99, dmax),
                duration_max_ms=dmax,
                max_memory_used_mb=mmax,
                p99_memory_used_mb=_cap(p99_mem, mmax),
                first_seen=min(
                    (p.first_seen for p in parts if p.first_seen is not None), default=None
                ),
                last_seen=_max([p.last_seen for p in parts]),
                sources=tuple(sorted({s for p in parts for s in p.sources})),
            )
        )
    return rows


# The columns left out first on a narrow terminal have a lower ``drop``.
_COLUMNS = (
    terminal.TableColumn("FUNCTION"),
    terminal.TableColumn("INVOCATIONS", "right"),
    terminal.TableColumn("ERRORS", "right"),
    terminal.TableColumn("TIMEOUTS", "right", drop=7),
    terminal.TableColumn("OOM", "right", drop=6),
    terminal.TableColumn("COLD", "right", drop=5),
    terminal.TableColumn("P50 MS", "right", drop=3),
    terminal.TableColumn("P95 MS", "right"),
    terminal.TableColumn("P99 MS", "right", drop=8),
    terminal.TableColumn("MAX MS", "right", drop=4),
    terminal.TableColumn("MEMORY MB", "right"),
    terminal.TableColumn("MAX USED", "right"),
    terminal.TableColumn("P99 USED", "right", drop=9),
    terminal.TableColumn("FIRST SEEN", drop=1),
    terminal.TableColumn("LAST SEEN", drop=2),
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _minute(epoch: int | None) -> str:
    text = iso(epoch)
    return "-" if text is None else text[:16].replace("T", " ") + "Z"


def table_cells(rows: list[SummaryRow]) -> list[list[str]]:
    """The table's cells as text; the location is shown when functions have one."""
    located = any(r.account_id or r.region for r in rows)
    body: list[list[str]] = []
    for r in rows:
        name = r.function_name
        if located:
            name += f" ({'/'.join(x for x in (r.account_id, r.region) if x)})"
        body.append(
            [
                name,
                f"{r.invocations:,}",
                f"{r.errors:,}",
                f"{r.timeouts:,}",
                f"{r.out_of_memory:,}",
                f"{r.cold_starts:,}",
                _ms(r.duration_p50_ms),
                _ms(r.duration_p95_ms),
                _ms(r.duration_p99_ms),
                _ms(r.duration_max_ms),
                ",".join(str(m) for m in r.memory_mb) or "-",
                "-" if r.max_memory_used_mb is None else str(r.max_memory_used_mb),
                "-" if r.p99_memory_used_mb is None else str(round(r.p99_memory_used_mb)),
                _minute(r.first_seen),
                _minute(r.last_seen),
            ]
        )
    return body


def render_table(
    rows: list[SummaryRow], width: int | None = None, color: bool = False
) -> tuple[str, list[str]]:
    """Aligned table (rich); with a terminal ``width`` the least needed columns are left
    out until it fits. Returns the text and the headers left out."""
    return terminal.render_table(_COLUMNS, table_cells(rows), width=width, color=color)


def render_csv(rows: list[SummaryRow]) -> str:
    """CSV with a header; memory sizes joined with ';'; text that a spreadsheet would
    run as a formula is neutralised (reports.tabular.csv_cell)."""
    from lambdascope.reports.tabular import csv_cell

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = list(SummaryRow.__dataclass_fields__)
    writer.writerow(keys)
    for r in rows:
        d = r.as_dict()
        d["memory_mb"] = ";".join(str(m) for m in r.memory_mb)
        d["sources"] = ";".join(r.sources)
        writer.writerow(["" if d[k] is None else csv_cell(d[k]) for k in keys])
    return out.getvalue()


def render_json(rows: list[SummaryRow], start: int, end: int) -> str:
    """``{"window": {...}, "functions": [...]}`` with ISO-8601 UTC times."""
    doc = {
        "window": {"start": iso(start), "end": iso(end)},
        "functions": [r.as_dict() for r in rows],
    }
    return json.dumps(doc, indent=2) + "\n"


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option("--since", default="14d", show_default=True, help="Window length (30m, 24h, 14d).")
@click.option("--until", default=None, help=UNTIL_HELP)
@click.option("--function", "functions", multiple=True, help="Only this function (repeatable).")
@click.option("--account", "accounts", multiple=True, help="Only this account id (repeatable).")
@click.option("--region", "regions", multiple=True, help="Only this region (repeatable).")
@click.pass_context
def summary(
    ctx: click.Context,
    fmt: str,
    since: str,
    until: str | None,
    functions: tuple[str, ...],
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
) -> None:
    """Per function: invocations, errors (every failed invocation, as CloudWatch's
    Errors counts them: timeouts and out-of-memory errors included), timeouts,
    out-of-memory errors, cold starts, duration percentiles, memory configured and used,
    first/last seen.

    Counts come from CloudWatch metrics where collected, distributions from logs.

    Example: lambdascope summary --since 7d --format table
    """
    from lambdascope.validate import filter_warnings

    try:
        start, end = parse_window(since, until, utcnow())
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    for warning in filter_warnings(accounts, regions):
        click.echo(warning, err=True)
    path = db_path_of(ctx)
    if not Path(path).exists():
        raise click.ClickException(
            f"no database at {path} (run `lambdascope ingest` or `collect` first)"
        )
    try:
        db = open_db(path, readonly=True)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        if db.conn.execute("SELECT 1 FROM functions LIMIT 1").fetchone() is None:
            click.echo(EMPTY_MESSAGE, err=True)
            return
        for name in functions:
            found = db.conn.execute(
                "SELECT 1 FROM functions WHERE function_name = ?", (name,)
            ).fetchone()
            if found is None:
                raise click.ClickException(f"unknown function: {name}")
        start, end = window_with_data(db, start, end, since, until)
        filters = Filters(account_ids=accounts, regions=regions, function_names=functions)
        wanted = ("duration_hist", "max_memory_used_hist")
        rows = summarize(function_stats(db, start, end, filters, histograms=wanted))
    finally:
        db.conn.close()
    if not rows:
        click.echo("No functions match these filters.", err=True)
        return
    if fmt == "json":
        click.echo(render_json(rows, start, end), nl=False)
    elif fmt == "csv":
        click.echo(render_csv(rows), nl=False)
    else:
        tty = sys.stdout.isatty()
        width = shutil.get_terminal_size().columns if tty else None
        text, hidden = render_table(rows, width=width, color=tty)
        click.echo(text, nl=False)
        if hidden:
            click.echo(
                f"note: {', '.join(hidden)} left out to fit {width} columns"
                " (--format csv or json has every column)",
                err=True,
            )
