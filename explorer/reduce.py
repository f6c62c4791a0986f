"""Tensor reductions for figures: shrink on the tensor's own device, copy only the result.

A figure never carries more than it shows: a heatmap gets at most 512×512 block means and
a histogram gets its bin counts, so an 8192×8192 weight on a GPU never crosses to the CPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.nn.parameter import is_lazy

from explorer.errors import ExplorerError

__all__ = [
    "STAT_NAMES",
    "downsample",
    "histogram_counts",
    "matrix_shape",
    "require_values",
    "tensor_stats",
    "tensor_preview",
]

STAT_NAMES = ("mean", "std", "min", "max", "norm", "zero_fraction")

_CHUNK = 1 << 24  # values per histc call: float32 bin counts stay exact below 2**24


def require_values(t: torch.Tensor) -> None:
    """Refuse a tensor that has a shape but no values (the meta device), in words."""
    if t.device.type == "meta":
        raise ExplorerError(
            f"this {tuple(t.shape)} tensor has no values on the meta device: a model built "
            "on meta has shapes, names and ties only; build it on cpu or cuda to see values"
        )


@torch.no_grad()
def downsample(t: torch.Tensor, max_side: int = 512) -> tuple[torch.Tensor, str]:
    """The tensor as a 2-D float CPU matrix with both sides <= ``max_side``, and a note.

    Example::

        small, note = downsample(torch.randn(8192, 8192))
        small.shape  # torch.Size([512, 512])
        note         # "8192×8192 shown as 512×512, mean of 16×16 blocks"
    """
    require_values(t)
    x, view = _as_matrix(t.detach())
    rows, cols = x.shape
    k_rows, k_cols = math.ceil(rows / max_side), math.ceil(cols / max_side)
    if x.numel() == 0 or (k_rows == 1 and k_cols == 1):
        small = x.to("cpu", _plot_dtype(x.dtype), copy=True)
        return small, view or (f"{rows}×{cols}, every value shown" if x.numel() else "empty")
    if not x.is_floating_point():
        x = x.float()
    # ceil_mode keeps the ragged last block; with no padding it is averaged over its own size
    small = F.avg_pool2d(x[None], (k_rows, k_cols), ceil_mode=True)[0]  # (1, R, C) -> (r, c)
    small = small.to("cpu", _plot_dtype(small.dtype))
    shown = f"{small.shape[0]}×{small.shape[1]}, mean of {k_rows}×{k_cols} blocks"
    return small, f"{view}, then {shown}" if view else f"{rows}×{cols} shown as {shown}"


def matrix_shape(shape: torch.Size | tuple[int, ...]) -> tuple[int, int]:
    """The (rows, cols) a shape is drawn as: () -> 1×1, (n,) -> 1×n, (O, ...) -> O×rest."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return 1, shape[0]
    return shape[0], math.prod(shape[1:])


def _as_matrix(x: torch.Tensor) -> tuple[torch.Tensor, str]:
    """``x`` viewed as (rows, cols), with a note when that changed its shape."""
    rows, cols = matrix_shape(x.shape)
    if x.ndim == 2:
        return x, ""
    if x.ndim == 0:
        return x.reshape(1, 1), "scalar shown as 1×1"
    return x.reshape(rows, cols), f"{tuple(x.shape)} shown as {rows}×{cols}"


def _plot_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


@torch.no_grad()
def histogram_counts(t: torch.Tensor, bins: int = 60) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Bin edges and counts (float64/int64, on CPU) of the finite values, and how many were not.

    Counts come from ``torch.histc`` on the tensor's device between its finite min and max;
    there are ``len(counts) + 1`` edges. A constant tensor gets one bin around its value
    (±1%, at least ±0.01); a tensor with no finite values gets ``bins`` empty bins on [0, 1].
    """
    require_values(t)
    flat = t.detach().reshape(-1)
    chunks = [_wide(c) for c in flat.split(_CHUNK)] if flat.numel() else []
    finite, lo, hi = 0, math.inf, -math.inf
    for chunk in chunks:
        c_lo, c_hi = (v.item() for v in torch.aminmax(chunk))
        if math.isfinite(c_lo) and math.isfinite(c_hi):  # the usual case: no masked copy
            lo, hi, finite = min(lo, c_lo), max(hi, c_hi), finite + chunk.numel()
            continue
        good = chunk[torch.isfinite(chunk)]
        if good.numel():
            c_lo, c_hi = torch.aminmax(good)
            lo, hi = min(lo, c_lo.item()), max(hi, c_hi.item())
            finite += good.numel()
    skipped = flat.numel() - finite
    if finite == 0:
        empty = torch.zeros(bins, dtype=torch.int64)
        return torch.linspace(0, 1, bins + 1, dtype=torch.float64), empty, skipped
    if lo == hi:
        half = max(abs(lo), 1.0) * 1e-2
        edges = torch.tensor([lo - half, lo + half], dtype=torch.float64)
        return edges, torch.tensor([finite]), skipped
    counts = torch.zeros(bins, dtype=torch.int64)
    for chunk in chunks:  # histc skips nan and anything outside [lo, hi], so ±inf too
        counts += torch.histc(chunk, bins, min=lo, max=hi).to("cpu", torch.int64)
    return torch.linspace(lo, hi, bins + 1, dtype=torch.float64), counts, skipped


def _wide(x: torch.Tensor) -> torch.Tensor:
    """Half-precision and integer chunks as float32; float32/float64 as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


@torch.no_grad()
def tensor_stats(t: torch.Tensor) -> dict[str, float]:
    """Mean, std, min, max, L2 norm and zero fraction, reduced on the tensor's own device.

    The six numbers come back to the host in one copy; the zero fraction is an exact count
    (``torch.count_nonzero``) over ``numel``. Empty and lazy tensors give nan everywhere.
    """
    if is_lazy(t) or t.numel() == 0:
        return dict.fromkeys(STAT_NAMES, math.nan)
    require_values(t)
    x = t.detach()
    wide = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    lo, hi = torch.aminmax(wide)
    std = wide.std() if x.numel() > 1 else wide.new_zeros(())
    norm = torch.linalg.vector_norm(wide)
    values = torch.stack([wide.mean(), std, lo, hi, norm]).double()
    nonzero = torch.count_nonzero(x).double()  # int64 -> float64: exact below 2**53
    *floats, nonzero = torch.cat([values, nonzero[None]]).tolist()  # the one device->host copy
    stats = dict(zip(STAT_NAMES, floats, strict=False))
    stats["zero_fraction"] = (x.numel() - int(nonzero)) / x.numel()
    return stats


@torch.no_grad()
def tensor_preview(t: torch.Tensor, limit: int = 200) -> str:
    """The tensor as PyTorch prints it, cut to its first ``limit`` values when larger."""
    if is_lazy(t):
        return "<uninitialized: shape unknown until the first forward pass>"
    require_values(t)
    if t.numel() <= limit:
        return str(t.detach().cpu())
    head = t.detach().flatten()[:limit].cpu()
    return f"{head}\n… first {limit} of {t.numel():,} values, shape {tuple(t.shape)}"
