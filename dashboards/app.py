"""The Dash app factory: navbar, URL-kept filters and the page container."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html

NAV = [
    ("Overview", "/"),
    ("Functions", "/functions"),
    ("Right-sizing", "/right-sizing"),
    ("Stale", "/stale"),
    ("Errors & throttling", "/errors"),
    ("Alerts", "/alerts"),
    ("Collection", "/collection"),
]
_HERE = Path(__file__).parent


def create_app(db_path: str | Path, clock: Callable[[], float] = time.time) -> dash.Dash:
    """A Dash app reading the store at ``db_path`` read-only; ``clock`` gives "now"."""
    app = dash.Dash(
        "dashboards",
        use_pages=True,
        pages_folder=str(_HERE / "pages"),
        assets_folder=str(_HERE / "assets"),
        title="lambdascope",
        suppress_callback_exceptions=True,
    )
    app.server.config["LAMBDASCOPE_DB"] = str(db_path)
    app.server.config["LAMBDASCOPE_CLOCK"] = clock
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            dbc.Navbar(
                dbc.Container(
                    [
                        dbc.NavbarBrand("λ lambdascope", href="/", className="fw-bold"),
                        dbc.Nav(
                            [
                                dbc.NavItem(dbc.NavLink(label, href=href, active="exact"))
                                for label, href in NAV
                            ],
                            navbar=True,
                            id="nav-links",
                        ),
                    ],
                    fluid=True,
                ),
                color="dark",
                dark=True,
                className="mb-3",
            ),
            dbc.Container(dash.page_container, fluid=True, className="pb-5"),
        ]
    )

    @app.callback(
        Output("url", "search"),
        Input({"type": "filter", "name": ALL}, "value"),
        Input({"type": "filter", "name": ALL}, "start_date"),
        Input({"type": "filter", "name": ALL}, "end_date"),
        State({"type": "filter", "name": ALL}, "id"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def filters_to_url(
        values: list[Any],
        starts: list[Any],
        ends: list[Any],
        ids: list[dict[str, str]],
        search: str | None,
    ) -> Any:
        query = dict(parse_qsl((search or "").lstrip("?")))
        for ident, value, start, end in zip(ids, values, starts, ends, strict=True):
            name = ident["name"]
            if name == "dates":
                query["from"], query["to"] = start or "", end or ""
            else:
                query[name] = value or ""
        if query.get("range") != "custom":
            query.pop("from", None)
            query.pop("to", None)
        clean = {k: v for k, v in query.items() if v}
        new = f"?{urlencode(clean)}" if clean else ""
        if new == (search or ""):
            return dash.no_update
        return new

    return app
