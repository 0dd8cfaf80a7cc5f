"""The alerts table: recording findings as alert episodes and their pending deliveries.

One check = one transaction that opens, updates and resolves alerts and queues one
delivery row per destination for each alert to announce. Sending happens afterwards,
outside that transaction, and a delivery is marked delivered only after its destination
accepted it: an interrupted check leaves undelivered rows pending for the next check.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from lambdascope.alerts.config import AlertConfig
from lambdascope.alerts.model import BASELINE_RULES, ONCE_RULES, Finding


@dataclass(frozen=True)
class Destination:
    """One notification URL: ``id`` is a hash of the URL (what the store keeps),
    ``display`` its redacted form, ``name`` the rules file's name (None for --notify)."""

    url: str
    id: str
    display: str
    name: str | None = None


def destination(url: str, display: str | None = None, name: str | None = None) -> Destination:
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Destination(url=url, id=digest, display=display or url, name=name)


@dataclass(frozen=True)
class Recorded:
    """What one check changed: ids of new, still-open and resolved alerts."""

    check_id: int
    new: tuple[int, ...]
    ongoing: tuple[int, ...]
    resolved: tuple[int, ...]
    baseline: tuple[int, ...]


def last_check(db: Database) -> int | None:
    """When the last finished check evaluated the rules (epoch seconds)."""
    row = db.conn.execute(
        "SELECT max(evaluated_at) FROM alert_checks WHERE kind = 'check'"
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _rule_ran_before(db: Database, rule: str) -> bool:
    row = db.conn.execute(
        "SELECT EXISTS (SELECT 1 FROM alert_checks c, json_each(c.rules_json) r WHERE r.value = ?)",
        (rule,),
    ).fetchone()
    return bool(row[0])


def _existing(db: Database, finding: Finding) -> int | None:
    if finding.rule in ONCE_RULES:
        sql = "SELECT id FROM alerts WHERE rule = ? AND alert_key = ? ORDER BY id LIMIT 1"
    else:
        sql = "SELECT id FROM alerts WHERE rule = ? AND alert_key = ? AND resolved_at IS NULL"
    row = db.conn.execute(sql, (finding.rule, finding.key)).fetchone()
    return None if row is None else int(row[0])


def _routes(
    config: AlertConfig,
    finding: Finding,
    tags: dict[str, str],
    destinations: Sequence[Destination],
) -> list[Destination]:
    """The destinations of one alert: every --notify URL, and the routed named ones."""
    named = set(config.destinations_for(finding.rule, finding.function_name, tags))
    return [d for d in destinations if d.name is None or d.name in named]


def record(
    db: Database,
    findings: Sequence[Finding],
    ran: Sequence[str],
    failed: dict[str, str],
    *,
    config: AlertConfig,
    destinations: Sequence[Destination],
    tags: dict[int, dict[str, str]],
    now: int,
    evaluated_at: int,
    kind: str = "check",
) -> Recorded:
    """Open, update and resolve alerts for one evaluation, and queue their deliveries,
    in one transaction. Open alerts of rules in ``ran`` without a finding now resolve."""
    conn = db.conn
    new: list[int] = []
    ongoing: list[int] = []
    baseline: list[int] = []
    with conn:
        # one writer at a time from here: a concurrent check waits, then sees these alerts
        if not conn.in_transaction:
            conn.execute("BEGIN IMMEDIATE")
        first_run = {
            rule for rule in BASELINE_RULES if rule in ran and not _rule_ran_before(db, rule)
        }
        for d in destinations:
            conn.execute(
                "INSERT INTO alert_destinations (id, display, name, first_used, last_used)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " display = excluded.display, name = excluded.name, last_used = excluded.last_used",
                (d.id, d.display, d.name, now, now),
            )
        seen: set[int] = set()
        for finding in findings:
            details = json.dumps(finding.details, sort_keys=True, default=str)
            alert_id = _existing(db, finding)
            if alert_id is not None:
                seen.add(alert_id)
                ongoing.append(alert_id)
                conn.execute(
                    "UPDATE alerts SET last_seen = ?, summary = ?, body = ?, details_json = ?,"
                    " window_end = max(coalesce(window_end, 0), ?) WHERE id = ?",
                    (now, finding.summary, finding.body, details, finding.window_end, alert_id),
                )
                continue
            announced = finding.rule not in first_run
            notify_resolved = bool(config.rule(finding.rule)["notify_resolved"])
            cursor = conn.execute(
                "INSERT INTO alerts (rule, alert_key, function_id, function_name, account_id,"
                " region, severity, summary, body, details_json, window_start, window_end,"
                " first_seen, last_seen, announced, notify_resolved)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    finding.rule,
                    finding.key,
                    finding.function_id,
                    finding.function_name,
                    finding.account_id,
                    finding.region,
                    finding.severity,
                    finding.summary,
                    finding.body,
                    details,
                    finding.window_start,
                    finding.window_end,
                    now,
                    now,
                    int(announced),
                    int(notify_resolved),
                ),
            )
            alert_id = int(cursor.lastrowid or 0)
            seen.add(alert_id)
            if not announced:
                baseline.append(alert_id)
                continue
            new.append(alert_id)
            function_tags = tags.get(finding.function_id or -1, {})
            for d in _routes(config, finding, function_tags, destinations):
                conn.execute(
                    "INSERT INTO alert_deliveries (alert_id, destination_id, kind, created_at)"
                    " VALUES (?, ?, 'open', ?)",
                    (alert_id, d.id, now),
                )
        resolved = _resolve(db, ran, seen, now)
        cursor = conn.execute(
            "INSERT INTO alert_checks (started_at, evaluated_at, kind, rules_json,"
            " failed_rules_json, new_alerts, resolved_alerts) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                now,
                evaluated_at,
                kind,
                json.dumps(list(ran)),
                json.dumps(failed, sort_keys=True),
                len(new),
                len(resolved),
            ),
        )
        check_id = int(cursor.lastrowid or 0)
    return Recorded(check_id, tuple(new), tuple(ongoing), tuple(resolved), tuple(baseline))


def _resolve(db: Database, ran: Sequence[str], seen: set[int], now: int) -> list[int]:
    """Resolve the open alerts of the rules that ran and found nothing for them; queue a
    'resolved' delivery to each destination that received the alert, when the rule
    announces resolutions."""
    if not ran:
        return []
    conn = db.conn
    marks = ", ".join("?" for _ in ran)
    rows = conn.execute(
        f"SELECT id, announced, notify_resolved FROM alerts WHERE resolved_at IS NULL"
        f" AND rule IN ({marks})",
        list(ran),
    ).fetchall()
    resolved = []
    for alert_id, announced, notify_resolved in rows:
        if alert_id in seen:
            continue
        conn.execute("UPDATE alerts SET resolved_at = ? WHERE id = ?", (now, alert_id))
        resolved.append(int(alert_id))
        if announced and notify_resolved:
            conn.execute(
                "INSERT OR IGNORE INTO alert_deliveries"
                " (alert_id, destination_id, kind, created_at)"
                " SELECT alert_id, destination_id, 'resolved', ? FROM alert_deliveries"
                " WHERE alert_id = ? AND kind = 'open' AND delivered_at IS NOT NULL",
                (now, alert_id),
            )
    return resolved


@dataclass(frozen=True)
class Pending:
    """One queued delivery with what its message needs."""

    alert_id: int
    kind: str
    rule: str
    severity: str
    summary: str
    body: str | None
    function_name: str | None
    account_id: str
    region: str
    first_seen: int
    resolved_at: int | None
    attempts: int


# How long a check holds the deliveries it is sending (a check killed while sending
# leaves them to the next check after this).
CLAIM_S = 300


def claim(db: Database, destination_id: str, *, now: int) -> list[Pending]:
    """Take the deliveries waiting for a destination (new, or failed before), oldest
    first, and hold them for CLAIM_S seconds so a concurrent check does not send them
    too. ``now``: the wall clock (epoch seconds)."""
    conn = db.conn
    with conn:
        if not conn.in_transaction:
            conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(
            "SELECT a.id, d.kind, a.rule, a.severity, a.summary, a.body, a.function_name,"
            " a.account_id, a.region, a.first_seen, a.resolved_at, d.attempts"
            " FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id"
            " WHERE d.destination_id = ? AND d.delivered_at IS NULL"
            " AND (d.claimed_until IS NULL OR d.claimed_until <= ?)"
            " ORDER BY d.created_at, a.id, d.kind",
            (destination_id, now),
        ).fetchall()
        items = [Pending(*row) for row in rows]
        for item in items:
            conn.execute(
                "UPDATE alert_deliveries SET claimed_until = ?"
                " WHERE alert_id = ? AND destination_id = ? AND kind = ?",
                (now + CLAIM_S, item.alert_id, destination_id, item.kind),
            )
    return items


def release(db: Database, destination_id: str, items: Sequence[Pending]) -> None:
    """Give back deliveries claimed but not attempted (the check was interrupted)."""
    with db.conn:
        for item in items:
            db.conn.execute(
                "UPDATE alert_deliveries SET claimed_until = NULL"
                " WHERE alert_id = ? AND destination_id = ? AND kind = ?",
                (item.alert_id, destination_id, item.kind),
            )


def mark(
    db: Database,
    destination_id: str,
    items: Sequence[Pending],
    *,
    now: int,
    error: str | None,
) -> None:
    """Record one send attempt: delivered (``error`` None) or failed with its error."""
    with db.conn:
        for item in items:
            db.conn.execute(
                "UPDATE alert_deliveries SET attempts = attempts + 1, last_attempt_at = ?,"
                " last_error = ?, delivered_at = CASE WHEN ? IS NULL THEN ? END,"
                " claimed_until = NULL"
                " WHERE alert_id = ? AND destination_id = ? AND kind = ?",
                (now, error, error, now, item.alert_id, destination_id, item.kind),
            )


def finish_check(db: Database, check_id: int, *, now: int, delivered: int, failed: int) -> None:
    with db.conn:
        db.conn.execute(
            "UPDATE alert_checks SET finished_at = ?, delivered = ?, failed_deliveries = ?"
            " WHERE id = ?",
            (now, delivered, failed, check_id),
        )


def alert_rows(db: Database, ids: Sequence[int]) -> list[dict[str, Any]]:
    """The alerts with these ids as dictionaries (for printing)."""
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    cursor = db.conn.execute(
        "SELECT id, rule, severity, function_name, account_id, region, summary, body,"
        " details_json, first_seen, last_seen, resolved_at, window_start, window_end"
        f" FROM alerts WHERE id IN ({marks}) ORDER BY id",
        list(ids),
    )
    names = [d[0] for d in cursor.description]
    out = []
    for row in cursor.fetchall():
        item = dict(zip(names, row, strict=True))
        item["details"] = json.loads(item.pop("details_json") or "{}")
        out.append(item)
    return out
