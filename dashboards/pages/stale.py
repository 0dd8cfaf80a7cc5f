"""Stale functions: idle functions, old versions, code storage vs quota."""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import html

from dashboards import data
from dashboards import format as fmt
from dashboards.components import cached_layout, empty_state, kpi, no_match, now, page_frame, store
from dashboards.components import records as _records
from lambdascope.timeutil import iso

dash.register_page(__name__, path="/stale", name="Stale", title="lambdascope · Stale functions")  # type: ignore[no-untyped-call]

_DATE = {"function": "params.value ? params.value.slice(0, 10) : '—'"}


@cached_layout
def layout(**query: Any) -> html.Div:
    with store() as conn:
        if data.store_is_empty(conn):
            return page_frame(
                "stale",
                "Stale functions",
                query,
                [empty_state("stale", "No functions in the store yet")],
            )
        stats = data.function_stats(conn, data.filters_from_query(query, now()))
        storage = data.account_storage(conn)
    if stats.empty:
        return page_frame("stale", "Stale functions", query, [no_match("stale")])
    idle = stats[stats["invocations"] == 0]
    records = [
        {
            "function_name": r["function_name"],
            "account_id": r["account_id"],
            "region": r["region"],
            "runtime": r["runtime"],
            "last_modified": iso(r["last_modified"]),
            "last_seen": iso(r["last_seen"]),
            "versions": r["versions"],
            "versions_code": fmt.size_bytes(r["versions_code_bytes"]),
            "code_size": fmt.size_bytes(r["code_size_bytes"]),
        }
        for r in _records(idle)
    ]
    grid = dag.AgGrid(
        id="stale-grid",
        rowData=records,
        columnDefs=[
            {"field": "function_name", "headerName": "Function", "minWidth": 220},
            {"field": "account_id", "headerName": "Account"},
            {"field": "region", "headerName": "Region"},
            {"field": "runtime", "headerName": "Runtime"},
            {"field": "last_modified", "headerName": "Last modified", "valueFormatter": _DATE},
            {"field": "code_size", "headerName": "Code size"},
            {"field": "versions", "headerName": "Published versions"},
            {"field": "versions_code", "headerName": "Versions code"},
        ],
        defaultColDef={"sortable": True, "filter": True, "resizable": True, "flex": 1},
        csvExportParams={"fileName": "lambdascope-stale.csv"},
        style={"height": "420px"},
        className="ag-theme-alpine",
    )
    storage_rows = [
        html.Tr(
            [
                html.Td(f"{r['account_id']} / {r['region']}"),
                html.Td(fmt.size_bytes(r["code_storage_bytes"])),
                html.Td(fmt.size_bytes(r["code_storage_limit_bytes"])),
                html.Td(
                    fmt.percent(r["code_storage_bytes"] / r["code_storage_limit_bytes"])
                    if r["code_storage_limit_bytes"] and r["code_storage_bytes"] is not None
                    else "—"
                ),
            ]
        )
        for r in _records(storage)
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
                            html.Th("Used"),
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
            "No account settings collected yet (`lambdascope collect`).",
            className="text-muted",
            id="stale-storage",
        )
    )
    return page_frame(
        "stale",
        "Stale functions",
        query,
        [
            dbc.Row(
                [
                    kpi(
                        "Not invoked in range",
                        fmt.number(len(idle)),
                        f"of {len(stats)} functions",
                        "stale-kpi-idle",
                    ),
                    kpi(
                        "Their code", fmt.size_bytes(float(idle["code_size_bytes"].fillna(0).sum()))
                    ),
                    kpi("Published versions (all)", fmt.number(float(stats["versions"].sum()))),
                ],
                className="g-3",
            ),
            html.H5(
                "Functions with no invocations in the selected range", className="section-title"
            ),
            grid,
            html.H5("Code storage per region", className="section-title"),
            storage_table,
        ],
    )
