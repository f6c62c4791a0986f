"""The benchmarks: each times one explorer entry point against plain PyTorch doing the same job."""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from benchmarks.init_cases import bench_initialize_gpt2
from benchmarks.models import (
    deep_stack,
    gpt2_like_spec,
    gpt2_like_stack,
    gpt_7b_like,
    size_in_words,
)
from benchmarks.timing import Row, compare, peak_rss_mib
from explorer.build import build
from explorer.figures import heatmap, histogram_counts
from explorer.init import initialize
from explorer.tree import inspect, tensor_stats
from explorer.workspace import Setup, Workspace

__all__ = ["Sizes", "FULL", "QUICK", "CASES", "run_all", "notes"]

XAVIER_RULES = [{"init": "xavier_uniform", "target": "*.weight"},
                {"init": "zeros", "target": "*.bias"}]
PLAIN_WALK = "plain `named_parameters(remove_duplicate=False)` walk + `len(state_dict())`"


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark's model or tensor is, and how many timed repeats each gets."""

    repeats: int
    gpt2_blocks: int
    deep_blocks: int
    stats_shape: tuple[int, int]
    histogram_side: int
    heatmap_side: int
    meta_blocks: int


FULL = Sizes(repeats=9, gpt2_blocks=12, deep_blocks=500, stats_shape=(3072, 768),
             histogram_side=4096, heatmap_side=8192, meta_blocks=32)
QUICK = Sizes(repeats=3, gpt2_blocks=2, deep_blocks=500, stats_shape=(3072, 768),
              histogram_side=2048, heatmap_side=4096, meta_blocks=32)


def bench_initialize(sizes: Sizes) -> list[Row]:
    """``initialize`` with Xavier/zeros rules against a raw ``torch.nn.init`` loop."""
    model = gpt2_like_stack(sizes.gpt2_blocks)

    def raw_loop() -> None:
        torch.manual_seed(0)
        for name, param in model.named_parameters():
            if name.endswith(".weight"):
                nn.init.xavier_uniform_(param)
            elif name.endswith(".bias"):
                nn.init.zeros_(param)

    explorer_ms, reference_ms = compare(lambda: initialize(model, XAVIER_RULES, seed=0),
                                        raw_loop, sizes.repeats)
    return [Row("initialize", _gpt2_words(model, sizes), explorer_ms, reference_ms,
                "loop over `named_parameters()` calling `xavier_uniform_` / `zeros_`")]


def bench_initialize_gpt2_small(sizes: Sizes) -> list[Row]:
    """Issue 9 row 1: normal(0, .02) weights, zero biases, GPT-2-small shapes with a tied head."""
    return [bench_initialize_gpt2(sizes.repeats, sizes.gpt2_blocks)]


def bench_inspect(sizes: Sizes) -> list[Row]:
    """``inspect`` (tree, tied groups, counts) against a plain walk, on a deep and a wide model."""
    deep, wide = deep_stack(sizes.deep_blocks), gpt2_like_stack(sizes.gpt2_blocks)
    rows = []
    for model, words in ((deep, f"{sizes.deep_blocks} blocks of Linear(32, 32) + ReLU"),
                         (wide, _gpt2_words(wide, sizes))):
        explorer_ms, reference_ms = compare(partial(_inspect_all, model),
                                            partial(_plain_walk, model), sizes.repeats)
        rows.append(Row("inspect", words, explorer_ms, reference_ms, PLAIN_WALK))
        rows += _torchinfo_rows(model, words, sizes.repeats)
    return rows


def _inspect_all(model: nn.Module) -> object:
    tree = inspect(model)
    return tree.tied_groups, tree.counts()


def _plain_walk(model: nn.Module) -> object:
    names = [(n, p.shape) for n, p in model.named_parameters(remove_duplicate=False)]
    return names, len(model.state_dict())


def _torchinfo_rows(model: nn.Module, words: str, repeats: int) -> list[Row]:
    """A row against ``torchinfo.summary`` (no forward pass), only when torchinfo is installed."""
    if importlib.util.find_spec("torchinfo") is None:
        return []
    import torchinfo

    explorer_ms, reference_ms = compare(partial(_inspect_all, model),
                                        partial(torchinfo.summary, model, verbose=0), repeats)
    return [Row("inspect", words, explorer_ms, reference_ms,
                "`torchinfo.summary(model, verbose=0)`, no forward pass")]


def bench_stats(sizes: Sizes) -> list[Row]:
    """``tensor_stats`` against torch's reductions called one by one."""
    weight = torch.randn(sizes.stats_shape)

    def one_by_one() -> list[float]:
        return [weight.mean().item(), weight.std().item(), weight.min().item(),
                weight.max().item(), weight.norm().item(), (weight == 0).float().mean().item()]

    explorer_ms, reference_ms = compare(lambda: tensor_stats(weight), one_by_one, sizes.repeats)
    return [Row("stats", _matrix_words(weight), explorer_ms, reference_ms,
                "`mean`, `std`, `min`, `max`, `norm`, `(x == 0).float().mean()`, one by one")]


def bench_histogram(sizes: Sizes) -> list[Row]:
    """``histogram_counts`` (60 bins) against ``torch.histc``, and TensorBoard when installed."""
    side = sizes.histogram_side
    t = torch.randn(side, side)
    explorer_ms, reference_ms = compare(partial(histogram_counts, t, 60),
                                        partial(torch.histc, t, bins=60), sizes.repeats)
    rows = [Row("histogram", _matrix_words(t), explorer_ms, reference_ms,
                "`torch.histc(t, bins=60)` (its own min and max)")]
    if importlib.util.find_spec("tensorboard") is not None:
        rows.append(_tensorboard_row(t, sizes.repeats))
    return rows


def _tensorboard_row(t: torch.Tensor, repeats: int) -> Row:
    """A row against TensorBoard's ``add_histogram``, writing to a throwaway log folder."""
    from torch.utils.tensorboard import SummaryWriter

    with tempfile.TemporaryDirectory() as logs:
        writer = SummaryWriter(logs)
        try:
            explorer_ms, reference_ms = compare(partial(histogram_counts, t, 60),
                                                partial(writer.add_histogram, "w", t, 0), repeats)
        finally:
            writer.close()
    return Row("histogram", _matrix_words(t), explorer_ms, reference_ms,
               "TensorBoard `SummaryWriter.add_histogram(\"w\", t)`")


def bench_heatmap(sizes: Sizes) -> list[Row]:
    """A heatmap figure and its JSON against a raw read of every value of the tensor."""
    side = sizes.heatmap_side
    t = torch.randn(side, side)
    explorer_ms, reference_ms = compare(lambda: heatmap(t, "w").to_json(),
                                        lambda: t.numpy().tobytes(), sizes.repeats)
    payload = len(heatmap(t, "w").to_json().encode())
    raw = len(t.numpy().tobytes())
    words = (f"{_matrix_words(t)}; payload {payload / 2**20:.2f} MiB of JSON = "
             f"{payload / raw:.4f}× the tensor's bytes")
    return [Row("heatmap payload", words, explorer_ms, reference_ms,
                "`t.numpy().tobytes()`: every value, as raw bytes")]


def bench_meta(sizes: Sizes) -> list[Row]:
    """``inspect`` on a ~7B model on the meta device, and how much the peak RSS grew meanwhile."""
    with torch.device("meta"):
        gpt_7b_like(blocks=1, width=8, vocab=8)  # the first meta Embedding imports torch._dynamo
        before = peak_rss_mib()
        model = gpt_7b_like(sizes.meta_blocks)
    explorer_ms, reference_ms = compare(partial(_inspect_all, model), partial(_plain_walk, model),
                                        sizes.repeats)
    grown = peak_rss_mib() - before
    real_gib = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30
    words = (f"GPT-like, {sizes.meta_blocks} blocks × 4096 wide, {size_in_words(model)} on meta "
             f"(would be {real_gib:.1f} GiB); peak RSS +{grown:.1f} MiB")
    return [Row("meta-device structure", words, explorer_ms, reference_ms, PLAIN_WALK)]


def bench_workspace(sizes: Sizes) -> list[Row]:
    """``Workspace.forward_backward`` against ``net(x).sum().backward()`` on the same spec."""
    tied = Workspace.from_preset("tied")
    big_spec = gpt2_like_spec(sizes.gpt2_blocks)
    big = Workspace(Setup(big_spec, [{"init": "default", "target": "*"}], (8, 768)),
                    build(big_spec))
    rows = []
    for ws, words in ((tied, "`tied` preset, input (2, 4)"),
                      (big, f"{_gpt2_words(big.module, sizes)}, input (8, 768)")):
        net, x = build(ws.setup.spec), ws.input()
        net(x)  # lazy layers get their shapes
        explorer_ms, reference_ms = compare(ws.forward_backward, partial(_raw_step, net, x),
                                            sizes.repeats)
        rows.append(Row("workspace action", words, explorer_ms, reference_ms,
                        "`net.zero_grad(); net(x).sum().backward()`, net from `explorer.build`"))
    return rows


def _raw_step(net: nn.Module, x: torch.Tensor) -> None:
    net.zero_grad(set_to_none=True)
    net(x).sum().backward()


def _gpt2_words(model: nn.Module, sizes: Sizes) -> str:
    return f"GPT-2-like stack, {sizes.gpt2_blocks} × Linear(768↔3072), {size_in_words(model)}"


def _matrix_words(t: torch.Tensor) -> str:
    rows, cols = t.shape
    return f"{rows}×{cols} {str(t.dtype).removeprefix('torch.')} ({t.nbytes / 2**20:.0f} MiB)"


CASES: tuple[Callable[[Sizes], list[Row]], ...] = (
    bench_initialize, bench_initialize_gpt2_small, bench_inspect, bench_stats, bench_histogram,
    bench_heatmap, bench_meta, bench_workspace)


def run_all(sizes: Sizes) -> list[Row]:
    """Every benchmark's rows, in the order of ``CASES``.

    ``bench_meta`` runs first: peak RSS is a high-water mark, so it can only show growth
    while nothing larger has been allocated yet.
    """
    rows = {case: case(sizes) for case in sorted(CASES, key=lambda case: case is not bench_meta)}
    return [row for case in CASES for row in rows[case]]


def notes(sizes: Sizes) -> list[str]:
    """What the table cannot say in its cells: method, and references that are not installed."""
    lines = [f"Times are medians of {sizes.repeats} interleaved repeats after one warm-up; "
             "ratio = explorer / reference, so 1.00 is as fast as plain PyTorch.",
             "`heatmap payload` times `heatmap(t).to_json()`, i.e. building the figure and "
             "serializing what goes to the browser.",
             "`meta-device structure` runs first, before anything large is allocated; its "
             "peak RSS change covers building the model and every timed call."]
    if importlib.util.find_spec("tensorboard") is None:
        lines.append("TensorBoard not installed: no `add_histogram` row.")
    if importlib.util.find_spec("torchinfo") is None:
        lines.append("torchinfo not installed: no `torchinfo.summary` row.")
    return lines
