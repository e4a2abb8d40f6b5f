"""Plotly figures for the cost pages."""

from __future__ import annotations

from wedbackup.web import figure


def now_vs_optimised_figure(summary: dict) -> dict:
    import plotly.graph_objects as go

    values = [float(summary["current_monthly"]), float(summary["optimised_monthly"])]
    return figure([go.Bar(x=["now", "optimised"], y=values, marker_color=["#607d8b", "#2e7d32"],
                          text=[f"{v:,.2f}" for v in values], textposition="auto")],
                  title=f"Monthly cost ({summary['currency']})", height=260)


def savings_by_kind_figure(rows: list[dict]) -> dict:
    import plotly.graph_objects as go

    return figure([go.Bar(x=[r["kind"] for r in rows], y=[float(r["saving"] or 0) for r in rows],
                          customdata=[r["proposals"] for r in rows], marker_color="#2e7d32",
                          hovertemplate="%{x}: %{y:,.2f} a month from %{customdata} proposals<extra></extra>")],
                  title="Open proposals: monthly saving by kind", height=260)


def by_provider_class_figure(rows: list[dict], currency: str) -> dict:
    """Monthly cost now, by provider (x) stacked by storage class."""
    import plotly.graph_objects as go

    providers = sorted({r["provider"] for r in rows})
    traces = []
    for cls in sorted({r["storage_class"] for r in rows}):
        monthly = {r["provider"]: float(r["monthly"]) for r in rows if r["storage_class"] == cls}
        traces.append(go.Bar(x=providers, y=[monthly.get(p, 0.0) for p in providers], name=cls or "default class"))
    return figure(traces, title=f"Monthly cost by provider and class ({currency})", barmode="stack", height=300)


def cost_history_figure(snapshots: list) -> dict:
    """Monthly cost by provider and class over time (stacked), with the optimised total as a line."""
    import plotly.graph_objects as go

    when = [s.taken_at for s in snapshots]
    series: dict[str, list[float]] = {}
    for i, s in enumerate(snapshots):
        for row in s.by_provider_class:
            name = f"{row['provider']} · {row['storage_class'] or 'default class'}"
            series.setdefault(name, [0.0] * len(snapshots))[i] += float(row["monthly"])
    traces = [go.Scatter(x=when, y=values, name=name, stackgroup="cost", mode="lines")
              for name, values in sorted(series.items())]
    traces.append(go.Scatter(x=when, y=[float(s.optimised_monthly) for s in snapshots], name="optimised total",
                             mode="lines", line={"dash": "dash", "color": "#2e7d32"}))
    currency = snapshots[-1].currency if snapshots else ""
    return figure(traces, title=f"Monthly cost by provider and class over time ({currency})", height=320)
