"""Functions: every function in one sortable, filterable grid; a row opens its page."""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, callback, html

from dashboards import data, figures
from dashboards.components import (
    CSV_EXPORT_DEFAULTS,
    cached_layout,
    empty_state,
    function_href,
    no_match,
    now,
    page_frame,
    records,
    store,
)
from lambdascope import queries, rightsizing

dash.register_page(__name__, path="/functions", name="Functions", title="lambdascope · Functions")  # type: ignore[no-untyped-call]

_MS = {"function": "fmtDuration(params.value)"}
_MB = {"function": "fmtMb(params.value)"}
_PCT = {"function": "fmtPct(params.value)"}
_USD = {"function": "fmtUsd(params.value)"}
_NUM = {"function": "fmtCount(params.value)"}
_NUMBER = "agNumberColumnFilter"

FINDING_STYLE = {
    "styleConditions": [
        {"condition": f"params.value == '{finding}'", "style": {"color": colour, "fontWeight": 600}}
        for finding, colour in figures.FINDING_COLOURS.items()
    ]
}
STALE_STYLE = {
    "styleConditions": [
        {"condition": "params.value >= 60", "style": {"color": "#d62828", "fontWeight": 600}},
        {"condition": "params.value >= 30", "style": {"color": "#e76f51"}},
    ]
}

COLUMNS: list[dict[str, Any]] = [
    {
        "field": "function_name",
        "headerName": "Function",
        "pinned": "left",
        "width": 210,
        "filter": "agTextColumnFilter",
    },
    {
        "field": "invocations",
        "headerName": "Invocations",
        "valueFormatter": _NUM,
        "width": 118,
        "filter": _NUMBER,
        "sort": "desc",
    },
    {"field": "error_rate", "headerName": "Error %", "valueFormatter": _PCT, "width": 85},
    {"field": "throttles", "headerName": "Throttles", "valueFormatter": _NUM, "width": 90},
    {"field": "duration_p95", "headerName": "p95", "valueFormatter": _MS, "width": 80},
    {
        "field": "max_memory_used_mb",
        "headerName": "Max memory used (bar: share of configured)",
        "valueFormatter": _MB,
        "cellStyle": {"function": "memoryBar(params)"},
        "width": 135,
        "filter": _NUMBER,
    },
    {"field": "memory_mb", "headerName": "Memory", "valueFormatter": _MB, "width": 95},
    {"field": "cost_usd", "headerName": "Cost", "valueFormatter": _USD, "width": 85},
    {"field": "finding", "headerName": "Finding", "cellStyle": FINDING_STYLE, "width": 140},
    {
        "field": "stale_score",
        "headerName": "Stale score",
        "cellStyle": STALE_STYLE,
        "width": 80,
        "filter": _NUMBER,
    },
    {"field": "runtime", "headerName": "Runtime", "width": 120},
    {"field": "architecture", "headerName": "Arch", "width": 75},
    {"field": "timeout_s", "headerName": "Timeout (s)", "width": 95, "filter": _NUMBER},
    {"field": "region", "headerName": "Region", "width": 120},
    {"field": "account_id", "headerName": "Account", "width": 120},
    {"field": "duration_p50", "headerName": "p50", "valueFormatter": _MS, "width": 80},
    {"field": "duration_p99", "headerName": "p99", "valueFormatter": _MS, "width": 80},
    {
        "field": "memory_used_p99",
        "headerName": "p99 memory used",
        "valueFormatter": _MB,
        "width": 95,
    },
    {"field": "cold_start_rate", "headerName": "Cold start %", "valueFormatter": _PCT, "width": 85},
    {"field": "href", "hide": True},
]


# Full header text (wrapped) on a laptop screen; number columns filter as numbers.
GRID_DEFAULTS = {
    "sortable": True,
    "filter": True,
    "resizable": True,
    "wrapHeaderText": True,
    "autoHeaderHeight": True,
}


def rows(
    stats: pd.DataFrame,
    query: dict[str, Any],
    findings: dict[tuple[str, str, str], str],
    scores: dict[tuple[str, str, str], int],
) -> list[dict[str, Any]]:
    """Grid rows: the stats with finding, stale score and a link to each function's page."""
    keep = [c["field"] for c in COLUMNS if c["field"] not in ("href", "finding", "stale_score")]
    frame = stats[[*keep, "memory_used_ratio"]].copy()
    keys = list(zip(stats["account_id"], stats["region"], stats["function_name"], strict=True))
    frame["finding"] = [findings.get(k) for k in keys]
    frame["stale_score"] = [scores.get(k) for k in keys]
    frame["href"] = [function_href(n, a, r, query) for a, r, n in keys]
    return records(frame)


@cached_layout
def layout(**query: Any) -> html.Div:
    at = now()
    with store() as conn:
        if not queries.has_functions(conn):
            return page_frame(
                "functions",
                "Functions",
                query,
                [empty_state("functions", "No functions in the store yet")],
            )
        view = data.view_from_query(query, at)
        infos = queries.list_functions(conn, view.filters)
        if not infos:
            return page_frame("functions", "Functions", query, [no_match("functions")])
        raw = queries.function_stats(
            conn, view.start, view.end, view.filters, histograms=rightsizing.WINDOW_HISTOGRAMS
        )
        stats = data.stats_frame(raw)
        findings = data.primary_finding(data.recommendations(conn, view, infos, raw))
        stale = data.stale_report(conn, at, view, infos)
    scores = {(f.account_id, f.region, f.function_name): f.score for f in stale.functions}
    grid = dag.AgGrid(
        id="functions-grid",
        getRowId="params.data.href",
        rowData=rows(stats, query, findings, scores),
        columnDefs=COLUMNS,
        defaultColDef=GRID_DEFAULTS,
        dashGridOptions={
            "pagination": True,
            "paginationPageSize": 50,
            "animateRows": False,
            "defaultCsvExportParams": CSV_EXPORT_DEFAULTS,
        },
        csvExportParams={"fileName": "lambdascope-functions.csv"},
        style={"height": "640px"},
        className="ag-theme-alpine",
    )
    return page_frame(
        "functions",
        "Functions",
        query,
        [
            dbc.Row(
                [
                    dbc.Col(
                        html.Div(
                            f"{len(stats)} functions · click a row to open it",
                            className="text-muted",
                        ),
                        className="align-self-center",
                    ),
                    dbc.Col(
                        dbc.Button(
                            "Download CSV", id="functions-csv", color="secondary", size="sm"
                        ),
                        width="auto",
                    ),
                ],
                className="mb-2",
            ),
            grid,
        ],
    )


@callback(
    Output("functions-grid", "exportDataAsCsv"),
    Input("functions-csv", "n_clicks"),
    prevent_initial_call=True,
)
def export_csv(_clicks: int | None) -> bool:
    return True


@callback(
    Output("url", "href"),
    Input("functions-grid", "cellClicked"),
    prevent_initial_call=True,
)
def open_function(cell: dict[str, Any] | None) -> Any:
    # Row ids are the function page links (getRowId above).
    if not cell or not cell.get("rowId"):
        return dash.no_update
    return str(cell["rowId"])
