"""Plotly figures for the provider pages, built from aggregate query results."""

from __future__ import annotations

from wedbackup.web import figure


def timeline_figure(rows: list[dict]) -> dict:
    """Average and worst latency (lines) with failed checks (bars, right axis) per time bucket."""
    import plotly.graph_objects as go

    x = [r["bucket"].isoformat() for r in rows]
    return figure(
        [
            go.Scatter(x=x, y=[r["avg_latency"] for r in rows], name="avg latency (ms)", mode="lines+markers"),
            go.Scatter(x=x, y=[r["max_latency"] for r in rows], name="worst latency (ms)", mode="lines",
                       line={"dash": "dot"}),
            go.Bar(x=x, y=[r["failures"] for r in rows], name="failed checks", yaxis="y2", marker_color="#c62828",
                   opacity=0.6),
        ],
        title="Health over time", margin={"l": 60, "r": 70, "t": 40, "b": 60},
        yaxis={"title": {"text": "ms"}, "rangemode": "tozero"},
        yaxis2={"title": {"text": "failures"}, "overlaying": "y", "side": "right", "rangemode": "tozero"},
    )
