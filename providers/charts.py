"""Plotly figures for the provider pages, built from aggregate query results."""

from __future__ import annotations

import datetime as dt
import math

from wedbackup.web import figure

# Fewer points than this make no line: the chart says so instead of stretching one point over the axes.
MIN_POINTS = 2
HEADROOM = 1.15  # the highest point sits below the top of its axis, not on or above it
EMPTY_LATENCY_MS = 100  # the latency axis of a chart with no checks yet


def count_axis(*, top: int) -> dict:
    """An axis of whole numbers from 0 (plotly's autorange would tick a count of 1 at 0.2, 0.4, ...)."""
    top = max(int(top), 1)
    step = max(1, math.ceil(top / 5))
    return {"tickformat": ",d", "tick0": 0, "dtick": step, "rangemode": "tozero",
            "range": [0, math.ceil(top * HEADROOM / step) * step]}


def timeline_figure(rows: list[dict], *, since: dt.datetime, until: dt.datetime) -> dict:
    """Average and worst latency (lines) with failed checks (bars, right axis) per time bucket, over the whole
    selected window, so a single point does not become an axis a few microseconds wide."""
    import plotly.graph_objects as go

    x = [r["bucket"].isoformat() for r in rows]
    worst = max((r["max_latency"] or 0 for r in rows), default=0)
    failures = max((r["failures"] for r in rows), default=0)
    layout = {}
    if len(rows) < MIN_POINTS:
        layout["annotations"] = [{"text": "Not enough data yet", "showarrow": False, "xref": "paper",
                                  "yref": "paper", "x": 0.5, "y": 0.5, "font": {"size": 16, "color": "#666"}}]
    return figure(
        [
            go.Scatter(x=x, y=[r["avg_latency"] for r in rows], name="avg latency (ms)", mode="lines+markers"),
            go.Scatter(x=x, y=[r["max_latency"] for r in rows], name="worst latency (ms)", mode="lines+markers",
                       line={"dash": "dot"}),
            go.Bar(x=x, y=[r["failures"] for r in rows], name="failed checks", yaxis="y2", marker_color="#c62828",
                   opacity=0.6),
        ],
        title="Health over time", margin={"l": 60, "r": 70, "t": 40, "b": 60},
        xaxis={"type": "date", "range": [since.isoformat(), until.isoformat()]},
        yaxis={"title": {"text": "ms"}, "rangemode": "tozero", "range": [0, (worst or EMPTY_LATENCY_MS) * HEADROOM]},
        yaxis2={"title": {"text": "failures"}, "overlaying": "y", "side": "right", "showgrid": False,
                **count_axis(top=failures)},
        **layout,
    )
