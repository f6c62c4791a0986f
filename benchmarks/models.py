"""Benchmark models made of plain ``torch.nn`` layers, and their sizes in words."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

__all__ = [
    "gpt2_like_stack",
    "gpt2_like_spec",
    "deep_stack",
    "gpt_7b_like",
    "linear_chain_spec",
    "plain_llama",
    "size_in_words",
]

GPT2_WIDTH, GPT2_HIDDEN = 768, 3072


def gpt2_like_stack(blocks: int) -> nn.Sequential:
    """GPT-2-small's MLP shapes: ``blocks`` × (Linear(768, 3072), GELU, Linear(3072, 768))."""
    return nn.Sequential(
        *(
            nn.Sequential(
                nn.Linear(GPT2_WIDTH, GPT2_HIDDEN), nn.GELU(), nn.Linear(GPT2_HIDDEN, GPT2_WIDTH)
            )
            for _ in range(blocks)
        )
    )


def gpt2_like_spec(blocks: int) -> dict:
    """The same stack as an explorer spec, for ``explorer.build`` and ``Workspace``."""
    block = {
        "type": "sequential",
        "children": [
            {"type": "linear", "in_features": GPT2_WIDTH, "out_features": GPT2_HIDDEN},
            {"type": "gelu"},
            {"type": "linear", "in_features": GPT2_HIDDEN, "out_features": GPT2_WIDTH},
        ],
    }
    return {"type": "repeat", "times": blocks, "block": block}


def deep_stack(blocks: int, width: int = 32) -> nn.Sequential:
    """A deep, thin model: ``blocks`` × Sequential(Linear(width, width), ReLU)."""
    return nn.Sequential(
        *(nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in range(blocks))
    )


def gpt_7b_like(blocks: int = 32, width: int = 4096, vocab: int = 32_000) -> nn.Sequential:
    """A ~6.6B-parameter GPT-shaped stack; build it under ``torch.device("meta")``.

    Each block is LayerNorm, four width×width projections, LayerNorm, then an MLP of
    4×width. The output head is tied to the embedding, as in GPT-2 and nanoGPT.
    """
    embedding, head = nn.Embedding(vocab, width), nn.Linear(width, vocab, bias=False)
    head.weight = embedding.weight
    layers = [embedding]
    for _ in range(blocks):
        layers.append(
            nn.Sequential(
                nn.LayerNorm(width),
                *(nn.Linear(width, width, bias=False) for _ in range(4)),
                nn.LayerNorm(width),
                nn.Linear(width, 4 * width, bias=False),
                nn.GELU(),
                nn.Linear(4 * width, width, bias=False),
            )
        )
    return nn.Sequential(*layers, nn.LayerNorm(width), head)


def linear_chain_spec(blocks: int, width: int = 8) -> dict:
    """A spec of ``blocks`` × Linear(width, width) in one Sequential: N blocks for the app."""
    layer = {"type": "linear", "in_features": width, "out_features": width}
    return {"type": "sequential", "children": [dict(layer) for _ in range(blocks)]}


class _Residual(nn.Module):
    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block


class _Attention(nn.Module):
    """A self-attention layer's parameters: one fused in_proj, one out_proj (as the spec's)."""

    def __init__(self, width: int):
        super().__init__()
        self.in_proj = nn.Linear(width, 3 * width, bias=False)
        self.out_proj = nn.Linear(width, width, bias=False)


class _SwiGLU(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.gate_proj = nn.Linear(width, hidden, bias=False)
        self.up_proj = nn.Linear(width, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, width, bias=False)


def plain_llama(layers: int = 32, width: int = 4096, hidden: int = 11008) -> nn.Sequential:
    """Llama-7B's modules in plain PyTorch (6.74 B parameters); build it on the meta device.

    The same modules and shapes as the ``llama_7b`` preset, written as a reader would.
    """

    def block() -> nn.Sequential:
        attn = nn.Sequential(
            OrderedDict(input_layernorm=nn.RMSNorm(width), self_attn=_Attention(width))
        )
        mlp = nn.Sequential(
            OrderedDict(post_attention_layernorm=nn.RMSNorm(width), mlp=_SwiGLU(width, hidden))
        )
        return nn.Sequential(OrderedDict(attn=_Residual(attn), mlp=_Residual(mlp)))

    return nn.Sequential(
        OrderedDict(
            embed_tokens=nn.Embedding(32000, width),
            layers=nn.Sequential(*[block() for _ in range(layers)]),
            norm=nn.RMSNorm(width),
            lm_head=nn.Linear(width, 32000, bias=False),
        )
    )


def size_in_words(model: nn.Module) -> str:
    """The model's unique parameter count, e.g. ``"56.7M params"`` or ``"6.6B params"``."""
    count = sum(p.numel() for p in model.parameters())
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if count >= scale:
            return f"{count / scale:.1f}{suffix} params"
    return f"{count} params"
