"""Stale functions: score with its signals, versions safe to delete, code storage vs quota."""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, html

from dashboards import data
from dashboards import format as fmt
from dashboards.components import (
    CSV_EXPORT_DEFAULTS,
    cached_layout,
    empty_state,
    function_href,
    kpi,
    no_match,
    now,
    page_frame,
    store,
)
from dashboards.pages.functions import GRID_DEFAULTS
from lambdascope import queries, staleness
from lambdascope.timeutil import iso

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path="/stale", name="Stale", title="lambdascope · Stale functions"
)

_STALE_STYLE = {
    "styleConditions": [
        {"condition": "params.value >= 60", "style": {"color": "#d62828", "fontWeight": 600}},
        {"condition": "params.value >= 30", "style": {"color": "#e76f51"}},
    ]
}


def _deprecation(runtime: str | None) -> str:
    """The runtime's deprecation date (YYYY-MM-DD), or '' when not scheduled."""
    day = staleness.runtime_deprecations().get(runtime or "")
    return (iso(day) or "")[:10]


@cached_layout
def layout(**query: Any) -> html.Div:
    title = "Stale functions"
    at = now()
    with store() as conn:
        if not queries.has_functions(conn):
            return page_frame(
                "stale", title, query, [empty_state("stale", "No functions in the store yet")]
            )
        view = data.view_from_query(query, at)
        infos = queries.list_functions(conn, view.filters)
        if not infos:
            return page_frame("stale", title, query, [no_match("stale")])
        report = data.stale_report(conn, at, view, infos)
    functions = sorted(report.functions, key=lambda f: -f.score)
    rows = [
        {
            "function_name": f.function_name,
            "account_id": f.account_id,
            "region": f.region,
            "runtime": f.runtime,
            "runtime_deprecated": _deprecation(f.runtime),
            "score": f.score,
            "stale": "yes" if f.stale else "",
            "last_invoked": (iso(f.last_invoked) or "never")[:10],
            "last_modified": (iso(f.last_modified) or "—")[:10],
            "code_size": fmt.size_bytes(f.code_size_bytes),
            "versions_to_delete": ", ".join(f.versions_to_delete),
            "signals": "; ".join(s.detail for s in f.signals),
            "href": function_href(f.function_name, f.account_id, f.region, query),
        }
        for f in functions
    ]
    grid = dag.AgGrid(
        id="stale-grid",
        rowData=rows,
        getRowId="params.data.href",
        columnDefs=[
            {"field": "function_name", "headerName": "Function", "width": 210, "pinned": "left"},
            {
                "field": "score",
                "headerName": "Score",
                "width": 90,
                "sort": "desc",
                "cellStyle": _STALE_STYLE,
                "filter": "agNumberColumnFilter",
            },
            {"field": "stale", "headerName": "Stale", "width": 70},
            {
                "field": "signals",
                "headerName": "Signals",
                "minWidth": 360,
                "flex": 1,
                "tooltipField": "signals",
            },
            {"field": "last_invoked", "headerName": "Last invoked", "width": 105},
            {"field": "last_modified", "headerName": "Last modified", "width": 105},
            {"field": "runtime", "headerName": "Runtime", "width": 115},
            {"field": "runtime_deprecated", "headerName": "Runtime deprecation", "width": 110},
            {"field": "code_size", "headerName": "Code", "width": 85},
            {"field": "versions_to_delete", "headerName": "Versions safe to delete", "width": 110},
            {"field": "region", "headerName": "Region", "width": 120},
            {"field": "account_id", "headerName": "Account", "width": 120},
            {"field": "href", "hide": True},
        ],
        defaultColDef=GRID_DEFAULTS,
        dashGridOptions={
            "pagination": True,
            "paginationPageSize": 20,
            "tooltipShowDelay": 0,
            "defaultCsvExportParams": CSV_EXPORT_DEFAULTS,
        },
        csvExportParams={"fileName": "lambdascope-stale.csv"},
        style={"height": "520px"},
        className="ag-theme-alpine",
    )
    storage_rows = [
        html.Tr(
            [
                html.Td(f"{s.account_id or '(local)'} / {s.region or '—'}"),
                html.Td(fmt.size_bytes(s.code_storage_bytes)),
                html.Td(fmt.size_bytes(s.limit_bytes)),
                html.Td(fmt.percent(s.used_fraction), className="text-end"),
                html.Td(
                    dbc.Progress(
                        value=max(s.used_fraction * 100, 0.5),
                        color="danger" if s.used_fraction > 0.8 else "info",
                        style={"height": "10px"},
                        className="storage-used",
                    ),
                    className="align-middle",
                ),
            ]
        )
        for s in report.storage
    ]
    storage_table = (
        dbc.Table(
            [
                html.Thead(
                    html.Tr(
                        [
                            html.Th("Account / region"),
                            html.Th("Code storage"),
                            html.Th("Quota"),
                            html.Th("Used", className="text-end"),
                            html.Th("of quota"),
                        ]
                    )
                ),
                html.Tbody(storage_rows),
            ],
            size="sm",
            striped=True,
            id="stale-storage",
        )
        if storage_rows
        else html.P(
            "No code storage known yet (`lambdascope collect`).",
            className="text-muted",
            id="stale-storage",
        )
    )
    stale_count = sum(1 for f in functions if f.stale)
    deletable = sum(len(f.versions_to_delete) for f in functions)
    deprecated = sum(1 for f in functions if any(s.key == "deprecated_runtime" for s in f.signals))
    return page_frame(
        "stale",
        title,
        query,
        [
            dbc.Row(
                [
                    kpi(
                        "Stale functions",
                        fmt.number(stale_count),
                        f"of {len(functions)} functions",
                        "stale-kpi-stale",
                    ),
                    kpi(
                        "Versions safe to delete",
                        fmt.number(deletable),
                        "not the newest, not behind an alias",
                    ),
                    kpi("Deprecated runtimes", fmt.number(deprecated), "past end of support"),
                ],
                className="g-3",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        html.Div(
                            "Sorted by stale score; click a row to open the function.",
                            className="text-muted",
                        ),
                        className="align-self-center",
                    ),
                    dbc.Col(
                        dbc.Button("Download CSV", id="stale-csv", color="secondary", size="sm"),
                        width="auto",
                    ),
                ],
                className="mb-2",
            ),
            grid,
            html.H5("Code storage per region", className="section-title"),
            storage_table,
        ],
    )


@callback(
    Output("stale-grid", "exportDataAsCsv"),
    Input("stale-csv", "n_clicks"),
    prevent_initial_call=True,
)
def export_csv(_clicks: int | None) -> bool:
    return True


@callback(
    Output("url", "href", allow_duplicate=True),
    Input("stale-grid", "cellClicked"),
    prevent_initial_call=True,
)
def open_function(cell: dict[str, Any] | None) -> Any:
    if not cell or not cell.get("rowId"):
        return dash.no_update
    return str(cell["rowId"])
