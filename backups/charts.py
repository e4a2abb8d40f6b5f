"""Plotly figures for the wedding pages, built from the aggregate query results (no queries here)."""

from __future__ import annotations

from wedbackup.web import figure

PROTECTED, AT_RISK = "#2e7d32", "#c62828"


def protection_figure(summary: dict) -> dict:
    import plotly.graph_objects as go

    colours = {"colors": [PROTECTED, AT_RISK]}
    return figure(
        [
            go.Pie(labels=["protected", "at risk"], values=[summary["weddings_protected"], summary["weddings_at_risk"]],
                   hole=0.55, domain={"x": [0, 0.46]}, marker=colours, name="weddings", title={"text": "weddings"},
                   sort=False),
            go.Pie(labels=["protected", "at risk"], values=[summary["bytes_protected"], summary["bytes_at_risk"]],
                   hole=0.55, domain={"x": [0.54, 1]}, marker=colours, name="bytes", title={"text": "bytes"},
                   sort=False, hovertemplate="%{label}: %{value:.3s}B<extra></extra>"),
        ],
        title="Protected vs at risk",
    )


def replicas_per_provider_figure(providers: list) -> dict:
    import plotly.graph_objects as go

    names = [p.name for p in providers]
    return figure(
        [
            go.Bar(x=names, y=[p.verified_replicas for p in providers], name="verified", marker_color=PROTECTED),
            go.Bar(x=names, y=[p.other_replicas for p in providers], name="not verified", marker_color="#9e9e9e"),
        ],
        title="Replicas per provider", barmode="stack", yaxis={"title": {"text": "replicas"}},
    )


def distribution_figure(rows: list[dict]) -> dict:
    """Bytes by provider (x) stacked by storage class."""
    import plotly.graph_objects as go

    providers = sorted({r["provider__name"] for r in rows})
    classes = sorted({r["storage_class"] for r in rows})
    traces = []
    for cls in classes:
        by_provider = {r["provider__name"]: r for r in rows if r["storage_class"] == cls}
        traces.append(go.Bar(
            x=providers, y=[by_provider[p]["bytes"] if p in by_provider else 0 for p in providers],
            customdata=[by_provider[p]["files"] if p in by_provider else 0 for p in providers],
            name=cls or "default class", hovertemplate="%{x}: %{y:.3s}B in %{customdata} files<extra></extra>",
        ))
    return figure(traces, title="Bytes by provider and storage class", barmode="stack",
                  yaxis={"title": {"text": "bytes"}, "tickformat": ".2s"})
