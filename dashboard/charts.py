"""Plotly figures as plain dicts (plotly.js's JSON schema), rendered in the browser by
the locally served plotly.js. Built as dicts rather than ``plotly.graph_objects``: the
figures are small and fixed, and skipping the validation layer keeps page views fast."""
from __future__ import annotations

from typing import Any, Callable, Sequence

from .readmodel import EntitlementDoc, HistogramBin, UsageSeriesDoc

# One palette for every chart; levels also carry words on screen, never colour alone.
BLUE, AMBER, RED, GREY = "#2f6fb3", "#c77c02", "#c0392b", "#8a8f98"
FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": "#1f2933"}


def _plain(text: str) -> str:
    """Text from Stigg shown inside a chart: plotly.js reads a few HTML tags in labels
    (<b>, <a href>), so angle brackets are passed as entities and shown as typed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _layout(**extra: Any) -> dict[str, Any]:
    layout = {"font": FONT, "margin": {"l": 48, "r": 16, "t": 28, "b": 40}, "paper_bgcolor": "#ffffff",
              "plot_bgcolor": "#ffffff", "hovermode": "x unified", "showlegend": True,
              "legend": {"orientation": "h", "y": 1.12, "x": 0}}
    layout.update(extra)
    return layout


def utilization_histogram(entitlements: Sequence[HistogramBin], budgets: Sequence[HistogramBin]) -> dict[str, Any]:
    """How utilization is spread across the fleet: metered entitlements and governance
    budgets per 10 % bin, the bins at 80 % and over drawn in warning colours."""
    labels = [b.label for b in entitlements]

    def colours(bins: Sequence[HistogramBin], base: str) -> list[str]:
        return [RED if b.lower >= 1.0 else AMBER if b.lower >= 0.8 else base for b in bins]

    return {
        "data": [
            {"type": "bar", "name": "Metered entitlements", "x": labels, "y": [b.count for b in entitlements],
             "marker": {"color": colours(entitlements, BLUE)}, "hovertemplate": "%{y:,} entitlements<extra></extra>"},
            {"type": "bar", "name": "Governance budgets", "x": [b.label for b in budgets],
             "y": [b.count for b in budgets], "marker": {"color": colours(budgets, "#7aa6d6"),
                                                          "pattern": {"shape": "/"}},
             "hovertemplate": "%{y:,} budgets<extra></extra>"},
        ],
        "layout": _layout(barmode="group", height=300, xaxis={"title": {"text": "utilization of limit"}},
                          yaxis={"title": {"text": "count"}, "rangemode": "tozero"}),
    }


def usage_over_time(ent: EntitlementDoc, series: UsageSeriesDoc) -> dict[str, Any]:
    """A metered feature's usage per day in its current window, the limit as a line and
    each reset as a dashed vertical marker."""
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    xs = [t for t, _ in series["points"]]
    ys = [v for _, v in series["points"]]
    data: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "lines+markers", "name": "usage", "x": xs, "y": ys,
        "line": {"color": BLUE, "width": 2, "shape": "hv"}, "marker": {"size": 4},
        "hovertemplate": "%{y:,}<extra>usage</extra>",
    }]
    if ent["limit"] is not None and not ent["unlimited"] and xs:
        label = "soft limit" if ent["soft_limit"] else "limit"
        data.append({"type": "scatter", "mode": "lines", "name": label,
                     "x": [xs[0], xs[-1]], "y": [ent["limit"], ent["limit"]],
                     "line": {"color": RED, "width": 1.5, "dash": "dash"}, "hoverinfo": "skip"})
        # Below the line at its left end: the reset labels sit along the top edge.
        annotations.append({"x": xs[0], "y": ent["limit"], "xref": "x", "yref": "y", "xanchor": "left",
                            "yanchor": "top", "text": f"{label} {ent['limit']:,.0f}", "showarrow": False,
                            "font": {"size": 10, "color": RED}})
    for reset in series["resets"]:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": reset, "x1": reset, "y0": 0, "y1": 1,
                       "line": {"color": GREY, "width": 1, "dash": "dot"}})
        annotations.append({"x": reset, "y": 1, "xref": "x", "yref": "paper", "text": "reset", "showarrow": False,
                            "yanchor": "bottom", "font": {"size": 10, "color": GREY}})
    return {
        "data": data,
        # The caption names the series; the limit and resets are labelled on the plot.
        "layout": _layout(height=240, shapes=shapes, annotations=annotations, showlegend=False,
                          margin={"l": 48, "r": 16, "t": 20, "b": 36},
                          xaxis={"type": "date", "showgrid": False},
                          yaxis={"rangemode": "tozero", "title": {"text": _plain(ent["units"] or "usage")}}),
    }


def hierarchy_sunburst(nodes: Sequence[dict[str, Any]], url_of: Callable[[str], str]) -> dict[str, Any]:
    """The whole hierarchy as a sunburst: a segment per entity, sized by the entities
    below it, coloured by its highest budget utilization (grey: no budget of its own);
    ``customdata`` holds each segment's link (app.js opens it on click)."""
    ids = {n["id"] for n in nodes}
    utils = [max((b["utilization"] for b in n["budgets"] if b["utilization"] is not None), default=None)
             for n in nodes]
    data = {
        "type": "sunburst", "branchvalues": "remainder", "maxdepth": 3, "insidetextorientation": "radial",
        "ids": [n["id"] for n in nodes],
        "labels": [_plain(n["name"] or n["id"]) for n in nodes],
        "parents": [n["parent"] if n["parent"] in ids else "" for n in nodes],
        "customdata": [url_of(n["id"]) for n in nodes],
        "marker": {"colors": [min(u, 1.2) if u is not None else -0.2 for u in utils],
                   "cmin": -0.2, "cmax": 1.2, "line": {"color": "#ffffff", "width": 1},
                   # bands, not a blend (blue into amber reads as mud): no budget, under 50 %,
                   # under 80 %, near the limit, at or over it
                   "colorscale": [[0.0, "#d5d9de"], [0.1428, "#d5d9de"], [0.1429, "#a9c8ea"], [0.4999, "#a9c8ea"],
                                  [0.5, BLUE], [0.7142, BLUE], [0.7143, AMBER], [0.857, AMBER], [0.8571, RED],
                                  [1.0, RED]],
                   "colorbar": {"title": {"text": "utilization"}, "tickvals": [-0.2, 0, 0.5, 0.8, 1.0, 1.2],
                                "ticktext": ["no budget", "0 %", "50 %", "80 %", "100 %", "≥ 120 %"],
                                "thickness": 12}},
        "hovertext": [f"{n['type']} · " + (f"{u:.0%} of its nearest limit" if u is not None
                                          else "no budget of its own") for n, u in zip(nodes, utils)],
        "hovertemplate": "<b>%{label}</b><br>%{hovertext}<extra></extra>",
    }
    return {"data": [data], "layout": _layout(height=460, margin={"l": 8, "r": 8, "t": 8, "b": 8},
                                              showlegend=False, hovermode="closest")}
