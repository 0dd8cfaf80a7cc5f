"""Collection: recent runs per account/region/source and data freshness."""

from __future__ import annotations

import json
from typing import Any

import dash
import dash_ag_grid as dag
from dash import html

from dashboards import data
from dashboards.components import cached_layout, empty_state, now, page_frame, store
from dashboards.components import records as _records
from lambdascope.timeutil import iso

dash.register_page(
    __name__, path="/collection", name="Collection", title="lambdascope · Collection"
)  # type: ignore[no-untyped-call]


def _age(seconds: float | None, at: int) -> str:
    if seconds is None:
        return "—"
    hours = (at - seconds) / 3600
    return f"{hours:.0f} h ago" if hours < 48 else f"{hours / 24:.0f} d ago"


@cached_layout
def layout(**query: Any) -> html.Div:
    at = now()
    with store() as conn:
        runs = data.collection_runs(conn)
        freshness = data.data_freshness(conn)
    if runs.empty and freshness.empty:
        return page_frame(
            "collection",
            "Collection",
            query,
            [empty_state("collection", "Nothing collected or ingested yet")],
        )
    run_rows = []
    for r in _records(runs):
        try:
            errors = json.loads(r["errors_json"] or "[]")
        except ValueError:
            errors = [r["errors_json"]]
        run_rows.append(
            {
                "started_at": iso(r["started_at"]),
                "account_id": r["account_id"] or "(local)",
                "region": r["region"] or "—",
                "source": r["source"],
                "status": r["status"],
                "duration_s": (r["finished_at"] - r["started_at"]) if r["finished_at"] else None,
                "items": r["items"],
                "api_calls": r["api_calls"],
                "errors": "; ".join(str(e) for e in errors) or (r["message"] or ""),
            }
        )
    fresh_rows = [
        {
            "account_id": r["account_id"] or "(local)",
            "region": r["region"] or "—",
            "source": r["source"],
            "latest_hour": iso(r["latest_hour"]),
            "age": _age(r["latest_hour"], at),
        }
        for r in _records(freshness)
    ]
    status_style = {
        "styleConditions": [
            {"condition": "params.value == 'ok'", "style": {"color": "#2a9d8f"}},
            {"condition": "params.value != 'ok'", "style": {"color": "#d62828", "fontWeight": 600}},
        ]
    }
    return page_frame(
        "collection",
        "Collection",
        query,
        [
            html.H5("Data freshness", className="section-title"),
            dag.AgGrid(
                id="collection-freshness",
                rowData=fresh_rows,
                columnDefs=[
                    {"field": f, "headerName": h}
                    for f, h in (
                        ("account_id", "Account"),
                        ("region", "Region"),
                        ("source", "Source"),
                        ("latest_hour", "Latest hour (UTC)"),
                        ("age", "Age"),
                    )
                ],
                defaultColDef={"sortable": True, "flex": 1},
                style={"height": "220px"},
                className="ag-theme-alpine",
            ),
            html.H5("Recent runs", className="section-title"),
            dag.AgGrid(
                id="collection-runs",
                rowData=run_rows,
                columnDefs=[
                    {"field": "started_at", "headerName": "Started (UTC)", "width": 200},
                    {"field": "account_id", "headerName": "Account"},
                    {"field": "region", "headerName": "Region"},
                    {"field": "source", "headerName": "Source"},
                    {"field": "status", "headerName": "Status", "cellStyle": status_style},
                    {"field": "duration_s", "headerName": "Duration (s)"},
                    {"field": "items", "headerName": "Items"},
                    {"field": "api_calls", "headerName": "API calls"},
                    {"field": "errors", "headerName": "Errors", "flex": 2},
                ],
                defaultColDef={"sortable": True, "filter": True, "resizable": True, "flex": 1},
                style={"height": "420px"},
                className="ag-theme-alpine",
            ),
        ],
    )
