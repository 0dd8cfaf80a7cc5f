"""``lambdascope alerts check`` and ``alerts digest``: evaluate the rules and notify."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lambdascope.alerts.jobs import AlertSettings
from lambdascope.cli import db_path_of
from lambdascope.db import StoreError, open_db
from lambdascope.timeutil import iso, parse_timestamp, to_epoch


def _table(result: Any) -> str:
    """New and resolved alerts as aligned text, then one line per destination."""
    rows = [
        (
            "resolved" if kind == "resolved" else a["severity"],
            a["rule"],
            a["function_name"] or "-",
            a["summary"],
        )
        for kind, alerts in (("new", result.new), ("resolved", result.resolved))
        for a in alerts
    ]
    lines = []
    bodies = [a["body"] for a in result.new if a.get("body")]
    if rows:
        header = ("STATE", "RULE", "FUNCTION", "SUMMARY")
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(3)]
        for row in [header, *rows]:
            lines.append(
                "  ".join(str(v).ljust(w) for v, w in zip(row[:3], widths, strict=True))
                + "  "
                + str(row[3])
            )
    else:
        lines.append("No new or resolved alerts.")
    for body in bodies:  # the digest's text
        lines.extend(f"  {line}" for line in str(body).splitlines())
    extra = []
    if result.ongoing:
        extra.append(f"{result.ongoing} still open (already announced)")
    if result.baseline:
        extra.append(f"{result.baseline} recorded as the baseline (first evaluation)")
    if extra:
        lines.append("; ".join(extra) + ".")
    for rule, error in sorted(result.failed_rules.items()):
        lines.append(f"rule {rule} failed: {error}")
    for d in result.deliveries:
        state = "sent" if d.ok else f"FAILED ({d.error}); will retry on the next check"
        lines.append(f"{d.destination}: {d.alerts} alert(s) {state}")
    return "\n".join(lines)


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--notify",
            "notify",
            multiple=True,
            metavar="URL",
            help="Also deliver every alert to this apprise URL (repeatable), e.g."
            " json://host:port/path, slack://..., mailto://..., sns://...",
        ),
        click.option(
            "--rules",
            "rules_file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="TOML rules file: thresholds, mutes, named destinations, routes.",
        ),
        click.option(
            "--format",
            "output_format",
            type=click.Choice(["table", "json"]),
            default="table",
            show_default=True,
        ),
        click.option(
            "--dashboard-url",
            default=None,
            metavar="URL",
            help="Base URL of the dashboard, for links in messages.",
        ),
        click.option(
            "--at",
            default=None,
            metavar="TIME",
            help="Evaluate as of this UTC time (ISO-8601) instead of now.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run(
    ctx: click.Context,
    which: str,
    notify: tuple[str, ...],
    rules_file: Path | None,
    output_format: str,
    dashboard_url: str | None,
    at: str | None,
) -> None:
    from lambdascope.alerts import RulesError, load_config, run_check, run_digest
    from lambdascope.alerts.deliver import DestinationError

    try:
        now = None if at is None else to_epoch(parse_timestamp(at))
    except ValueError:
        raise click.BadParameter(f"not a timestamp: {at!r}", param_hint="--at") from None
    try:
        config = load_config(rules_file)
        db = open_db(db_path_of(ctx))
    except (RulesError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    run = run_check if which == "check" else run_digest
    try:
        result = run(db, config, notify=notify, now=now, dashboard_url=dashboard_url)
    except DestinationError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        db.conn.close()
    if output_format == "json":
        click.echo(json.dumps(result.as_dict(), indent=2, sort_keys=True, default=str))
    else:
        click.echo(f"Alerts as of {iso(result.evaluated_at)}")
        click.echo(_table(result))
    if any(not d.ok for d in result.deliveries):
        ctx.exit(2)


@click.group()
def alerts() -> None:
    """Alert rules over the store, delivered to chat, e-mail or webhooks.

    Example: lambdascope alerts check --notify json://127.0.0.1:8080/hook
    """


@alerts.command()
@_options
@click.pass_context
def check(
    ctx: click.Context,
    notify: tuple[str, ...],
    rules_file: Path | None,
    output_format: str,
    dashboard_url: str | None,
    at: str | None,
) -> None:
    """Evaluate the rules, print new and resolved alerts, and deliver them.

    Each alert is delivered once per destination; a destination that fails is retried
    on the next check (exit status 2 while one fails).

    Example: lambdascope alerts check --rules alerts.toml --notify slack://T0/B0/XXXX
    """
    _run(ctx, "check", notify, rules_file, output_format, dashboard_url, at)


@alerts.command()
@_options
@click.pass_context
def digest(
    ctx: click.Context,
    notify: tuple[str, ...],
    rules_file: Path | None,
    output_format: str,
    dashboard_url: str | None,
    at: str | None,
) -> None:
    """Build and deliver the weekly digest (once per ISO week).

    Example: lambdascope alerts digest --notify mailto://user:pass@example.com
    """
    _run(ctx, "digest", notify, rules_file, output_format, dashboard_url, at)


# --- the options ``schedule`` and ``serve`` take for their alert check --------------------

ALERT_KWARGS = {"alerts_enabled", "notify", "rules_file", "dashboard_url"}


def alert_options() -> list[Any]:
    """Options of ``schedule``/``serve``: the check after each collection, and the digest."""
    return [
        click.option(
            "--alerts/--no-alerts",
            "alerts_enabled",
            default=True,
            show_default=True,
            help="Check the alert rules after each collection and send the weekly digest"
            " (Mondays 07:00 UTC).",
        ),
        click.option(
            "--notify",
            "notify",
            multiple=True,
            metavar="URL",
            help="Deliver alerts to this apprise URL (repeatable); see `alerts check`.",
        ),
        click.option(
            "--rules",
            "rules_file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="TOML alert rules file.",
        ),
        click.option(
            "--dashboard-url",
            default=None,
            metavar="URL",
            help="Base URL of the dashboard, for links in alert messages.",
        ),
    ]


def alert_settings(kwargs: dict[str, Any]) -> AlertSettings:
    """AlertSettings from the options above; a bad rules file or URL stops the start."""
    from lambdascope.alerts import RulesError, load_config
    from lambdascope.alerts.check import resolve_destinations
    from lambdascope.alerts.deliver import DestinationError

    settings = AlertSettings(
        enabled=bool(kwargs.get("alerts_enabled", True)),
        notify=tuple(kwargs.get("notify") or ()),
        rules_file=kwargs.get("rules_file"),
        dashboard_url=kwargs.get("dashboard_url"),
    )
    if settings.enabled:
        try:
            resolve_destinations(load_config(settings.rules_file), settings.notify)
        except (RulesError, DestinationError) as exc:
            raise click.UsageError(str(exc)) from None
    return settings
