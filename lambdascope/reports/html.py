"""The self-contained HTML report: inline plotly.js, every user string escaped."""

from __future__ import annotations

import html
import math
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
    if report.layout == "memory":
        return memory_html(report)
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


# ---------------------------------------------------------------- the memory report page

_MEMORY_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2933;
 background:#f7f8fa}
main{max-width:1180px;margin:0 auto;padding:20px 24px}
h1{font-size:24px;margin:4px 0 2px} h2{font-size:18px;margin:24px 0 8px}
.muted{color:#616e7c;font-size:13px}
.kpis{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.kpi{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:10px 14px;
 min-width:120px;flex:1 1 120px}
.kpi .value{font-size:22px;font-weight:600} .kpi .label{font-size:12px;color:#616e7c}
.first{background:#fff8e1;border:1px solid #f0d58a;border-radius:8px;padding:10px 14px}
.charts{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:6px;
 flex:1 1 520px;min-width:0;overflow:hidden}
table.ranked{width:100%;table-layout:fixed;border-collapse:collapse;background:#fff;
 font-size:13px}
table.ranked th{background:#eef1f4;text-align:left;padding:6px;font-weight:600}
table.ranked td{padding:6px;border-top:1px solid #e4e7eb;vertical-align:top;
 overflow-wrap:anywhere}
table.ranked td.num{text-align:right;white-space:nowrap}
tr.detail td{border-top:none;padding:0 6px 8px 6px}
details summary{cursor:pointer;color:#3e4c59;font-size:12px}
details ul{margin:6px 0;padding-left:18px} details table{border-collapse:collapse;
 margin:6px 0;font-size:12px} details td,details th{border:1px solid #e4e7eb;padding:2px 6px}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;color:#fff;font-size:12px;
 white-space:nowrap}
.where{display:block;color:#616e7c;font-size:11px}
"""

FINDING_COLOURS = {
    "under-provisioned": "#c0392b",
    "over-provisioned": "#d68910",
    "optimized": "#1e8449",
    "insufficient-data": "#7b8794",
    "managed-instances": "#3e6fb0",
}
MAIN = ("under-provisioned", "over-provisioned", "optimized")
_MEMORY_HEADERS = (
    ("#", "4%"),
    ("Function", "22%"),
    ("Finding", "13%"),
    ("Memory now → recommended", "13%"),
    ("Peak used (estimated)", "11%"),
    ("Savings / 30 days", "10%"),
    ("Mean duration now → projected", "15%"),
    ("Risk", "6%"),
    ("Confidence", "6%"),
)


def _mb(value: Any) -> str:
    return "–" if value is None else f"{float(value):,.0f} MB"


def _usd(value: Any) -> str:
    if value is None:
        return "–"
    amount = float(value)
    sign = "−" if amount < 0 else ""
    amount = abs(amount)
    text = f"{amount:,.2f}" if amount >= 1 or amount == 0 else f"{amount:.4f}"
    return f"{sign}${text}"


def _ms(value: Any) -> str:
    if value is None:
        return "–"
    ms = float(value)
    return f"{ms / 1000:,.2f} s" if ms >= 1000 else f"{ms:,.0f} ms"


def _e(value: Any) -> str:
    return html.escape(str(value))


def _kpis(rows: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.get("finding") or "?"] = counts.get(r.get("finding") or "?", 0) + 1
    savings = sum(max(0.0, float(r.get("monthly_savings_usd") or 0.0)) for r in rows)
    cost = sum(float(r.get("current_monthly_cost_usd") or 0.0) for r in rows)
    cards = [
        (_usd(savings), "potential savings / 30 days"),
        (_usd(cost), "cost now / 30 days"),
        (f"{len(rows):,}", "functions"),
    ] + [(f"{counts.get(k, 0):,}", k) for k in FINDING_COLOURS if counts.get(k) or k in MAIN]
    return (
        '<div class="kpis" id="memory-kpis">'
        + "".join(
            f'<div class="kpi"><div class="value">{_e(v)}</div><div class="label">{_e(label)}</div>'
            "</div>"
            for v, label in cards
        )
        + "</div>"
    )


def _detail(row: dict[str, Any]) -> str:
    parts = ["<ul>" + "".join(f"<li>{_e(r)}</li>" for r in row.get("reasons") or []) + "</ul>"]
    strategies = row.get("strategies") or {}
    if strategies:
        parts.append(
            "<p>Strategy <b>"
            + _e(row.get("strategy", ""))
            + "</b>; each strategy picks: "
            + "; ".join(
                f"{_e(name)} {_mb(c.get('memory_mb'))}, {_ms(c.get('expected_duration_ms'))}"
                + (f" ({float(c['slowdown']):.2f}× today)" if c.get("slowdown") else "")
                + f", {_usd(c.get('monthly_savings_usd'))} saved / 30 days"
                for name, c in strategies.items()
            )
            + "</p>"
        )
    options = row.get("options") or []
    if options:
        head = "".join(
            f"<th>{h}</th>"
            for h in (
                "Rank",
                "Memory",
                "Architecture",
                "Projected duration",
                "Cost / 30 days",
                "Savings / 30 days",
            )
        )
        body = "".join(
            "<tr>"
            + f"<td>{_e(o.get('rank'))}</td><td>{_mb(o.get('memory_mb'))}</td>"
            + f"<td>{_e(o.get('architecture'))}{' (what-if)' if o.get('what_if') else ''}</td>"
            + "<td>{} – {} (expected {})</td>".format(
                _ms((o.get("projected_duration_ms") or {}).get("lower")),
                _ms((o.get("projected_duration_ms") or {}).get("upper")),
                _ms((o.get("projected_duration_ms") or {}).get("expected")),
            )
            + f"<td>{_usd(o.get('monthly_cost_usd'))}</td>"
            + f"<td>{_usd(o.get('monthly_savings_usd'))}</td></tr>"
            for o in options
        )
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    if row.get("compute_optimizer_finding") or row.get("compute_optimizer_memory_mb"):
        why = row.get("compute_optimizer_differs_because")
        parts.append(
            "<p>AWS Compute Optimizer: "
            + _e(row.get("compute_optimizer_finding") or "no finding")
            + (
                f", {_mb(row.get('compute_optimizer_memory_mb'))}"
                if row.get("compute_optimizer_memory_mb")
                else ""
            )
            + (f"; differs because {_e(why)}" if why else "")
            + "</p>"
        )
    history = row.get("history") or []
    if history:
        parts.append(
            "<p>Earlier sizes: "
            + "; ".join(
                f"{_mb(h.get('memory_mb'))} until {_e((h.get('last_seen') or '?')[:10])}"
                f" ({int(h.get('invocations') or 0):,} invocations, max used"
                f" {_mb(h.get('max_memory_used_mb'))}, mean {_ms(h.get('mean_duration_ms'))})"
                for h in history
            )
            + "</p>"
        )
    return (
        "<details><summary>Why, options"
        + (", history" if history else "")
        + "</summary>"
        + "".join(parts)
        + "</details>"
    )


def _ranked_table(rows: list[dict[str, Any]]) -> str:
    cols = "".join(f'<col style="width:{w}">' for _, w in _MEMORY_HEADERS)
    head = "".join(f"<th>{_e(h)}</th>" for h, _ in _MEMORY_HEADERS)
    body = []
    for n, r in enumerate(rows, 1):
        finding = r.get("finding") or ""
        colour = FINDING_COLOURS.get(finding, "#7b8794")
        where = " · ".join(str(p) for p in (r.get("account_id"), r.get("region")) if p)
        projected = (r.get("projected_duration_ms") or {}).get("expected")
        now_ms = r.get("current_duration_ms")
        slowdown = f" ({float(projected) / float(now_ms):.2f}×)" if projected and now_ms else ""
        recommended = r.get("recommended_memory_mb")
        body.append(
            f'<tr class="fn"><td class="num">{n}</td>'
            f'<td class="name">{_e(r.get("function_name", ""))}'
            f'<span class="where">{_e(where)}</span></td>'
            f'<td><span class="badge" style="background:{colour}">{_e(finding)}</span></td>'
            f'<td class="num">{_mb(r.get("memory_mb"))} → {_mb(recommended)}</td>'
            f'<td class="num">{_mb(r.get("max_memory_used_mb"))}'
            f" ({_mb(r.get('estimated_tail_memory_mb'))})</td>"
            f'<td class="num">{_usd(r.get("monthly_savings_usd"))}</td>'
            f'<td class="num">{_ms(now_ms)} → {_ms(projected)}{_e(slowdown)}</td>'
            f"<td>{'slower' if r.get('performance_risk') else '–'}</td>"
            f"<td>{_e(r.get('confidence', ''))}</td></tr>"
            f'<tr class="detail"><td></td><td colspan="{len(_MEMORY_HEADERS) - 1}">'
            f"{_detail(r)}</td></tr>"
        )
    return (
        f'<table class="ranked" id="memory-table"><colgroup>{cols}</colgroup>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _short(name: str, limit: int = 40) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _savings_figure(rows: list[dict[str, Any]]) -> go.Figure | None:
    top = sorted(
        (r for r in rows if (r.get("monthly_savings_usd") or 0) > 0),
        key=lambda r: -float(r["monthly_savings_usd"]),
    )[:15]
    if not top:
        return None
    top.reverse()  # largest at the top of a horizontal bar chart
    names = [_plotly_text(_short(str(r["function_name"]))) for r in top]
    values = [float(r["monthly_savings_usd"]) for r in top]
    peak = max(values)
    decimals = 0 if peak >= 100 else min(6, max(2, -math.floor(math.log10(peak))))
    fig = go.Figure(
        go.Bar(
            x=values,
            y=names,
            orientation="h",
            marker={"color": FINDING_COLOURS["over-provisioned"]},
            text=[_usd(v) for v in values],
            textposition="auto",
            hovertemplate="%{y}: %{text} per 30 days<extra></extra>",
        )
    )
    fig.update_layout(
        title="Top savings (USD per 30 days)",
        height=80 + 26 * len(top),
        margin={"l": 10, "r": 20, "t": 40, "b": 30},
        showlegend=False,
    )
    fig.update_yaxes(automargin=True)
    fig.update_xaxes(tickprefix="$", tickformat=f",.{decimals}f", rangemode="tozero")
    return fig


def _scatter_figure(rows: list[dict[str, Any]]) -> go.Figure | None:
    points = [r for r in rows if r.get("max_memory_used_mb") and r.get("memory_mb")]
    if not points:
        return None
    fig = go.Figure()
    top = max(float(r["memory_mb"]) for r in points)
    fig.add_trace(
        go.Scatter(
            x=[64, max(top, 128) * 1.2],
            y=[64, max(top, 128) * 1.2],
            mode="lines",
            line={"color": "#9aa5b1", "dash": "dot", "width": 1},
            name="used = configured",
            hoverinfo="skip",
        )
    )
    for finding, colour in FINDING_COLOURS.items():
        group = [r for r in points if r.get("finding") == finding]
        if not group:
            continue
        fig.add_trace(
            go.Scatter(
                x=[float(r["memory_mb"]) for r in group],
                y=[float(r["max_memory_used_mb"]) for r in group],
                mode="markers",
                name=finding,
                marker={"color": colour, "size": 6 if len(points) < 500 else 4, "opacity": 0.7},
                text=[_plotly_text(str(r["function_name"])) for r in group],
                hovertemplate="%{text}<br>configured %{x:,.0f} MB, max used %{y:,.0f} MB"
                "<extra></extra>",
            )
        )
    ticks = [128, 256, 512, 1024, 2048, 4096, 10240]
    fig.update_layout(
        title="Configured vs max used memory (MB)",
        height=420,
        margin={"l": 60, "r": 20, "t": 40, "b": 50},
        legend={"orientation": "h", "y": -0.2},
    )
    fig.update_xaxes(type="log", tickvals=ticks, title="configured (MB)")
    fig.update_yaxes(type="log", tickvals=[32, 64, *ticks], title="max used (MB)")
    return fig


def _plots(figures: list[tuple[str, go.Figure]]) -> str:
    """Chart cards, then their scripts: every card is laid out before the first chart
    measures its width."""
    cards = "".join(
        f'<div class="card"><div class="chart" id="{div}"></div></div>' for div, _ in figures
    )
    scripts = "".join(
        f"<script>(function(){{var f={_script_json(fig)};"
        f"Plotly.newPlot('{div}',f.data,f.layout,{{responsive:true,displayModeBar:false}});}})();"
        "</script>"
        for div, fig in figures
    )
    return f'<div class="charts">{cards}</div>{scripts}'


def memory_html(report: Report) -> str:
    """The memory report as a page people forward: summary figures, what to do first,
    the top savings and configured-vs-used charts, and the ranked table with each
    function's reasons, options, projected durations and history folded under its row."""
    rows = report.rows
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(report.title)}</title><style>{_MEMORY_STYLE}</style>",
        f"<script>{get_plotlyjs()}</script></head><body><main>",
        f"<h1>{html.escape(report.title)}</h1>",
    ]
    notes = [s for s in report.summary if not s.startswith("first: ")]
    first = [s for s in report.summary if s.startswith("first: ")]
    if notes:
        parts.append(f'<div class="muted">{_e(notes[0])}</div>')
    if not rows:
        parts.append("<p>No data in the window.</p></main></body></html>\n")
        return "\n".join(parts)
    parts.append(_kpis(rows))
    if first:
        text = first[0].removeprefix("first: ")
        parts.append(f'<div class="first" id="memory-first"><b>First:</b> {_e(text)}</div>')
    figures = [("memory-savings", _savings_figure(rows)), ("memory-scatter", _scatter_figure(rows))]
    drawn = [(div, fig) for div, fig in figures if fig is not None]
    if drawn:
        parts.append(_plots(drawn))
    parts.append("<h2>Functions, what to do first at the top</h2>")
    parts.append(_ranked_table(rows))
    if len(notes) > 1:
        parts.append(
            '<ul class="muted">' + "".join(f"<li>{_e(s)}</li>" for s in notes[1:]) + "</ul>"
        )
    parts.append("</main></body></html>\n")
    return "\n".join(parts)
