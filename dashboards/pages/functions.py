"""Functions: every function in one sortable, filterable grid; a row opens its page."""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, callback, html

from dashboards import data
from dashboards.components import (
    cached_layout,
    empty_state,
    function_href,
    no_match,
    now,
    page_frame,
    records,
    store,
)

dash.register_page(__name__, path="/functions", name="Functions", title="lambdascope · Functions")  # type: ignore[no-untyped-call]

_MS = {"function": "params.value == null ? '—' : d3.format(',.0f')(params.value) + ' ms'"}
_MB = {"function": "params.value == null ? '—' : d3.format(',.0f')(params.value) + ' MB'"}
_PCT = {"function": "params.value == null ? '—' : d3.format('.2%')(params.value)"}
_USD = {"function": "params.value == null ? '—' : d3.format('$,.2f')(params.value)"}
_NUM = {"function": "params.value == null ? '—' : d3.format('.3~s')(params.value)"}

COLUMNS: list[dict[str, Any]] = [
    {
        "field": "function_name",
        "headerName": "Function",
        "pinned": "left",
        "minWidth": 200,
        "filter": "agTextColumnFilter",
    },
    {"field": "account_id", "headerName": "Account", "width": 135},
    {"field": "region", "headerName": "Region", "width": 110},
    {"field": "runtime", "headerName": "Runtime", "width": 115},
    {"field": "architecture", "headerName": "Arch", "width": 90},
    {
        "field": "memory_mb",
        "headerName": "Memory",
        "valueFormatter": _MB,
        "width": 105,
        "filter": "agNumberColumnFilter",
    },
    {
        "field": "timeout_s",
        "headerName": "Timeout (s)",
        "width": 105,
        "filter": "agNumberColumnFilter",
    },
    {
        "field": "invocations",
        "headerName": "Invocations",
        "valueFormatter": _NUM,
        "width": 120,
        "filter": "agNumberColumnFilter",
        "sort": "desc",
    },
    {
        "field": "error_rate",
        "headerName": "Error %",
        "valueFormatter": _PCT,
        "width": 100,
        "filter": "agNumberColumnFilter",
    },
    {
        "field": "throttles",
        "headerName": "Throttles",
        "valueFormatter": _NUM,
        "width": 105,
        "filter": "agNumberColumnFilter",
    },
    {"field": "duration_p50", "headerName": "p50", "valueFormatter": _MS, "width": 95},
    {"field": "duration_p95", "headerName": "p95", "valueFormatter": _MS, "width": 95},
    {"field": "duration_p99", "headerName": "p99", "valueFormatter": _MS, "width": 95},
    {
        "field": "max_memory_used_mb",
        "headerName": "Max used / configured",
        "valueFormatter": _MB,
        "cellStyle": {"function": "memoryBar(params)"},
        "width": 165,
        "filter": "agNumberColumnFilter",
    },
    {"field": "memory_used_p99", "headerName": "p99 used", "valueFormatter": _MB, "width": 100},
    {
        "field": "cold_start_rate",
        "headerName": "Cold start %",
        "valueFormatter": _PCT,
        "width": 115,
    },
    {
        "field": "cost_usd",
        "headerName": "Cost (est.)",
        "valueFormatter": _USD,
        "width": 115,
        "filter": "agNumberColumnFilter",
    },
    {"field": "href", "hide": True},
]


def rows(stats: pd.DataFrame, query: dict[str, Any]) -> list[dict[str, Any]]:
    """Grid rows: the stats with a link to each function's page."""
    keep = [c["field"] for c in COLUMNS if c["field"] != "href"] + ["memory_used_ratio"]
    frame = stats[keep].copy()
    frame["href"] = [
        function_href(n, a, r, query)
        for n, a, r in zip(
            stats["function_name"], stats["account_id"], stats["region"], strict=True
        )
    ]
    return records(frame)


@cached_layout
def layout(**query: Any) -> html.Div:
    with store() as conn:
        if data.store_is_empty(conn):
            return page_frame(
                "functions",
                "Functions",
                query,
                [empty_state("functions", "No functions in the store yet")],
            )
        stats = data.function_stats(conn, data.filters_from_query(query, now()))
    if stats.empty:
        return page_frame("functions", "Functions", query, [no_match("functions")])
    grid = dag.AgGrid(
        id="functions-grid",
        getRowId="params.data.href",
        rowData=rows(stats, query),
        columnDefs=COLUMNS,
        defaultColDef={"sortable": True, "filter": True, "resizable": True},
        dashGridOptions={
            "pagination": True,
            "paginationPageSize": 50,
            "rowSelection": "single",
            "animateRows": False,
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
