"""How the editions print a whole model: Keras's ``summary()``, Gluon's ``collect_params``.

``explorer.editions.places.listing`` gives each edition's list of parameters; these two print
the architecture. Both read the PyTorch module the way ``places`` does (a ReLU after a Linear
is fused into Gluon's and Keras's Dense) and number the layers with the frameworks' global
name counters, so a net built after the chapter's first net continues counting.

Example::

    print(keras_summary(rgnet, (2, 4), first={"sequential": 1, "dense": 2, "flatten": 1}))
    # Model: "sequential_1" … sequential_2 (Sequential)  (2, 4)  80 … Total params: 85
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from explorer.core.rebind import meta_twin

__all__ = ["keras_summary", "keras_first", "gluon_structure", "djl_structure"]

_RULE, _DOUBLE = "_" * 65, "=" * 65


def keras_first(mxnet_first: Mapping[str, int] | None) -> dict[str, int]:
    """Keras's counters for a net built after the chapter's first net (Flatten, Dense, Dense),
    from MXNet's (``{"dense": 2, "sequential": 1}``): one Flatten more."""
    if not mxnet_first:
        return {}
    return {**mxnet_first, "flatten": 1}


def keras_summary(
    module: nn.Module, input_shape: tuple[int, ...], first: Mapping[str, int] | None = None
) -> str | None:
    """``net.summary()`` as the TensorFlow edition prints it, or None for a model that is not a
    plain Sequential of dense layers (the chapter prints summary() for those only)."""
    if not isinstance(module, nn.Sequential) or not _dense_only(module):
        return None
    names = _KerasNames(first)
    model = names.take("sequential")
    rows = _keras_rows(module, input_shape, names)
    if rows is None:
        return None
    total = len({id(p) for p in module.parameters()})
    elements = sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())
    lines = [f'Model: "{model}"', _RULE, f" {'Layer (type)':<28}{'Output Shape':<26}Param #"]
    lines.append(_DOUBLE)
    for name, shape, count in rows:
        lines.append(f" {name:<28}{shape:<26}{count:,}")
    lines += [
        _DOUBLE,
        f"Total params: {elements:,}",
        f"Trainable params: {elements:,}",
        "Non-trainable params: 0",
        _RULE,
    ]
    return "\n".join(lines) if total else None


def _keras_rows(module: nn.Sequential, input_shape, names: _KerasNames):
    """(name (type), output shape, parameter count) of each top-level layer."""
    kids = _fused(module)
    twin = meta_twin(module)
    x = torch.empty(input_shape, device="meta")
    rows = []
    if kids and isinstance(kids[0][0], nn.Linear):  # the chapter's Flatten() comes first
        x = x.flatten(1)
        rows.append((f"{names.take('flatten')} (Flatten)", _shape(x.shape), 0))
    seen: set[int] = set()
    for layer, relu in kids:
        kind = "Sequential" if isinstance(layer, nn.Sequential) else "Dense"
        name = _name_block(layer, names)
        path = _path_of(module, layer)
        try:
            with torch.no_grad():
                x = twin.get_submodule(path)(x)
        except RuntimeError:
            return None
        if relu:
            x = torch.relu(x)
        if id(layer) in seen:
            continue  # net.layers lists a layer added twice once
        seen.add(id(layer))
        count = sum(p.numel() for p in layer.parameters() if not is_lazy(p))
        rows.append((f"{name} ({kind})", _shape(x.shape), count))
    return rows


def _name_block(block: nn.Module, names: _KerasNames) -> str:
    """Keras names a block when it is created: inner layers come before the next top layer."""
    if isinstance(block, nn.Sequential):
        own = names.take("sequential")
        for child, _ in _fused(block):
            _name_block(child, names)
        return own
    return names.take("dense")


def _path_of(root: nn.Module, layer: nn.Module) -> str:
    return next(path for path, m in root.named_children() if m is layer)


def _fused(seq: nn.Sequential) -> list[tuple[nn.Module, bool]]:
    """Children with each ReLU after a Linear written into it: ``Dense(…, activation=relu)``.

    A nested block's first Dense gets a Flatten in the chapter's Keras code; it has no
    parameters and does not change the (batch, features) shapes, so it is left out here."""
    kids = [c for c in seq.children()]
    out: list[tuple[nn.Module, bool]] = []
    for child in kids:
        if type(child) is nn.ReLU and out and isinstance(out[-1][0], nn.Linear):
            out[-1] = (out[-1][0], True)
        else:
            out.append((child, False))
    return out


def _dense_only(module: nn.Module) -> bool:
    """Whether every module is a Sequential, a Linear or a ReLU: the chapter's nets."""
    return all(
        type(m) in (nn.Sequential, nn.Linear, nn.LazyLinear, nn.ReLU) for m in module.modules()
    )


def _shape(shape: torch.Size) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


class _KerasNames:
    """Keras's global counters: the first layer of a kind is ``dense``, then ``dense_1``, …"""

    def __init__(self, first: Mapping[str, int] | None):
        self.count = Counter(first or {})

    def take(self, kind: str) -> str:
        n = self.count[kind]
        self.count[kind] += 1
        return kind if n == 0 else f"{kind}_{n}"


def gluon_structure(module: nn.Module) -> str | None:
    """``print(net.collect_params)``: the bound method's repr shows Gluon's block structure,
    ``Dense(20 -> 32, Activation(relu))``; None for a model outside the chapter's dense nets."""
    if not isinstance(module, nn.Sequential) or not _dense_only(module):
        return None
    return f"<bound method Block.collect_params of {_gluon_repr(module, '')}>"


def _gluon_repr(block: nn.Module, indent: str, relu: bool = False) -> str:
    if isinstance(block, nn.Linear):
        n_in = "None" if is_lazy(block.weight) else str(block.in_features)
        act = "Activation(relu)" if relu else "linear"
        return f"Dense({n_in} -> {block.out_features}, {act})"
    inner = indent + "  "
    lines = [
        f"{inner}({i}): {_gluon_repr(child, inner, fused)}"
        for i, (child, fused) in enumerate(_fused(block))
    ]
    return "Sequential(\n" + "\n".join(lines) + f"\n{indent})"


def djl_structure(module: nn.Module, input_shape: tuple[int, ...]) -> str | None:
    """A DJL block as the DJL edition prints it: every block with its input and output shapes,
    ``SequentialBlock(2, 4) { Linear(2, 4) -> (2, 32) … } -> (2, 10)``; None outside the
    chapter's dense nets or before the shapes are known."""
    if not isinstance(module, nn.Sequential) or not _dense_only(module):
        return None
    twin = meta_twin(module)
    shapes: dict[int, tuple[tuple, tuple]] = {}

    def record(m: nn.Module, args: tuple, out: torch.Tensor) -> None:
        shapes.setdefault(id(m), (tuple(args[0].shape), tuple(out.shape)))

    hooks = [m.register_forward_hook(record) for m in twin.modules()]
    try:
        with torch.no_grad():
            twin(torch.empty(input_shape, device="meta"))
    except RuntimeError:
        return None
    finally:
        for hook in hooks:
            hook.remove()
    return _djl_block(twin, shapes, "")


def _djl_block(m: nn.Module, shapes: dict, indent: str) -> str:
    n_in, n_out = (_djl_shape(s) for s in shapes[id(m)])
    if not isinstance(m, nn.Sequential):
        name = "Linear" if isinstance(m, nn.Linear) else "ReLU"
        return f"{name}{n_in} -> {n_out}"
    inner = indent + "\t"
    lines = [f"{inner}{_djl_block(child, shapes, inner)}" for child in m.children()]
    return f"SequentialBlock{n_in} {{\n" + "\n".join(lines) + f"\n{indent}}} -> {n_out}"


def _djl_shape(shape: tuple) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"
