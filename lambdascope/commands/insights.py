"""``lambdascope insights import FILE...|-``: Lambda Insights performance events."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lambdascope.cli import db_path_of
from lambdascope.db import StoreError, open_db


@click.group()
def insights() -> None:
    """Lambda Insights telemetry (the /aws/lambda-insights log group).

    Example: lambdascope insights import insights-export.json.gz
    """


def _chunks(paths: tuple[str, ...]) -> list[tuple[str, bytes]]:
    out = []
    for path in paths:
        try:
            if path == "-":
                out.append((path, sys.stdin.buffer.read()))
            elif Path(path).is_dir():
                for child in sorted(p for p in Path(path).rglob("*") if p.is_file()):
                    out.append((str(child), child.read_bytes()))
            else:
                out.append((path, Path(path).read_bytes()))
        except OSError as exc:
            raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from None
    return out


@insights.command(name="import")
@click.argument("paths", nargs=-1, required=True, metavar="FILE...|-")
@click.option("--account", default="", help="Account id of the functions [default: unknown].")
@click.option("--region", default="", help="Region of the functions [default: unknown].")
@click.pass_context
def import_events(ctx: click.Context, paths: tuple[str, ...], account: str, region: str) -> None:
    """Store Lambda Insights performance events: their CPU time narrows the projected
    durations of memory recommendations.

    Reads JSON lines of events, CloudWatch Logs subscription envelopes (gzip'd or not)
    and `aws logs filter-log-events` output; files, folders or stdin. Importing the same
    events again adds nothing.

    Example: aws logs filter-log-events --log-group-name /aws/lambda-insights
    > events.json && lambdascope insights import events.json
    """
    from lambdascope.evidence import insights as ins

    chunks = _chunks(paths)
    counts = ins.ReadCounts()
    try:
        db = open_db(db_path_of(ctx))
        added = ins.store_events(
            db,
            ins.read_events((data for _, data in chunks), counts),
            account_id=account,
            region=region,
        )
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{counts.events:,} performance events read, {added:,} new"
        + (f"; {counts.skipped:,} lines or events skipped" if counts.skipped else "")
    )
    if counts.events == 0:
        raise click.ClickException("no Lambda Insights performance events in the input")
