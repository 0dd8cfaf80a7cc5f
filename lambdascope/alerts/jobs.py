"""The alert check and the weekly digest as scheduled jobs (``schedule`` / ``serve``).

A job opens its own connection, never raises for a destination that fails (the failure
is recorded and retried next time) and returns one line for the schedule's log, so an
alert problem never stops or fails the collection it follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lambdascope.alerts.check import CheckResult, run_check, run_digest
from lambdascope.alerts.config import load_config
from lambdascope.db import open_db


@dataclass(frozen=True)
class AlertSettings:
    """What ``schedule``/``serve`` were given for alerts."""

    enabled: bool = True
    notify: tuple[str, ...] = ()
    rules_file: Path | None = None
    dashboard_url: str | None = None


def summary(result: CheckResult) -> str:
    """One line for the schedule's log."""
    failed = [d for d in result.deliveries if not d.ok]
    line = (
        f"{len(result.new)} new, {len(result.resolved)} resolved, {result.ongoing} open;"
        f" delivered to {sum(1 for d in result.deliveries if d.ok)} destination(s)"
    )
    if failed:
        line += f", {len(failed)} failed (retried next check): " + "; ".join(
            f"{d.destination.split('?')[0]}: {d.error}" for d in failed
        )
    if result.failed_rules:
        line += "; rules failed: " + ", ".join(sorted(result.failed_rules))
    return line


def run_alert_job(db_path: Path, settings: AlertSettings, *, digest: bool = False) -> str:
    """Run one check (or the digest) on the store at ``db_path``; one summary line."""
    config = load_config(settings.rules_file)
    db = open_db(db_path)
    try:
        run = run_digest if digest else run_check
        result = run(db, config, notify=settings.notify, dashboard_url=settings.dashboard_url)
    finally:
        db.conn.close()
    return summary(result)
