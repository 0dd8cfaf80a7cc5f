"""One alert check: evaluate the rules, record alerts, deliver what is pending.

Python API (what ``lambdascope alerts check`` and ``alerts digest`` run)::

    from lambdascope.alerts import load_config, run_check
    result = run_check(db, load_config("rules.toml"), notify=["json://127.0.0.1:8080/hook"])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from lambdascope import queries
from lambdascope.alerts import deliver as delivery
from lambdascope.alerts import digest, rules, state
from lambdascope.alerts.config import AlertConfig
from lambdascope.alerts.state import Destination
from lambdascope.timeutil import to_epoch, utcnow


@dataclass(frozen=True)
class DeliveryResult:
    """One destination in one check: how many alerts it was sent, or why it failed."""

    destination: str
    alerts: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class CheckResult:
    """What a check found and delivered. ``new``/``resolved`` are alert rows (dicts
    with id, rule, severity, function_name, summary, details, ...)."""

    evaluated_at: int
    new: list[dict[str, Any]]
    resolved: list[dict[str, Any]]
    ongoing: int
    baseline: int
    failed_rules: dict[str, str]
    deliveries: list[DeliveryResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "evaluated_at": self.evaluated_at,
            "new": self.new,
            "resolved": self.resolved,
            "ongoing": self.ongoing,
            "baseline": self.baseline,
            "failed_rules": self.failed_rules,
            "deliveries": [
                {"destination": d.destination, "alerts": d.alerts, "error": d.error}
                for d in self.deliveries
            ],
        }


def resolve_destinations(config: AlertConfig, notify: Sequence[str]) -> list[Destination]:
    """The rules file's named destinations and the ``--notify`` URLs (each URL once).
    Raises DestinationError for a URL apprise cannot use."""
    out: dict[str, Destination] = {}
    for name, url in config.destinations.items():
        d = state.destination(url, delivery.check_url(url), name)
        out.setdefault(d.id, d)
    for url in notify:
        d = state.destination(url, delivery.check_url(url))
        if d.id in out:  # also named in the file: --notify sends it everything
            d = Destination(url=d.url, id=d.id, display=d.display, name=None)
        out[d.id] = d
    return list(out.values())


def deliver_pending(
    db: Database,
    destinations: Sequence[Destination],
    *,
    dashboard_url: str | None,
    now: int,
    sender: delivery.Sender = delivery.send_apprise,
) -> list[DeliveryResult]:
    """Send each destination its pending deliveries (new and earlier failed ones) as one
    message; mark them delivered only once the destination accepted it. Deliveries
    another check is sending at the same time are left to it."""
    results = []
    for d in destinations:
        items = state.claim(db, d.id, now=to_epoch(utcnow()))
        if not items:
            continue
        title, body = delivery.message(items, dashboard_url)
        try:
            error = sender(d.url, title, body, delivery.severity_of(items))
        except BaseException:
            state.release(db, d.id, items)  # interrupted: the next check sends them
            raise
        state.mark(db, d.id, items, now=now, error=error)
        results.append(DeliveryResult(d.display, len(items), error))
    return results


def _finish(
    db: Database,
    recorded: state.Recorded,
    failed: dict[str, str],
    destinations: Sequence[Destination],
    *,
    config: AlertConfig,
    dashboard_url: str | None,
    now: int,
    sender: delivery.Sender,
) -> CheckResult:
    url = dashboard_url or config.dashboard_url
    results = deliver_pending(db, destinations, dashboard_url=url, now=now, sender=sender)
    state.finish_check(
        db,
        recorded.check_id,
        now=to_epoch(utcnow()),
        delivered=sum(r.alerts for r in results if r.ok),
        failed=sum(1 for r in results if not r.ok),
    )
    return CheckResult(
        evaluated_at=now,
        new=state.alert_rows(db, recorded.new),
        resolved=state.alert_rows(db, recorded.resolved),
        ongoing=len(recorded.ongoing),
        baseline=len(recorded.baseline),
        failed_rules=failed,
        deliveries=results,
    )


def _tags(db: Database) -> dict[int, dict[str, str]]:
    return {f.function_id: f.tags for f in queries.list_functions(db, queries.ALL_WITH_DELETED)}


def run_check(
    db: Database,
    config: AlertConfig,
    *,
    notify: Sequence[str] = (),
    now: int | None = None,
    dashboard_url: str | None = None,
    sender: delivery.Sender = delivery.send_apprise,
) -> CheckResult:
    """Evaluate every enabled rule at ``now`` (epoch seconds; default: the clock), record
    the alerts, and deliver new and resolved ones (and earlier failed deliveries)."""
    at = to_epoch(utcnow()) if now is None else int(now)
    destinations = resolve_destinations(config, notify)
    findings, ran, failed = rules.evaluate(db, config, at, state.last_check(db))
    recorded = state.record(
        db,
        findings,
        ran,
        failed,
        config=config,
        destinations=destinations,
        tags=_tags(db),
        now=at,
        evaluated_at=at,
    )
    return _finish(
        db,
        recorded,
        failed,
        destinations,
        config=config,
        dashboard_url=dashboard_url,
        now=at,
        sender=sender,
    )


def run_digest(
    db: Database,
    config: AlertConfig,
    *,
    notify: Sequence[str] = (),
    now: int | None = None,
    dashboard_url: str | None = None,
    sender: delivery.Sender = delivery.send_apprise,
) -> CheckResult:
    """Build the weekly digest of the 7 days before ``now`` and deliver it (once per ISO
    week: running it again in the same week only retries failed deliveries)."""
    at = to_epoch(utcnow()) if now is None else int(now)
    destinations = resolve_destinations(config, notify)
    url = dashboard_url or config.dashboard_url
    findings = [digest.build(db, config, at, url)] if config.enabled("digest") else []
    ran = ["digest"] if config.enabled("digest") else []
    recorded = state.record(
        db,
        findings,
        ran,
        {},
        config=config,
        destinations=destinations,
        tags={},
        now=at,
        evaluated_at=at,
        kind="digest",
    )
    return _finish(
        db,
        recorded,
        {},
        destinations,
        config=config,
        dashboard_url=dashboard_url,
        now=at,
        sender=sender,
    )
