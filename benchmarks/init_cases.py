"""``initialize`` on GPT-2-small's parameter shapes against the plain ``torch.nn.init`` loop.

Issue 9, row 1: normal(0, 0.02) on every weight, zeros on every bias, the head tied to the
token embedding (so it must be drawn once). Goal: at most 1.10× the plain loop.

Example::

    python -m benchmarks.init_cases          # prints one Markdown row
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from benchmarks.models import size_in_words
from benchmarks.timing import Row, compare
from explorer.init.rules import initialize

__all__ = ["GPT2_RULES", "gpt2_small", "bench_initialize_gpt2"]

GPT2_RULES = (
    {"init": "normal", "target": "*.weight", "mean": 0.0, "std": 0.02},
    {"init": "zeros", "target": "*.bias"},
)


def gpt2_small(layers: int = 12, width: int = 768, vocab: int = 50257, context: int = 1024):
    """GPT-2-small's parameters as nanoGPT names them, with ``lm_head`` tied to ``wte``."""

    def block() -> nn.ModuleDict:
        attn = nn.ModuleDict(
            {"c_attn": nn.Linear(width, 3 * width), "c_proj": nn.Linear(width, width)}
        )
        mlp = nn.ModuleDict(
            {"c_fc": nn.Linear(width, 4 * width), "c_proj": nn.Linear(4 * width, width)}
        )
        return nn.ModuleDict(
            {"ln_1": nn.LayerNorm(width), "attn": attn, "ln_2": nn.LayerNorm(width), "mlp": mlp}
        )

    model = nn.ModuleDict(
        {
            "wte": nn.Embedding(vocab, width),
            "wpe": nn.Embedding(context, width),
            "h": nn.ModuleList(block() for _ in range(layers)),
            "ln_f": nn.LayerNorm(width),
            "lm_head": nn.Linear(width, vocab, bias=False),
        }
    )
    model["lm_head"].weight = model["wte"].weight
    return model


def _plain_loop(model: nn.Module) -> None:
    """What a notebook writes: seed, then one ``nn.init`` call per unique parameter."""
    torch.manual_seed(0)
    for name, param in model.named_parameters():
        if name.endswith(".weight"):
            nn.init.normal_(param, mean=0.0, std=0.02)
        elif name.endswith(".bias"):
            nn.init.zeros_(param)


def bench_initialize_gpt2(repeats: int = 9, layers: int = 12) -> Row:
    """``explorer.initialize`` with ``GPT2_RULES`` against ``_plain_loop``, interleaved."""
    model = gpt2_small(layers)
    explorer_ms, reference_ms = compare(
        lambda: initialize(model, GPT2_RULES, seed=0), lambda: _plain_loop(model), repeats
    )
    return Row(
        "initialize",
        f"GPT-2-small shapes, {layers} layers, head tied to wte, {size_in_words(model)}; "
        "normal(0, .02) weights, zero biases",
        explorer_ms,
        reference_ms,
        "`torch.manual_seed(0)` then `normal_` / `zeros_` over `named_parameters()`",
    )


if __name__ == "__main__":
    row = bench_initialize_gpt2(int(sys.argv[1]) if len(sys.argv) > 1 else 9)
    print(
        f"| {row.benchmark} | {row.model} | {row.explorer_ms:.1f} | {row.reference_ms:.1f} "
        f"| {row.ratio:.2f} | {row.reference} |"
    )
