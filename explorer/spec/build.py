"""Turn a validated spec into a ``torch.nn.Module``, on any device or on ``meta``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext

import torch
from torch import nn
from torch.utils._device import DeviceContext  # torch.device's mode: pinned torch==2.13.0

from explorer.core.devices import resolve_device
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.spec.blocks import BLOCKS, Parts
from explorer.spec.fields import Kind
from explorer.spec.validate import SpecInfo, validate

__all__ = ["build"]


def build(spec: dict, limits: Limits = DEFAULT_LIMITS, device: str | None = None) -> nn.Module:
    """Build a module from a spec; every check runs before any tensor is allocated.

    Example::

        net = build({"type": "sequential", "children": [
            {"type": "linear", "out_features": 8}, {"type": "relu"},
            {"type": "linear", "out_features": 1}]})
        net(torch.rand(2, 4)).shape  # torch.Size([2, 1])

    A ``linear`` without ``in_features`` is an ``nn.LazyLinear``; a ``shared`` block is
    the very module named by its ``ref``, so its parameters are tied. ``device="meta"``
    builds the structure only: shapes, names and tying, with no memory for values.
    """
    info = validate(spec, limits, device=device)
    if str(device) == "meta":
        place = _MetaWithoutInit()
    elif device is not None:
        place = torch.device(resolve_device(device))
    else:
        place = nullcontext()
    with place:
        return _Builder(info).module(spec)


_INIT_FUNCTIONS = frozenset(
    getattr(nn.init, name)
    for name in dir(nn.init)
    if name.endswith("_") and not name.startswith("_") and callable(getattr(nn.init, name))
)
_INIT_METHODS = frozenset(
    {torch.Tensor.uniform_, torch.Tensor.normal_, torch.Tensor.fill_, torch.Tensor.zero_}
)


class _MetaWithoutInit(DeviceContext):
    """``with torch.device("meta")`` that also skips every layer's default initialization.

    A meta tensor has no values, so ``reset_parameters`` only costs time: a third of
    building Llama-7B's shape (the idea of accelerate's ``init_empty_weights``). Like
    ``torch.device``, it is a torch function mode, so it holds for this thread only.
    """

    def __init__(self) -> None:
        super().__init__("meta")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _INIT_FUNCTIONS or func in _INIT_METHODS:
            tensor = args[0] if args else (kwargs or {})["tensor"]
            if tensor.is_meta:
                return tensor
        return super().__torch_function__(func, types, args, kwargs)


class _Builder:
    """Builds each named block once, so every ``shared`` ref gets the same object."""

    def __init__(self, info: SpecInfo):
        self.info = info
        self.built: dict[str, nn.Module] = {}
        self.pending_ties: list[tuple[nn.Module, str, str, str]] = []

    def module(self, spec: dict) -> nn.Module:
        root = self.block(spec, "")
        for holder, own, name, param in self.pending_ties:
            setattr(holder, own, getattr(self.named(name), param))
        return root

    def named(self, name: str) -> nn.Module:
        if name not in self.built:
            self.built[name] = self.block(self.info.named[name], self.info.name_paths[name])
        return self.built[name]

    def block(self, spec: dict, path: str) -> nn.Module:
        name = spec.get("name")
        if name is not None and name in self.built:
            return self.built[name]
        bt = BLOCKS[spec["type"]]
        if bt.is_alias:
            module = self.named(spec["ref"])
        else:
            parts = Parts(list(self._children(spec, path)), self.info.shapes.get(path, {}))
            module = bt.make(bt.get(spec), parts)
        if name is not None:
            self.built[name] = module
        for own, target in (spec.get("tie") or {}).items():
            self.pending_ties.append((module, own, *target.split(".")))
        return module

    def _children(self, spec: dict, path: str) -> Iterator[tuple[str, nn.Module]]:
        """Each child module with its key in the parent: a child's ``key``, or its index."""
        bt = BLOCKS[spec["type"]]
        for f in bt.child_fields:
            where = f"{path}.{f.name}".lstrip(".")
            if f.kind == Kind.BLOCKS:
                for i, child in enumerate(spec[f.name]):
                    yield child.get("key", str(i)), self.block(child, f"{where}[{i}]")
            else:
                key_format = spec.get("key_format") or "{i}"
                for i in range(bt.copies(bt.get(spec))):
                    yield key_format.replace("{i}", str(i)), self.block(spec[f.name], where)
