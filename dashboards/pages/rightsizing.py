"""Right-sizing: every recommendation sorted by savings, fleet scatter, totals per finding."""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, html

from dashboards import data, figures
from dashboards import format as fmt
from dashboards.components import (
    cached_layout,
    empty_state,
    function_href,
    graph,
    kpi,
    no_match,
    now,
    page_frame,
    store,
)
from dashboards.pages.functions import _MB, _USD

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path="/right-sizing", name="Right-sizing", title="lambdascope · Right-sizing"
)

FINDING_STYLE = {
    "styleConditions": [
        {"condition": f"params.value == '{finding}'", "style": {"color": colour, "fontWeight": 600}}
        for finding, colour in figures.FINDING_COLOURS.items()
    ]
}
COLUMNS: list[dict[str, Any]] = [
    {"field": "function_name", "headerName": "Function", "pinned": "left", "minWidth": 200},
    {"field": "account_id", "headerName": "Account", "width": 135},
    {"field": "region", "headerName": "Region", "width": 110},
    {"field": "finding", "headerName": "Finding", "cellStyle": FINDING_STYLE, "width": 160},
    {"field": "memory_mb", "headerName": "Configured", "valueFormatter": _MB, "width": 115},
    {
        "field": "recommended_memory_mb",
        "headerName": "Recommended",
        "valueFormatter": _MB,
        "width": 130,
    },
    {"field": "max_memory_used_mb", "headerName": "Max used", "valueFormatter": _MB, "width": 110},
    {"field": "p99_memory_used_mb", "headerName": "p99 used", "valueFormatter": _MB, "width": 105},
    {"field": "confidence", "headerName": "Confidence", "width": 115},
    {
        "field": "monthly_savings_usd",
        "headerName": "Savings / month",
        "valueFormatter": _USD,
        "width": 140,
        "sort": "desc",
        "filter": "agNumberColumnFilter",
    },
    {"field": "reasons", "headerName": "Why", "minWidth": 300, "flex": 1},
    {"field": "href", "hide": True},
]


@cached_layout
def layout(**query: Any) -> html.Div:
    title = "Right-sizing"
    with store() as conn:
        if data.store_is_empty(conn):
            return page_frame(
                "rightsizing",
                title,
                query,
                [empty_state("rightsizing", "No functions in the store yet")],
            )
        filters = data.filters_from_query(query, now())
        stats = data.function_stats(conn, filters)
        recs = data.recommendations(conn, filters, stats)
    if stats.empty:
        return page_frame("rightsizing", title, query, [no_match("rightsizing")])
    if recs.empty:
        return page_frame(
            "rightsizing",
            title,
            query,
            [
                empty_state(
                    "rightsizing",
                    "No memory reports in this time range",
                    "Right-sizing needs REPORT lines (local logs or Logs Insights):",
                )
            ],
        )
    recs = recs.sort_values("monthly_savings_usd", ascending=False)
    findings = recs.groupby(["account_id", "region", "function_name"], as_index=False).first()
    scatter_data = stats.merge(
        findings[["account_id", "region", "function_name", "finding"]],
        how="left",
        on=["account_id", "region", "function_name"],
    )
    rows = []
    for rec in recs.drop(columns=["options", "recommendation"]).to_dict("records"):
        rec["href"] = function_href(rec["function_name"], rec["account_id"], rec["region"], query)
        rows.append(
            {
                k: (None if isinstance(v, float) and v != v else v)
                for k, v in rec.items()
                if k != "projected_duration_ms"
            }
        )
    total = float(recs["monthly_savings_usd"].sum())
    count = recs["finding"].value_counts()
    cards = dbc.Row(
        [
            kpi(
                "Potential savings",
                fmt.usd(total),
                "per month, at current traffic",
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
        defaultColDef={"sortable": True, "filter": True, "resizable": True},
        dashGridOptions={"pagination": True, "paginationPageSize": 20},
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
                        graph(
                            "rightsizing-scatter", figures.memory_scatter(scatter_data, "finding")
                        ),
                        lg=7,
                    ),
                    dbc.Col(graph("rightsizing-totals", figures.savings_by_finding(recs)), lg=5),
                ]
            ),
            dbc.Row(
                [
                    dbc.Col(
                        html.Div(
                            "Sorted by monthly savings; click a row to open the function.",
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
