"""Small test models, defined once: the chapter's nets, ties, copies, views and buffers.

Each builder seeds the global RNG first, so two calls give the same values.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = [
    "chapter_mlp",
    "lazy_mlp",
    "tied_net",
    "untied_copy",
    "rgnet",
    "TiedWeights",
    "TiedLM",
    "deepcopied_layer",
    "OverlappingViews",
    "batchnorm_net",
    "spaced_blocks",
    "gpt2_small",
]


def chapter_mlp(seed: int = 0) -> nn.Sequential:
    """The chapter's MLP with its input width known: Linear(4, 8), ReLU, Linear(8, 1)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))


def lazy_mlp() -> nn.Sequential:
    """The chapter's MLP as written: ``LazyLinear(8), ReLU, LazyLinear(1)``, shapes unknown."""
    return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))


def tied_net(seed: int = 0) -> nn.Sequential:
    """The chapter's tied net: one ``Linear(8, 8)`` object (``shared``) used at 2 and 4."""
    torch.manual_seed(seed)
    shared = nn.Linear(8, 8)
    return nn.Sequential(
        nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1)
    )


def untied_copy(net: nn.Sequential) -> nn.Sequential:
    """``net`` with each position holding its own deep copy: same values, nothing tied."""
    return nn.Sequential(*(copy.deepcopy(layer) for layer in net))


def rgnet(seed: int = 0) -> nn.Sequential:
    """The chapter's nested ``rgnet``: four ``block1`` under names ``block 0`` … ``block 3``."""
    torch.manual_seed(seed)

    def block1():
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU())

    def block2():
        net = nn.Sequential()
        for i in range(4):
            net.add_module(f"block {i}", block1())
        return net

    return nn.Sequential(block2(), nn.Linear(4, 1))


class TiedWeights(nn.Module):
    """Two layers whose weights are one Parameter, tied by attribute assignment."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.b = nn.Linear(3, 3)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(self.a(x))


class TiedLM(nn.Module):
    """A tiny language model whose output head is its input embedding (``head.weight``)."""

    def __init__(self, vocab: int = 10, width: int = 4, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.emb = nn.Embedding(vocab, width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, tokens):
        return self.head(self.emb(tokens))


def deepcopied_layer(seed: int = 0) -> nn.Sequential:
    """A layer and its ``deepcopy``: equal values in their own storage, so NOT tied."""
    torch.manual_seed(seed)
    layer = nn.Linear(3, 3)
    return nn.Sequential(layer, copy.deepcopy(layer))


class OverlappingViews(nn.Module):
    """``a = Parameter(w)`` and ``b = Parameter(w[:4])``: b's values are a's first four rows."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        w = torch.randn(8, 3)
        self.a = nn.Parameter(w)
        self.b = nn.Parameter(w[:4])

    def forward(self, x):
        return x @ self.a.T + (x @ self.b.T).sum(-1, keepdim=True)


def batchnorm_net(seed: int = 0) -> nn.Sequential:
    """A Linear then BatchNorm1d: parameters and buffers (running stats, batch count)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))


def spaced_blocks(n: int = 3, seed: int = 0) -> nn.Module:
    """A plain module whose children are added as ``block 0``, ``block 1``, …: not identifiers."""
    torch.manual_seed(seed)
    net = nn.Module()
    for i in range(n):
        net.add_module(f"block {i}", nn.Linear(2, 2))
    return net


class _GPTBlock(nn.Module):
    """A pre-norm transformer block's parameters, named as in nanoGPT (no forward needed)."""

    def __init__(self, width: int):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = nn.Module()
        self.attn.c_attn, self.attn.c_proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Module()
        self.mlp.c_fc, self.mlp.c_proj = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)


def gpt2_small(device: str = "meta", blocks: int = 12) -> nn.Module:
    """GPT-2-small's parameters (124 M, the head tied to ``wte``), on ``meta`` by default."""
    with torch.device(device):
        net = nn.Module()
        net.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(50257, 768),
                "wpe": nn.Embedding(1024, 768),
                "h": nn.ModuleList(_GPTBlock(768) for _ in range(blocks)),
                "ln_f": nn.LayerNorm(768),
            }
        )
        net.lm_head = nn.Linear(768, 50257, bias=False)
        net.lm_head.weight = net.transformer.wte.weight
    return net


# A spec whose model has buffers: BatchNorm1d between two linear layers.
BATCHNORM_SPEC = {
    "type": "sequential",
    "children": [
        {"type": "linear", "in_features": 4, "out_features": 8},
        {"type": "batchnorm", "num_features": 8},
        {"type": "relu"},
        {"type": "linear", "out_features": 1},
    ],
}
