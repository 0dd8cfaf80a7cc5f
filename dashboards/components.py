"""Shared layout pieces: the filter bar, KPI cards, empty states, store access."""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import dash_bootstrap_components as dbc
import flask
from dash import dcc, html

from dashboards import data
from lambdascope import queries
from lambdascope.db import StoreError, open_db

# Grid CSV exports through assets/dashAgGridFunctions.js csvCell: cells as the grid shows
# them, text that a spreadsheet would run as a formula with a leading '.
CSV_EXPORT_DEFAULTS: dict[str, Any] = {"processCellCallback": {"function": "csvCell(params)"}}

FILTER_KEYS = ("range", "from", "to", "account", "region", "runtime", "arch", "tag", "q")
RANGE_OPTIONS = [
    {"label": "Last 24 h", "value": "24h"},
    {"label": "Last 7 d", "value": "7d"},
    {"label": "Last 14 d", "value": "14d"},
    {"label": "Last 30 d", "value": "30d"},
    {"label": "Last 90 d", "value": "90d"},
    {"label": "Custom", "value": "custom"},
]


@contextmanager
def store() -> Iterator[sqlite3.Connection]:
    """A read-only connection to the app's store for one request."""
    db = open_db(flask.current_app.config["LAMBDASCOPE_DB"], readonly=True)
    try:
        yield db.conn
    finally:
        db.conn.close()


def _store_fingerprint() -> tuple[int, ...]:
    """Changes whenever a writer commits (file and WAL size/mtime)."""
    path = Path(flask.current_app.config["LAMBDASCOPE_DB"])
    parts: list[int] = []
    for candidate in (path, path.with_name(path.name + "-wal")):
        try:
            stat = candidate.stat()
            parts += [stat.st_mtime_ns, stat.st_size]
        except OSError:
            parts += [0, 0]
    return tuple(parts)


_CACHE_SIZE = 64
_cache: OrderedDict[Hashable, Any] = OrderedDict()
_cache_lock = threading.Lock()


def cached_layout(layout: Callable[..., Any]) -> Callable[..., Any]:
    """Reuse a page's rendered layout until the store changes, the hour turns or the URL
    differs: the reads behind a page scan the whole window, so repeat views are served
    from memory (per app, bounded LRU)."""

    @functools.wraps(layout)
    def wrapper(**query: Any) -> Any:
        key = (
            id(flask.current_app),
            layout.__module__,
            tuple(sorted((k, str(v)) for k, v in query.items())),
            now() // 3600,
            _store_fingerprint(),
        )
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
        try:
            result = layout(**query)
        except (StoreError, sqlite3.Error) as exc:  # shown on the page, never cached
            return store_error(exc)
        with _cache_lock:
            _cache[key] = result
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return result

    return wrapper


def store_error(exc: Exception) -> dbc.Alert:
    """The page body when the store cannot be read (moved, replaced, corrupted)."""
    path = flask.current_app.config["LAMBDASCOPE_DB"]
    return dbc.Alert(
        [
            html.H5("The store cannot be read", className="alert-heading"),
            html.P(f"{path}: {exc}"),
            html.P(
                "Check that the file is a lambdascope store and readable, then reload.",
                className="mb-0",
            ),
        ],
        color="danger",
        id="store-error",
    )


def now() -> int:
    """The app's clock (injectable for tests), epoch seconds."""
    clock: Callable[[], float] = flask.current_app.config.get("LAMBDASCOPE_CLOCK", time.time)
    return int(clock())


def query_string(query: dict[str, Any], **overrides: Any) -> str:
    """The filter part of a query, with overrides, as ``?a=b`` (or '')."""
    merged = {k: query.get(k) for k in FILTER_KEYS}
    merged.update(overrides)
    clean = {k: v for k, v in merged.items() if v not in (None, "")}
    return f"?{urlencode(clean)}" if clean else ""


def function_href(name: str, account: str, region: str, query: dict[str, Any]) -> str:
    """Link to a function's page, keeping the current filters. The name is one path
    segment, percent-encoded (names from local log folders may hold ' ', '/', '?', '#');
    the function page decodes it."""
    extra = {"account": account or None, "region": region or None}
    return f"/functions/{quote(name, safe='')}{query_string(query, **extra)}"


def filter_bar(page: str, query: dict[str, Any], options: dict[str, list[str]]) -> dbc.Card:
    """The global filters, initialised from the URL; changes rewrite the URL."""

    def dropdown(name: str, placeholder: str, width: int) -> dbc.Col:
        values = options.get(name, [])
        current = query.get(name) or None
        if current and current not in values:
            values = [current, *values]
        return dbc.Col(
            dcc.Dropdown(
                id={"type": "filter", "name": name},
                options=[{"label": v, "value": v} for v in values],
                value=current,
                placeholder=placeholder,
                clearable=True,
            ),
            md=width,
        )

    range_value = query.get("range") or data.DEFAULT_RANGE
    return dbc.Card(
        dbc.CardBody(
            dbc.Row(
                [
                    dbc.Col(
                        dcc.Dropdown(
                            id={"type": "filter", "name": "range"},
                            options=RANGE_OPTIONS,
                            value=range_value,
                            clearable=False,
                        ),
                        md=2,
                    ),
                    dbc.Col(
                        dcc.DatePickerRange(
                            id={"type": "filter", "name": "dates"},
                            start_date=query.get("from"),
                            end_date=query.get("to"),
                            display_format="YYYY-MM-DD",
                            clearable=True,
                            disabled=range_value != "custom",
                        ),
                        md=2,
                        className="small",
                    ),
                    dropdown("account", "Account", 2),
                    dropdown("region", "Region", 1),
                    dropdown("runtime", "Runtime", 1),
                    dropdown("arch", "Arch", 1),
                    dropdown("tag", "Tag", 1),
                    dbc.Col(
                        dbc.Input(
                            id={"type": "filter", "name": "q"},
                            value=query.get("q") or "",
                            placeholder="Name contains…",
                            debounce=True,
                            type="search",
                        ),
                        md=2,
                    ),
                ],
                className="g-2 align-items-center",
            ),
            className="py-2",
        ),
        id=f"{page}-filters",
        className="mb-3 filter-bar",
    )


def kpi(label: str, value: str, hint: str = "", ident: str | None = None) -> dbc.Col:
    """A KPI card."""
    body = [html.Div(label, className="kpi-label"), html.Div(value, className="kpi-value")]
    if hint:
        body.append(html.Div(hint, className="kpi-hint"))
    return dbc.Col(
        dbc.Card(dbc.CardBody(body), className="kpi-card h-100", id=ident or ""),
        xs=6,
        md=3,
        xl=True,
        className="mb-3",
    )


def empty_state(page: str, title: str, detail: str | None = None) -> dbc.Alert:
    """What to do when there is nothing to show."""
    return dbc.Alert(
        [
            html.H5(title, className="alert-heading"),
            html.P(detail or "Load data first, then reload this page:"),
            html.Pre(
                "lambdascope ingest ./logs            # local Lambda runtime logs\n"
                "lambdascope collect --since 14d      # CloudWatch metrics and Logs Insights\n"
                "lambdascope demo                     # or explore a simulated fleet",
                className="mb-0",
            ),
        ],
        color="info",
        id=f"{page}-empty",
        className="empty-state",
    )


def no_match(page: str) -> dbc.Alert:
    """Filters that match nothing."""
    return dbc.Alert(
        [
            html.H5("No function matches these filters", className="alert-heading"),
            html.P("Widen the time range or clear a filter.", className="mb-0"),
        ],
        color="secondary",
        id=f"{page}-empty",
        className="empty-state",
    )


def records(frame: Any) -> list[dict[str, Any]]:
    """DataFrame rows as dicts with NaN turned into None."""
    clean = frame.astype(object).where(frame.notna(), None)
    return list(clean.to_dict("records"))


def graph(ident: str, figure: Any) -> dcc.Graph:
    """A graph with the mode bar trimmed."""
    return dcc.Graph(
        id=ident,
        figure=figure,
        config={
            "displaylogo": False,
            "displayModeBar": "hover",
            "modeBarButtonsToRemove": [
                "select2d",
                "lasso2d",
                "zoomIn2d",
                "zoomOut2d",
                "autoScale2d",
                "toggleSpikelines",
            ],
        },
    )


def page_frame(
    page: str, title: str, query: dict[str, Any], body: list[Any], *, filters: bool = True
) -> html.Div:
    """Title, filter bar (unless ``filters`` is False) and body of a page."""
    bar: list[Any] = []
    if filters:
        with store() as conn:
            bar = [filter_bar(page, query, data.filter_options(conn))]
            bar += older_data_notice(conn, page, query)
    return html.Div([html.H3(title, className="page-title"), *bar, *body], id=f"{page}-page")


def older_data_notice(conn: sqlite3.Connection, page: str, query: dict[str, Any]) -> list[Any]:
    """When everything stored is older than the selected range (old log exports), say so
    and link to the same number of days up to the latest data."""
    view = data.view_from_query(query, now())
    latest = queries.latest_data_hour(conn)
    if latest is None or latest + 3600 > view.start:
        return []
    days = max(1, round(view.window_s / data.DAY_S))
    last = datetime.fromtimestamp(latest, UTC).date()
    first = last - timedelta(days=days - 1)
    days_shown = {"from": first.isoformat(), "to": last.isoformat()}
    href = query_string(query, range="custom", **days_shown)
    return [
        dbc.Alert(
            [
                "Nothing is stored in this time range: the latest data is from "
                f"{datetime.fromtimestamp(latest, UTC):%Y-%m-%d %H:%M} UTC. ",
                html.A(f"Show the {days} days up to it", href=href, className="alert-link"),
            ],
            color="warning",
            id=f"{page}-older-data",
        )
    ]


def resolution_note(
    conn: sqlite3.Connection, page: str, view: data.View, *, hourly: bool = False
) -> list[Any]:
    """Under a time-series chart whose range reaches before the hourly boundary (older
    hours were rolled up into days, lambdascope.tiers): where the resolution changes.
    ``hourly``: the chart is hour by hour whatever the range (else daily beyond 14 days,
    where nothing changes)."""
    boundary = queries.hourly_from(conn)
    if view.start >= boundary or (not hourly and view.bucket_s % data.DAY_S == 0):
        return []
    day = datetime.fromtimestamp(boundary, UTC).date().isoformat()
    totals = (
        "each day's counts shown as its average per hour" if hourly else "daily totals"
    )
    return [
        html.P(
            f"Before {day} the store keeps one point per day ({totals}; older hours were"
            " rolled up), hour by hour after it.",
            className="small text-muted",
            id=f"{page}-resolution-note",
        )
    ]
