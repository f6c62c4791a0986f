"""On-device reductions: stats, previews and the meta device, against plain PyTorch."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from explorer.core.errors import ExplorerError
from explorer.view.figures import heatmap, histogram
from explorer.view.reduce import downsample, histogram_counts, tensor_preview, tensor_stats
from explorer.view.tree import inspect

NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
META_CALLS = {
    "tensor_stats": tensor_stats,
    "tensor_preview": tensor_preview,
    "downsample": downsample,
    "histogram_counts": histogram_counts,
    "heatmap": lambda t: heatmap(t, "w"),
    "histogram": lambda t: histogram(t, "w"),
}


def test_stats_equal_torch_reductions():
    """mean, std, min, max and norm are torch's own reductions of the same tensor."""
    t = torch.randn(64, 48, generator=torch.Generator().manual_seed(0))
    stats = tensor_stats(t)
    assert stats == {
        "mean": t.mean().item(),
        "std": t.std().item(),
        "min": t.min().item(),
        "max": t.max().item(),
        "norm": torch.linalg.vector_norm(t).item(),
        "zero_fraction": 0.0,
    }


def test_zero_fraction_is_the_exact_count_over_numel():
    """One zero in three values is exactly 1/3, not float32's rounding of it."""
    assert tensor_stats(torch.tensor([0.0, 1.0, 2.0]))["zero_fraction"] == 1 / 3


def test_zero_fraction_counts_signed_zeros_and_not_nan():
    """-0.0 is a zero; nan is not."""
    t = torch.tensor([0.0, -0.0, math.nan, 1.0])
    assert tensor_stats(t)["zero_fraction"] == 0.5


def test_zero_fraction_of_a_large_tensor_stays_exact():
    """Above 2**24 elements the count is still exact (float32 could not hold it)."""
    t = torch.ones(2**24 + 3)
    t[:7] = 0
    assert tensor_stats(t)["zero_fraction"] == 7 / (2**24 + 3)


def test_half_precision_stats_are_computed_in_float32():
    """A bfloat16 tensor's stats equal those of its float32 copy."""
    t = torch.randn(32, 32).bfloat16()
    assert tensor_stats(t) == tensor_stats(t.float())


def test_empty_and_lazy_tensors_have_nan_stats():
    """No values, no statistics: every entry is nan."""
    for t in (torch.empty(0), nn.LazyLinear(3).weight):
        assert all(math.isnan(v) for v in tensor_stats(t).values())


@pytest.mark.parametrize("name", sorted(META_CALLS))
def test_meta_tensors_say_they_have_no_values(name):
    """Every value view of a meta tensor raises ExplorerError, not 'Cannot copy out of meta'."""
    with pytest.raises(ExplorerError, match="no values on the meta device"):
        META_CALLS[name](torch.empty(16, 8, device="meta"))


def test_tree_stats_of_a_meta_model_say_there_are_no_values():
    """``inspect(...).stats`` of a model built on meta gives the same clear message."""
    with torch.device("meta"):
        net = nn.Sequential(nn.Linear(4, 8))
    with pytest.raises(ExplorerError, match="no values on the meta device"):
        inspect(net).stats("0.weight")


def test_preview_prints_small_tensors_whole_and_cuts_large_ones():
    """Up to the limit the preview is str(t); beyond it, the first values and the shape."""
    small = torch.arange(6.0).reshape(2, 3)
    assert tensor_preview(small) == str(small)
    text = tensor_preview(torch.zeros(30, 10), limit=20)
    assert text.endswith("… first 20 of 300 values, shape (30, 10)")


def _histc(t: torch.Tensor, bins: int) -> list[int]:
    """Reference: torch.histc over the finite min and max, in float32 or float64."""
    finite = t[torch.isfinite(t)]
    finite = finite if finite.dtype == torch.float64 else finite.float()
    lo, hi = finite.min().item(), finite.max().item()
    return torch.histc(finite, bins, min=lo, max=hi).long().tolist()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_histogram_counts_equal_torch_histc_in_every_float_dtype(dtype):
    """Binning a chunk at a time gives histc's counts exactly, across chunk boundaries."""
    generator = torch.Generator().manual_seed(1)
    t = (torch.randn(3_000_001, generator=generator) * 0.02).to(dtype)
    edges, counts, skipped = histogram_counts(t, bins=60)
    assert counts.tolist() == _histc(t, 60) and skipped == 0
    assert counts.sum().item() == t.numel()
    assert (edges[0].item(), edges[-1].item()) == (t.min().item(), t.max().item())


def test_histogram_counts_with_non_finite_values_equal_histc_of_the_finite_ones():
    """nan and ±inf scattered through several chunks are counted as skipped, never binned."""
    t = torch.randn(2_500_000, generator=torch.Generator().manual_seed(2))
    t[::100_003] = math.nan
    t[7::500_000] = math.inf
    t[9::700_000] = -math.inf
    _, counts, skipped = histogram_counts(t, bins=255)
    assert skipped == int((~torch.isfinite(t)).sum())
    assert counts.tolist() == _histc(t, 255)


def test_histogram_counts_of_a_huge_range_do_not_overflow():
    """Values near float32's limits still land in the first and last bins."""
    t = torch.tensor([-3e38, 0.0, 3e38])
    _, counts, _ = histogram_counts(t, bins=4)
    assert counts.tolist() == [1, 0, 1, 1]


def test_histogram_counts_of_integers_bin_their_values():
    """An integer tensor is binned as floats: 0..9 in ten bins, one each."""
    _, counts, _ = histogram_counts(torch.arange(10), bins=10)
    assert counts.tolist() == [1] * 10


@NEEDS_CUDA
def test_cuda_histogram_counts_are_torch_histc_on_the_device():
    """On CUDA the counts are torch.histc's on the GPU, summed over chunks, copied once."""
    t = torch.randn(20_000_000, generator=torch.Generator().manual_seed(3)).cuda()
    edges, counts, skipped = histogram_counts(t, 60)
    assert counts.device.type == "cpu" and skipped == 0
    assert counts.tolist() == _histc(t, 60) and counts.sum().item() == t.numel()


@NEEDS_CUDA
def test_cuda_stats_copy_to_the_host_once():
    """On CUDA the six statistics come back in one device-to-host synchronization."""
    t = torch.randn(1024, 1024, device="cuda")
    tensor_stats(t)  # warm-up: first calls may synchronize while loading kernels
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stats = tensor_stats(t)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len([w for w in caught if "synchroniz" in str(w.message)]) == 1
    assert stats == pytest.approx(tensor_stats(t.cpu()), rel=1e-4)
