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
    resolution_note,
    store,
)
from lambdascope import cost, histogram, queries, rightsizing

dash.register_page(__name__, path="/", name="Overview", title="lambdascope · Overview")  # type: ignore[no-untyped-call]


def _top(frame: pd.DataFrame, column: str, n: int = 8) -> pd.DataFrame:
    ranked = frame[frame[column].fillna(0) > 0].sort_values(column, ascending=False)
    return ranked.head(n)


@cached_layout
def layout(**query: Any) -> html.Div:
    at = now()
    with store() as conn:
        if not queries.has_functions(conn):
            return page_frame(
                "overview",
                "Fleet overview",
                query,
                [empty_state("overview", "No functions in the store yet")],
            )
        view = data.view_from_query(query, at)
        infos = queries.list_functions(conn, view.filters)
        if not infos:
            return page_frame("overview", "Fleet overview", query, [no_match("overview")])
        raw = queries.function_stats(
            conn, view.start, view.end, view.filters, histograms=rightsizing.WINDOW_HISTOGRAMS
        )
        stats = data.stats_frame(raw)
        series = data.fleet_frame(conn, view)
        note = resolution_note(conn, "overview", view)
        recs = data.recommendations(conn, view, infos, raw)
        stale = data.stale_report(conn, at, view, infos)
    invocations = float(stats["invocations"].sum())
    errors = float(stats["errors"].sum())
    spend = float(stats["cost_usd"].sum())
    fleet_p95 = histogram.quantile(data.fleet_histogram(raw), 0.95)
    active = int((stats["invocations"] > 0).sum())
    savings_total = sum(max(0.0, r.monthly_savings_usd) for r in recs)
    stale_count = len(stale.functions_to_review)
    cards = dbc.Row(
        [
            kpi(
                "Functions",
                fmt.number(len(stats)),
                f"{fmt.number(active)} invoked in range",
                "overview-kpi-functions",
            ),
            kpi(
                "Invocations",
                fmt.number(invocations),
                f"{fmt.number(invocations / view.days)} per day",
                "overview-kpi-invocations",
            ),
            kpi(
                "Error rate",
                fmt.percent(errors / invocations if invocations else None),
                f"{fmt.number(errors)} errors",
                "overview-kpi-errors",
            ),
            kpi(
                "Throttles",
                fmt.number(float(stats["throttles"].sum())),
                "requests rejected",
                "overview-kpi-throttles",
            ),
            kpi(
                "p95 duration",
                fmt.duration_ms(fleet_p95),
                "all invocations in range",
                "overview-kpi-p95",
            ),
            kpi(
                "Cost in range",
                fmt.usd(spend),
                f"{fmt.usd(cost.per_30_days(spend, view.window_s))} per 30 days",
                "overview-kpi-cost",
            ),
            kpi(
                "Potential savings",
                fmt.usd(savings_total),
                "per 30 days, from right-sizing",
                "overview-kpi-savings",
            ),
            kpi(
                "Stale functions",
                fmt.number(stale_count),
                "idle and not modified",
                "overview-kpi-stale",
            ),
        ],
        className="g-3",
    )
    slow = _top(stats.assign(duration_p95_s=stats["duration_p95"] / 1000), "duration_p95_s")
    failing = _top(stats, "errors")
    throttled = _top(stats, "throttles")
    by_function = data.recommendations_frame(recs)
    savings = by_function.groupby("function_name", as_index=False).agg(
        monthly_savings_usd=("monthly_savings_usd", "sum")
    )
    saving = _top(savings, "monthly_savings_usd")
    tops = dbc.Row(
        [
            dbc.Col(
                graph(
                    "overview-top-slow",
                    figures.top_bar(
                        slow,
                        "duration_p95_s",
                        "Slowest p95 duration",
                        "p95 duration (s)",
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
                        empty="No errors in this time range",
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
                        empty="No throttles in this time range",
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
                        "Savings (USD per 30 days)",
                        [fmt.usd(v) for v in saving["monthly_savings_usd"]],
                        empty="No savings found in this time range",
                        tickprefix="$",
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
            *note,
            tops,
        ],
    )
