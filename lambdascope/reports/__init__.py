"""Report renderers: data (``Report``) + format -> text.

Public API: ``render(report, fmt) -> str`` with fmt in ``FORMATS``; the builders in
``lambdascope.reports.build`` turn analyses into ``Report`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FORMATS = ("json", "csv", "md", "html")


@dataclass
class Chart:
    """A bar chart for the HTML report: one or more named series over the same labels."""

    title: str
    labels: list[str]
    series: dict[str, list[float]]
    y_title: str = ""


@dataclass
class Report:
    """One report: ``rows`` (JSON objects), the flat ``columns`` shown in tables,
    ``summary`` lines, and charts for HTML. ``document`` replaces ``rows`` in JSON
    output when the report is not a plain array (stale report). ``layout`` "memory" gives
    the HTML its own page (summary figures, ranked table with details, its own charts)."""

    kind: str
    title: str
    rows: list[dict[str, Any]]
    columns: list[str]
    summary: list[str] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    document: dict[str, Any] | None = None
    sections: list[tuple[str, list[dict[str, Any]], list[str]]] = field(default_factory=list)
    layout: str = "table"  # HTML: "table" (generic) or "memory" (the right-sizing report)


def render(report: Report, fmt: str) -> str:
    """Render a report in ``json`` | ``csv`` | ``md`` | ``html``."""
    from lambdascope.reports import tabular

    if fmt == "json":
        return tabular.to_json(report)
    if fmt == "csv":
        return tabular.to_csv(report)
    if fmt == "md":
        return tabular.to_markdown(report)
    if fmt == "html":
        from lambdascope.reports import html

        return html.to_html(report)
    raise ValueError(f"unknown format {fmt!r} (use one of {', '.join(FORMATS)})")
