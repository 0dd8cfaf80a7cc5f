"""Function page blocks for evidence beyond REPORT lines: the latest Power Tuning run and
provisioned concurrency per alias or version (read through lambdascope.evidence)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from dash import html
from sqlite_utils import Database

from dashboards import format as fmt
from lambdascope.evidence import compute_optimizer, power_tuning, provisioned
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
    block = provisioned_block(db, function_id, start, end)
    if block is not None:
        out += [html.H6("Provisioned concurrency", className="section-title"), block]
    return out
