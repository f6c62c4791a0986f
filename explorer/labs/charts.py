"""Plotly figures of the labs: training curves, per-use gradient norms, signal through depth.

Pure builders, as ``explorer.view.figures``: each returns a ``go.Figure`` from a record
(``TrainLog``, ``DepthProfile``) and calls no streamlit, so tests read ``fig.data``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
import torch

__all__ = [
    "NORMS",
    "loss_figure",
    "norms_figure",
    "uses_figure",
    "depth_figure",
]

# What each per-parameter curve shows: (TrainLog field, title, y-axis title, log scale)
NORMS = {
    "value_norm": ("Value norm ‖w‖ per tensor", "‖w‖", False),
    "grad_norm": ("Gradient norm ‖∇w‖ per tensor", "‖∇w‖", True),
    "update_ratio": ("Update ratio ‖Δw‖ / ‖w‖ per tensor", "‖Δw‖ / ‖w‖", True),
}
_PALETTE = (
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#b279a2",
    "#eeca3b",
    "#9d755d",
    "#ff9da6",
    "#bab0ac",
)
_LAYOUT = dict(
    template="none",
    paper_bgcolor="white",
    plot_bgcolor="white",
    font=dict(size=12, color="#2a3f5f"),
    height=320,
    margin=dict(l=60, r=20, t=48, b=46),
    hovermode="x unified",
    legend=dict(font_size=11),
)
_AXIS = dict(gridcolor="#ebf0f8", linecolor="#c8d0dc", zeroline=False, automargin=True)


def _figure(title: str, x_title: str, y_title: str, log: bool = False) -> go.Figure:
    fig = go.Figure(layout=_LAYOUT)
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left", font=dict(size=14)),
        xaxis={**_AXIS, "title": x_title},
        yaxis={**_AXIS, "title": y_title, "type": "log" if log else "linear"},
    )
    return fig


def _log_ticks(fig: go.Figure, values: torch.Tensor) -> None:
    """Tidy labels on a log axis: one per decade over 2+ decades, else 1, 2 and 5 only."""
    values = values.double().flatten()
    finite = values[torch.isfinite(values) & (values > 0)]
    if finite.numel() > 1:
        decades = math.log10(float(finite.max() / finite.min()))
        fig.update_yaxes(dtick=1 if decades >= 2 else "D2", exponentformat="power")


def _steps(n: int) -> list[int]:
    return list(range(1, n + 1))


def _values(t: torch.Tensor) -> list[float | None]:
    """Floats for plotly; nan (an undefined ratio) becomes a gap."""
    return [None if v != v else v for v in t.double().tolist()]


def loss_figure(losses: torch.Tensor | Sequence[float], title: str = "Training loss") -> go.Figure:
    """The loss per step, on a log scale when it spans more than a factor of 20."""
    values = torch.as_tensor(list(losses) if not torch.is_tensor(losses) else losses).double()
    finite = values[torch.isfinite(values) & (values > 0)]
    log = finite.numel() > 1 and float(finite.max() / finite.min()) > 20
    fig = _figure(title, "step", "loss", log)
    if log:
        _log_ticks(fig, values)
    fig.add_scatter(
        x=_steps(len(values)),
        y=_values(values),
        mode="lines",
        name="loss",
        line=dict(color=_PALETTE[0], width=2),
        showlegend=False,
    )
    return fig


def norms_figure(log, kind: str) -> go.Figure:
    """One line per distinct tensor (``log.names``) of ``value_norm``, ``grad_norm`` or
    ``update_ratio``; a tied tensor is labelled with all its names."""
    title, y_title, log_scale = NORMS[kind]
    table = getattr(log, kind)
    fig = _figure(title, "step", y_title, log_scale)
    if log_scale:
        _log_ticks(fig, table)
    steps = _steps(table.shape[0])
    for i, key in enumerate(log.names):
        fig.add_scatter(
            x=steps,
            y=_values(table[:, i]),
            mode="lines",
            name=" = ".join(log.aliases[key]),
            line=dict(color=_PALETTE[i % len(_PALETTE)], width=1.6),
        )
    rows = math.ceil(len(log.names) / 4)  # the legend under the plot, about 4 names a row
    fig.update_layout(
        legend=dict(orientation="h", x=0, y=-0.3, yanchor="top"), height=360 + 22 * rows
    )
    return fig


def uses_figure(log, key: str) -> go.Figure:
    """A tied tensor's gradient norm per use, against the norm of their sum (its ``.grad``)."""
    names = " = ".join(log.aliases[key])
    fig = _figure(f"{names}: ‖∇‖ of each use and of their sum", "step", "gradient norm", True)
    steps = _steps(log.use_norm[key].shape[0])
    for i, label in enumerate(log.use_labels[key]):
        fig.add_scatter(
            x=steps,
            y=_values(log.use_norm[key][:, i]),
            mode="lines",
            name=f"use {i + 1}: {label}",
            line=dict(color=_PALETTE[(i + 1) % len(_PALETTE)], width=1.6),
        )
    fig.add_scatter(
        x=steps,
        y=_values(log.grad_norm[:, log.column(key)]),
        mode="lines",
        name="sum of the uses = .grad",
        line=dict(color="#222222", width=2.4, dash="dot"),
    )
    fig.update_layout(legend=dict(orientation="h", x=0, y=-0.25, yanchor="top"), height=360)
    _log_ticks(fig, torch.cat([log.use_norm[key].flatten(), log.grad_norm[:, log.column(key)]]))
    return fig


def depth_figure(profiles: Sequence, field: str, title: str, y_title: str) -> go.Figure:
    """One line per profile (a rule set) of a per-layer quantity, layer by layer in depth order.

    ``field`` is ``"act_std"``, ``"act_mean"`` or ``"grad_norm"`` of ``DepthProfile``; a
    log scale shows the vanishing signal, with exact zeros drawn at the bottom as gaps.
    """
    log_scale = field != "act_mean"
    fig = _figure(title, "layer (depth)", y_title, log_scale)
    if log_scale:
        seen = [getattr(r, field) for p in profiles for r in p.layers]
        _log_ticks(fig, torch.tensor([v for v in seen if v is not None] or [1.0]))
    for i, profile in enumerate(profiles):
        rows = [r for r in profile.layers if getattr(r, field) is not None]
        fig.add_scatter(
            x=[r.name for r in rows],
            y=[getattr(r, field) if getattr(r, field) > 0 or not log_scale else None for r in rows],
            mode="lines+markers",
            name=profile.label,
            line=dict(color=_PALETTE[i % len(_PALETTE)], width=2),
        )
    fig.update_layout(
        xaxis=dict(type="category", tickangle=-45, tickfont=dict(size=10)),
        # under the plot: above it, the names collided with the title in a narrow column
        legend=dict(orientation="h", x=0, y=-0.42, yanchor="top"),
        margin=dict(t=48, b=60),
        height=460,
    )
    return fig
