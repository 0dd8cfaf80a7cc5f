"""Errors and throttling: fleet breakdown over time, worst functions, concurrency."""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
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
    store,
)
from dashboards.components import records as _records
from dashboards.pages.functions import _MS, _NUM, _PCT

dash.register_page(
    __name__,
    path="/errors",
    name="Errors & throttling",
    title="lambdascope · Errors and throttling",
)  # type: ignore[no-untyped-call]


@cached_layout
def layout(**query: Any) -> html.Div:
    with store() as conn:
        if data.store_is_empty(conn):
            return page_frame(
                "errors",
                "Errors and throttling",
                query,
                [empty_state("errors", "No functions in the store yet")],
            )
        filters = data.filters_from_query(query, now())
        stats = data.function_stats(conn, filters)
        series = data.fleet_timeseries(conn, filters)
    if stats.empty:
        return page_frame("errors", "Errors and throttling", query, [no_match("errors")])
    failing = stats[
        (
            stats["errors"]
            + stats["throttles"]
            + stats["timeouts"]
            + stats["out_of_memory"]
            + stats["async_events_dropped"].fillna(0)
        )
        > 0
    ]
    failing = failing.sort_values(["errors", "throttles"], ascending=False)
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
    records = [{k: (None if v != v else v) for k, v in rec.items()} for rec in records]
    grid = dag.AgGrid(
        id="errors-grid",
        rowData=records,
        getRowId="params.data.href",
        columnDefs=[
            {"field": "function_name", "headerName": "Function", "minWidth": 200, "pinned": "left"},
            {"field": "account_id", "headerName": "Account", "width": 130},
            {"field": "region", "headerName": "Region", "width": 110},
            {"field": "invocations", "headerName": "Invocations", "valueFormatter": _NUM},
            {"field": "errors", "headerName": "Errors", "valueFormatter": _NUM},
            {"field": "error_rate", "headerName": "Error %", "valueFormatter": _PCT},
            {"field": "timeouts", "headerName": "Timeouts", "valueFormatter": _NUM},
            {"field": "out_of_memory", "headerName": "OOMs", "valueFormatter": _NUM},
            {"field": "throttles", "headerName": "Throttles", "valueFormatter": _NUM},
            {"field": "concurrency_max", "headerName": "Max concurrency"},
            {"field": "reserved_concurrency", "headerName": "Reserved"},
            {
                "field": "iterator_age_max_ms",
                "headerName": "Iterator age max",
                "valueFormatter": _MS,
            },
            {"field": "async_events_dropped", "headerName": "Async drops"},
            {"field": "href", "hide": True},
        ],
        defaultColDef={"sortable": True, "filter": True, "resizable": True, "width": 120},
        dashGridOptions={"pagination": True, "paginationPageSize": 20},
        style={"height": "480px"},
        className="ag-theme-alpine",
    )
    return page_frame(
        "errors",
        "Errors and throttling",
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
