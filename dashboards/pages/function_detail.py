"""Function detail: config, latency, failures, memory, cold starts, cost, advice."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboards import data, figures
from dashboards import format as fmt
from dashboards.alert_figures import add_deploy_markers
from dashboards.components import (
    cached_layout,
    empty_state,
    function_href,
    graph,
    kpi,
    now,
    page_frame,
    records,
    resolution_note,
    store,
)
from dashboards.evidence import evidence_children
from lambdascope import managed_instances, queries, rightsizing, staleness
from lambdascope.alerts import history
from lambdascope.timeutil import iso

dash.register_page(
    __name__,
    path_template="/functions/<name>",
    name="Function",
    title="lambdascope · Function",
)  # type: ignore[no-untyped-call]

POWER_VALUES = (128, 256, 512, 1024, 1536, 2048, 3008)


def power_tuning_input(function: dict[str, Any]) -> dict[str, Any]:
    """Input for aws-lambda-power-tuning around the configured size (MB)."""
    configured = function.get("memory_mb")
    values = sorted({*POWER_VALUES, *([int(configured)] if configured else [])})
    arn = function.get("function_arn") or (
        f"arn:aws:lambda:{function['region'] or 'REGION'}:"
        f"{function['account_id'] or 'ACCOUNT'}:function:{function['function_name']}"
    )
    return {
        "lambdaARN": arn,
        "powerValues": values,
        "num": 50,
        "payload": {},
        "parallelInvocation": True,
        "strategy": "cost",
    }


def timeout_advice(timeout_s: float | None, max_ms: float | None, p99_ms: float | None) -> str:
    """Plain-language note on the configured timeout vs observed durations."""
    if not timeout_s or max_ms is None:
        return "No duration data in this range to judge the timeout."
    share = max_ms / (timeout_s * 1000)
    text = (
        f"Longest invocation {fmt.duration_ms(max_ms)} is {fmt.percent(share)} of the "
        f"{timeout_s:.0f} s timeout."
    )
    if share >= 0.9:
        return text + " Invocations run close to the timeout: expect timeouts under load."
    if share < 0.1 and p99_ms is not None and timeout_s > 3:
        return text + " The timeout is far above observed durations; a lower one fails faster."
    return text


def _current_recommendation(
    recs: list[rightsizing.Recommendation], memory_mb: Any
) -> rightsizing.Recommendation | None:
    """The recommendation for the currently configured size (else the busiest one)."""
    if not recs:
        return None
    same = [r for r in recs if r.memory_mb == memory_mb]
    return same[0] if same else max(recs, key=lambda r: r.invocations)


def _options_table(options: list[dict[str, Any]]) -> Any:
    if not options:
        return html.Div()
    header = ("Memory", "Arch", "Projected duration", "Cost / 30 days", "Savings / 30 days")
    body = [
        html.Tr(
            [
                html.Td(fmt.megabytes(o["memory_mb"]) + (" (what-if)" if o.get("what_if") else "")),
                html.Td(o["architecture"]),
                html.Td(
                    f"{fmt.duration_ms(o['projected_duration_ms']['lower'])} – "
                    f"{fmt.duration_ms(o['projected_duration_ms']['upper'])}"
                ),
                html.Td(fmt.usd(o.get("monthly_cost_usd"))),
                html.Td(fmt.usd(o.get("monthly_savings_usd"))),
            ]
        )
        for o in options
    ]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h) for h in header])), html.Tbody(body)],
        size="sm",
        striped=True,
        className="mt-2 mb-3",
        id="function-options",
    )


def _savings_text(usd_per_30_days: float) -> str:
    if usd_per_30_days < 0:
        return f"costs {fmt.usd(-usd_per_30_days)} more per 30 days"
    return f"saves {fmt.usd(usd_per_30_days)} per 30 days"


def recommendation_block(recs: list[rightsizing.Recommendation]) -> html.Div:
    """Finding, recommended size, projected duration, savings and the options table."""
    if not recs:
        return html.Div(
            html.P(
                "No memory reports in this range: no recommendation yet.", className="text-muted"
            ),
            id="function-recommendation",
        )
    blocks: list[Any] = []
    for rec in sorted(recs, key=lambda r: -r.invocations):
        colour = figures.FINDING_COLOURS.get(rec.finding, "#1f77b4")
        summary: list[Any] = [
            html.Span(rec.finding, className="badge me-2", style={"backgroundColor": colour}),
            html.Strong(
                f"{fmt.megabytes(rec.memory_mb)} → {fmt.megabytes(rec.recommended_memory_mb)}"
            ),
            html.Span(
                f" · confidence {rec.confidence} · {_savings_text(rec.monthly_savings_usd)}",
                className="ms-1",
            ),
        ]
        projected = rec.projected_duration_ms
        if projected is not None:
            summary.append(
                html.Div(
                    f"Projected duration {fmt.duration_ms(projected.lower)} – "
                    f"{fmt.duration_ms(projected.upper)} "
                    f"(expected {fmt.duration_ms(projected.expected)})",
                    className="text-muted small",
                )
            )
        if rec.strategies:
            picks = " · ".join(
                f"{name}: {fmt.megabytes(choice.memory_mb)}"
                + (f" ({choice.slowdown:.2f}x duration)" if choice.slowdown else "")
                for name, choice in rec.strategies.items()
            )
            risk = " · performance risk" if rec.performance_risk else ""
            summary.append(
                html.Div(
                    f"Strategy {rec.strategy}{risk}. Each strategy picks {picks}",
                    className="small",
                    id="function-strategies",
                )
            )
        if rec.reasons:
            summary.append(html.Div("; ".join(rec.reasons), className="small"))
        if rec.history:
            summary.append(
                html.Div(
                    "Earlier sizes: "
                    + "; ".join(
                        f"{fmt.megabytes(h.memory_mb)} until {(h.last_seen or '?')[:10]}"
                        f" ({fmt.number(h.invocations)} invocations, max used"
                        f" {fmt.megabytes(h.max_memory_used_mb)})"
                        for h in rec.history
                    ),
                    className="small text-muted",
                    id="function-history",
                )
            )
        options = [o.as_dict() for o in rec.options]
        blocks.append(html.Div([html.Div(summary), _options_table(options)]))
    return html.Div(blocks, id="function-recommendation")


def stale_block(functions: list[staleness.StaleFunction]) -> html.Div:
    """Stale score and its signals, with versions safe to delete."""
    if not functions or not functions[0].signals:
        return html.Div(
            html.P("No stale signals.", className="text-muted mb-1"), id="function-stale"
        )
    found = functions[0]
    items = [html.Li(f"{signal.detail} (+{signal.points})") for signal in found.signals]
    if found.versions_to_delete:
        items.append(html.Li("Versions safe to delete: " + ", ".join(found.versions_to_delete)))
    verdict = "stale" if found.stale else "in use"
    return html.Div(
        [
            html.Div(f"Score {found.score}/100 · {verdict}", className="fw-semibold"),
            html.Ul(items, className="small mb-1"),
        ],
        id="function-stale",
    )


def _config_table(fn: dict[str, Any]) -> html.Table:
    rows = [
        ("Account / region", f"{fn['account_id'] or '—'} / {fn['region'] or '—'}"),
        ("Runtime", fn.get("runtime") or "—"),
        ("Architecture", fn.get("architecture") or "—"),
        ("Memory", fmt.megabytes(fn.get("memory_mb"))),
        ("Timeout", f"{fn['timeout_s']} s" if fn.get("timeout_s") else "—"),
        ("Code size", fmt.size_bytes(fn.get("code_size_bytes"))),
        ("Reserved concurrency", fn.get("reserved_concurrency") or "—"),
        ("Last modified", iso(fn.get("last_modified")) or "—"),
        ("Last seen", iso(fn.get("last_seen")) or "—"),
    ]
    if fn.get("capacity_provider_arn"):
        per_vcpu = fn.get("memory_gib_per_vcpu")
        rows += [
            ("Runs on", "Lambda Managed Instances"),
            ("Capacity provider", fn["capacity_provider_arn"]),
            ("Memory per vCPU", f"{per_vcpu:g} GiB" if per_vcpu else "—"),
            ("Compute billing", "the capacity provider's EC2 instances, not per GB-second"),
        ]
    return html.Table(
        [html.Tr([html.Td(k, className="text-muted"), html.Td(str(v))]) for k, v in rows],
        className="config-table",
    )


def _memory_graphs(series: Any, deploys: Any, mem_hist: Any, fn: dict[str, Any]) -> list[dbc.Col]:
    """Reported vs configured memory over time and its distribution (on-demand Lambda)."""
    return [
        dbc.Col(
            graph(
                "function-memory-graph",
                add_deploy_markers(figures.memory_over_time(series), deploys),
            ),
            lg=6,
        ),
        dbc.Col(
            graph(
                "function-memory-histogram",
                figures.memory_histogram(
                    mem_hist, fn.get("memory_mb"), fn.get("max_memory_used_mb")
                ),
            ),
            lg=6,
        ),
    ]


@cached_layout
def layout(name: str = "", **query: Any) -> html.Div:
    name = unquote(name)  # the path segment function_href percent-encoded
    at = now()
    with store() as conn:
        matches = queries.functions_by_name(conn, name, query.get("account"), query.get("region"))
        if not matches:
            return page_frame(
                "function",
                name or "Function",
                query,
                [
                    empty_state(
                        "function",
                        f"No function named {name!r} in the store",
                        "Check the name, account and region, or load data:",
                    )
                ],
            )
        if len(matches) > 1:
            links = [
                html.Li(
                    dcc.Link(
                        f"{m.function_name} · {m.account_id} · {m.region}",
                        href=function_href(m.function_name, m.account_id, m.region, query),
                    )
                )
                for m in matches
            ]
            return page_frame(
                "function",
                name,
                query,
                [
                    dbc.Alert(
                        [html.P("Several functions have this name; pick one:"), html.Ul(links)],
                        color="warning",
                        id="function-ambiguous",
                    )
                ],
            )
        info = matches[0]
        fn = queries.function_config(conn, info.function_id) or {}
        view = data.view_from_query(query, at)
        one = data.View(
            view.start,
            view.end,
            queries.Filters(function_ids=(info.function_id,), include_deleted=True),
        )
        series = data.function_series(conn, info, view)
        note = resolution_note(conn, "function", view, hourly=True)
        mem_hist = queries.memory_histogram(conn, info.function_id, view.start, view.end)
        stats = data.function_table(conn, one, histograms=queries.HIST_COLUMNS)
        versions = queries.function_versions(conn, info.function_id)
        recs = data.recommendations(conn, view, [info])
        stale = data.stale_report(conn, at, view, [info]).functions
        deploys = history.deploy_markers(conn, info.function_id, view.start, view.end)
        evidence = evidence_children(conn, info.function_id, view.start, view.end, recs)
        arn = fn.get("capacity_provider_arn")
        capacity = (
            managed_instances.function_utilisation(
                conn, info.account_id, info.region, arn, view.start, view.end
            )
            if arn
            else None
        )
    row = records(stats)[0] if not stats.empty else {}
    invocations = row.get("invocations", 0)
    cards = dbc.Row(
        [
            kpi("Invocations", fmt.number(invocations)),
            kpi("Error rate", fmt.percent(row.get("error_rate"))),
            kpi("p95 duration", fmt.duration_ms(row.get("duration_p95"))),
            kpi(
                "Max memory used",
                f"{fmt.megabytes(row.get('max_memory_used_mb'))}",
                f"of {fmt.megabytes(fn.get('memory_mb'))} configured",
            ),
            kpi("Cold starts", fmt.percent(row.get("cold_start_rate"))),
            kpi("Cost in range", fmt.usd(row.get("cost_usd")), "list-price estimate"),
        ],
        className="g-3",
    )
    current = _current_recommendation(recs, fn.get("memory_mb"))
    tuning = json.dumps(
        rightsizing.power_tuning_input(current, fn.get("function_arn"))
        if current is not None
        else power_tuning_input(fn)
    )
    advice = dbc.Card(
        dbc.CardBody(
            [
                html.H5("Recommendation", className="section-title mt-0"),
                recommendation_block(recs),
                *(
                    [html.P(capacity[1].sentence(), id="function-capacity-utilisation")]
                    if capacity is not None
                    else []
                ),
                *evidence,
                html.H6("Timeout", className="section-title"),
                html.P(
                    timeout_advice(
                        fn.get("timeout_s"), row.get("duration_ms_max"), row.get("duration_p99")
                    ),
                    id="function-timeout-advice",
                ),
                html.H6("Stale signals", className="section-title"),
                stale_block(stale),
                html.H6("Versions", className="section-title"),
                html.P(
                    f"{len(versions)} published versions"
                    + (
                        f", {fmt.size_bytes(sum(v['code_size_bytes'] or 0 for v in versions))}"
                        " of code"
                        if versions
                        else ""
                    )
                ),
                html.H6("Power Tuning input", className="section-title"),
                html.Div(
                    [
                        dcc.Clipboard(
                            target_id="function-power-tuning",
                            style={"float": "right", "fontSize": 18},
                        ),
                        html.Pre(
                            tuning, id="function-power-tuning", className="small power-tuning"
                        ),
                    ]
                ),
            ]
        ),
        className="mb-3",
    )
    return page_frame(
        "function",
        fn["function_name"],
        query,
        [
            cards,
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Card(
                            dbc.CardBody(
                                [html.H5("Configuration", className="mt-0"), _config_table(fn)]
                            ),
                            className="mb-3",
                        ),
                        lg=4,
                    ),
                    dbc.Col(advice, lg=8),
                ]
            ),
            dbc.Row(
                [
                    dbc.Col(
                        graph(
                            "function-latency-graph",
                            add_deploy_markers(figures.latency_over_time(series), deploys),
                        ),
                        lg=6,
                    ),
                    dbc.Col(
                        graph(
                            "function-failures-graph",
                            figures.counts_over_time(
                                series,
                                "Errors, timeouts, OOMs and throttles",
                                ("errors", "timeouts", "out_of_memory", "throttles"),
                            ),
                        ),
                        lg=6,
                    ),
                    *(_memory_graphs(series, deploys, mem_hist, fn) if capacity is None else []),
                    *(
                        [
                            dbc.Col(
                                graph(
                                    "function-capacity-graph",
                                    figures.capacity_provider_utilisation(
                                        data.capacity_frame(capacity[0]),
                                        capacity[1].capacity_provider,
                                    ),
                                ),
                                lg=6,
                            )
                        ]
                        if capacity is not None
                        else []
                    ),
                    dbc.Col(
                        graph("function-coldstart-graph", figures.cold_starts_over_time(series)),
                        lg=6,
                    ),
                    dbc.Col(
                        graph(
                            "function-cost-graph",
                            figures.cost_per_day(data.daily_cost(series)),
                        ),
                        lg=6,
                    ),
                ]
            ),
            *note,
        ],
    )
