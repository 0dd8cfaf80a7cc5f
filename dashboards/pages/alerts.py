"""Alerts: the history of alerts with their delivery state, filtered in the URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html

from dashboards.components import empty_state, function_href, kpi, now, page_frame, store
from dashboards.pages.functions import GRID_DEFAULTS
from lambdascope.alerts import history
from lambdascope.alerts.model import RULE_TITLES
from lambdascope.timeutil import iso

dash.register_page(__name__, path="/alerts", name="Alerts", title="lambdascope · Alerts")  # type: ignore[no-untyped-call]

DAYS = (1, 7, 30, 90, 365)
STATUSES = (("all", "Open and resolved"), ("open", "Open"), ("resolved", "Resolved"))


def _when(seconds: int | None) -> str:
    text = iso(seconds) or ""
    return text[:16].replace("T", " ") if text else ""


def _delivery(alert: dict[str, Any]) -> str:
    total, delivered = alert["deliveries"], alert["delivered"]
    if not total:
        return "not routed"
    text = f"{delivered}/{total} delivered"
    if alert["delivery_errors"]:
        text += f"; failing: {alert['delivery_errors']}"
    return text


def rows(alerts: list[dict[str, Any]], query: dict[str, Any]) -> list[dict[str, Any]]:
    """Grid rows of the alert history (``href`` opens the function's page)."""
    return [
        {
            "id": a["id"],
            "first_seen": _when(a["first_seen"]),
            "last_seen": _when(a["last_seen"]),
            "resolved": _when(a["resolved_at"]) or "open",
            "rule": a["rule_title"],
            "severity": a["severity"],
            "function": a["function_name"] or "(fleet)",
            "account": a["account_id"],
            "region": a["region"],
            "summary": a["summary"],
            "delivery": _delivery(a),
            "href": (
                function_href(a["function_name"], a["account_id"], a["region"], {})
                if a["function_name"]
                else f"/alerts?id={a['id']}"
            ),
        }
        for a in alerts
    ]


def _controls(query: dict[str, Any]) -> dbc.Row:
    return dbc.Row(
        [
            dbc.Col(
                dcc.Dropdown(
                    id="alerts-rule",
                    options=[{"label": t, "value": r} for r, t in RULE_TITLES.items()],
                    value=query.get("rule") or None,
                    placeholder="Every rule",
                ),
                md=3,
            ),
            dbc.Col(
                dcc.Dropdown(
                    id="alerts-status",
                    options=[{"label": t, "value": v} for v, t in STATUSES],
                    value=query.get("status") or "all",
                    clearable=False,
                ),
                md=2,
            ),
            dbc.Col(
                dcc.Dropdown(
                    id="alerts-days",
                    options=[{"label": f"Last {d} d", "value": str(d)} for d in DAYS],
                    value=str(query.get("days") or 30),
                    clearable=False,
                ),
                md=2,
            ),
            dbc.Col(
                dbc.Input(
                    id="alerts-function",
                    value=query.get("function") or "",
                    placeholder="Function name contains…",
                    debounce=True,
                ),
                md=3,
            ),
        ],
        className="mb-3 g-2",
    )


def layout(**query: Any) -> html.Div:
    at = now()
    try:
        days = int(query.get("days") or 30)
    except ValueError:
        days = 30
    status = query.get("status") if query.get("status") in ("open", "resolved") else None
    with store() as conn:
        alerts = history.alert_history(
            conn,
            at - days * 86400,
            rule=query.get("rule") or None,
            status=status,
            name_contains=query.get("function") or None,
        )
        counts = history.alert_counts(conn, at)
    cards = dbc.Row(
        [
            kpi("Open alerts", str(counts["open"]), ident="alerts-open"),
            kpi("New in the last 24 h", str(counts["last_24h"])),
            kpi(
                "Deliveries failing",
                str(counts["failing"]),
                "retried at the next check",
            ),
        ],
        className="mb-3",
    )
    body: list[Any] = [cards, _controls(query)]
    if not alerts:
        body.append(
            empty_state(
                "alerts",
                "No alerts match",
                "Alerts appear after `lambdascope alerts check` (or `schedule`) runs:",
            )
        )
    else:
        body.append(
            dag.AgGrid(
                id="alerts-grid",
                rowData=rows(alerts, query),
                getRowId="params.data.id",
                columnDefs=[
                    {"field": "first_seen", "headerName": "First seen (UTC)", "width": 140},
                    {"field": "rule", "headerName": "Rule", "width": 170},
                    {"field": "severity", "headerName": "Severity", "width": 95},
                    {
                        "field": "function",
                        "headerName": "Function",
                        "width": 180,
                        "cellStyle": {"color": "#1f77b4", "cursor": "pointer"},
                    },
                    {
                        "field": "summary",
                        "headerName": "Summary",
                        "flex": 1,
                        "minWidth": 320,
                        "tooltipField": "summary",
                    },
                    {"field": "resolved", "headerName": "Resolved (UTC)", "width": 140},
                    {"field": "last_seen", "headerName": "Last seen (UTC)", "width": 140},
                    {
                        "field": "delivery",
                        "headerName": "Delivery",
                        "width": 200,
                        "tooltipField": "delivery",
                    },
                    {"field": "account", "headerName": "Account", "width": 120},
                    {"field": "region", "headerName": "Region", "width": 110},
                    {"field": "href", "hide": True},
                ],
                defaultColDef=GRID_DEFAULTS,
                style={"height": "560px"},
                className="ag-theme-alpine",
            )
        )
    return page_frame("alerts", "Alerts", query, body, filters=False)


@callback(
    Output("url", "href", allow_duplicate=True),
    Input("alerts-rule", "value"),
    Input("alerts-status", "value"),
    Input("alerts-days", "value"),
    Input("alerts-function", "value"),
    State("url", "href"),
    prevent_initial_call=True,
)
def filter_url(
    rule: str | None, status: str | None, days: str | None, name: str | None, current: str | None
) -> Any:
    """The filters live in the URL, so a filtered view can be shared."""
    params = {
        k: v
        for k, v in (("rule", rule), ("status", status), ("days", days), ("function", name))
        if v and not (k == "status" and v == "all") and not (k == "days" and v == "30")
    }
    target = "/alerts" + (f"?{urlencode(params)}" if params else "")
    if current and current.endswith(target):
        return dash.no_update
    return target


@callback(
    Output("url", "href", allow_duplicate=True),
    Input("alerts-grid", "cellClicked"),
    State("alerts-grid", "rowData"),
    prevent_initial_call=True,
)
def open_function(cell: dict[str, Any] | None, data: list[dict[str, Any]] | None) -> Any:
    if not cell or cell.get("colId") != "function" or not data:
        return dash.no_update
    row = next((r for r in data if str(r["id"]) == str(cell.get("rowId"))), None)
    return row["href"] if row and row["function"] != "(fleet)" else dash.no_update
