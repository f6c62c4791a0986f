"""The few layers a spec can name that ``torch.nn`` does not have, written in plain PyTorch.

Each keeps its parameters in ordinary submodules with the names a reader expects
(``in_proj``, ``out_proj``, ``gate_proj``), so the tree, ``state_dict`` and tying see them.

Example::

    attn = SelfAttention(embed_dim=16, num_heads=2)
    attn(torch.rand(2, 5, 16)).shape   # (2, 5, 16); position t only sees positions <= t
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from explorer.core.errors import SpecError

__all__ = [
    "Residual",
    "SelfAttention",
    "SwiGLU",
    "PositionEmbedding",
    "ConstantLinear",
    "NestMLP",
    "FixedHiddenMLP",
]


class Residual(nn.Module):
    """``x + block(x)``: the skip connection of a transformer layer."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class SelfAttention(nn.Module):
    """Causal multi-head self-attention with one fused input projection, as in GPT-2."""

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, dropout: float = 0.0):
        super().__init__()
        self.num_heads, self.dropout = num_heads, dropout
        self.in_proj = nn.Linear(embed_dim, 3 * embed_dim, bias=bias)  # q, k, v side by side
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, t, e = x.shape
        h = self.num_heads
        q, k, v = self.in_proj(x).split(e, dim=-1)  # each (..., T, E)
        q, k, v = (z.reshape(*lead, t, h, e // h).transpose(-3, -2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )  # (..., H, T, E/H)
        return self.out_proj(y.transpose(-3, -2).reshape(*lead, t, e))

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, dropout={self.dropout}"


class SwiGLU(nn.Module):
    """Llama's gated MLP: ``down_proj(silu(gate_proj(x)) * up_proj(x))``."""

    def __init__(self, embed_dim: int, hidden_features: int, bias: bool = False):
        super().__init__()
        self.gate_proj = nn.Linear(embed_dim, hidden_features, bias=bias)
        self.up_proj = nn.Linear(embed_dim, hidden_features, bias=bias)
        self.down_proj = nn.Linear(hidden_features, embed_dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class PositionEmbedding(nn.Module):
    """Adds a learned table of one vector per position: ``x + weight[:T]`` for ``x`` (..., T, D)."""

    def __init__(self, max_len: int, embedding_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(max_len, embedding_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight)  # as nn.Embedding, which GPT-2's wpe is

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[-2]
        if t > self.weight.shape[0]:
            raise SpecError(
                f"the input has {t} positions but pos_embedding holds {self.weight.shape[0]}; "
                "use a shorter input or a larger max_len"
            )
        return x + self.weight[:t]

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}"


class ConstantLinear(nn.Module):
    """``x @ weight + offset`` with a fixed random ``weight`` that is not trained.

    The weight is a buffer drawn from U[0, 1) with its own ``seed``, as the chapter's
    ``FancyMLP`` draws ``rand_weight``; like that plain tensor attribute, it is not a parameter
    and not in the ``state_dict``.
    """

    def __init__(self, in_features: int, out_features: int, offset: float = 0.0, seed: int = 0):
        super().__init__()
        self.offset, self.seed = offset, seed
        self.register_buffer("weight", torch.empty(in_features, out_features), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight.is_meta:
            return
        generator = torch.Generator().manual_seed(self.seed)
        drawn = torch.rand(self.weight.shape, generator=generator, device="cpu")
        with torch.no_grad():
            self.weight.copy_(drawn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight + self.offset

    def extra_repr(self) -> str:
        n_in, n_out = self.weight.shape
        return f"in_features={n_in}, out_features={n_out}, offset={self.offset}, seed={self.seed}"


# The exercise models of section 5.1, as the chapter (newest PyTorch edition) defines them.
# The app's classes compute what the chapter's do; the exported script copies ``CHAPTER_CODE``.


class NestMLP(nn.Module):
    """The chapter's NestMLP: a Sequential ``net`` and a ``linear`` layer; not subscriptable."""

    CHAPTER_CODE = """class NestMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(),
                                 nn.LazyLinear(32), nn.ReLU())
        self.linear = nn.LazyLinear(16)

    def forward(self, X):
        return self.linear(self.net(X))"""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(32), nn.ReLU())
        self.linear = nn.LazyLinear(16)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.linear(self.net(X))


class FixedHiddenMLP(nn.Module):
    """The chapter's FixedHiddenMLP: ``rand_weight`` is a constant tensor, not a parameter, and
    ``linear`` is used twice, so its two uses' gradients add up.

    Two differences from the chapter's class, neither changing a value: the constant follows
    the input's device and dtype (the chapter's stays on the CPU in float32), and the
    while-loop, which reads values, is skipped on the meta device where shapes are measured.
    """

    CHAPTER_CODE = """class FixedHiddenMLP(nn.Module):
    def __init__(self):
        super().__init__()
        # Random weight parameters that will not compute gradients and
        # therefore keep constant during training
        self.rand_weight = torch.rand((20, 20))
        self.linear = nn.LazyLinear(20)

    def forward(self, X):
        X = self.linear(X)
        X = F.relu(X @ self.rand_weight + 1)
        # Reuse the fully connected layer. This is equivalent to sharing
        # parameters with two fully connected layers
        X = self.linear(X)
        # Control flow
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()"""

    def __init__(self):
        super().__init__()
        self.rand_weight = torch.rand((20, 20))  # a plain tensor: not in state_dict()
        self.linear = nn.LazyLinear(20)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        X = self.linear(X)
        X = F.relu(X @ self.rand_weight.to(X.device, X.dtype) + 1)
        X = self.linear(X)
        if not X.is_meta:
            while X.abs().sum() > 1:
                X /= 2
        return X.sum()
