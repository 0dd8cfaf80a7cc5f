"""Right-sizing: every recommendation sorted by savings, fleet scatter, totals per finding,
and the memory report (CSV / HTML, as `lambdascope report memory` builds it)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html
from sqlite_utils import Database

from dashboards import data, figures
from dashboards import format as fmt
from dashboards.components import (
    CSV_EXPORT_DEFAULTS,
    cached_layout,
    empty_state,
    function_href,
    graph,
    kpi,
    no_match,
    now,
    page_frame,
    records,
    store,
)
from dashboards.pages.functions import _MB, _USD, FINDING_STYLE, GRID_DEFAULTS
from lambdascope import queries
from lambdascope.evidence import compute_optimizer
from lambdascope.reports import build, render
from lambdascope.timeutil import iso

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path="/right-sizing", name="Right-sizing", title="lambdascope · Right-sizing"
)

COLUMNS: list[dict[str, Any]] = [
    {"field": "function_name", "headerName": "Function", "pinned": "left", "width": 210},
    {"field": "finding", "headerName": "Finding", "cellStyle": FINDING_STYLE, "width": 145},
    {"field": "memory_mb", "headerName": "Configured", "valueFormatter": _MB, "width": 115},
    {
        "field": "recommended_memory_mb",
        "headerName": "Recommended",
        "valueFormatter": _MB,
        "width": 130,
    },
    {
        "field": "compute_optimizer_memory_mb",
        "headerName": "Compute Optimizer",
        "valueFormatter": _MB,
        "width": 150,
        "tooltipField": "compute_optimizer_differs_because",
    },
    {"field": "max_memory_used_mb", "headerName": "Max used", "valueFormatter": _MB, "width": 95},
    {"field": "p99_memory_used_mb", "headerName": "p99 used", "valueFormatter": _MB, "width": 95},
    {
        "field": "monthly_savings_usd",
        "headerName": "Savings / 30 days",
        "valueFormatter": _USD,
        "width": 120,
        "sort": "desc",
        "filter": "agNumberColumnFilter",
    },
    {"field": "confidence", "headerName": "Confidence", "width": 110},
    {"field": "strategy", "headerName": "Strategy", "width": 100},
    {"field": "performance_risk", "headerName": "Slower?", "width": 95},
    {
        "field": "reasons",
        "headerName": "Why",
        "minWidth": 320,
        "flex": 1,
        "tooltipField": "reasons",
    },
    {"field": "region", "headerName": "Region", "width": 120},
    {"field": "account_id", "headerName": "Account", "width": 120},
    {"field": "href", "hide": True},
]


def _report_recs(query: dict[str, Any], at: int) -> tuple[list[Any], str]:
    """The recommendations of the page's view and a window label for the report."""
    with store() as conn:
        view = data.view_from_query(query, at)
        recs = data.recommendations(conn, view, queries.list_functions(conn, view.filters))
    window = f"{iso(view.start)} to {iso(view.end)}"
    return recs, window


@cached_layout
def layout(**query: Any) -> html.Div:
    title = "Right-sizing"
    with store() as conn:
        if not queries.has_functions(conn):
            return page_frame(
                "rightsizing",
                title,
                query,
                [empty_state("rightsizing", "No functions in the store yet")],
            )
        view = data.view_from_query(query, now())
        infos = queries.list_functions(conn, view.filters)
        if not infos:
            return page_frame("rightsizing", title, query, [no_match("rightsizing")])
        found = data.recommendations(conn, view, infos)
        co_found = compute_optimizer.read_all(Database(conn))
    if not found:
        return page_frame(
            "rightsizing",
            title,
            query,
            [
                empty_state(
                    "rightsizing",
                    "No memory reports in this time range",
                    "Right-sizing needs REPORT lines (local logs or Logs Insights); widen the"
                    " time range or load logs:",
                )
            ],
        )
    recs = data.recommendations_frame(found).sort_values("monthly_savings_usd", ascending=False)
    rows = []
    answers = {(r.account_id, r.region, r.function_name): r for r in found}
    for rec in records(recs.drop(columns=["options", "projected_duration_ms"])):
        key = (rec["account_id"], rec["region"], rec["function_name"])
        rec.update(compute_optimizer.side_by_side(answers[key], co_found.get(key)))
        rec["href"] = function_href(rec["function_name"], rec["account_id"], rec["region"], query)
        rows.append(rec)
    total = float(recs["monthly_savings_usd"].clip(lower=0).sum())
    count = recs["finding"].value_counts()
    cards = dbc.Row(
        [
            kpi(
                "Potential savings",
                fmt.usd(total),
                "per 30 days, at current traffic",
                "rightsizing-kpi-savings",
            ),
            kpi("Over-provisioned", fmt.number(int(count.get("over-provisioned", 0)))),
            kpi(
                "Under-provisioned",
                fmt.number(int(count.get("under-provisioned", 0))),
                "memory or OOM risk",
            ),
            kpi("Optimized", fmt.number(int(count.get("optimized", 0)))),
            kpi("Insufficient data", fmt.number(int(count.get("insufficient-data", 0)))),
        ],
        className="g-3",
    )
    grid = dag.AgGrid(
        id="rightsizing-grid",
        getRowId="params.data.href",
        rowData=rows,
        columnDefs=COLUMNS,
        defaultColDef=GRID_DEFAULTS,
        dashGridOptions={
            "pagination": True,
            "paginationPageSize": 20,
            "defaultCsvExportParams": CSV_EXPORT_DEFAULTS,
        },
        csvExportParams={"fileName": "lambdascope-memory-report.csv"},
        style={"height": "520px"},
        className="ag-theme-alpine",
    )
    return page_frame(
        "rightsizing",
        title,
        query,
        [
            cards,
            dbc.Row(
                [
                    dbc.Col(
                        graph("rightsizing-scatter", figures.memory_scatter(recs, "finding")),
                        lg=7,
                    ),
                    dbc.Col(graph("rightsizing-totals", figures.savings_by_finding(recs)), lg=5),
                ]
            ),
            dbc.Row(
                [
                    dbc.Col(
                        html.Div(
                            "Sorted by savings; click a row to open the function.",
                            className="text-muted",
                        ),
                        className="align-self-center",
                    ),
                    dbc.Col(
                        dbc.ButtonGroup(
                            [
                                dbc.Button(
                                    "Memory report (CSV)",
                                    id="rightsizing-download-csv",
                                    color="secondary",
                                    outline=True,
                                    size="sm",
                                ),
                                dbc.Button(
                                    "Memory report (HTML)",
                                    id="rightsizing-download-html",
                                    color="secondary",
                                    outline=True,
                                    size="sm",
                                ),
                            ]
                        ),
                        width="auto",
                    ),
                    dcc.Download(id="rightsizing-download"),
                ],
                className="mb-2",
            ),
            grid,
        ],
    )


@callback(
    Output("rightsizing-download", "data"),
    Input("rightsizing-download-csv", "n_clicks"),
    Input("rightsizing-download-html", "n_clicks"),
    State("url", "search"),
    prevent_initial_call=True,
)
def download_report(_csv: int | None, _html: int | None, search: str | None) -> Any:
    """The memory report of the page's filters, built like `lambdascope report memory`."""
    fmt_name = "html" if ctx.triggered_id == "rightsizing-download-html" else "csv"
    query = dict(parse_qsl((search or "").lstrip("?")))
    recs, window = _report_recs(query, now())
    report = build.memory_report(recs, window)
    report.columns = list(report.columns)
    with store() as conn:  # Compute Optimizer's answer next to lambdascope's, as the CLI
        compute_optimizer.attach(Database(conn), recs, report.rows, report.columns)
    text = render(report, fmt_name)
    day = (iso(now()) or "")[:10]
    return {"content": text, "filename": f"memory-report-{day}.{fmt_name}", "type": None}


@callback(
    Output("url", "href", allow_duplicate=True),
    Input("rightsizing-grid", "cellClicked"),
    prevent_initial_call=True,
)
def open_function(cell: dict[str, Any] | None) -> Any:
    if not cell or not cell.get("rowId"):
        return dash.no_update
    return str(cell["rowId"])
