"""Right-sizing: configured vs used memory across the fleet; the memory report."""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, html

from dashboards import data, figures
from dashboards import format as fmt
from dashboards.components import empty_state, graph, kpi, no_match, now, page_frame, store
from dashboards.pages.functions import COLUMNS, rows

dash.register_page(
    __name__, path="/right-sizing", name="Right-sizing", title="lambdascope · Right-sizing"
)  # type: ignore[no-untyped-call]

_FIELDS = (
    "function_name",
    "account_id",
    "region",
    "memory_mb",
    "max_memory_used_mb",
    "memory_used_p99",
    "invocations",
    "duration_p95",
    "cost_usd",
    "href",
)


def layout(**query: Any) -> html.Div:
    with store() as conn:
        if data.store_is_empty(conn):
            return page_frame(
                "rightsizing",
                "Right-sizing",
                query,
                [empty_state("rightsizing", "No functions in the store yet")],
            )
        stats = data.function_stats(conn, data.filters_from_query(query, now()))
    if stats.empty:
        return page_frame("rightsizing", "Right-sizing", query, [no_match("rightsizing")])
    measured = stats.dropna(subset=["max_memory_used_mb", "memory_mb"])
    ratio = measured["max_memory_used_mb"] / measured["memory_mb"]
    idle_mb = float((measured["memory_mb"] - measured["max_memory_used_mb"]).clip(lower=0).sum())
    cards = dbc.Row(
        [
            kpi("Functions with memory reports", fmt.number(len(measured))),
            kpi(
                "Using < 40 % of memory",
                fmt.number(int((ratio < 0.4).sum())),
                "max used vs configured",
                "rightsizing-kpi-low",
            ),
            kpi(
                "Using > 90 % of memory",
                fmt.number(int((ratio > 0.9).sum())),
                "out-of-memory risk",
                "rightsizing-kpi-high",
            ),
            kpi("Configured but never used", fmt.megabytes(idle_mb), "sum over functions"),
        ],
        className="g-3",
    )
    columns = [c for c in COLUMNS if c["field"] in _FIELDS]
    table_rows = sorted(rows(stats, query), key=lambda r: -(r["cost_usd"] or 0))
    grid = dag.AgGrid(
        id="rightsizing-grid",
        getRowId="params.data.href",
        rowData=table_rows,
        columnDefs=columns,
        defaultColDef={"sortable": True, "filter": True, "resizable": True},
        dashGridOptions={"pagination": True, "paginationPageSize": 25},
        csvExportParams={"fileName": "lambdascope-memory-report.csv"},
        style={"height": "480px"},
        className="ag-theme-alpine",
    )
    return page_frame(
        "rightsizing",
        "Right-sizing",
        query,
        [
            cards,
            dbc.Alert(
                "Recommendations (finding, recommended size, savings and options) appear "
                "here once the right-sizing analysis is available in this installation; "
                "meanwhile the data below shows observed memory use against configuration.",
                color="light",
                id="rightsizing-note",
            ),
            graph("rightsizing-scatter", figures.memory_scatter(stats)),
            dbc.Row(
                [
                    dbc.Col(
                        html.Div(
                            "Sorted by estimated cost; click a row to open the function.",
                            className="text-muted",
                        ),
                        className="align-self-center",
                    ),
                    dbc.Col(
                        dbc.Button(
                            "Download memory report (CSV)",
                            id="rightsizing-csv",
                            color="secondary",
                            size="sm",
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
    Output("rightsizing-grid", "exportDataAsCsv"),
    Input("rightsizing-csv", "n_clicks"),
    prevent_initial_call=True,
)
def export_csv(_clicks: int | None) -> bool:
    return True


@callback(
    Output("url", "href", allow_duplicate=True),
    Input("rightsizing-grid", "cellClicked"),
    prevent_initial_call=True,
)
def open_function(cell: dict[str, Any] | None) -> Any:
    if not cell or not cell.get("rowId"):
        return dash.no_update
    return str(cell["rowId"])
