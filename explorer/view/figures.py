"""Plotly figures of parameters: a heatmap, a histogram against its expected density, a treemap.

Pure builders: each returns a ``go.Figure`` and calls no streamlit, so tests read ``fig.data``.
Tensors are reduced on their own device first (``explorer.view.reduce``); a figure carries at most
``max_heatmap_cells`` float32 values or a few hundred bin counts, never a whole large tensor.

One colour convention for every heatmap: red positive, blue negative, white 0, on a range
symmetric about 0 that the colour bar states. Figures share one small layout and no plotly
template, because copying a template costs more than building the figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.colors import diverging, make_colorscale

from explorer.init.initializers import Expected
from explorer.view.reduce import (
    colour_limit,
    downsample,
    downsample_blocks,
    histogram_counts,
    matrix_shape,
)

__all__ = [
    "downsample",
    "heatmap",
    "heatmap_size",
    "histogram_counts",
    "histogram",
    "treemap",
    "treemap_id_to_path",
    "uses_figure",
    "ROOT_ID",
    "PERCENTILE",
]

ROOT_ID = "(model)"  # plotly's id for the root row, whose path is ""
PERCENTILE = 99.0  # the colour range: this percentile of |value| over the cells drawn
_BAR, _EXPECTED, _HIGHLIGHT = "#8fa8c8", "#d1495b", "#f58518"
_BLOCK, _PARAM = "#e4e9f0", "#6f93c2"
_SHORT, _LONG = 300, 900  # px of a heatmap's plot area: its short side, and the cap on its long
_USE_SIZE = (240, 720)  # the same for the tied-gradient panels, stacked in one column
_USE_GAP = 30  # px between two stacked panels: room for the next panel's title
_TITLE_CHARS = 38  # a panel title longer than this is cut with "…" (its full text is beside)
_MARGIN = dict(l=70, r=110, t=40, b=50)  # room for tick labels, axis titles and the colour bar
_AXIS = dict(gridcolor="#ebf0f8", linecolor="#c8d0dc", zeroline=False, ticks="", automargin=True)
_BASE = dict(  # plotly_white's look, without its template
    template={},  # no template: plotly would otherwise copy its default one into every figure
    paper_bgcolor="white",
    plot_bgcolor="white",
    font=dict(size=12, color="#2a3f5f"),
    hoverlabel=dict(align="left"),
    showlegend=False,
)
# ColorBrewer's RdBu, written out (plotly.js's own "RdBu" differs): blue < 0, white 0, red > 0
DIVERGING = make_colorscale(list(reversed(diverging.RdBu)))


def _figure(trace: dict, layout: dict) -> go.Figure:
    """A figure from one trace and a layout, both plain dicts in plotly's own schema.

    They are not validated again: plotly's validation costs more than reducing the tensor
    (about 2 ms a figure, so 0.3 s for a model's 148 histograms). The dicts are written
    in canonical form; ``tests/test_figures.py`` checks each kind validates to the same JSON.
    """
    return go.Figure({"data": [trace], "layout": layout}, _validate=False)


def _layout(title: str, note: str, **extra) -> dict:
    """The shared layout with a title (and its note on a second, smaller line)."""
    text = f"{title}<br><sup>{note}</sup>" if note else title
    margin = {**_MARGIN, "t": 58 if note else 40, **extra.pop("margin", {})}
    return {
        **_BASE,
        "margin": margin,
        "title": dict(text=text, x=0.01, xanchor="left", font=dict(size=14)),
        **extra,
    }


def heatmap_size(rows: int, cols: int, short: int = _SHORT, long: int = _LONG) -> tuple[int, int]:
    """The plot area (width, height) in px for a rows×cols matrix: its aspect ratio, the short
    side 300 px, the long side at most 900 px (beyond 3:1 the picture is squeezed to 3:1)."""
    aspect = max(rows, 1) / max(cols, 1)  # height / width; an empty side counts as one
    if aspect >= 1:
        return short, round(min(short * aspect, long))
    return round(min(short / aspect, long)), short


def heatmap(
    t: torch.Tensor,
    title: str,
    *,
    highlight: tuple[int, int] | None = None,
    zmax: float | None = None,
    scale_note: str | None = None,
    max_side: int | None = None,
) -> go.Figure:
    """A matrix picture of ``t`` (row 0 on top), as block means when it exceeds the cell budget.

    Axes count the rows and columns of the 2-D view (see ``downsample``), so a downsampled
    cell sits at its block's first row and column. ``highlight=(row, col)`` in those
    coordinates boxes the cell, or the block holding it. Colours run from blue (−limit)
    through white (0) to red (+limit), where the limit is the 99th percentile of |value| over
    the cells drawn, or ``zmax`` when given so several heatmaps share one scale; the colour
    bar says which (``scale_note``). ``fig.layout.width``/``height`` follow the matrix's
    aspect ratio (``heatmap_size``).

    Example: ``heatmap(net[0].weight, "0.weight").layout.height``
    """
    small, note, blocks = downsample_blocks(t, max_side)
    if zmax is None:
        zmax = colour_limit([small], PERCENTILE)
        scale_note = scale_note or f"{PERCENTILE:g}th percentile of |value|"
    return _heatmap_figure(t.shape, small, note, blocks, title, zmax, scale_note, highlight)


def uses_figure(
    uses: Sequence[torch.Tensor], total: torch.Tensor, *, titles: Sequence[str] | None = None
) -> go.Figure:
    """The picture of tied gradients: one panel per use and one of their sum, stacked in one
    figure with shared axes and one colour scale.

    The scale is the 99th percentile of |value| over every cell drawn, so one large use does
    not wash the others out; one horizontal colour bar under the panels states it. Each panel
    keeps the matrix's aspect with a 240 px short side (at most 3:1, and at most 240 px wide),
    so the column of panels is 300 px wide: it fits the detail panel at a 1,024 px window and
    reads the same at 1,920 px.

    Example: ``uses_figure([g1, g2], g1 + g2).layout.coloraxis.cmax``
    """
    titles = list(titles or [f"use {i + 1}" for i in range(len(uses))])
    titles.append(" + ".join(f"use {i + 1}" for i in range(len(uses))) + " = total .grad")
    shrunk = [downsample_blocks(u) for u in [*uses, total]]
    zmax = colour_limit([small for small, _, _ in shrunk], PERCENTILE)
    rows, cols = (max(n, 1) for n in matrix_shape(total.shape))
    width, height = heatmap_size(rows, cols, *_USE_SIZE)
    if width > _USE_SIZE[0]:  # a wide matrix: the column stays 240 px wide
        width, height = _USE_SIZE[0], max(1, round(height * _USE_SIZE[0] / width))
    n, gap = len(shrunk), _USE_GAP
    margin = dict(l=48, r=12, t=64, b=110)
    full = n * height + (n - 1) * gap
    layout: dict = {
        **_BASE,
        "width": width + margin["l"] + margin["r"],
        "height": full + margin["t"] + margin["b"],
        "margin": margin,
        "title": dict(text="Gradient of each use, and their sum", x=0.01, font=dict(size=14)),
        "coloraxis": dict(
            colorscale=DIVERGING,
            cmin=-zmax,
            cmax=zmax,
            colorbar=dict(
                orientation="h",
                thickness=10,
                len=1.0,
                y=-(64 / full),
                yanchor="top",
                title=dict(
                    text=f"one scale ±{zmax:.3g}: {PERCENTILE:g}th pct of |value| over all panels",
                    side="top",
                    font=dict(size=11),
                ),
            ),
        ),
        "annotations": [],
    }
    x_title, y_title = _axis_titles(len(total.shape))
    traces = []
    for i, ((small, _, blocks), title) in enumerate(zip(shrunk, titles, strict=True)):
        top = 1 - i * (height + gap) / full
        suffix = "" if i == 0 else str(i + 1)
        trace = _heatmap_trace(small, blocks, zmax, None)
        trace.pop("colorbar"), trace.pop("colorscale"), trace.pop("zmin"), trace.pop("zmax")
        traces.append(
            {**trace, "coloraxis": "coloraxis", "xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}
        )
        k_rows, k_cols = blocks
        x_range = [-k_cols / 2, small.shape[-1] * k_cols - k_cols / 2]
        y_range = [small.shape[0] * k_rows - k_rows / 2, -k_rows / 2]  # row 0 on top
        layout[f"xaxis{suffix}"] = {
            **_AXIS,
            "domain": [0, 1],
            "anchor": f"y{suffix}",
            "showgrid": False,
            "range": x_range,
            "showticklabels": i == n - 1,  # shared: only the bottom panel's labels
            **({"matches": "x"} if i else {}),
            **({"title": {"text": x_title}} if i == n - 1 else {}),
        }
        layout[f"yaxis{suffix}"] = {
            **_AXIS,
            "domain": [max(0.0, top - height / full), top],
            "anchor": f"x{suffix}",
            "showgrid": False,
            "range": y_range,  # the panel's pixel size keeps the matrix's aspect
            "showticklabels": len(total.shape) >= 2,
            "title": {"text": y_title if i == n // 2 else ""},
            **({"matches": "y"} if i else {}),
        }
        label = title if len(title) <= _TITLE_CHARS else title[: _TITLE_CHARS - 1] + "…"
        if blocks != (1, 1):
            label += f" · {blocks[0]}×{blocks[1]} block means"
        layout["annotations"].append(
            dict(
                text=label,
                x=0,
                xref="paper",
                xanchor="left",
                y=top,
                yref="paper",
                yanchor="bottom",
                yshift=2,
                showarrow=False,
                font=dict(size=12),
            )
        )
    return go.Figure({"data": traces, "layout": layout}, _validate=False)


def _heatmap_figure(
    shape: torch.Size,
    small: torch.Tensor,
    note: str,
    blocks: tuple[int, int],
    title: str,
    zmax: float,
    scale_note: str | None,
    highlight: tuple[int, int] | None,
    size: tuple[int, int] = (_SHORT, _LONG),
) -> go.Figure:
    """The heatmap of an already reduced matrix ``small`` of a tensor of ``shape``."""
    rows, cols = (max(n, 1) for n in matrix_shape(shape))  # an empty side is drawn as one
    trace = _heatmap_trace(small, blocks, zmax, scale_note)
    width, height = heatmap_size(rows, cols, *size)
    margin = {**_MARGIN, "t": 58 if note else 40}
    x_title, y_title = _axis_titles(len(shape))
    layout = _layout(
        title,
        note,
        width=width + margin["l"] + margin["r"],
        height=height + margin["t"] + margin["b"],
        xaxis={**_AXIS, "title": {"text": x_title}, "showgrid": False, "constrain": "domain"},
        yaxis={
            **_AXIS,
            "title": {"text": y_title},
            "showgrid": False,
            "autorange": "reversed",
            "showticklabels": len(shape) >= 2,
            # keeps the intended aspect even when the page stretches the figure's width
            "scaleanchor": "x",
            "scaleratio": (height / rows) / (width / cols),
            "constrain": "domain",
        },
    )
    fig = _figure(trace, layout)
    if highlight is not None:
        _outline(fig, highlight, blocks, rows, cols)
    return fig


def _heatmap_trace(small: torch.Tensor, blocks: tuple[int, int], zmax: float, scale_note) -> dict:
    """The heatmap trace of a reduced matrix: block means, one diverging scale of ±zmax."""
    k_rows, k_cols = blocks
    if blocks == (1, 1):
        hover = "row %{y}, col %{x}<br>%{z:.4g}<extra></extra>"
    else:
        hover = f"{k_rows}×{k_cols} block from row %{{y}}, col %{{x}}<br>mean %{{z:.4g}}"
        hover += "<extra></extra>"
    bar_title = f"±{zmax:.3g}" + (f": {scale_note}" if scale_note else ", shared scale")
    return dict(
        type="heatmap",
        z=small.numpy().astype(np.float32, copy=False),  # sent as binary float32 (bdata)
        x0=0,
        dx=k_cols,
        y0=0,
        dy=k_rows,
        hovertemplate=hover,
        colorscale=DIVERGING,
        zauto=False,
        zmin=-zmax,
        zmax=zmax,
        colorbar=dict(
            thickness=12,
            title=dict(text=f"{bar_title}; beyond it saturates", side="right", font=dict(size=11)),
        ),
    )


def _outline(fig: go.Figure, cell: tuple[int, int], blocks, rows: int, cols: int) -> None:
    """A box around the block that holds ``cell`` (an edited element)."""
    k_rows, k_cols = blocks
    row, col = (cell[0] // k_rows) * k_rows, (cell[1] // k_cols) * k_cols
    # at least ~1% of the axis, so one block of a huge matrix is still visible
    half_w, half_h = max(k_cols / 2, cols / 100), max(k_rows / 2, rows / 100)
    fig.add_shape(
        type="rect",
        x0=col - half_w,
        x1=col + half_w,
        y0=row - half_h,
        y1=row + half_h,
        line=dict(color="#111111", width=2),
    )


def _axis_titles(ndim: int) -> tuple[str, str]:
    if ndim <= 1:
        return ("index" if ndim else ""), ""
    return ("column (input)" if ndim == 2 else "column (input × kernel, flattened)"), "row (output)"


def histogram(
    t: torch.Tensor, title: str, *, bins: int | None = None, expected: Expected | None = None
) -> go.Figure:
    """Bars of the finite values' density, so ``expected``'s density can be drawn over them.

    Without ``bins``, small tensors get fewer bins (2·√n, from 10 to 60) so 8 values do not
    spread over 60 mostly empty bars; at most ``max_histogram_bins`` are sent. A constant
    tensor is one bar of its count, labelled with its value (a density would be a spike
    whose height only says how narrow the bar was drawn).
    """
    if bins is None:
        bins = int(min(60, max(10, 2 * math.sqrt(max(t.numel(), 1)))))
    edges, counts, skipped = histogram_counts(t, bins)
    n = int(counts.sum())
    constant = len(counts) == 1 and n > 0
    centres = ((edges[:-1] + edges[1:]) / 2).numpy()
    widths = edges.diff()
    if constant:
        note = f"every value is {centres[0]:.4g} ({n:,} values)"
        heights, y_title = counts.numpy(), "count"
        label = dict(text=[f"{centres[0]:.4g}"], textposition="outside", cliponaxis=False)
    else:
        note = f"{n:,} values" if n else "no finite values" if skipped else "no values"
        heights = (counts / (n * widths)).numpy() if n else np.zeros(len(counts))
        y_title, label = "density", {}
    if skipped:
        note += f"; {skipped:,} nan/inf left out"
    bars = dict(
        type="bar",
        x=centres,
        y=heights,
        width=widths.numpy(),
        customdata=counts.numpy(),
        marker=dict(color=_BAR, line=dict(width=0)),
        showlegend=False,
        hovertemplate="around %{x:.4g}: %{customdata:,} values<extra></extra>",
        **label,
    )
    layout = _layout(
        title,
        note,
        height=320,
        bargap=0,
        margin=dict(l=60, r=20, b=50),
        xaxis={**_AXIS, "title": {"text": "value"}},
        yaxis={**_AXIS, "title": {"text": y_title}, "rangemode": "tozero"},
    )
    fig = _figure(bars, layout)
    if expected is not None:
        _overlay(fig, expected, edges[0].item(), edges[-1].item(), densities=not constant)
        # the legend sits under the axis title, so a long label never runs into the title
        fig.update_layout(
            showlegend=True,
            height=370,
            margin_b=70,
            legend=dict(orientation="h", x=0, xanchor="left", y=-0.28, yanchor="top"),
        )
    return fig


def _overlay(fig: go.Figure, e: Expected, lo: float, hi: float, densities: bool = True) -> None:
    """Draw ``e`` over a histogram whose data spans [lo, hi]; one legend entry, ``e.label``.

    ``densities=False`` (a histogram of counts) draws only point masses and bounds.
    """
    lines: list[tuple[list[float], list[float]]] = []
    masses = list(e.point_masses)
    if e.kind in ("normal", "truncated_normal") and e.mean is not None and e.std is not None:
        if e.std > 0:
            lines.append(_normal_line(e, lo, hi))
        else:
            masses.append((e.mean, 1.0))
    pieces = [(*e.bounds, 1.0)] if e.kind == "uniform" and e.bounds is not None else []
    for seg_lo, seg_hi, prob in sorted([*pieces, *e.segments]):
        if seg_hi > seg_lo:
            lines.append(_step(seg_lo, seg_hi, prob))
        else:  # U(0, 0), e.g. Xavier with gain 0: all of it at one value
            masses.append((seg_lo, prob))
    if e.kind == "constant" and not masses and e.mean is not None:
        masses.append((e.mean, 1.0))
    if not densities:
        lines = []
    if lines:
        xs = [x for line, _ in lines for x in [*line, None]][:-1]
        ys = [y for _, line in lines for y in [*line, None]][:-1]
        fig.add_scatter(
            x=xs,
            y=ys,
            mode="lines",
            name=e.label,
            legendgroup="expected",
            line=dict(color=_EXPECTED, width=2),
            hoverinfo="skip",
        )
    for value, prob in masses:
        fig.add_vline(
            x=value,
            line=dict(color=_EXPECTED, width=2, dash="dot"),
            annotation_text=f"{prob:.0%} at {value:g}",
            annotation_position="top",
        )
        fig.add_scatter(
            x=[value],
            y=[0],
            mode="markers",
            name=e.label,
            legendgroup="expected",
            showlegend=not lines and (value, prob) == masses[0],
            marker=dict(color=_EXPECTED, symbol="triangle-up", size=12),
            hovertemplate=f"{prob:.0%} of values expected at {value:g}<extra></extra>",
        )
    if e.bounds is not None:
        b_lo, b_hi = e.bounds
        symmetric = math.isclose(b_lo, -b_hi)
        labels = ("", f"±{b_hi:.3g}") if symmetric else (f"{b_lo:.3g}", f"{b_hi:.3g}")
        for bound, label in zip((b_lo, b_hi), labels, strict=True):
            text = dict(annotation_text=label, annotation_position="top right") if label else {}
            fig.add_vline(x=bound, line=dict(color=_EXPECTED, width=1, dash="dash"), **text)


def _normal_line(e: Expected, lo: float, hi: float) -> tuple[list[float], list[float]]:
    """The (truncated) normal pdf on a grid over the data and ±4 std, with the mean on it."""
    mean, std = e.mean, e.std
    x_lo, x_hi = min(lo, mean - 4 * std), max(hi, mean + 4 * std)
    a, b = e.bounds if e.kind == "truncated_normal" and e.bounds else (-math.inf, math.inf)
    grid = {x_lo + (x_hi - x_lo) * i / 200 for i in range(201)}
    grid |= {mean + std * i / 10 for i in range(-40, 41)}
    grid = sorted(x for x in grid if a <= x <= b)
    mass = 1.0
    if e.kind == "truncated_normal":
        mass = _phi_cdf((b - mean) / std) - _phi_cdf((a - mean) / std)
        grid = sorted({a, b, *grid} - {-math.inf, math.inf})

    def pdf(x: float) -> float:
        return math.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi) * mass)

    xs, ys = grid, [pdf(x) for x in grid]
    if e.kind == "truncated_normal":  # drop to 0 at the cut
        xs, ys = [grid[0], *xs, grid[-1]], [0.0, *ys, 0.0]
    return xs, ys


def _phi_cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def _step(lo: float, hi: float, prob: float) -> tuple[list[float], list[float]]:
    """A flat density ``prob / (hi - lo)`` on [lo, hi], drawn with its two edges."""
    height = prob / (hi - lo)
    return [lo, lo, hi, hi], [0.0, height, height, 0.0]


def treemap_id_to_path(plotly_id: str) -> str:
    """The row id of a treemap node's plotly id: ``"(model)"`` -> ``""``, others unchanged."""
    return "" if plotly_id == ROOT_ID else plotly_id


def _plotly_id(path: str | None) -> str:
    return ROOT_ID if path == "" else (path or "")


def treemap(
    rows: list[dict], *, highlighted: set[str] = frozenset(), selected: str | None = None
) -> go.Figure:
    """Blocks holding their parameters, sized by element count; parents total their children.

    A row's ``value`` counts only when it has no children (a block's own value is replaced by
    its children's total). Nodes with 0 elements (an activation) get a small integer sliver,
    at most 1% of the total each and 5% together, so they stay visible and clickable; the
    label and hover show the true count, kept in ``customdata``. Node ids are the row ids
    except the root ``""``, which is ``ROOT_ID``; ``treemap_id_to_path`` maps them back.
    """
    ids = [r["id"] for r in rows]
    known = set(ids)
    children: dict[str, list[str]] = {}
    for r in rows:
        if r["parent"] is not None:
            if r["parent"] not in known:
                raise ValueError(f"row {r['id']!r}: its parent {r['parent']!r} is not a row")
            children.setdefault(r["parent"], []).append(r["id"])
    own = {r["id"]: int(r["value"]) for r in rows}
    leaves = [i for i in ids if i not in children]
    total = sum(own[i] for i in leaves)
    n_empty = sum(own[i] == 0 for i in leaves)
    sliver = max(1, round(min(0.01 * total, 0.05 * total / max(n_empty, 1))))
    counts = _totals(ids, children, own)
    sizes = _totals(ids, children, {i: own[i] or sliver for i in ids})
    colors = [
        _HIGHLIGHT if r["id"] in highlighted else _PARAM if r["kind"] == "param" else _BLOCK
        for r in rows
    ]
    is_selected = [r["id"] == selected for r in rows]
    fig = go.Figure(
        go.Treemap(
            ids=[_plotly_id(i) for i in ids],
            labels=[r["label"] for r in rows],
            parents=[_plotly_id(r["parent"]) for r in rows],
            values=[sizes[i] for i in ids],
            customdata=[counts[i] for i in ids],
            branchvalues="total",
            sort=False,
            marker=dict(
                colors=colors,
                line=dict(
                    width=[4 if s else 1 for s in is_selected],
                    color=["#111111" if s else "#ffffff" for s in is_selected],
                ),
            ),
            texttemplate="%{label}<br>%{customdata:,}",
            hovertemplate="%{label}<br>%{customdata:,} parameters<extra></extra>",
            tiling=dict(pad=2),
        )
    )
    fig.update_layout(_BASE, height=360, margin=dict(l=10, r=10, t=30, b=10))
    return fig


def _totals(ids: list[str], children: dict[str, list[str]], leaf: dict[str, int]) -> dict[str, int]:
    """Each id's value: ``leaf[id]`` for a leaf, the sum of its children's totals otherwise."""
    totals: dict[str, int] = {}

    def total(i: str) -> int:
        if i not in totals:
            kids = children.get(i)
            totals[i] = sum(total(k) for k in kids) if kids else leaf[i]
        return totals[i]

    for i in ids:
        total(i)
    return totals
