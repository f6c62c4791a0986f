"""A spec for a module written as code, where one can be read off it exactly.

``spec_of(module)`` gives a spec when the module is an ``nn.Sequential`` (nested ones too) of
layers the spec format has, with their default options; a module object used at several
places becomes a named block and ``shared`` references, as the chapter ties layers. For
anything else (custom ``forward`` code, parameters tied across different layers, options the
format lacks) it gives None: no spec would rebuild the same model.

Example::

    spec_of(nn.Sequential(nn.Linear(4, 8), nn.ReLU()))
    # {"type": "sequential", "children": [{"type": "linear", "in_features": 4, ...}, ...]}
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["spec_of"]


def _linear(m: nn.Linear) -> dict | None:
    return {
        "type": "linear",
        "in_features": m.in_features,
        "out_features": m.out_features,
        "bias": m.bias is not None,
    }


def _layernorm(m: nn.LayerNorm) -> dict | None:
    if len(m.normalized_shape) != 1 or not m.elementwise_affine or m.bias is None:
        return None
    return {"type": "layernorm", "normalized_shape": m.normalized_shape[0], "eps": m.eps}


def _embedding(m: nn.Embedding) -> dict | None:
    if m.padding_idx is not None or m.max_norm is not None or m.sparse:
        return None
    return {
        "type": "embedding",
        "num_embeddings": m.num_embeddings,
        "embedding_dim": m.embedding_dim,
    }


def _conv2d(m: nn.Conv2d) -> dict | None:
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


_LAYERS: dict[type, Callable[[nn.Module], dict | None]] = {
    nn.Linear: _linear,
    nn.LazyLinear: lambda m: {
        "type": "linear",
        "out_features": m.out_features,
        "bias": m.bias is not None,
    },
    nn.LayerNorm: _layernorm,
    nn.Embedding: _embedding,
    nn.Conv2d: _conv2d,
    nn.ReLU: lambda m: {"type": "relu"},
    nn.Tanh: lambda m: {"type": "tanh"},
    nn.Sigmoid: lambda m: {"type": "sigmoid"},
    nn.GELU: lambda m: {"type": "gelu", "approximate": m.approximate},
    nn.Dropout: lambda m: {"type": "dropout", "p": m.p},
    nn.Flatten: lambda m: {"type": "flatten"} if (m.start_dim, m.end_dim) == (1, -1) else None,
}


def spec_of(module: nn.Module) -> dict | None:
    """The spec that builds this module's structure again, or None when there is none."""
    uses: dict[int, int] = {}
    for _, m in module.named_modules(remove_duplicate=False):
        uses[id(m)] = uses.get(id(m), 0) + 1
    if not _ties_whole_modules_only(module):
        return None
    names: dict[int, str] = {}
    return _block(module, uses, names)


def _block(m: nn.Module, uses: dict[int, int], names: dict[int, str]) -> dict | None:
    if id(m) in names:
        return {"type": "shared", "ref": names[id(m)]}
    if type(m) is nn.Sequential:
        children = []
        for i, (key, child) in enumerate(m._modules.items()):  # repeats kept
            spec = _block(child, uses, names)
            if spec is None:
                return None
            if key != str(i):
                spec["key"] = key
            children.append(spec)
        spec = {"type": "sequential", "children": children}
    else:
        make = _LAYERS.get(type(m))
        spec = None if make is None else make(m)
        if spec is None:
            return None
    if uses[id(m)] > 1:
        names[id(m)] = f"shared_{len(names)}"
        spec["name"] = names[id(m)]
    return spec


def _ties_whole_modules_only(module: nn.Module) -> bool:
    """True when every tensor used at two names belongs to one module object used twice."""
    owner: dict[int, int] = {}
    for _, m in module.named_modules(remove_duplicate=False):
        for p in m.parameters(recurse=False):
            if owner.setdefault(id(p), id(m)) != id(m):
                return False
    return True
