"""Every block type a spec may use, in one table: fields, build, shapes, code, icon and doc.

Validation (``explorer.spec.validate``), building (``explorer.spec.build``), the builder's
menu, widgets, defaults and icons (``explorer.spec.edit``, ``ui/build_tab.py``), the JSON
Schema of a spec (``json_schema``), the README's spec table (``readme_table``), the PyTorch
code of an exported script (``emit``, ``custom``; ``explorer.io.script``) and how a block is
read back from a module (``from_module``; ``explorer.spec.derive``) all come from ``BLOCKS``.
Adding a block type is one entry here.

Example::

    BLOCKS["layernorm"].get({"type": "layernorm", "normalized_shape": 8})("eps")  # 1e-05
    example("linear")   # {"type": "linear", "out_features": 8}: a new block in the builder
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from torch import nn

from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.core.pycode import number_text
from explorer.spec.fields import Field, Kind, size_pair
from explorer.spec.layers import (
    ConstantLinear,
    FixedHiddenMLP,
    NestMLP,
    PositionEmbedding,
    Residual,
    SelfAttention,
    SwiGLU,
)

__all__ = [
    "BlockType",
    "Parts",
    "BLOCKS",
    "SAME",
    "CHAIN",
    "COMMON",
    "NAME",
    "RESERVED_KEYS",
    "example",
    "json_schema",
    "readme_table",
]

Shape = tuple[int, ...]
Get = Callable[[str], Any]  # a block's field value, or the field's default when absent


class _Mark:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


TORCH_EPS = 1e-5  # nn.LayerNorm's and nn.BatchNorm1d's eps
SAME = _Mark("SAME")  # output features = input features
CHAIN = _Mark("CHAIN")  # output features = what the last child (or copy) gives


def _once(v: Get) -> int:
    return 1


@dataclass(frozen=True)
class Parts:
    """What ``make`` gets besides the fields: built children with their keys, inferred shapes."""

    children: list[tuple[str, nn.Module]]
    shapes: dict[str, Shape | None]


@dataclass(frozen=True)
class BlockType:
    """One entry of the table: a block type and everything the explorer knows about it."""

    name: str
    doc: str
    icon: str  # a Material icon name
    fields: tuple[Field, ...]
    make: Callable[[Get, Parts], nn.Module] | None
    summary: Callable[[Get], str]
    params: Callable[[Get, int | None], dict[str, Shape | None]] = lambda v, f: {}
    buffers: Callable[[Get, int | None], dict[str, Shape]] = lambda v, f: {}  # not parameters
    output: Callable[[Get], int | None | _Mark] = lambda v: SAME
    copies: Callable[[Get], int] = _once  # how often the child block is instantiated
    # modules it makes besides itself, when its parameter names do not show them all (a
    # ReLU inside holds no parameter); None: one per parameter prefix
    submodules: int | None = None
    check: Callable[[Get, str], None] = lambda v, where: None  # rules across fields
    menu: bool = True  # offered in the builder's add menu ("shared" is offered per name)
    # its PyTorch constructor call in an exported script (None: a container, written by
    # explorer.io.script from its children); given the fields and the inferred shapes
    emit: Callable[[Get, dict], str] | None = None
    custom: type[nn.Module] | None = None  # a layer torch.nn lacks: the script copies its class
    # the modules it is read back from (explorer.spec.derive), each with its reader, which
    # gives the block's fields, or None when the module has options the block lacks
    from_module: dict[type[nn.Module], Callable[[nn.Module], dict | None]] = field(
        default_factory=dict
    )
    _by_name: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        self._by_name.update({f.name: f for f in self.fields})

    def field(self, name: str) -> Field | None:
        """The field called ``name``, or None."""
        return self._by_name.get(name)

    def get(self, block: dict) -> Get:
        """A reader of ``block``'s fields that falls back to each field's default."""

        def value(name: str) -> Any:
            got = block.get(name)
            return self._by_name[name].default if got is None else got

        return value

    @cached_property
    def child_fields(self) -> tuple[Field, ...]:
        """The fields that hold blocks."""
        return tuple(f for f in self.fields if f.kind in (Kind.BLOCK, Kind.BLOCKS))

    @property
    def copies_child(self) -> bool:
        """Whether the child block is built several times (so blocks inside cannot be named)."""
        return self.copies is not _once

    @property
    def is_alias(self) -> bool:
        """Whether this block is another block itself (``shared``)."""
        return self.make is None


def example(kind: str) -> dict:
    """A new block of ``kind`` as the builder adds it: each field's example value."""
    bt = BLOCKS[kind]
    return {"type": kind, **{f.name: f.sample() for f in bt.fields if f.sample() is not None}}


# --- fields used by several types ---


def _units(name: str, help_: str, example_: int | None = None, **kw) -> Field:
    return Field(name, Kind.WHOLE, help_, required=True, hi="max_units", example=example_, **kw)


def _lazy(name: str, help_: str, hi: str = "max_units") -> Field:
    return Field(name, Kind.WHOLE, help_, hi=hi, lazy=True)


def _bias(default: bool = True) -> Field:
    return Field("bias", Kind.FLAG, "whether the layer has a bias", default=default)


def _prob(name: str, help_: str, default: float, example_: float | None = None) -> Field:
    return Field(
        name,
        Kind.NUMBER,
        help_,
        default=default,
        lo=0,
        hi=1,
        hi_open=True,
        noun="a probability",
        step=0.05,
        example=example_,
    )


def _eps(default: float) -> Field:
    return Field(
        "eps",
        Kind.NUMBER,
        "added to the variance for stability",
        default=default,
        lo=0,
        hi=1,
        lo_open=True,
        hi_open=True,
        step=1e-5,
    )


TIE = Field("tie", Kind.TIE, '`{"weight": "NAME.weight"}`: that layer\'s tensor becomes this one')

# Fields every block may have besides "type" and its own; "key" only as a sequential's child.
COMMON = (
    Field("name", Kind.REF, "a unique name, so that `shared` and `tie` can refer to the block"),
    Field("key", Kind.REF, "its attribute name in the parent sequential, e.g. `block 0`"),
)
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")  # a block's name: a Python identifier
RESERVED_KEYS = frozenset(dir(nn.Sequential()))  # keys that nn.Sequential refuses


# --- how each type is built and what shapes it has ---


def _linear_make(v: Get, parts: Parts) -> nn.Module:
    n_in = v("in_features")
    if n_in is None and v("tie") is not None:
        n_in = parts.shapes["weight"][1]  # a tied layer needs its shape now
    if n_in is None:
        return nn.LazyLinear(v("out_features"), bias=v("bias"))
    return nn.Linear(n_in, v("out_features"), bias=v("bias"))


def _linear_params(v: Get, f: int | None) -> dict:
    n_in, n_out = v("in_features") or f, v("out_features")
    return _with_bias(v, {"weight": (n_out, n_in) if n_in else None}, n_out)


def _with_bias(v: Get, shapes: dict, n: int, prefix: str = "") -> dict:
    return {**shapes, f"{prefix}bias": (n,)} if v("bias") else shapes


def _conv_args(v: Get) -> dict:
    """nn.Conv2d's arguments from checked fields: each size a pair, ``3`` as ``(3, 3)``."""
    sizes = {k: v(k) for k in ("kernel_size", "stride", "padding")}
    pairs = {k: tuple(s) if isinstance(s, list | tuple) else (s, s) for k, s in sizes.items()}
    return {**pairs, "bias": v("bias")}


def _conv_make(v: Get, parts: Parts) -> nn.Module:
    if v("in_channels") is None:
        return nn.LazyConv2d(v("out_channels"), **_conv_args(v))
    return nn.Conv2d(v("in_channels"), v("out_channels"), **_conv_args(v))


def _conv_params(v: Get, f: int | None) -> dict:
    n_in, n_out = v("in_channels"), v("out_channels")
    kh, kw = _conv_args(v)["kernel_size"]
    return _with_bias(v, {"weight": (n_out, n_in, kh, kw) if n_in else None}, n_out)


def _attention_params(v: Get, f: int | None) -> dict:
    e = v("embed_dim")
    shapes = _with_bias(v, {"in_proj.weight": (3 * e, e)}, 3 * e, "in_proj.")
    return {**shapes, **_with_bias(v, {"out_proj.weight": (e, e)}, e, "out_proj.")}


def _heads_divide(v: Get, where: str) -> None:
    if v("embed_dim") % v("num_heads"):
        raise SpecError(
            f"must divide embed_dim ({v('embed_dim')}) evenly, got {v('num_heads')}",
            f"{where}.num_heads".lstrip("."),
        )


def _swiglu_params(v: Get, f: int | None) -> dict:
    e, h = v("embed_dim"), v("hidden_features")
    shapes: dict = {}
    for name, shape in (("gate_proj", (h, e)), ("up_proj", (h, e)), ("down_proj", (e, h))):
        shapes.update(_with_bias(v, {f"{name}.weight": shape}, shape[0], f"{name}."))
    return shapes


def _nest_params(v: Get, f: int | None) -> dict:
    return {
        "net.0.weight": (64, f) if f else None,
        "net.0.bias": (64,),
        "net.2.weight": (32, 64),
        "net.2.bias": (32,),
        "linear.weight": (16, 32),
        "linear.bias": (16,),
    }


def _sequential(v: Get, parts: Parts) -> nn.Module:
    return nn.Sequential(OrderedDict(parts.children))


def _num(value: object) -> str:
    """A number as short text (``1e-05``, ``0.5``), a pair as ``3×5``, anything else as is."""
    if isinstance(value, list | tuple):
        return "×".join(map(_num, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _bias_text(v: Get) -> str:
    return f"{'bias' if v('bias') else 'no bias'}{_tied(v)}"


def _tied(v: Get) -> str:
    tie = v("tie")
    return f", weight tied to {tie['weight']}" if isinstance(tie, dict) and "weight" in tie else ""


def _children_text(v: Get) -> str:
    n = len(v("children") or ())
    return f"sequential, {n} {'child' if n == 1 else 'children'}"


def _conv_text(v: Get) -> str:
    conv = BLOCKS["conv2d"]
    extra = "".join(
        f", {k} {_num(v(k))}" for k in ("stride", "padding") if v(k) != conv.field(k).default
    )
    return (
        f"conv2d {v('in_channels') or '?'} → {v('out_channels')}, "
        f"kernel {_num(v('kernel_size'))}{extra}, {_bias_text(v)}"
    )


def _activation(name: str, module: type[nn.Module], doc: str, read=None, **kw) -> BlockType:
    """A layer without fields: ``nn.ReLU()``."""
    return BlockType(
        name,
        doc,
        "show_chart",
        (),
        lambda v, p: module(),
        lambda v: name,
        emit=lambda v, s: f"nn.{module.__name__}()",
        from_module={module: read or (lambda m: {"type": name})},
        **kw,
    )


# --- how each type is written as PyTorch code, and read back from a module ---


def _linear_code(v: Get, shapes: dict) -> str:
    n_in = v("in_features")
    if n_in is None and v("tie") is not None:
        n_in = shapes["weight"][1]  # the builder gives a tied layer its shape now
    bias = "" if v("bias") else ", bias=False"
    if n_in is None:
        return f"nn.LazyLinear({v('out_features')}{bias})"
    return f"nn.Linear({n_in}, {v('out_features')}{bias})"


def _conv_code(v: Get, shapes: dict) -> str:
    pairs = {k: size_pair(v(k), k, 0, 1 << 30) for k in ("kernel_size", "stride", "padding")}
    sizes = ", ".join(f"{k}={pair}" for k, pair in pairs.items())
    lazy = v("in_channels") is None
    channels = f"{v('out_channels')}" if lazy else f"{v('in_channels')}, {v('out_channels')}"
    bias = "" if v("bias") else ", bias=False"
    return f"{'nn.LazyConv2d' if lazy else 'nn.Conv2d'}({channels}, {sizes}{bias})"


def _batchnorm_make(v: Get, parts: Parts) -> nn.Module:
    options = {"eps": v("eps"), "momentum": v("momentum")}
    if v("num_features") is None:
        return nn.LazyBatchNorm1d(**options)
    return nn.BatchNorm1d(v("num_features"), **options)


def _features(v: Get, f: int | None) -> tuple[int] | None:
    n = v("num_features") or f
    return (n,) if n else None


def _batchnorm_code(v: Get, shapes: dict) -> str:
    options = f"eps={v('eps')!r}, momentum={v('momentum')!r}"
    if v("num_features") is None:
        return f"nn.LazyBatchNorm1d({options})"
    return f"nn.BatchNorm1d({v('num_features')}, {options})"


def _batchnorm_from(m: nn.BatchNorm1d) -> dict | None:
    if not (m.affine and m.track_running_stats) or m.momentum is None:
        return None
    return {
        "type": "batchnorm",
        "num_features": m.num_features,
        "eps": m.eps,
        "momentum": m.momentum,
    }


def _linear_from(m: nn.Linear) -> dict:
    return {
        "type": "linear",
        "in_features": m.in_features,
        "out_features": m.out_features,
        "bias": m.bias is not None,
    }


def _lazy_linear_from(m: nn.LazyLinear) -> dict:
    return {"type": "linear", "out_features": m.out_features, "bias": m.bias is not None}


def _layernorm_from(m: nn.LayerNorm) -> dict | None:
    if len(m.normalized_shape) != 1 or not m.elementwise_affine or m.bias is None:
        return None
    return {"type": "layernorm", "normalized_shape": m.normalized_shape[0], "eps": m.eps}


def _embedding_from(m: nn.Embedding) -> dict | None:
    if m.padding_idx is not None or m.max_norm is not None or m.sparse:
        return None
    return {
        "type": "embedding",
        "num_embeddings": m.num_embeddings,
        "embedding_dim": m.embedding_dim,
    }


def _conv_from(m: nn.Conv2d) -> dict | None:
    if m.groups != 1 or m.dilation != (1, 1) or m.padding_mode != "zeros":
        return None
    if isinstance(m.padding, str):
        return None
    return {
        "type": "conv2d",
        "in_channels": m.in_channels,
        "out_channels": m.out_channels,
        "kernel_size": list(m.kernel_size),
        "stride": list(m.stride),
        "padding": list(m.padding),
        "bias": m.bias is not None,
    }


BLOCKS: dict[str, BlockType] = {
    bt.name: bt
    for bt in [
        BlockType(
            "linear",
            "`nn.Linear`; without `in_features` an `nn.LazyLinear`, shaped by the first input",
            "linear_scale",
            (
                _units("out_features", "output features", 8),
                _lazy("in_features", "input features"),
                _bias(),
                TIE,
            ),
            _linear_make,
            lambda v: f"linear {v('in_features') or '?'} → {v('out_features')}, {_bias_text(v)}",
            params=_linear_params,
            output=lambda v: v("out_features"),
            emit=_linear_code,
            from_module={nn.Linear: _linear_from, nn.LazyLinear: _lazy_linear_from},
        ),
        _activation("relu", nn.ReLU, "`nn.ReLU`"),
        BlockType(
            "gelu",
            "`nn.GELU`; GPT-2 uses `approximate: tanh`",
            "show_chart",
            (
                Field(
                    "approximate",
                    Kind.CHOICE,
                    "GELU's tanh approximation",
                    default="none",
                    choices=("none", "tanh"),
                ),
            ),
            lambda v, p: nn.GELU(approximate=v("approximate")),
            lambda v: "gelu" + (", tanh approximation" if v("approximate") == "tanh" else ""),
            emit=lambda v, s: (
                "nn.GELU()"
                if v("approximate") == "none"
                else f"nn.GELU(approximate={v('approximate')!r})"
            ),
            from_module={nn.GELU: lambda m: {"type": "gelu", "approximate": m.approximate}},
        ),
        _activation("tanh", nn.Tanh, "`nn.Tanh`"),
        _activation("sigmoid", nn.Sigmoid, "`nn.Sigmoid`"),
        BlockType(
            "dropout",
            "`nn.Dropout`: zeroes each value with probability `p` while training",
            "grain",
            (_prob("p", "the probability of zeroing a value", 0.5),),
            lambda v, p: nn.Dropout(v("p")),
            lambda v: f"dropout p = {_num(v('p'))}",
            emit=lambda v, s: f"nn.Dropout({number_text(v('p'))})",
            from_module={nn.Dropout: lambda m: {"type": "dropout", "p": m.p}},
        ),
        BlockType(
            "layernorm",
            "`nn.LayerNorm` over the last dimension",
            "straighten",
            (_units("normalized_shape", "features normalized", 8), _eps(TORCH_EPS), TIE),
            lambda v, p: nn.LayerNorm(v("normalized_shape"), eps=v("eps")),
            lambda v: f"layernorm {v('normalized_shape')}, eps {_num(v('eps'))}{_tied(v)}",
            params=lambda v, f: dict.fromkeys(("weight", "bias"), (v("normalized_shape"),)),
            emit=lambda v, s: f"nn.LayerNorm({v('normalized_shape')}, eps={v('eps')!r})",
            from_module={nn.LayerNorm: _layernorm_from},
        ),
        BlockType(
            "batchnorm",
            "`nn.BatchNorm1d`: normalizes each feature over the batch; keeps running statistics "
            "(buffers) that a training-mode forward updates; without `num_features` an "
            "`nn.LazyBatchNorm1d`",
            "equalizer",
            (
                _lazy("num_features", "features normalized"),
                _eps(TORCH_EPS),
                _prob("momentum", "how far each training batch moves the statistics", 0.1),
            ),
            _batchnorm_make,
            lambda v: (
                f"batchnorm {v('num_features') or '?'}, eps {_num(v('eps'))}, "
                f"momentum {_num(v('momentum'))}"
            ),
            params=lambda v, f: dict.fromkeys(("weight", "bias"), _features(v, f)),
            buffers=lambda v, f: {
                "running_mean": _features(v, f),
                "running_var": _features(v, f),
                "num_batches_tracked": (),
            },
            emit=_batchnorm_code,
            from_module={nn.BatchNorm1d: _batchnorm_from},
        ),
        BlockType(
            "rmsnorm",
            "`nn.RMSNorm` over the last dimension, as in Llama (a weight, no bias)",
            "straighten",
            (_units("normalized_shape", "features normalized", 8), _eps(1e-6)),
            lambda v, p: nn.RMSNorm(v("normalized_shape"), eps=v("eps")),
            lambda v: f"rmsnorm {v('normalized_shape')}, eps {_num(v('eps'))}",
            params=lambda v, f: {"weight": (v("normalized_shape"),)},
            emit=lambda v, s: f"nn.RMSNorm({v('normalized_shape')}, eps={v('eps')!r})",
        ),
        BlockType(
            "embedding",
            "`nn.Embedding`: one learned vector per token id",
            "abc",
            (
                Field(
                    "num_embeddings",
                    Kind.WHOLE,
                    "table rows (the vocabulary)",
                    required=True,
                    hi="max_embeddings",
                    example=50,
                ),
                _units("embedding_dim", "vector size", 16),
                TIE,
            ),
            lambda v, p: nn.Embedding(v("num_embeddings"), v("embedding_dim")),
            lambda v: f"embedding {v('num_embeddings')} × {v('embedding_dim')}{_tied(v)}",
            params=lambda v, f: {"weight": (v("num_embeddings"), v("embedding_dim"))},
            output=lambda v: v("embedding_dim"),
            emit=lambda v, s: f"nn.Embedding({v('num_embeddings')}, {v('embedding_dim')})",
            from_module={nn.Embedding: _embedding_from},
        ),
        BlockType(
            "pos_embedding",
            "adds a learned `(max_len, embedding_dim)` table of positions: `x + weight[:T]`",
            "format_list_numbered",
            (
                Field(
                    "max_len",
                    Kind.WHOLE,
                    "the longest input, in positions",
                    required=True,
                    hi="max_embeddings",
                    example=64,
                ),
                _units("embedding_dim", "vector size", 16),
            ),
            lambda v, p: PositionEmbedding(v("max_len"), v("embedding_dim")),
            lambda v: f"position embedding {v('max_len')} × {v('embedding_dim')}",
            params=lambda v, f: {"weight": (v("max_len"), v("embedding_dim"))},
            emit=lambda v, s: f"PositionEmbedding({v('max_len')}, {v('embedding_dim')})",
            custom=PositionEmbedding,
        ),
        BlockType(
            "conv2d",
            "`nn.Conv2d`; without `in_channels` an `nn.LazyConv2d`",
            "grid_on",
            (
                Field(
                    "out_channels",
                    Kind.WHOLE,
                    "output channels",
                    required=True,
                    hi="max_channels",
                    example=4,
                ),
                _lazy("in_channels", "input channels", "max_channels"),
                Field("kernel_size", Kind.SIZE, "kernel size", default=3, hi="max_kernel"),
                Field("stride", Kind.SIZE, "stride", default=1, hi="max_stride"),
                Field(
                    "padding",
                    Kind.SIZE,
                    "zero padding",
                    default=0,
                    lo=0,
                    hi="max_padding",
                    example=1,
                ),
                _bias(),
                TIE,
            ),
            _conv_make,
            _conv_text,
            params=_conv_params,
            output=lambda v: None,
            emit=_conv_code,
            from_module={nn.Conv2d: _conv_from},
        ),
        _activation(
            "flatten",
            nn.Flatten,
            "`nn.Flatten`",
            output=lambda v: None,
            read=lambda m: {"type": "flatten"} if (m.start_dim, m.end_dim) == (1, -1) else None,
        ),
        BlockType(
            "self_attention",
            "causal multi-head self-attention: `in_proj` (embed → 3·embed) and `out_proj`",
            "visibility",
            (
                _units("embed_dim", "features in and out", 16),
                _units("num_heads", "heads; they split embed_dim evenly", 2),
                _bias(),
                _prob("dropout", "attention dropout while training", 0.0),
            ),
            lambda v, p: SelfAttention(v("embed_dim"), v("num_heads"), v("bias"), v("dropout")),
            lambda v: f"self-attention {v('embed_dim')}, {v('num_heads')} heads, causal",
            params=_attention_params,
            output=lambda v: v("embed_dim"),
            check=_heads_divide,
            emit=lambda v, s: (
                f"SelfAttention({v('embed_dim')}, {v('num_heads')}, bias={v('bias')}, "
                f"dropout={v('dropout')!r})"
            ),
            custom=SelfAttention,
        ),
        BlockType(
            "swiglu",
            "Llama's gated MLP: `down_proj(silu(gate_proj(x)) * up_proj(x))`",
            "merge",
            (
                _units("embed_dim", "features in and out", 16),
                _units("hidden_features", "hidden features", 64),
                _bias(False),
            ),
            lambda v, p: SwiGLU(v("embed_dim"), v("hidden_features"), v("bias")),
            lambda v: f"swiglu {v('embed_dim')} → {v('hidden_features')} → {v('embed_dim')}",
            params=_swiglu_params,
            output=lambda v: v("embed_dim"),
            emit=lambda v, s: f"SwiGLU({v('embed_dim')}, {v('hidden_features')}, bias={v('bias')})",
            custom=SwiGLU,
        ),
        BlockType(
            "constant_linear",
            "`x @ weight + offset` with a fixed random weight (a buffer, not trained)",
            "lock",
            (
                _units("in_features", "input features", 8),
                _units("out_features", "output features", 8),
                Field(
                    "offset",
                    Kind.NUMBER,
                    "added to every output",
                    default=0.0,
                    lo=-1_000_000,
                    hi=1_000_000,
                    step=1.0,
                ),
                Field(
                    "seed",
                    Kind.WHOLE,
                    "seed of the weight's U[0, 1) draw",
                    default=0,
                    lo=0,
                    hi="max_seed",
                ),
            ),
            lambda v, p: ConstantLinear(
                v("in_features"), v("out_features"), v("offset"), v("seed")
            ),
            lambda v: (
                f"constant linear {v('in_features')} → {v('out_features')}, "
                f"+ {_num(v('offset'))}, not trained"
            ),
            buffers=lambda v, f: {"weight": (v("in_features"), v("out_features"))},
            output=lambda v: v("out_features"),
            emit=lambda v, s: (
                f"ConstantLinear({v('in_features')}, {v('out_features')}, "
                f"offset={v('offset')!r}, seed={v('seed')})"
            ),
            custom=ConstantLinear,
        ),
        BlockType(
            "nest_mlp",
            "the chapter's `NestMLP` (exercise): `net` = Linear(64), ReLU, Linear(32), ReLU, "
            "then `linear` = Linear(16); reached as `net.net[0].weight`, not subscriptable",
            "school",
            (),
            lambda v, p: NestMLP(),
            lambda v: "NestMLP: net (64, 32) then linear (16)",
            params=_nest_params,
            submodules=6,  # net, net.0 … net.3, linear
            output=lambda v: 16,
            emit=lambda v, s: "NestMLP()",
            custom=NestMLP,
        ),
        BlockType(
            "fixed_hidden_mlp",
            "the chapter's `FixedHiddenMLP` (exercise, FancyMLP in older editions): a constant "
            "`rand_weight` (not a parameter) and one `linear` (20) used twice; returns `X.sum()`",
            "school",
            (),
            lambda v, p: FixedHiddenMLP(),
            lambda v: "FixedHiddenMLP: linear (20) used twice, constant rand_weight",
            params=lambda v, f: {"linear.weight": (20, f) if f else None, "linear.bias": (20,)},
            output=lambda v: None,
            emit=lambda v, s: "FixedHiddenMLP()",
            custom=FixedHiddenMLP,
        ),
        BlockType(
            "sequential",
            "`nn.Sequential` of its children, run in order: `net[0]`, `net[1]`, …",
            "view_list",
            (Field("children", Kind.BLOCKS, "a list of blocks", required=True, example=list),),
            _sequential,
            _children_text,
            output=lambda v: CHAIN,
        ),
        BlockType(
            "repeat",
            "`times` copies of `block` in an `nn.Sequential`, **each copy with its own "
            "parameters** (the chapter's `block2`); blocks inside cannot be named",
            "repeat",
            (
                Field("times", Kind.WHOLE, "copies", required=True, hi="max_repeat", example=2),
                Field(
                    "block",
                    Kind.BLOCK,
                    "the block to copy",
                    required=True,
                    example=lambda: example("linear"),
                ),
                Field("key_format", Kind.KEY_FORMAT, "the copies' keys; default 0, 1, 2, …"),
            ),
            _sequential,
            lambda v: f"repeat × {v('times')}, own parameters per copy",
            output=lambda v: CHAIN,
            copies=lambda v: v("times"),
        ),
        BlockType(
            "residual",
            "`x + block(x)`: a skip connection around one block that keeps the feature size",
            "add_circle",
            (
                Field(
                    "block",
                    Kind.BLOCK,
                    "the block added to its input",
                    required=True,
                    example=lambda: example("sequential"),
                ),
            ),
            lambda v, p: Residual(p.children[0][1]),
            lambda v: "residual: x + block(x)",
            custom=Residual,
        ),
        BlockType(
            "shared",
            "the very module named by `ref`, so its parameters are tied",
            "link",
            (Field("ref", Kind.REF, "the name of another block", required=True),),
            None,
            lambda v: f"reuse {v('ref')!r} (same module, tied)",
            menu=False,
        ),
    ]
}


def json_schema(limits: Limits = DEFAULT_LIMITS) -> dict:
    """The JSON Schema (2020-12) of a spec: one ``$defs`` entry per block type."""
    defs: dict[str, Any] = {"block": {"oneOf": [{"$ref": f"#/$defs/{k}"} for k in BLOCKS]}}
    for name, bt in BLOCKS.items():
        props = {"type": {"const": name}, **_common_schema(limits)}
        props |= {f.name: f.schema(limits) for f in bt.fields}
        defs[name] = {
            "type": "object",
            "description": bt.doc,
            "properties": props,
            "required": ["type", *(f.name for f in bt.fields if f.required)],
            "additionalProperties": False,
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Parameter Explorer model spec",
        "$ref": "#/$defs/block",
        "$defs": defs,
    }


def _common_schema(limits: Limits) -> dict:
    name, key = (f.schema(limits) for f in COMMON)
    key |= {"maxLength": limits.max_key_chars, "pattern": r"^[^.]+$"}
    return {"name": {**name, "pattern": f"^{NAME.pattern}$"}, "key": key}


def readme_table(limits: Limits = DEFAULT_LIMITS) -> str:
    """The README's table of block types, one row per entry, as Markdown."""
    rows = ["| type | fields | what it is |", "|---|---|---|"]
    for name, bt in BLOCKS.items():
        fields = "; ".join(f.text(limits) for f in bt.fields) or "none"
        rows.append(f"| `{name}` | {fields} | {bt.doc} |")
    return "\n".join(rows)


def param_count(shapes: dict[str, Shape | None]) -> int:
    """Elements of the known shapes."""
    return sum(math.prod(s) for s in shapes.values() if s is not None)
