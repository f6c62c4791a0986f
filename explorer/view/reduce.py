"""Tensor reductions: shrink on the tensor's own device, copy only the result to the host.

A figure never carries more than it shows: a heatmap gets at most ``max_heatmap_cells``
block means and a histogram its bin counts, so a large weight on a GPU never crosses to
the CPU. Stats come back in one copy. A tensor on the meta device has no values: every
function here says so (``ExplorerError``) instead of failing inside PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
from torch.nn.parameter import is_lazy

from explorer.core.errors import ExplorerError
from explorer.core.limits import DEFAULT_LIMITS

__all__ = [
    "STAT_NAMES",
    "colour_limit",
    "downsample",
    "downsample_blocks",
    "histogram_counts",
    "matrix_shape",
    "require_values",
    "tensor_stats",
    "tensor_preview",
]

STAT_NAMES = ("mean", "std", "min", "max", "norm", "zero_fraction")

_CPU_CHUNK = 1 << 16  # values binned at a time on the CPU: the buffers stay in cache
_DEVICE_CHUNK = 1 << 24  # values per torch.histc call: float32 counts stay exact below 2**24


def require_values(t: torch.Tensor) -> None:
    """Refuse a tensor that has a shape but no values (the meta device), in words."""
    if t.device.type == "meta":
        raise ExplorerError(
            f"this {tuple(t.shape)} tensor has no values on the meta device: a model built "
            "on meta has shapes, names and ties only; build it on cpu or cuda to see values"
        )


def downsample(
    t: torch.Tensor, max_side: int | None = None, max_cells: int | None = None
) -> tuple[torch.Tensor, str]:
    """The tensor as a 2-D float CPU matrix of at most ``max_side`` per side and ``max_cells``.

    Larger matrices become means of blocks, square where the matrix is (defaults from
    ``DEFAULT_LIMITS``: 512 per side, 64 Ki cells: no more cells than the plot has pixels).

    Example::

        small, note = downsample(torch.randn(8192, 8192))
        small.shape  # torch.Size([256, 256])
        note         # "8192×8192 shown as 256×256, mean of 32×32 blocks"
    """
    small, note, _ = downsample_blocks(t, max_side, max_cells)
    return small, note


@torch.no_grad()
def downsample_blocks(
    t: torch.Tensor, max_side: int | None = None, max_cells: int | None = None
) -> tuple[torch.Tensor, str, tuple[int, int]]:
    """``downsample``'s matrix and note, and the (rows, cols) of each block it averaged."""
    require_values(t)
    max_side = max_side or DEFAULT_LIMITS.max_heatmap_side
    max_cells = max_cells or DEFAULT_LIMITS.max_heatmap_cells
    x, view = _as_matrix(t.detach())
    rows, cols = x.shape
    blocks = _block_sizes(rows, cols, max_side, max_cells)
    if x.numel() == 0 or blocks == (1, 1):
        small = x.to("cpu", _plot_dtype(x.dtype), copy=True)
        note = view or (f"{rows}×{cols}, every value shown" if x.numel() else "empty")
        return small, note, (1, 1)
    small = _block_means(x, *blocks).to("cpu")
    shown = f"{small.shape[0]}×{small.shape[1]}, mean of {blocks[0]}×{blocks[1]} blocks"
    note = f"{view}, then {shown}" if view else f"{rows}×{cols} shown as {shown}"
    return small, note, blocks


def _block_means(x: torch.Tensor, k_rows: int, k_cols: int) -> torch.Tensor:
    """Means of k_rows×k_cols blocks of a matrix; the ragged last blocks average what they hold.

    Two sums read the matrix once: groups of ``k_rows`` whole rows first (a view of a
    contiguous matrix, summed at close to memory speed), then groups of columns of that
    k_rows times smaller result. Several times faster than ``avg_pool2d``. float64 stays
    float64; anything else is summed in float32.
    """
    wide = torch.float64 if x.dtype == torch.float64 else torch.float32
    rows, cols = x.shape
    down = _group_sums(x, k_rows, 0, wide) if k_rows > 1 else x  # (r, cols)
    sums = _group_sums(down, k_cols, 1, wide) if k_cols > 1 else down.to(wide)  # (r, c)
    return sums / (_sizes(rows, k_rows, x.device)[:, None] * _sizes(cols, k_cols, x.device))


def _group_sums(x: torch.Tensor, k: int, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """Sums of consecutive groups of ``k`` along ``dim`` (0 or 1) of a matrix, the last ragged."""
    n = x.shape[dim]
    full = n // k * k
    head = x.narrow(dim, 0, full)
    shape = (-1, k, x.shape[1]) if dim == 0 else (x.shape[0], -1, k)
    parts = [head.reshape(shape).sum(dim + 1, dtype=dtype)]
    if full < n:
        parts.append(x.narrow(dim, full, n - full).sum(dim, keepdim=True, dtype=dtype))
    return torch.cat(parts, dim) if len(parts) > 1 else parts[0]


def _sizes(n: int, k: int, device: torch.device) -> torch.Tensor:
    """How many of ``n`` items each block of ``k`` holds: k, k, ..., then the remainder."""
    sizes = torch.full((math.ceil(n / k),), float(k), device=device)
    sizes[-1] = n - (len(sizes) - 1) * k
    return sizes


MAX_ASPECT = 3  # a heatmap's plot is at most 3 times as long as it is wide (figures.py)


def _block_sizes(rows: int, cols: int, max_side: int, max_cells: int) -> tuple[int, int]:
    """Block height and width: each side within ``max_side``, then the cells within budget.

    The cells are shared out as the plot's sides are: a square matrix keeps square blocks,
    and a tall one gets up to ``MAX_ASPECT`` times as many rows as columns, as its plot.
    Each step grows the blocks of the side with more cells per unit of plot.
    """
    aspect = min(max(rows / max(cols, 1), 1 / MAX_ASPECT), MAX_ASPECT)  # plot height / width
    k_rows, k_cols = max(1, math.ceil(rows / max_side)), max(1, math.ceil(cols / max_side))
    while math.ceil(rows / k_rows) * math.ceil(cols / k_cols) > max_cells:
        dense_rows = math.ceil(rows / k_rows) / aspect  # cells per unit of plot height
        dense_cols = math.ceil(cols / k_cols)  # cells per unit of plot width
        k_rows += dense_rows >= dense_cols
        k_cols += dense_cols >= dense_rows
    return k_rows, k_cols


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
def colour_limit(matrices: Iterable[torch.Tensor], percentile: float = 99.0) -> float:
    """One symmetric colour range ±limit for matrices drawn on the same scale.

    The ``percentile``-th percentile of |value| over their finite, non-zero cells (linear
    interpolation between ranks, as ``torch.quantile``), or 1.0 when there are none. A few
    outliers then saturate instead of washing out every other cell; zeros (the untouched
    rows of an embedding's gradient) do not pull the range down.
    """
    flat = [m.detach().reshape(-1).float().cpu().numpy() for m in matrices]
    values = np.abs(np.concatenate(flat)) if flat else np.empty(0, np.float32)
    values = values[np.isfinite(values) & (values > 0)]  # numpy: small arrays, one thread
    if values.size == 0:
        return 1.0
    return float(np.percentile(values, percentile))  # linear, as torch.quantile


@torch.no_grad()
def histogram_counts(t: torch.Tensor, bins: int = 60) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Bin edges and counts (float64/int64, on CPU) of the finite values, and how many were not.

    ``bins`` equal bins from the finite min to the finite max (at most
    ``max_histogram_bins``); there are ``len(counts) + 1`` edges and the counts equal
    ``torch.histc``'s. One pass for the range and one for the counts, both on the tensor's
    device. A constant tensor gets one bin around its value (±1%, at least ±0.01); a tensor
    with no finite values gets ``bins`` empty bins on [0, 1].
    """
    require_values(t)
    bins = max(1, min(int(bins), DEFAULT_LIMITS.max_histogram_bins))
    flat = t.detach().reshape(-1)
    if not flat.is_floating_point():
        flat = flat.float()
    lo, hi, finite = _finite_range(flat)
    skipped = flat.numel() - finite
    if finite == 0:
        empty = torch.zeros(bins, dtype=torch.int64)
        return torch.linspace(0, 1, bins + 1, dtype=torch.float64), empty, skipped
    if lo == hi:
        half = max(abs(lo), 1.0) * 1e-2
        edges = torch.tensor([lo - half, lo + half], dtype=torch.float64)
        return edges, torch.tensor([finite]), skipped
    count = _count_on_cpu if flat.device.type == "cpu" else _count_on_device
    counts = count(flat, lo, hi, bins, all_finite=skipped == 0)
    return torch.linspace(lo, hi, bins + 1, dtype=torch.float64), counts, skipped


def _finite_range(flat: torch.Tensor) -> tuple[float, float, int]:
    """The min and max of the finite values, and how many there are (empty: inf, -inf, 0)."""
    if flat.numel() == 0:
        return math.inf, -math.inf, 0
    lo, hi = torch.stack(torch.aminmax(flat)).tolist()
    if math.isfinite(lo) and math.isfinite(hi):  # the usual case: no mask, no copy
        return lo, hi, flat.numel()
    finite = torch.isfinite(flat)
    lo = torch.where(finite, flat, math.inf).amin()
    hi = torch.where(finite, flat, -math.inf).amax()
    lo, hi, n = torch.stack([lo.double(), hi.double(), finite.sum().double()]).tolist()
    return lo, hi, int(n)


def _count_on_cpu(
    flat: torch.Tensor, lo: float, hi: float, bins: int, all_finite: bool
) -> torch.Tensor:
    """``torch.histc``'s counts, binned a cache-sized chunk at a time (several times faster).

    Each value's bin is ``floor((x - lo) * bins / (hi - lo))`` in the tensor's precision,
    the expression ``histc`` evaluates, with ``x == hi`` in the last bin. The arithmetic runs
    in numpy on views of the tensor's memory: one thread, no per-operation dispatch or
    waiting between threads, which matters most on a busy machine.
    """
    wide = flat.dtype == torch.float64 or (hi - lo) * bins > 1e37  # float32 would overflow
    dtype = np.float64 if wide else np.float32
    low, scale = dtype(lo), dtype(bins)
    width = dtype(hi) - low  # in the tensor's precision, as histc computes it
    counts = np.zeros(bins + 1, dtype=np.int64)
    buffer = np.empty(min(flat.numel(), _CPU_CHUNK), dtype=dtype)
    codes = np.empty(len(buffer), dtype=np.uint8 if bins < 255 else np.int32)
    for chunk in flat.split(_CPU_CHUNK):
        exact = chunk.dtype in (torch.float32, torch.float64)
        values = (chunk if exact else chunk.float()).numpy()  # a view of the tensor's memory
        n = len(values)
        position = buffer[:n]
        np.subtract(values, low, out=position, casting="same_kind")
        np.multiply(position, scale, out=position)
        np.divide(position, width, out=position)
        if not all_finite:  # nan and ±inf stay non-finite through the arithmetic
            position = position[np.isfinite(position)]
        code = codes[: len(position)]
        np.copyto(code, position, casting="unsafe")  # truncation: floor of a value >= 0
        counts += np.bincount(code, minlength=bins + 1)
    counts[bins - 1] += counts[bins]
    return torch.from_numpy(counts[:bins].copy())


def _count_on_device(
    flat: torch.Tensor, lo: float, hi: float, bins: int, all_finite: bool
) -> torch.Tensor:
    """``torch.histc`` on the tensor's device (it skips nan and ±inf), one copy at the end."""
    counts = torch.zeros(bins, dtype=torch.int64, device=flat.device)
    for chunk in flat.split(_DEVICE_CHUNK):
        wide = chunk if chunk.dtype in (torch.float32, torch.float64) else chunk.float()
        counts += torch.histc(wide, bins, min=lo, max=hi).to(torch.int64)
    return counts.cpu()


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
