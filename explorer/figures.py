"""Plotly figures of parameters: a heatmap, a histogram against its expected density, a treemap.

Pure builders: each returns a ``go.Figure`` and calls no streamlit, so tests read ``fig.data``.
Tensors are reduced on their own device first (``explorer.reduce``); a figure carries at most
512×512 values or the bin counts, never a whole large tensor.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
import torch

from explorer.initializers import Expected
from explorer.reduce import downsample, histogram_counts, matrix_shape

__all__ = [
    "downsample",
    "heatmap",
    "histogram_counts",
    "histogram",
    "treemap",
    "treemap_id_to_path",
    "ROOT_ID",
]

ROOT_ID = "(model)"  # plotly's id for the root row, whose path is ""
_BAR, _EXPECTED, _HIGHLIGHT = "#8fa8c8", "#d1495b", "#f58518"
_BLOCK, _PARAM = "#e4e9f0", "#6f93c2"
_MARGIN = dict(l=10, r=10, t=40, b=10)


def _layout(fig: go.Figure, title: str, note: str, height: int) -> go.Figure:
    text = f"{title}<br><sup>{note}</sup>" if note else title
    margin = {**_MARGIN, "t": 58 if note else 40}
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin=margin,
        showlegend=False,
        title=dict(text=text, x=0.01, xanchor="left", font=dict(size=14)),
    )
    return fig


def heatmap(
    t: torch.Tensor,
    title: str,
    *,
    max_side: int = 512,
    zmid: float | None = 0.0,
    highlight: tuple[int, int] | None = None,
    zmax: float | None = None,
) -> go.Figure:
    """A matrix picture of ``t`` (row 0 on top), as block means when a side exceeds ``max_side``.

    Axes count the rows and columns of the 2-D view (see ``downsample``), so a downsampled
    cell sits at its block's first row and column. ``highlight=(row, col)`` in those
    coordinates boxes the cell, or the block holding it. ``zmax`` fixes a symmetric colour
    range ±zmax, so several heatmaps (the uses of a tied tensor) can be compared.
    """
    small, note = downsample(t, max_side)
    rows, cols = matrix_shape(t.shape)
    k_rows, k_cols = math.ceil(rows / max_side), math.ceil(cols / max_side)
    finite = small[torch.isfinite(small)]
    both_signs = (
        zmid is not None and finite.numel() > 0 and finite.min().item() < zmid < finite.max().item()
    )
    colors = (
        dict(colorscale="RdBu", reversescale=True, zmid=zmid)
        if both_signs
        else dict(colorscale="Viridis")
    )
    if zmax is not None:
        colors = dict(colorscale="RdBu", reversescale=True, zmin=-zmax, zmax=zmax)
    if k_rows == k_cols == 1:
        hover = "row %{y}, col %{x}<br>%{z:.4g}<extra></extra>"
    else:
        hover = (
            f"{k_rows}×{k_cols} block from row %{{y}}, col %{{x}}<br>mean %{{z:.4g}}<extra></extra>"
        )
    fig = go.Figure(
        go.Heatmap(
            z=small.numpy(),
            x0=0,
            dx=k_cols,
            y0=0,
            dy=k_rows,
            hovertemplate=hover,
            colorbar=dict(thickness=12),
            **colors,
        )
    )
    x_title, y_title = _axis_titles(t.ndim)
    fig.update_xaxes(title=x_title, showgrid=False, zeroline=False)
    fig.update_yaxes(
        title=y_title,
        autorange="reversed",
        showgrid=False,
        zeroline=False,
        showticklabels=t.ndim >= 2,
    )
    if highlight is not None:
        row, col = (highlight[0] // k_rows) * k_rows, (highlight[1] // k_cols) * k_cols
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
    return _layout(fig, title, note, 200 if small.shape[0] == 1 else 340)


def _axis_titles(ndim: int) -> tuple[str, str]:
    if ndim <= 1:
        return ("index" if ndim else ""), ""
    return ("column (input)" if ndim == 2 else "column (input × kernel, flattened)"), "row (output)"


def histogram(
    t: torch.Tensor, title: str, *, bins: int | None = None, expected: Expected | None = None
) -> go.Figure:
    """Bars of the finite values' density, so ``expected``'s density can be drawn over them.

    Without ``bins``, small tensors get fewer bins (2·√n, from 10 to 60) so 8 values do not
    spread over 60 mostly empty bars.
    """
    if bins is None:
        bins = int(min(60, max(10, 2 * math.sqrt(max(t.numel(), 1)))))
    edges, counts, skipped = histogram_counts(t, bins)
    n = int(counts.sum())
    widths = edges.diff()
    density = counts / (n * widths) if n else torch.zeros_like(widths)
    fig = go.Figure(
        go.Bar(
            x=((edges[:-1] + edges[1:]) / 2).numpy(),
            y=density.numpy(),
            width=widths.numpy(),
            customdata=counts.numpy(),
            marker=dict(color=_BAR, line=dict(width=0)),
            showlegend=False,
            hovertemplate="around %{x:.4g}: %{customdata:,} values<extra></extra>",
        )
    )
    note = f"{n:,} values" if n else "no finite values"
    if len(counts) == 1:
        note = f"every value is {(edges[0] + edges[1]).item() / 2:.4g} ({n:,} values)"
    if skipped:
        note += f"; {skipped:,} nan/inf left out"
    fig.update_layout(bargap=0, xaxis_title="value", yaxis_title="density")
    _layout(fig, title, note, 320)
    if expected is not None:
        _overlay(fig, expected, edges[0].item(), edges[-1].item())
        # the legend sits under the axis title, so a long label never runs into the title
        fig.update_layout(
            showlegend=True,
            height=370,
            margin_b=70,
            legend=dict(orientation="h", x=0, xanchor="left", y=-0.28, yanchor="top"),
        )
    return fig


def _overlay(fig: go.Figure, e: Expected, lo: float, hi: float) -> None:
    """Draw ``e`` over a histogram whose data spans [lo, hi]; one legend entry, ``e.label``."""
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
    fig.update_layout(template="plotly_white", height=360, margin=dict(l=10, r=10, t=30, b=10))
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
