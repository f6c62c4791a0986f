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
from typing import NamedTuple

import torch
from torch.nn.parameter import is_lazy

__all__ = ["Sharing", "find_sharing", "group_label"]


@dataclass(frozen=True)
class Sharing:
    """Groups of parameter names, each group sorted by its smallest name."""

    aliases: list[set[str]]  # the same tensor object, or the same view of one storage
    overlaps: list[set[str]]  # byte ranges that intersect without being the same view


class _Span(NamedTuple):
    """The bytes one view covers; two names with equal spans are the same view of one storage."""

    storage: tuple  # (device, data_ptr, nbytes)
    start: int  # first byte, from the storage's start
    stop: int  # one past the last byte
    shape: tuple
    stride: tuple
    dtype: torch.dtype


def group_label(index: int) -> str:
    """The letters of group ``index``: A … Z, then AA, AB, … as spreadsheet columns."""
    label = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        label = chr(ord("A") + rest) + label
    return label


def find_sharing(named: list[tuple[str, torch.Tensor]]) -> Sharing:
    """Aliases and overlaps among ``named`` (as ``named_parameters(remove_duplicate=False)``).

    One pass, a few small objects per name: a model of thousands of layers is walked in
    milliseconds, and only storages that hold two or more names are sorted by byte range.
    """
    parent: dict[str, str] = {}  # a union-find over the names that share with another

    def root(name: str) -> str:
        while (up := parent.get(name, name)) != name:
            name = up
        return name

    first_with: dict[object, str] = {}  # id(tensor) or its span -> the first name seen
    first_on: dict[tuple, tuple[_Span, str]] = {}  # storage -> its first (span, name)
    shared_on: dict[tuple, list[tuple[_Span, str]]] = {}  # storages holding two or more
    for name, tensor in named:
        span = _span(tensor)
        for key in (id(tensor), span):
            if key is None:
                continue
            seen = first_with.setdefault(key, name)
            if seen != name and root(seen) != root(name):
                parent[root(name)] = root(seen)
        if span is None:
            continue
        first = first_on.setdefault(span.storage, (span, name))
        if first[1] != name:
            shared_on.setdefault(span.storage, [first]).append((span, name))
    aliases: dict[str, set[str]] = {}
    for name in {*parent, *parent.values()}:
        aliases.setdefault(root(name), set()).add(name)
    overlaps = [group for spans in shared_on.values() for group in _overlapping(spans)]
    return Sharing(_sorted(aliases.values()), _sorted(overlaps))


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
    shape, stride = tuple(tensor.shape), tensor.stride()
    last = sum((n - 1) * s for n, s in zip(shape, stride, strict=True))
    stop = start + (last + 1) * size
    return _Span((tensor.device, pointer, nbytes), start, stop, shape, stride, tensor.dtype)


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
    views = {span for span, _ in run}
    return {name for _, name in run} if len(views) > 1 else set()


def _sorted(groups) -> list[set[str]]:
    return sorted(groups, key=sorted)
