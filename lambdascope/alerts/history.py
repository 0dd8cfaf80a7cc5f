"""Reads of the alerts table for the dashboard (history, filters, deploy markers)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from lambdascope.alerts.model import RULE_TITLES

Conn = Database | sqlite3.Connection


def _conn(db: Conn) -> sqlite3.Connection:
    return db.conn if isinstance(db, Database) else db


def has_alerts(db: Conn) -> bool:
    """Whether the store has the alerts tables (a store no writer opened since the
    upgrade has none)."""
    row = (
        _conn(db)
        .execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alerts'")
        .fetchone()
    )
    return row is not None


def alert_history(
    db: Conn,
    since: int,
    *,
    rule: str | None = None,
    status: str | None = None,
    name_contains: str | None = None,
    limit: int = 2000,
) -> list[dict[str, Any]]:
    """Alerts first seen at or after ``since`` (epoch seconds), newest first, with their
    delivery state: ``status`` 'open' / 'resolved' / None for both; ``rule`` exact;
    ``name_contains`` a case-insensitive part of the function name."""
    if not has_alerts(db):
        return []
    clauses = ["a.first_seen >= ?", "a.announced = 1"]
    params: list[Any] = [int(since)]
    if rule:
        clauses.append("a.rule = ?")
        params.append(rule)
    if status == "open":
        clauses.append("a.resolved_at IS NULL")
    elif status == "resolved":
        clauses.append("a.resolved_at IS NOT NULL")
    if name_contains:
        clauses.append("instr(lower(coalesce(a.function_name, '')), ?) > 0")
        params.append(name_contains.lower())
    cursor = _conn(db).execute(
        "SELECT a.id, a.rule, a.severity, a.function_name, a.account_id, a.region, a.summary,"
        " a.details_json, a.first_seen, a.last_seen, a.resolved_at,"
        " (SELECT count(*) FROM alert_deliveries d WHERE d.alert_id = a.id),"
        " (SELECT count(*) FROM alert_deliveries d WHERE d.alert_id = a.id"
        "   AND d.delivered_at IS NOT NULL),"
        " (SELECT group_concat(ds.display || ': ' || d.last_error, '; ')"
        "   FROM alert_deliveries d JOIN alert_destinations ds ON ds.id = d.destination_id"
        "   WHERE d.alert_id = a.id AND d.delivered_at IS NULL AND d.last_error IS NOT NULL)"
        f" FROM alerts a WHERE {' AND '.join(clauses)}"
        " ORDER BY a.first_seen DESC, a.id DESC LIMIT ?",
        [*params, int(limit)],
    )
    out = []
    for row in cursor.fetchall():
        (aid, rule_name, severity, name, account, region, summary, details) = row[:8]
        first, last, resolved, total, delivered, errors = row[8:]
        out.append(
            {
                "id": aid,
                "rule": rule_name,
                "rule_title": RULE_TITLES.get(rule_name, rule_name),
                "severity": severity,
                "function_name": name,
                "account_id": account,
                "region": region,
                "summary": summary,
                "details": json.loads(details or "{}"),
                "first_seen": first,
                "last_seen": last,
                "resolved_at": resolved,
                "deliveries": total,
                "delivered": delivered,
                "delivery_errors": errors,
            }
        )
    return out


def alert_counts(db: Conn, now: int) -> dict[str, int]:
    """Open alerts, alerts opened in the last 24 h, and deliveries waiting after a failure."""
    if not has_alerts(db):
        return {"open": 0, "last_24h": 0, "failing": 0}
    row = (
        _conn(db)
        .execute(
            "SELECT (SELECT count(*) FROM alerts WHERE resolved_at IS NULL AND announced = 1),"
            " (SELECT count(*) FROM alerts WHERE first_seen >= ? AND announced = 1),"
            " (SELECT count(*) FROM alert_deliveries"
            "   WHERE delivered_at IS NULL AND last_error IS NOT NULL)",
            (int(now) - 86400,),
        )
        .fetchone()
    )
    return {"open": int(row[0]), "last_24h": int(row[1]), "failing": int(row[2])}


@dataclass(frozen=True)
class DeployMarker:
    """A change of one function and the regressions the alert check found after it."""

    at: int
    detail: str
    regressions: tuple[str, ...]


def deploy_markers(db: Conn, function_id: int, start: int, end: int) -> list[DeployMarker]:
    """Changes of one function in ``[start, end)`` (LastModified, published versions,
    memory changes seen in the logs) with the deploy regressions recorded for them."""
    from lambdascope.alerts.rules import deploys

    conn = _conn(db)
    wrapped = db if isinstance(db, Database) else Database(conn)
    found: dict[int, list[str]] = {}
    if has_alerts(conn):
        for summary, details in conn.execute(
            "SELECT summary, details_json FROM alerts WHERE rule = 'deploy_regression'"
            " AND function_id = ? AND announced = 1",
            (function_id,),
        ):
            at = json.loads(details or "{}").get("deploy_at")
            if isinstance(at, int):
                found.setdefault(at, []).append(summary.split(": ", 1)[-1])
    markers = [
        DeployMarker(d.at, d.detail, tuple(found.get(d.at, ())))
        for d in deploys(wrapped, start, end, function_id)
    ]
    return markers
