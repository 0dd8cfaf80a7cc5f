"""Deploy markers on a function's time series (pure: figure + markers -> figure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import plotly.graph_objects as go

from lambdascope.alerts.history import DeployMarker

REGRESSION_COLOUR = "#d62828"
DEPLOY_COLOUR = "#6c757d"


def add_deploy_markers(fig: go.Figure, markers: Sequence[DeployMarker]) -> go.Figure:
    """A dashed vertical line per change (red when a regression followed it), with the
    change and the regressions found in its hover text."""
    if not markers:
        return fig
    xs: list[datetime | None] = []
    texts: list[str] = []
    for marker in markers:
        at = datetime.fromtimestamp(marker.at, UTC)
        colour = REGRESSION_COLOUR if marker.regressions else DEPLOY_COLOUR
        fig.add_shape(
            type="line",
            xref="x",
            yref="paper",
            x0=at,
            x1=at,
            y0=0,
            y1=1,
            line={"color": colour, "width": 1.5, "dash": "dash"},
        )
        text = f"<b>Deploy</b> {at:%Y-%m-%d %H:%M} UTC<br>{marker.detail}"
        if marker.regressions:
            text += "<br><b>Regression:</b> " + "<br>".join(marker.regressions)
        xs.append(at)
        texts.append(text)
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[1.0] * len(xs),
            yaxis="y3",
            mode="markers",
            marker={
                "symbol": "triangle-down",
                "size": 11,
                "color": [REGRESSION_COLOUR if m.regressions else DEPLOY_COLOUR for m in markers],
            },
            name="Deploys",
            hovertext=texts,
            hoverinfo="text",
            cliponaxis=False,
        )
    )
    # the triangles sit on the top edge of the plot whatever the y range (own axis:
    # figures use y2 for a right-hand scale)
    fig.update_layout(
        yaxis3={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True}
    )
    return fig
