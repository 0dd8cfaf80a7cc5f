"""Errors and throttling: fleet breakdown over time, worst functions, concurrency."""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, html

from dashboards import data, figures
from dashboards.components import (
    cached_layout,
    empty_state,
    function_href,
    graph,
    no_match,
    now,
    page_frame,
    resolution_note,
    store,
)
from dashboards.components import records as _records
from dashboards.pages.functions import _MS, _NUM, _PCT, GRID_DEFAULTS
from lambdascope import queries

dash.register_page(
    __name__,
    path="/errors",
    name="Errors & throttling",
    title="lambdascope · Errors and throttling",
)  # type: ignore[no-untyped-call]


@cached_layout
def layout(**query: Any) -> html.Div:
    title = "Errors and throttling"
    with store() as conn:
        if not queries.has_functions(conn):
            return page_frame(
                "errors", title, query, [empty_state("errors", "No functions in the store yet")]
            )
        view = data.view_from_query(query, now())
        if not queries.list_functions(conn, view.filters):
            return page_frame("errors", title, query, [no_match("errors")])
        stats = data.function_table(conn, view, histograms=())
        series = data.fleet_frame(conn, view)
        health = data.health_table(conn, view)
        health_series = data.health_frame(conn, view)
        note = resolution_note(conn, "errors", view)
    merged = stats.merge(health, how="left", left_on="id", right_on="function_id")
    failing = merged[
        (
            merged["errors"]
            + merged["throttles"]
            + merged["timeouts"]
            + merged["out_of_memory"]
            + merged["async_events_dropped"].fillna(0)
        )
        > 0
    ].sort_values(["errors", "throttles"], ascending=False)
    records = []
    for r in _records(failing):
        records.append(
            {
                "function_name": r["function_name"],
                "account_id": r["account_id"],
                "region": r["region"],
                "invocations": r["invocations"],
                "errors": r["errors"],
                "error_rate": r["error_rate"],
                "timeouts": r["timeouts"],
                "out_of_memory": r["out_of_memory"],
                "throttles": r["throttles"],
                "concurrency_max": r["concurrency_max"],
                "reserved_concurrency": r["reserved_concurrency"],
                "iterator_age_max_ms": r["iterator_age_max_ms"],
                "async_events_dropped": r["async_events_dropped"],
                "href": function_href(r["function_name"], r["account_id"], r["region"], query),
            }
        )
    grid = dag.AgGrid(
        id="errors-grid",
        rowData=records,
        getRowId="params.data.href",
        columnDefs=[
            {"field": "function_name", "headerName": "Function", "width": 210, "pinned": "left"},
            {
                "field": "errors",
                "headerName": "Errors",
                "headerTooltip": "Every failed invocation, timeouts and out-of-memory included",
                "valueFormatter": _NUM,
            },
            {"field": "error_rate", "headerName": "Error %", "valueFormatter": _PCT},
            {"field": "timeouts", "headerName": "Timeouts", "valueFormatter": _NUM},
            {"field": "out_of_memory", "headerName": "Out of memory", "valueFormatter": _NUM},
            {"field": "throttles", "headerName": "Throttles", "valueFormatter": _NUM},
            {"field": "invocations", "headerName": "Invocations", "valueFormatter": _NUM},
            {
                "field": "concurrency_max",
                "headerName": "Peak concurrency",
                "valueFormatter": _NUM,
            },
            {"field": "reserved_concurrency", "headerName": "Reserved concurrency"},
            {
                "field": "iterator_age_max_ms",
                "headerName": "Iterator age (max)",
                "valueFormatter": _MS,
            },
            {
                "field": "async_events_dropped",
                "headerName": "Async events dropped",
                "valueFormatter": _NUM,
            },
            {"field": "region", "headerName": "Region", "width": 120},
            {"field": "account_id", "headerName": "Account", "width": 120},
            {"field": "href", "hide": True},
        ],
        defaultColDef={**GRID_DEFAULTS, "width": 112},
        dashGridOptions={"pagination": True, "paginationPageSize": 20},
        style={"height": "480px"},
        className="ag-theme-alpine",
    )
    return page_frame(
        "errors",
        title,
        query,
        [
            graph(
                "errors-breakdown-graph",
                figures.counts_over_time(
                    series,
                    "Failures across the fleet",
                    ("errors", "timeouts", "out_of_memory", "throttles"),
                ),
            ),
            html.H5("Worst functions", className="section-title"),
            grid
            if records
            else html.P(
                "No errors, timeouts or throttles in this range.",
                id="errors-none",
                className="text-muted",
            ),
            html.H5("Concurrency, streams and async delivery", className="section-title"),
            dbc.Row(
                [
                    dbc.Col(
                        graph(
                            "errors-concurrency-graph",
                            figures.concurrency_vs_reserved(merged),
                        ),
                        lg=6,
                    ),
                    dbc.Col(
                        [
                            graph(
                                "errors-iterator-graph",
                                figures.iterator_age_over_time(health_series),
                            ),
                        ],
                        lg=6,
                    ),
                    dbc.Col(
                        graph(
                            "errors-async-graph",
                            figures.async_delivery_over_time(health_series),
                        ),
                        lg=6,
                    ),
                ]
            ),
            *note,
        ],
    )


@callback(
    Output("url", "href", allow_duplicate=True),
    Input("errors-grid", "cellClicked"),
    prevent_initial_call=True,
)
def open_function(cell: dict[str, Any] | None) -> Any:
    if not cell or not cell.get("rowId"):
        return dash.no_update
    return str(cell["rowId"])
