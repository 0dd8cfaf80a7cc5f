"""Collection: recent runs per account/region/source and data freshness."""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
from dash import html

from dashboards.components import cached_layout, empty_state, now, page_frame, store
from dashboards.pages.functions import _USD, GRID_DEFAULTS
from lambdascope import queries
from lambdascope.timeutil import iso

dash.register_page(
    __name__, path="/collection", name="Collection", title="lambdascope · Collection"
)  # type: ignore[no-untyped-call]


def _age(seconds: float | None, at: int) -> str:
    if seconds is None:
        return "—"
    hours = (at - seconds) / 3600
    if hours < 1:
        return "< 1 h ago"
    return f"{hours:.0f} h ago" if hours < 48 else f"{hours / 24:.0f} d ago"


def _when(seconds: float | None) -> str:
    """UTC time to the minute: 2025-12-31 23:02."""
    text = iso(seconds) or ""
    return text[:16].replace("T", " ") if text else "—"


def _error_text(error: Any) -> str:
    """One recorded collection error as 'action: code message'."""
    if isinstance(error, dict):
        action = str(error.get("action") or "")
        rest = " ".join(str(v) for k, v in error.items() if k != "action" and v)
        return f"{action}: {rest}" if action and rest else action or rest
    return str(error)


FRESHNESS_SOURCES = (
    ("local_hour", "Local logs (latest hour)"),
    ("insights_hour", "Logs Insights (latest hour)"),
    ("metrics_hour", "CloudWatch metrics (latest hour)"),
    ("inventory_at", "Inventory (latest listing)"),
    ("last_invocation", "Raw invocations (latest)"),
)


@cached_layout
def layout(**query: Any) -> html.Div:
    at = now()
    with store() as conn:
        runs = queries.collection_runs(conn)
        freshness = queries.data_freshness(conn)
    if not runs and all(freshness[key] is None for key, _ in FRESHNESS_SOURCES):
        return page_frame(
            "collection",
            "Collection",
            query,
            [empty_state("collection", "Nothing collected or ingested yet")],
            filters=False,
        )
    run_rows = [
        {
            "started_at": _when(r["started_at"]),
            "account_id": r["account_id"] or "(local)",
            "region": r["region"] or "—",
            "source": r["source"],
            "status": r["status"],
            "duration_s": (r["finished_at"] - r["started_at"]) if r["finished_at"] else None,
            "items": r["items"],
            "api_calls": r["api_calls"],
            "cost_usd": r["estimated_cost_usd"],
            "errors": "; ".join(_error_text(e) for e in r["errors"]) or (r["message"] or ""),
        }
        for r in runs
    ]
    fresh_rows = [
        {
            "account_id": "all",
            "region": "all",
            "source": label,
            "status": "",
            "latest": _when(freshness[key]),
            "age": _age(freshness[key], at),
        }
        for key, label in FRESHNESS_SOURCES
        if freshness[key] is not None
    ] + [
        {
            "account_id": r["account_id"] or "(local)",
            "region": r["region"] or "—",
            "source": f"collect: {r['source']} (covered up to)",
            "status": r["status"],
            "latest": _when(r["window_end"]),
            "age": _age(r["window_end"], at),
        }
        for r in freshness["runs"]
    ]
    status_style = {
        "styleConditions": [
            {"condition": "params.value == 'ok'", "style": {"color": "#2a9d8f"}},
            {
                "condition": "params.value && params.value != 'ok'",
                "style": {"color": "#d62828", "fontWeight": 600},
            },
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
                    {
                        "field": f,
                        "headerName": h,
                        **({"cellStyle": status_style} if f == "status" else {}),
                    }
                    for f, h in (
                        ("account_id", "Account"),
                        ("region", "Region"),
                        ("source", "Data"),
                        ("status", "Last run"),
                        ("latest", "Latest (UTC)"),
                        ("age", "Age"),
                    )
                ],
                defaultColDef={"sortable": True, "flex": 1, "wrapHeaderText": True},
                dashGridOptions={"domLayout": "autoHeight"},
                style={"height": None},
                className="ag-theme-alpine",
            ),
            html.H5("Recent runs", className="section-title"),
            dag.AgGrid(
                id="collection-runs",
                rowData=run_rows,
                columnDefs=[
                    {"field": "started_at", "headerName": "Started (UTC)", "width": 140},
                    {"field": "account_id", "headerName": "Account", "width": 120},
                    {"field": "region", "headerName": "Region", "width": 125},
                    {"field": "source", "headerName": "Source", "width": 90},
                    {
                        "field": "status",
                        "headerName": "Status",
                        "cellStyle": status_style,
                        "width": 80,
                    },
                    {"field": "duration_s", "headerName": "Duration (s)", "width": 90},
                    {"field": "items", "headerName": "Items", "width": 80},
                    {"field": "api_calls", "headerName": "API calls", "width": 80},
                    {
                        "field": "cost_usd",
                        "headerName": "AWS charge (est.)",
                        "width": 95,
                        "valueFormatter": _USD,
                    },
                    {
                        "field": "errors",
                        "headerName": "Errors",
                        "flex": 1,
                        "minWidth": 300,
                        "tooltipField": "errors",
                    },
                ],
                defaultColDef=GRID_DEFAULTS,
                style={"height": "420px"},
                className="ag-theme-alpine",
            ),
        ],
        filters=False,
    )
