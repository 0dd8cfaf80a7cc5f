"""The weekly digest: top savings, the week's new findings, and what got better."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

from sqlite_utils import Database

from lambdascope import rightsizing
from lambdascope.alerts.config import AlertConfig
from lambdascope.alerts.model import RULE_TITLES, Finding
from lambdascope.alerts.rules import WEEK_S, _p95_by_function
from lambdascope.timeutil import HOUR_S, from_epoch, hour_floor, iso

# A function "got better" when its p95 duration fell at least this much week on week.
IMPROVEMENT = 0.20
MIN_INVOCATIONS = 100


def week_key(now: int) -> str:
    """The ISO week the digest covers, e.g. ``2026-W49``."""
    year, week, _ = from_epoch(now).isocalendar()
    return f"{year}-W{week:02d}"


def build(db: Database, config: AlertConfig, now: int, dashboard_url: str | None) -> Finding:
    """The digest of the 7 days before ``now`` as a finding of the rule ``digest``."""
    top = int(config.rule("digest")["top"])
    end = hour_floor(now) + HOUR_S
    start = end - WEEK_S
    lines: list[str] = []

    recs = [
        r
        for r in rightsizing.recommend_all(db, end - 2 * WEEK_S, end)
        if r.monthly_savings_usd > 0 and r.recommended_memory_mb
    ]
    recs.sort(key=lambda r: -r.monthly_savings_usd)
    total = sum(r.monthly_savings_usd for r in recs)
    lines.append(f"Top savings (right-sizing, last 14 days): ${total:,.2f}/month in all")
    for r in recs[:top]:
        lines.append(
            f"  {r.function_name}: {r.memory_mb} MB -> {r.recommended_memory_mb} MB,"
            f" ${r.monthly_savings_usd:,.2f}/month ({r.confidence} confidence)"
        )
    if not recs:
        lines.append("  none")

    opened = db.conn.execute(
        "SELECT rule, function_name FROM alerts WHERE first_seen >= ? AND first_seen < ?"
        " AND rule != 'digest' AND announced = 1 ORDER BY first_seen",
        (start, end),
    ).fetchall()
    by_rule: dict[str, list[str]] = defaultdict(list)
    for rule, name in opened:
        by_rule[rule].append(name or "fleet")
    lines.append(f"New findings this week: {len(opened)}")
    for rule, names in sorted(by_rule.items(), key=lambda kv: -len(kv[1])):
        common = ", ".join(n for n, _ in Counter(names).most_common(5))
        lines.append(f"  {RULE_TITLES.get(rule, rule)}: {len(names)} ({common})")

    resolved = db.conn.execute(
        "SELECT rule, count(*) FROM alerts WHERE resolved_at >= ? AND resolved_at < ?"
        " AND rule != 'digest' GROUP BY rule ORDER BY count(*) DESC",
        (start, end),
    ).fetchall()
    now_p95 = _p95_by_function(db, start, end)
    then_p95 = _p95_by_function(db, start - WEEK_S, start)
    function_names = {
        int(fid): name for fid, name in db.conn.execute("SELECT id, function_name FROM functions")
    }
    faster = []
    for fid, (p95, n) in now_p95.items():
        before, n_before = then_p95.get(fid, (None, 0.0))
        if p95 and before and n >= MIN_INVOCATIONS and n_before >= MIN_INVOCATIONS:
            change = p95 / before - 1.0
            if change <= -IMPROVEMENT:
                faster.append((change, function_names.get(fid, str(fid)), before, p95))
    faster.sort()
    lines.append(
        f"What got better: {sum(int(c) for _, c in resolved)} alerts resolved,"
        f" {len(faster)} functions faster"
    )
    for rule, count in resolved:
        lines.append(f"  {RULE_TITLES.get(rule, rule)}: {count} resolved")
    for change, name, before, p95 in faster[:top]:
        lines.append(f"  {name}: p95 {before:,.0f} -> {p95:,.0f} ms ({change * 100:+.0f} %)")
    if dashboard_url:
        lines.append(f"Dashboard: {dashboard_url.rstrip('/')}/")
    week_end = iso(end - 1)
    first_day = (from_epoch(start) + timedelta(seconds=1)).date().isoformat()
    return Finding(
        rule="digest",
        key=week_key(now),
        severity=str(config.rule("digest")["severity"]),
        summary=(
            f"week {first_day} to {(week_end or '')[:10]}: {len(opened)} new findings,"
            f" {sum(int(c) for _, c in resolved)} resolved, ${total:,.2f}/month of savings"
        ),
        window_start=start,
        window_end=end,
        body="\n".join(lines),
        details={"savings_usd_month": round(total, 2), "new": len(opened), "faster": len(faster)},
    )
