"""Function page blocks for evidence beyond REPORT lines: the latest Power Tuning run,
Compute Optimizer's answer, Lambda Insights' CPU and memory use, and provisioned
concurrency per alias or version (read through lambdascope.evidence)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from dash import html
from sqlite_utils import Database

from dashboards import format as fmt
from lambdascope import rightsizing
from lambdascope.evidence import compute_optimizer, insights, power_tuning, provisioned
from lambdascope.pricing import cpu_share
from lambdascope.rightsizing import Recommendation
from lambdascope.timeutil import iso


def _table(header: list[str], rows: list[list[str]], table_id: str) -> html.Table:
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in header])),
            html.Tbody([html.Tr([html.Td(c) for c in row]) for row in rows]),
        ],
        className="table table-sm small",
        id=table_id,
    )


def power_tuning_block(db: Database, function_id: int) -> html.Div:
    """The latest imported Power Tuning run's sizes (what projections use first)."""
    curves = list(power_tuning.latest_curves(db, [function_id]).values())
    if not curves:
        return html.Div(
            html.P(
                "No Power Tuning run imported: `lambdascope power-tuning import FILE` adds"
                " measured durations, used before the model.",
                className="small text-muted",
            ),
            id="function-power-tuning-measured",
        )
    curve = curves[0]
    when = (iso(curve.measured_at) or "")[:10]
    rows = [
        [
            fmt.megabytes(p.memory_mb),
            fmt.duration_ms(p.average_duration_ms),
            f"${p.average_cost_usd:.8f}",
        ]
        for p in curve.points
    ]
    return html.Div(
        [
            html.P(f"Measured on {when}; projections use these points first.", className="small"),
            _table(
                ["Memory", "Mean duration", "Cost per invocation"],
                rows,
                "function-power-tuning-table",
            ),
        ],
        id="function-power-tuning-measured",
    )


def provisioned_block(db: Database, function_id: int, start: int, end: int) -> html.Div | None:
    """Provisioned concurrency per alias or version; None when the function has none."""
    recs = provisioned.recommend_all(db, start, end, function_ids=(function_id,))
    if not recs:
        return None
    rows = [
        [
            r.qualifier,
            str(r.configured_level),
            f"{r.recommended_level} ({r.action})",
            fmt.usd(r.current_monthly_cost_usd),
            fmt.usd(r.recommended_monthly_cost_usd),
            fmt.usd(r.on_demand_monthly_cost_usd),
            "; ".join(r.reasons),
        ]
        for r in recs
    ]
    header = [
        "Alias/version",
        "Level",
        "Recommended",
        "Now /30d",
        "Recommended /30d",
        "On-demand /30d",
        "Why",
    ]
    return html.Div(_table(header, rows, "function-provisioned-table"), id="function-provisioned")


def compute_optimizer_block(db: Database, rec: Recommendation) -> html.Div | None:
    """Compute Optimizer's answer next to lambdascope's; None without its data."""
    co = compute_optimizer.read_all(db).get((rec.account_id, rec.region, rec.function_name))
    if co is None:
        return None
    side = compute_optimizer.side_by_side(rec, co)
    refreshed = (iso(co.last_refresh) or "")[:10]
    answer = fmt.megabytes(co.memory_mb) if co.memory_mb else "no size"
    text = (
        f"{side['compute_optimizer_finding']}: {answer}"
        + (f", saves {fmt.usd(co.monthly_savings_usd)} / month" if co.monthly_savings_usd else "")
        + f" (refreshed {refreshed}; lambdascope: {fmt.megabytes(rec.recommended_memory_mb)})."
    )
    why = side["compute_optimizer_differs_because"]
    children = [html.P(text, className="small mb-1")]
    if why:
        children.append(html.P(f"Why they differ: {why}.", className="small"))
    return html.Div(children, id="function-compute-optimizer")


def _insights_profile(
    db: Database, function_id: int, start: int, end: int, memory_mb: int | None
) -> insights.CpuProfile | None:
    """The function's CPU profile as the memory report reads it: at ``memory_mb`` (the
    recommendation's size) when there is one there, else at its busiest size."""
    key = db.conn.execute(
        "SELECT account_id, region, function_name FROM functions WHERE id = ?", (function_id,)
    ).fetchone()
    if key is None:
        return None
    mine = [
        p
        for k, p in insights.cpu_profiles(db, start, end).items()
        if k[:3] == (key[0], key[1], key[2])
    ]
    same = [p for p in mine if p.memory_mb == memory_mb]
    return same[0] if same else max(mine, key=lambda p: p.invocations, default=None)


def _source_text(usage: insights.InsightsUsage, profile: insights.CpuProfile | None) -> str:
    if (profile is not None and profile.source == "metrics") or not usage.events:
        return (
            f"From LambdaInsights metrics: {usage.metric_hours:,} hours"
            f" ({fmt.number(usage.metric_invocations)} invocations)."
        )
    return f"From performance events: {usage.events:,} invocations."


def _cpu_rows(profile: insights.CpuProfile) -> list[list[str]]:
    share, below, above = profile.wall_share, profile.share_below, profile.share_above
    busy = insights.busy_vcpus(profile)
    # busy vCPUs move with the CPU share: the same relative range
    low = busy * max(0.0, share - below) / share if share > 0 else 0.0
    high = busy * (share + above) / share if share > 0 else 0.0
    return [
        [
            "CPU time / duration",
            f"{share:.0%} at {fmt.megabytes(profile.memory_mb)}"
            f" (range {max(0.0, share - below):.0%} to {min(1.0, share + above):.0%};"
            f" CPU share there {cpu_share(profile.memory_mb):.0%} of a vCPU)",
        ],
        [
            "Busy vCPUs",
            f"{busy:.2f} on average ({low:.2f} to {high:.2f});"
            f" mean CPU time {fmt.duration_ms(profile.mean_cpu_ms)}"
            f" of {fmt.duration_ms(profile.mean_duration_ms)}",
        ],
    ]


def _usage_rows(usage: insights.InsightsUsage) -> list[list[str]]:
    rows = []
    if usage.used_memory_max_mb is not None:
        text = f"{fmt.megabytes(usage.used_memory_max_mb)} used at most"
        if usage.memory_mb:
            text += f" of {fmt.megabytes(usage.memory_mb)}"
        if usage.memory_utilization_max_pct is not None:
            text += f" ({usage.memory_utilization_max_pct:.0f} % utilisation at most)"
        rows.append(["Memory", text])
    if usage.init_duration_max_ms is not None:
        rows.append(
            [
                "Init",
                f"{fmt.duration_ms(usage.init_duration_max_ms)} at most over"
                f" {fmt.number(usage.init_count)} cold starts",
            ]
        )
    if usage.network_bytes_sum is not None and usage.metric_invocations > 0:
        rows.append(
            [
                "Network",
                f"{fmt.size_bytes(usage.network_bytes_sum)} in and out"
                f" ({fmt.size_bytes(usage.network_bytes_sum / usage.metric_invocations)}"
                " per invocation)",
            ]
        )
    return rows


_OTHER_EVIDENCE = {
    "power-tuning": "the recommendation projects from the Power Tuning run instead",
    "natural-experiment": "the recommendation projects from the memory sizes in history instead",
}


def _projection_text(rec: Recommendation | None, profile: insights.CpuProfile) -> str:
    """Projected duration at the recommended size with and without the CPU profile (the
    memory report's functions), and whether the recommendation used it."""
    if rec is None or rec.recommended_memory_mb is None or not rec.current_duration_ms:
        return "No recommended size to project to."
    if profile.memory_mb != rec.memory_mb:
        return (
            f"Measured at {fmt.megabytes(profile.memory_mb)}, not today's"
            f" {fmt.megabytes(rec.memory_mb)}: the projection does not use it."
        )
    target = rec.recommended_memory_mb
    if target == rec.memory_mb:
        return f"The recommendation keeps {fmt.megabytes(target)}: nothing to project."
    today = rec.current_duration_ms
    low, expected, high = insights.project(today, rec.memory_mb, target, profile)
    without = rightsizing.project_duration(today, rec.memory_mb, target, None)
    width, old = high - low, without.upper - without.lower
    narrower = f", {old / width:.1f}x narrower" if width > 0 and old > width else ""
    text = (
        f"Projected mean duration at {fmt.megabytes(target)}:"
        f" {fmt.duration_ms(low)} to {fmt.duration_ms(high)}"
        f" (expected {fmt.duration_ms(expected)}) with Lambda Insights;"
        f" {fmt.duration_ms(without.lower)} to {fmt.duration_ms(without.upper)} without{narrower}."
    )
    if rec.duration_evidence == "lambda-insights":
        return text + " The recommendation uses it."
    if rec.duration_evidence in _OTHER_EVIDENCE:
        return text + f" Not used: {_OTHER_EVIDENCE[rec.duration_evidence]}."
    if profile.invocations < rightsizing.MIN_INSIGHTS_EVENTS:
        return (
            text + f" Not used: {profile.invocations} invocations, fewer than the"
            f" {rightsizing.MIN_INSIGHTS_EVENTS} the projection needs."
        )
    return text


def insights_block(
    db: Database, function_id: int, start: int, end: int, rec: Recommendation | None
) -> html.Div | None:
    """Lambda Insights' CPU, memory, init and network figures for the function and what
    they do to the projected duration; None without Insights data in [start, end)."""
    usage = insights.function_usage(db, function_id, start, end)
    if usage is None:
        return None
    profile = _insights_profile(db, function_id, start, end, rec.memory_mb if rec else None)
    rows = (_cpu_rows(profile) if profile is not None else []) + _usage_rows(usage)
    children: list[html.P | html.Table] = [
        html.P(_source_text(usage, profile), className="small mb-1", id="function-insights-source")
    ]
    if rows:
        children.append(_table(["Measure", "Value"], rows, "function-insights-table"))
    if profile is not None:
        children.append(
            html.P(
                _projection_text(rec, profile), className="small", id="function-insights-projection"
            )
        )
    return html.Div(children, id="function-insights")


def _recommendation_at_current(
    recs: Sequence[Recommendation], db: Database, function_id: int
) -> Recommendation | None:
    row = db.conn.execute("SELECT memory_mb FROM functions WHERE id = ?", (function_id,)).fetchone()
    same = [r for r in recs if row is not None and r.memory_mb == row[0]]
    return same[0] if same else max(recs, key=lambda r: r.invocations, default=None)


def evidence_children(
    conn: sqlite3.Connection | Database,
    function_id: int,
    start: int,
    end: int,
    recs: Sequence[Recommendation] = (),
) -> list[html.Div | html.H6]:
    """The function page's evidence section: headings and blocks."""
    db = conn if isinstance(conn, Database) else Database(conn)
    out: list[html.Div | html.H6] = [
        html.H6("Measured by Power Tuning", className="section-title"),
        power_tuning_block(db, function_id),
    ]
    co = compute_optimizer_block(db, recs[0]) if recs else None
    if co is not None:
        out += [html.H6("Compute Optimizer", className="section-title"), co]
    lambda_insights = insights_block(
        db, function_id, start, end, _recommendation_at_current(recs, db, function_id)
    )
    if lambda_insights is not None:
        out += [html.H6("Lambda Insights", className="section-title"), lambda_insights]
    block = provisioned_block(db, function_id, start, end)
    if block is not None:
        out += [html.H6("Provisioned concurrency", className="section-title"), block]
    return out
