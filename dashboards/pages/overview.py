"""Overview: KPI cards, fleet counts over time, top offenders."""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import html

from dashboards import data, figures
from dashboards import format as fmt
from dashboards.components import (
    cached_layout,
    empty_state,
    graph,
    kpi,
    no_match,
    now,
    page_frame,
    store,
)

dash.register_page(__name__, path="/", name="Overview", title="lambdascope · Overview")  # type: ignore[no-untyped-call]


def _top(frame: pd.DataFrame, column: str, n: int = 8) -> pd.DataFrame:
    ranked = frame[frame[column].fillna(0) > 0].sort_values(column, ascending=False)
    return ranked.head(n)


@cached_layout
def layout(**query: Any) -> html.Div:
    with store() as conn:
        if data.store_is_empty(conn):
            return page_frame(
                "overview",
                "Fleet overview",
                query,
                [empty_state("overview", "No functions in the store yet")],
            )
        filters = data.filters_from_query(query, now())
        stats = data.function_stats(conn, filters)
        series = data.fleet_timeseries(conn, filters)
        recs = data.recommendations(conn, filters, stats)
    if stats.empty:
        return page_frame("overview", "Fleet overview", query, [no_match("overview")])
    invocations = float(stats["invocations"].sum())
    errors = float(stats["errors"].sum())
    cost = float(stats["cost_usd"].sum())
    weights = stats["fact_invocations"].where(stats["duration_p95"].notna(), 0)
    p95 = (
        float((stats["duration_p95"].fillna(0) * weights).sum() / weights.sum())
        if weights.sum() > 0
        else None
    )
    active = int((stats["invocations"] > 0).sum())
    idle = len(stats) - active
    cards = dbc.Row(
        [
            kpi(
                "Functions",
                fmt.number(len(stats)),
                f"{active} invoked in range",
                "overview-kpi-functions",
            ),
            kpi("Invocations", fmt.number(invocations), "", "overview-kpi-invocations"),
            kpi(
                "Error rate",
                fmt.percent(errors / invocations if invocations else None),
                f"{fmt.number(errors)} errors",
                "overview-kpi-errors",
            ),
            kpi(
                "Throttles",
                fmt.number(float(stats["throttles"].sum())),
                "",
                "overview-kpi-throttles",
            ),
            kpi(
                "p95 duration",
                fmt.duration_ms(p95),
                "invocation-weighted mean of p95s",
                "overview-kpi-p95",
            ),
            kpi(
                "Cost in range",
                fmt.usd(cost),
                f"{fmt.usd(cost / filters.days * 30)} per 30 days (estimate)",
                "overview-kpi-cost",
            ),
            kpi(
                "Potential savings",
                fmt.usd(float(recs["monthly_savings_usd"].sum()) if not recs.empty else None),
                "per month, from right-sizing",
                "overview-kpi-savings",
            ),
            kpi("Not invoked in range", fmt.number(idle), "stale candidates", "overview-kpi-idle"),
        ],
        className="g-3",
    )
    slow = _top(stats, "duration_p95")
    failing = _top(stats, "errors")
    throttled = _top(stats, "throttles")
    savings = (
        recs.groupby("function_name", as_index=False).agg(
            monthly_savings_usd=("monthly_savings_usd", "sum")
        )
        if not recs.empty
        else pd.DataFrame(columns=["function_name", "monthly_savings_usd"])
    )
    saving = _top(savings, "monthly_savings_usd")
    tops = dbc.Row(
        [
            dbc.Col(
                graph(
                    "overview-top-slow",
                    figures.top_bar(
                        slow,
                        "duration_p95",
                        "Slowest p95 duration",
                        "p95 duration (ms)",
                        [fmt.duration_ms(v) for v in slow["duration_p95"]],
                    ),
                ),
                lg=6,
            ),
            dbc.Col(
                graph(
                    "overview-top-errors",
                    figures.top_bar(
                        failing,
                        "errors",
                        "Most errors",
                        "Errors (count)",
                        [fmt.number(v) for v in failing["errors"]],
                    ),
                ),
                lg=6,
            ),
            dbc.Col(
                graph(
                    "overview-top-throttles",
                    figures.top_bar(
                        throttled,
                        "throttles",
                        "Most throttles",
                        "Throttles (count)",
                        [fmt.number(v) for v in throttled["throttles"]],
                    ),
                ),
                lg=6,
            ),
            dbc.Col(
                graph(
                    "overview-top-savings",
                    figures.top_bar(
                        saving,
                        "monthly_savings_usd",
                        "Biggest savings",
                        "Savings (USD per month)",
                        [fmt.usd(v) for v in saving["monthly_savings_usd"]],
                    ),
                ),
                lg=6,
            ),
        ]
    )
    return page_frame(
        "overview",
        "Fleet overview",
        query,
        [
            cards,
            graph(
                "overview-counts-graph",
                figures.counts_over_time(series, "Invocations, errors and throttles"),
            ),
            tops,
        ],
    )
