"""The self-contained HTML report: inline plotly.js, every user string escaped."""

from __future__ import annotations

import html
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from lambdascope.reports import Chart, Report
from lambdascope.reports.tabular import flat_value, flatten


def _script_json(fig: go.Figure) -> str:
    # JSON inside <script>: escape <, > and & so no name can close the tag
    text = str(pio.to_json(fig, validate=False))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _plotly_text(text: str) -> str:
    # plotly reads <b>, <br>, <a href=...> in labels as markup and decodes entities:
    # escaping shows every name literally
    return html.escape(text, quote=False)


def _figure(chart: Chart) -> go.Figure:
    fig = go.Figure()
    labels = [_plotly_text(label) for label in chart.labels]
    for name, values in chart.series.items():
        fig.add_trace(go.Bar(name=_plotly_text(name), x=labels, y=values))
    fig.update_layout(
        title=_plotly_text(chart.title),
        barmode="group",
        yaxis_title=chart.y_title,
        margin={"l": 60, "r": 20, "t": 50, "b": 120},
        height=420,
    )
    return fig


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str(flat_value(r.get(c))))}</td>" for c in columns)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:12px 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2} .chart{margin:16px 0}
"""


def to_html(report: Report) -> str:
    """One HTML document that opens offline (plotly.js inlined)."""
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(report.title)}</title><style>{_STYLE}</style>",
        f"<script>{get_plotlyjs()}</script></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
    ]
    if report.summary:
        parts.append(
            "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in report.summary) + "</ul>"
        )
    for index, chart in enumerate(report.charts):
        div = f"chart-{index}"
        parts.append(f'<div class="chart" id="{div}"></div>')
        parts.append(
            f"<script>(function(){{var f={_script_json(_figure(chart))};"
            f"Plotly.newPlot('{div}',f.data,f.layout,{{responsive:true}});}})();</script>"
        )
    if report.rows:
        parts.append(_table([flatten(r) for r in report.rows], report.columns))
    else:
        parts.append("<p>No data in the window.</p>")
    for title, rows, columns in report.sections:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(_table(rows, columns) if rows else "<p>None.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
