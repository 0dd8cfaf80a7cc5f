"""Pure figure builders: DataFrame in, plotly Figure out. No I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboards.format import usd
from lambdascope import histogram

# One colour per finding / series, everywhere.
FINDING_COLOURS: dict[str, str] = {
    "over-provisioned": "#2a9d8f",
    "under-provisioned": "#e76f51",
    "optimized": "#6c757d",
    "insufficient-data": "#adb5bd",
}
SERIES_COLOURS: dict[str, str] = {
    "invocations": "#1f77b4",
    "errors": "#d62728",
    "throttles": "#ff7f0e",
    "timeouts": "#9467bd",
    "out_of_memory": "#8c564b",
    "p50": "#2ca02c",
    "p95": "#1f77b4",
    "p99": "#9467bd",
    "max": "#7f7f7f",
    "configured": "#d62728",
    "memory_max": "#1f77b4",
    "memory_p99": "#17becf",
    "cold_starts": "#bcbd22",
    "init": "#e377c2",
    "cost": "#2a9d8f",
    "cost_usd": "#2a9d8f",
    "monthly_savings_usd": "#2a9d8f",
    "duration_p95": "#1f77b4",
    "duration_p95_s": "#1f77b4",
}
LABELS = {
    "invocations": "Invocations",
    "errors": "Errors (all failures)",  # as CloudWatch's Errors: timeouts and OOMs included
    "throttles": "Throttles",
    "timeouts": "Timeouts",
    "out_of_memory": "Out of memory",
}


def _layout(fig: go.Figure, title: str, y_title: str, x_title: str = "Time (UTC)") -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 15}},
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 45, "b": 80},
        height=340,
        legend={"orientation": "h", "y": -0.3, "yanchor": "top"},
        hovermode="x unified",
    )
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title, separatethousands=False, exponentformat="SI")
    return fig


def empty_figure(title: str, message: str) -> go.Figure:
    """A blank chart that says why it is blank."""
    fig = go.Figure()
    fig.add_annotation(
        text=message,
        showarrow=False,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        font={"size": 14, "color": "#6c757d"},
    )
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 15}},
        template="plotly_white",
        height=320,
        xaxis={"visible": False},
        yaxis={"visible": False},
        margin={"l": 20, "r": 20, "t": 45, "b": 20},
    )
    return fig


def _per_bucket(frame: pd.DataFrame) -> str:
    """'per hour' or 'per day' from the spacing of ``frame['time']``."""
    if len(frame) < 2:
        return "per hour"
    step = frame["time"].diff().dropna().min()
    return "per day" if step >= pd.Timedelta(days=1) else "per hour"


def counts_over_time(
    frame: pd.DataFrame,
    title: str,
    series: tuple[str, ...] = ("invocations", "errors", "throttles"),
) -> go.Figure:
    """Counts per time bucket; invocations on the left axis, failures on the right."""
    if frame.empty:
        return empty_figure(title, "No invocations in this time range")
    fig = go.Figure()
    for name in series:
        if name not in frame:
            continue
        secondary = name != "invocations"
        fig.add_trace(
            go.Scatter(
                x=frame["time"],
                y=frame[name].fillna(0),
                name=LABELS.get(name, name),
                mode="lines",
                line={"color": SERIES_COLOURS.get(name), "width": 2},
                yaxis="y2" if secondary and "invocations" in series else "y",
            )
        )
    per = _per_bucket(frame)
    _layout(fig, title, f"Invocations {per}" if "invocations" in series else f"Count {per}")
    if "invocations" in series and len(series) > 1:
        fig.update_layout(
            yaxis2={
                "title": {"text": f"Errors / throttles {per}"},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
                "showgrid": False,
                "exponentformat": "SI",
                "tickmode": "auto",
            }
        )
    fig.update_yaxes(rangemode="tozero")
    return fig


def latency_over_time(frame: pd.DataFrame) -> go.Figure:
    """p50/p95/p99/max duration per hour (ms)."""
    title = "Duration"
    if frame.empty or frame[["p50", "p95", "p99", "duration_ms_max"]].isna().all().all():
        return empty_figure(title, "No duration data in this time range")
    fig = go.Figure()
    for column, name, key in (
        ("p50", "p50", "p50"),
        ("p95", "p95", "p95"),
        ("p99", "p99", "p99"),
        ("duration_ms_max", "max", "max"),
    ):
        fig.add_trace(
            go.Scatter(
                x=frame["time"],
                y=frame[column],
                name=name,
                mode="lines",
                line={
                    "color": SERIES_COLOURS[key],
                    "width": 1 if key == "max" else 2,
                    "dash": "dot" if key == "max" else "solid",
                },
            )
        )
    _layout(fig, title, "Duration (ms)")
    fig.update_yaxes(rangemode="tozero")
    return fig


def memory_over_time(frame: pd.DataFrame) -> go.Figure:
    """Max and p99 memory used per hour vs the configured memory size (MB)."""
    title = "Reported vs configured memory"
    if frame.empty or frame["max_memory_used_mb"].isna().all():
        return empty_figure(title, "No memory reports in this time range")
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=frame["time"],
            y=frame["configured_memory_mb"],
            name="Configured",
            mode="lines",
            line={"color": SERIES_COLOURS["configured"], "width": 2, "shape": "hv"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=frame["time"],
            y=frame["max_memory_used_mb"],
            name="Max used",
            mode="lines",
            line={"color": SERIES_COLOURS["memory_max"], "width": 2},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=frame["time"],
            y=frame["memory_used_p99"],
            name="p99 used",
            mode="lines",
            line={"color": SERIES_COLOURS["memory_p99"], "width": 1},
        )
    )
    _layout(fig, title, "Memory (MB)")
    fig.update_yaxes(rangemode="tozero")
    return fig


def memory_histogram(
    hist: Mapping[str, int], configured_mb: float | None, observed_max_mb: float | None = None
) -> go.Figure:
    """Distribution of max memory used per invocation (MB), configured size marked. A
    bucket is drawn at its midpoint, or at the exact maximum used when that is lower (so
    the top bar never sits past what any invocation used)."""
    title = "Max memory used per invocation"
    if histogram.count(hist) == 0:
        return empty_figure(title, "No memory reports in this time range")
    top = observed_max_mb if observed_max_mb else float("inf")
    items = sorted(
        (min(histogram.bucket_value(k), top), int(c)) for k, c in hist.items() if int(c) > 0
    )
    fig = go.Figure(
        go.Bar(
            x=[round(v, 1) for v, _ in items],
            y=[c for _, c in items],
            name="Invocations",
            marker={"color": SERIES_COLOURS["memory_max"]},
        )
    )
    if configured_mb:
        fig.add_vline(
            x=configured_mb,
            line={"color": SERIES_COLOURS["configured"], "dash": "dash"},
            annotation_text=f"configured {configured_mb:.0f} MB",
        )
    _layout(fig, title, "Invocations", x_title="Max memory used (MB)")
    fig.update_layout(hovermode="closest", bargap=0.05)
    return fig


def cold_starts_over_time(frame: pd.DataFrame) -> go.Figure:
    """Cold starts per hour (bars) and p95 init duration (ms, right axis)."""
    title = "Cold starts and init duration"
    if frame.empty or frame["cold_starts"].fillna(0).sum() == 0:
        return empty_figure(title, "No cold starts in this time range")
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=frame["time"],
            y=frame["cold_starts"],
            name="Cold starts",
            marker={"color": SERIES_COLOURS["cold_starts"]},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=frame["time"],
            y=frame["init_p95_ms"],
            name="p95 init duration",
            mode="markers+lines",
            yaxis="y2",
            connectgaps=False,
            line={"color": SERIES_COLOURS["init"], "width": 1},
            marker={"size": 4},
        )
    )
    _layout(fig, title, "Cold starts (count)")
    fig.update_layout(
        yaxis2={
            "title": {"text": "Init duration (ms)"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
            "tickmode": "auto",
            "tickformat": ",.0f",
            "ticksuffix": " ms",
        }
    )
    return fig


def usd_tickformat(values: Any) -> str:
    """A d3 format for dollar ticks without SI prefixes ("$0.0005", never "$500µ"):
    enough decimals for the largest value to show its first significant digit."""
    peak = max((abs(float(v)) for v in values if v == v), default=0.0)  # v == v: not NaN
    if peak <= 0 or peak >= 100:
        return ",.0f"
    decimals = min(6, max(2, -math.floor(math.log10(peak))))
    return f",.{decimals}f"


def cost_per_day(frame: pd.DataFrame) -> go.Figure:
    """Estimated cost per UTC day (USD)."""
    title = "Estimated cost per day"
    if frame.empty or "cost_usd" not in frame or frame["cost_usd"].fillna(0).sum() == 0:
        return empty_figure(title, "No billed duration in this time range")
    fig = go.Figure(
        go.Bar(
            x=frame["day"],
            y=frame["cost_usd"],
            name="Cost",
            marker={"color": SERIES_COLOURS["cost"]},
            hovertemplate="%{x|%Y-%m-%d}: $%{y:.4f}<extra></extra>",
        )
    )
    _layout(fig, title, "Cost (USD)", x_title="Day (UTC)")
    fig.update_yaxes(tickprefix="$", tickformat=usd_tickformat(frame["cost_usd"]))
    fig.update_layout(hovermode="closest")
    return fig


MEMORY_TICKS_MB = (64, 128, 256, 512, 1024, 2048, 4096, 10240, 20480)


def memory_scatter(frame: pd.DataFrame, finding_column: str | None = None) -> go.Figure:
    """Configured vs max used memory per function (MB), with the y = x diagonal."""
    title = "Configured vs max memory used"
    data = frame.dropna(subset=["memory_mb", "max_memory_used_mb"]) if not frame.empty else frame
    if data.empty:
        return empty_figure(title, "No functions with memory reports in this time range")
    fig = go.Figure()
    groups = (
        data.groupby(finding_column, dropna=False)
        if finding_column and finding_column in data
        else [("functions", data)]
    )
    for finding, part in groups:
        fig.add_trace(
            go.Scatter(
                x=part["memory_mb"],
                y=part["max_memory_used_mb"],
                mode="markers",
                name=str(finding),
                text=part["function_name"],
                marker={
                    "color": FINDING_COLOURS.get(str(finding), SERIES_COLOURS["invocations"]),
                    "size": 8,
                    "opacity": 0.75,
                },
                hovertemplate="%{text}<br>configured %{x} MB<br>max used %{y} MB<extra></extra>",
            )
        )
    low = float(min(data["memory_mb"].min(), data["max_memory_used_mb"].clip(lower=1).min()))
    top = float(max(data["memory_mb"].max(), data["max_memory_used_mb"].max()))
    low, top = max(low / 1.3, 1.0), top * 1.3
    fig.add_trace(
        go.Scatter(
            x=[low, top],
            y=[low, top],
            mode="lines",
            name="used = configured",
            line={"color": "#adb5bd", "dash": "dash"},
            hoverinfo="skip",
        )
    )
    _layout(fig, title, "Max memory used (log scale)", x_title="Configured memory (log scale)")
    fig.update_layout(hovermode="closest", height=420)
    # Log axes: sizes span 128 MB to 10 GB; the diagonal stays a straight line.
    log_range = [math.log10(low), math.log10(top)]
    ticks = [t for t in MEMORY_TICKS_MB if low <= t <= top]
    labels = [f"{t / 1024:g} GB" if t >= 1024 else f"{t} MB" for t in ticks]
    for update in (fig.update_xaxes, fig.update_yaxes):
        update(type="log", range=log_range, tickvals=ticks, ticktext=labels, minor_showgrid=False)
    return fig


def top_bar(
    frame: pd.DataFrame,
    value: str,
    title: str,
    x_title: str,
    text: list[str],
    *,
    empty: str = "Nothing to show in this time range",
    tickprefix: str = "",
) -> go.Figure:
    """Horizontal bar of the top functions by ``value`` (already sorted and cut)."""
    if frame.empty:
        return empty_figure(title, empty)
    fig = go.Figure(
        go.Bar(
            x=frame[value],
            y=frame["function_name"],
            orientation="h",
            text=text,
            textposition="auto",
            marker={"color": SERIES_COLOURS.get(value, "#1f77b4")},
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    )
    _layout(fig, title, "", x_title=x_title)
    fig.update_layout(
        hovermode="closest",
        height=300,
        showlegend=False,
        margin={"l": 180, "r": 20, "t": 45, "b": 45},
    )
    # A fixed 8-slot axis keeps bars the same thickness however few functions qualify.
    fig.update_yaxes(range=[max(len(frame), 8) - 0.5, -0.5], title_text="")
    fig.update_xaxes(tickprefix=tickprefix, rangemode="tozero")
    if tickprefix == "$":
        fig.update_xaxes(tickformat=usd_tickformat(frame[value]))
    return fig


def savings_by_finding(frame: pd.DataFrame) -> go.Figure:
    """Monthly savings (USD) and function count per finding."""
    title = "Potential savings per 30 days, by finding"
    if frame.empty:
        return empty_figure(title, "No recommendations in this time range")
    totals = (
        frame.groupby("finding")
        .agg(savings=("monthly_savings_usd", "sum"), functions=("function_name", "count"))
        .reset_index()
    )
    fig = go.Figure(
        go.Bar(
            x=totals["finding"],
            y=totals["savings"],
            marker={"color": [FINDING_COLOURS.get(f, "#1f77b4") for f in totals["finding"]]},
            text=[
                f"{usd(v)} · {n} function{'' if n == 1 else 's'}"
                for v, n in zip(totals["savings"], totals["functions"], strict=True)
            ],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{x}: $%{y:,.2f} per 30 days<extra></extra>",
        )
    )
    _layout(fig, title, "Savings (USD per 30 days)", x_title="Finding")
    fig.update_yaxes(tickprefix="$", tickformat=usd_tickformat(totals["savings"]))
    fig.update_layout(hovermode="closest", showlegend=False, height=420)
    return fig


NOT_COLLECTED = (
    "Not collected for these functions and this range.<br>"
    "CloudWatch sends {metric} only for {who};<br>"
    "collect it with: lambdascope collect --only metrics"
)


def concurrency_vs_reserved(frame: pd.DataFrame, n: int = 12) -> go.Figure:
    """Peak concurrency per function (bars) against its reserved concurrency (markers).

    ``frame`` has function_name, concurrency_max and reserved_concurrency; functions with
    reserved concurrency come first, by how close their peak came to it.
    """
    title = "Peak concurrency vs reserved concurrency"
    data = frame.dropna(subset=["concurrency_max"]) if not frame.empty else frame
    if data.empty:
        return empty_figure(
            title, NOT_COLLECTED.format(metric="ConcurrentExecutions", who="invoked functions")
        )
    reserved = data["reserved_concurrency"].astype("float64")
    ranked = data.assign(
        _has=reserved.notna(),
        _use=(data["concurrency_max"] / reserved.where(reserved > 0)).fillna(0),
    ).sort_values(["_has", "_use", "concurrency_max"], ascending=False)
    top = ranked.head(n)
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=top["concurrency_max"],
            y=top["function_name"],
            orientation="h",
            name="Peak concurrency",
            marker={"color": SERIES_COLOURS["invocations"]},
            hovertemplate="%{y}: peak %{x:,.0f} concurrent<extra></extra>",
        )
    )
    limited = top.dropna(subset=["reserved_concurrency"])
    if not limited.empty:
        fig.add_trace(
            go.Scatter(
                x=limited["reserved_concurrency"],
                y=limited["function_name"],
                mode="markers",
                name="Reserved concurrency",
                marker={
                    "symbol": "line-ns",
                    "size": 14,
                    "line": {"width": 3, "color": SERIES_COLOURS["throttles"]},
                    "color": SERIES_COLOURS["throttles"],
                },
                hovertemplate="%{y}: reserved %{x:,.0f}<extra></extra>",
            )
        )
    _layout(fig, title, "", x_title="Concurrent executions (hourly peak)")
    fig.update_layout(hovermode="closest", height=380, margin={"l": 190, "r": 20, "t": 45, "b": 90})
    fig.update_yaxes(autorange="reversed", title_text="", automargin=True)
    fig.update_xaxes(rangemode="tozero")
    return fig


def iterator_age_over_time(frame: pd.DataFrame) -> go.Figure:
    """Oldest stream record per bucket (IteratorAge maximum), in seconds."""
    title = "Stream iterator age (max)"
    data = frame.dropna(subset=["iterator_age_max_ms"]) if not frame.empty else frame
    if data.empty:
        return empty_figure(
            title,
            NOT_COLLECTED.format(
                metric="IteratorAge", who="functions reading Kinesis / DynamoDB streams"
            ),
        )
    fig = go.Figure(
        go.Scatter(
            x=data["time"],
            y=data["iterator_age_max_ms"] / 1000,
            name="Iterator age",
            mode="lines",
            line={"color": SERIES_COLOURS["timeouts"], "width": 2},
            hovertemplate="%{x|%Y-%m-%d %H:%M}: %{y:,.1f} s<extra></extra>",
        )
    )
    _layout(fig, title, "Iterator age (s)")
    fig.update_yaxes(rangemode="tozero", ticksuffix=" s")
    fig.update_layout(showlegend=False, hovermode="closest")
    return fig


ASYNC_SERIES = {
    "async_events_dropped": ("Async events dropped", "#d62728"),
    "dead_letter_errors": ("Dead-letter errors", "#8c564b"),
    "destination_delivery_failures": ("Destination delivery failures", "#9467bd"),
}


def async_delivery_over_time(frame: pd.DataFrame) -> go.Figure:
    """Async events dropped, dead-letter errors and destination failures per bucket."""
    title = "Async delivery failures"
    present = [c for c in ASYNC_SERIES if c in frame and frame[c].notna().any()]
    if frame.empty or not present:
        return empty_figure(
            title,
            NOT_COLLECTED.format(metric="AsyncEventsDropped", who="asynchronous invocations"),
        )
    fig = go.Figure()
    for column in present:
        label, colour = ASYNC_SERIES[column]
        fig.add_trace(
            go.Bar(x=frame["time"], y=frame[column], name=label, marker={"color": colour})
        )
    _layout(fig, title, "Events (count)")
    fig.update_layout(barmode="stack")
    fig.update_yaxes(rangemode="tozero")
    return fig


def capacity_provider_utilisation(frame: pd.DataFrame, provider: str) -> go.Figure:
    """A capacity provider's hourly CPU and memory utilisation (percent, 0-100): the mean of
    its instance types' averages as lines, their largest maximum dotted. ``frame`` has
    ``time`` and the capacity_provider_hourly columns."""
    title = f"Capacity provider {provider}: utilisation"
    columns = ("cpu_utilization_avg", "cpu_utilization_max")
    memory = ("memory_utilization_avg", "memory_utilization_max")
    if frame.empty or frame[[*columns, *memory]].isna().all().all():
        return empty_figure(title, "No capacity provider utilisation in this time range")
    fig = go.Figure()
    for column, name, colour, dash in (
        ("cpu_utilization_avg", "CPU (mean)", "#1f77b4", "solid"),
        ("cpu_utilization_max", "CPU (peak)", "#1f77b4", "dot"),
        ("memory_utilization_avg", "Memory (mean)", "#2a9d8f", "solid"),
        ("memory_utilization_max", "Memory (peak)", "#2a9d8f", "dot"),
    ):
        fig.add_trace(
            go.Scatter(
                x=frame["time"],
                y=frame[column],
                name=name,
                mode="lines",
                line={"color": colour, "width": 2, "dash": dash},
                hovertemplate="%{y:.1f} %",
            )
        )
    _layout(fig, title, "Utilisation (%)")
    fig.update_yaxes(range=[0, 100])
    return fig
