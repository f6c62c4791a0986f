"""Which parameter names share memory: exact aliases, and partial overlaps of one storage.

Sharing is found the way the safetensors library finds it: names are grouped by storage
``(device, data_ptr, nbytes)``, then each storage's names are split by the byte ranges they
cover. Names covering the same bytes in the same layout are *aliases* (one tensor, several
names: editing one is editing the other). Names whose ranges intersect in another layout
(``w`` and ``w[:4]``, ``w`` and ``w.T``) *overlap*: editing one changes part of the other.
A range is the span from a view's first byte to its last, as in safetensors, so two
interleaved strided views (``w[:, 0]`` and ``w[:, 1]``) count as overlapping.

Meta and lazy tensors have no storage to compare; they are grouped by object identity only.

Example::

    w = torch.randn(8, 3)
    m = nn.Module(); m.a = nn.Parameter(w); m.b = nn.Parameter(w[:4])
    find_sharing(list(m.named_parameters())).overlaps  # [{"a", "b"}]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.parameter import is_lazy

__all__ = ["Sharing", "find_sharing", "group_label"]


@dataclass(frozen=True)
class Sharing:
    """Groups of parameter names, each group sorted by its smallest name."""

    aliases: list[set[str]]  # the same tensor object, or the same view of one storage
    overlaps: list[set[str]]  # byte ranges that intersect without being the same view


@dataclass(frozen=True)
class _Span:
    storage: tuple  # (device, data_ptr, nbytes)
    start: int  # first byte, from the storage's start
    stop: int  # one past the last byte
    layout: tuple  # (shape, stride, dtype): with start, what makes two views the same


def group_label(index: int) -> str:
    """The letters of group ``index``: A … Z, then AA, AB, … as spreadsheet columns."""
    label = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        label = chr(ord("A") + rest) + label
    return label


def find_sharing(named: list[tuple[str, torch.Tensor]]) -> Sharing:
    """Aliases and overlaps among ``named`` (as ``named_parameters(remove_duplicate=False)``)."""
    parent = {name: name for name, _ in named}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    first_with: dict[object, str] = {}
    by_storage: dict[tuple, list[tuple[_Span, str]]] = {}
    for name, tensor in named:
        span = _span(tensor)
        keys = [("id", id(tensor))]
        if span is not None:
            keys.append(("view", span))
            by_storage.setdefault(span.storage, []).append((span, name))
        for key in keys:
            if key in first_with:
                parent[root(name)] = root(first_with[key])
            else:
                first_with[key] = name
    aliases: dict[str, set[str]] = {}
    for name in parent:
        aliases.setdefault(root(name), set()).add(name)
    overlaps = [group for spans in by_storage.values() for group in _overlapping(spans)]
    return Sharing(_sorted(g for g in aliases.values() if len(g) > 1), _sorted(overlaps))


def _span(tensor: torch.Tensor) -> _Span | None:
    """The bytes a tensor covers in its storage; None when there is nothing to compare."""
    if is_lazy(tensor) or tensor.device.type == "meta" or tensor.numel() == 0:
        return None
    try:
        storage = tensor.untyped_storage()
        pointer, nbytes = storage.data_ptr(), storage.nbytes()
    except (RuntimeError, NotImplementedError, TypeError):
        return None  # tensors without a storage (subclasses, sparse): identity only
    if pointer == 0 or nbytes == 0:
        return None
    size = tensor.element_size()
    start = tensor.storage_offset() * size
    last = sum((n - 1) * s for n, s in zip(tensor.shape, tensor.stride(), strict=True))
    layout = (tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)
    return _Span((tensor.device, pointer, nbytes), start, start + (last + 1) * size, layout)


def _overlapping(spans: list[tuple[_Span, str]]) -> list[set[str]]:
    """Names of one storage in runs of intersecting ranges that hold more than one view."""
    runs: list[list[tuple[_Span, str]]] = []
    stop = 0
    for span, name in sorted(spans, key=lambda item: (item[0].start, item[0].stop)):
        if runs and span.start < stop:
            runs[-1].append((span, name))
            stop = max(stop, span.stop)
        else:
            runs.append([(span, name)])
            stop = span.stop
    return [group for run in runs if (group := _if_partial(run))]


def _if_partial(run: list[tuple[_Span, str]]) -> set[str]:
    """The run's names when it holds two different views, else an empty set."""
    views = {(span.start, span.layout) for span, _ in run}
    return {name for _, name in run} if len(views) > 1 else set()


def _sorted(groups) -> list[set[str]]:
    return sorted(groups, key=sorted)
