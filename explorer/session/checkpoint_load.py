"""Loading a checkpoint into a model: what matches, what differs, and the new values.

``compare`` says, before anything changes, which keys would load and which would not: keys
the model has that the file lacks (``missing``), keys the file has that the model lacks
(``unexpected``), keys whose shapes differ, and names of one tied tensor that the file gives
different values. A tied tensor counts as given when the file holds any of its names, so a
safetensors file that kept one name of a tie loads whole. ``loaded_module`` then builds the
model with the file's values cast to each tensor's dtype and device, as
``Module.load_state_dict`` copies them, in new tensors: the given module is not changed.

Example::

    report = compare(net, ckpt)
    report.complete            # True: every key matched
    net2 = loaded_module(net, ckpt.tensors)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from explorer.core.errors import SpecError
from explorer.core.rebind import with_tensors

__all__ = ["LoadReport", "compare", "loaded_module", "refusal"]


@dataclass(frozen=True)
class LoadReport:
    """What loading a checkpoint into a model would do, key by key."""

    loaded: tuple[str, ...]  # model names that get the file's values (every alias)
    missing: tuple[str, ...]  # model names the file gives nothing for
    unexpected: tuple[str, ...]  # file keys the model does not have
    mismatched: tuple[tuple[str, tuple, tuple], ...]  # (key, file shape, model shape)
    conflicts: tuple[tuple[str, ...], ...]  # one tied tensor, different values in the file
    nonfinite: tuple[str, ...]  # file keys to be loaded that hold NaN or Inf
    keys: int  # file keys whose values are used

    @property
    def complete(self) -> bool:
        """Every key of the model and of the file matched, with no conflict."""
        return not (self.missing or self.unexpected or self.mismatched or self.conflicts)

    def summary(self) -> str:
        parts = [f"{len(self.loaded)} names get values"]
        for label, items in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("with other shapes", self.mismatched),
            ("tied but different in the file", self.conflicts),
            ("holding NaN or Inf", self.nonfinite),
        ):
            if items:
                parts.append(f"{len(items)} {label}")
        return ", ".join(parts)


def compare(module: nn.Module, tensors: Mapping[str, torch.Tensor]) -> LoadReport:
    """Match a checkpoint's keys against the module's parameters and persistent buffers."""
    groups = _groups(module)
    names = {name for group in groups for name in group[1]}
    missing, mismatched, conflicts, loaded, used = [], [], [], [], []
    for target, group in groups:
        given = [n for n in group if n in tensors]
        if not given:
            missing.extend(group)
            continue
        if is_lazy(target):
            raise SpecError(f"{group[0]} has no shape yet: run a forward pass first, then load")
        shape = tuple(target.shape)
        bad = [n for n in given if tuple(tensors[n].shape) != shape]
        mismatched.extend((n, tuple(tensors[n].shape), shape) for n in bad)
        good = [n for n in given if n not in bad]
        if not good:
            continue
        if any(not _same(tensors[good[0]], tensors[n]) for n in good[1:]):
            conflicts.append(tuple(good))
        loaded.extend(group)
        used.extend(good)
    unexpected = tuple(k for k in tensors if k not in names)
    nonfinite = tuple(k for k in used if not _finite(tensors[k]))
    return LoadReport(
        tuple(loaded),
        tuple(missing),
        unexpected,
        tuple(mismatched),
        tuple(conflicts),
        nonfinite,
        len(used),
    )


def refusal(report: LoadReport, allow_partial: bool, allow_nonfinite: bool) -> str | None:
    """Why this load may not go ahead without the user's confirmation, or None."""
    if not report.keys:
        return "no key of the file matches the model: nothing to load"
    if not report.complete and not allow_partial:
        return f"a partial load ({report.summary()}): confirm to load what matches"
    if report.nonfinite and not allow_nonfinite:
        shown = ", ".join(report.nonfinite[:5])
        return f"the file holds NaN or Inf in {shown}: confirm to load them anyway"
    return None


def loaded_module(module: nn.Module, tensors: Mapping[str, torch.Tensor]) -> nn.Module:
    """A new module tree holding the file's values where keys match (the first name of a tie
    wins); every other tensor is shared with ``module``, which is left as it was."""
    params: dict[str, torch.Tensor] = {}
    buffers: dict[str, torch.Tensor] = {}
    for target, group in _groups(module):
        given = [n for n in group if n in tensors and tensors[n].shape == target.shape]
        if not given:
            continue
        new = tensors[given[0]].to(device=target.device, dtype=target.dtype, copy=True)
        if isinstance(target, nn.Parameter):
            params[group[0]] = new
        else:
            buffers[group[0]] = new
    result = with_tensors(module, params)
    for name, value in buffers.items():
        owner, _, local = name.rpartition(".")
        holder = result.get_submodule(owner) if owner else result
        holder._buffers[local] = value  # a module used twice is one object: both places see it
    return result


def _groups(module: nn.Module) -> list[tuple[torch.Tensor, list[str]]]:
    """Each distinct parameter or persistent buffer, with every name it has in state_dict."""
    by_id: dict[int, tuple[torch.Tensor, list[str]]] = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        by_id.setdefault(id(p), (p, []))[1].append(name)
    persistent = set(module.state_dict(keep_vars=True))
    for name, b in module.named_buffers(remove_duplicate=False):
        if name in persistent and b is not None:
            by_id.setdefault(id(b), (b, []))[1].append(name)
    return list(by_id.values())


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a is b or (a.dtype == b.dtype and torch.equal(a, b))


def _finite(t: torch.Tensor) -> bool:
    if not t.is_floating_point() or t.numel() == 0:
        return True
    return bool(torch.isfinite(t.float() if t.element_size() == 1 else t).all())
