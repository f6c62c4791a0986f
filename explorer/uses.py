"""Per-use gradients: each call of a module gets its own view of the module's parameters.

A parameter used twice (a tied layer) then has two gradients, one per call, whose sum is
its ``.grad``; this is the chapter's "the gradients ... are added together", made visible.

The capture costs about one extra add per use of a tied tensor and nothing for the others:
a hook keeps the gradient autograd hands it (a reference, no copy). Holding it only stops
autograd from summing the uses in place, so the sum becomes ``.grad`` in a fresh buffer.
A parameter used once has ``.grad`` as its one use. Whether some gradient reached a
parameter outside every module call (the remainder) is checked only when a name is asked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from explorer.reduce import colour_limit, downsample

__all__ = ["OUTSIDE_LABEL", "PerUse", "UseRecorder", "uses_sum_error", "use_scale"]

OUTSIDE_LABEL = "outside its module's forward"


@dataclass
class _Use:
    """One module call: its label, and the gradient that call sent to one parameter."""

    label: str
    grad: torch.Tensor | None = None

    def capture(self, grad: torch.Tensor) -> None:
        self.grad = grad  # autograd's own tensor: holding it keeps autograd from reusing it


class _Split:
    """One parameter's uses and its ``.grad`` at the end of a run, split on first request."""

    def __init__(self, grad: torch.Tensor | None, uses: list[_Use]):
        self._grad, self._uses = grad, uses
        self._parts: tuple[list[torch.Tensor], list[str]] | None = None

    def parts(self) -> tuple[list[torch.Tensor], list[str]]:
        """The gradient of each use, then the remainder if any, with their labels."""
        if self._parts is None:
            self._parts = _split(self._grad, self._uses)
            self._uses = []  # the captured tensors now live in the parts
        return self._parts


class PerUse(Mapping):
    """A read-only mapping from every parameter name to a list computed on first request:
    ``grad_by_use[name]`` (tensors) or ``use_labels[name]`` (strings), as ``RunResult`` has."""

    def __init__(self, splits: dict[str, _Split], part: int):
        self._splits, self._part = splits, part

    def __getitem__(self, name: str) -> list:
        return list(self._splits[name].parts()[self._part])

    def __iter__(self) -> Iterator[str]:
        return iter(self._splits)

    def __len__(self) -> int:
        return len(self._splits)

    def __repr__(self) -> str:
        return f"PerUse({len(self)} names)"


class UseRecorder:
    """Hooks that give each module call its own view of the module's parameters.

    A forward pre-hook swaps ``module._parameters[name]`` for ``p.view_as(p)`` (a non-leaf
    whose gradient still flows to ``p``) and hooks that view, so each call's gradient is
    caught on its own; the forward hook puts the real Parameter back, as
    ``torch.func.functional_call`` does. Leaving the ``with`` block removes every hook and
    restores every Parameter, even if forward raised midway.
    """

    def __init__(self, root: nn.Module):
        self.paths: dict[nn.Module, list[str]] = {}
        for path, module in root.named_modules(remove_duplicate=False):
            self.paths.setdefault(module, []).append(path)
        self.output_shapes: dict[str, tuple[int, ...]] = {}
        self._uses: dict[int, list[_Use]] = {}  # id(parameter) -> its uses, in call order
        self._real = {m: dict(m._parameters) for m in self.paths if m._parameters}
        self._saved: dict[nn.Module, list[dict]] = {m: [] for m in self._real}
        self._calls: dict[nn.Module, int] = {}
        self._handles: list = []

    def __enter__(self) -> UseRecorder:
        for module in self.paths:
            if module in self._real:  # registered after any lazy module's own pre-hook
                self._handles.append(module.register_forward_pre_hook(self._before))
            self._handles.append(module.register_forward_hook(self._after, always_call=True))
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        for module, params in self._real.items():
            module._parameters.update(params)
            _refresh_rnn_weights(module)

    def split(self, root: nn.Module) -> tuple[PerUse, PerUse]:
        """Per-use gradients and labels for every parameter name, aliases included.

        Nothing is computed here: each name's lists are made when first read, from the
        ``.grad`` each parameter has now.
        """
        by_param: dict[int, _Split] = {}
        splits = {}
        for name, param in root.named_parameters(remove_duplicate=False):
            if id(param) not in by_param:
                by_param[id(param)] = _Split(param.grad, self._uses.get(id(param), []))
            splits[name] = by_param[id(param)]
        return PerUse(splits, 0), PerUse(splits, 1)

    def _before(self, module: nn.Module, args) -> None:
        self._calls[module] = count = self._calls.get(module, 0) + 1
        if not self._saved[module]:  # outermost call: lazy params are materialized by now
            self._real[module] = dict(module._parameters)
        self._saved[module].append(dict(module._parameters))
        for name, param in self._real[module].items():
            if param is None or not (param.requires_grad and torch.is_grad_enabled()):
                continue
            view = param.view_as(param)
            use = _Use(f"call {count} of {self._describe(module)}")
            view.register_hook(use.capture)
            self._uses.setdefault(id(param), []).append(use)
            module._parameters[name] = view

    def _after(self, module: nn.Module, args, output) -> None:
        if self._saved.get(module):
            module._parameters.update(self._saved[module].pop())
            _refresh_rnn_weights(module)
        if isinstance(output, (tuple, list)) and output:
            output = output[0]
        if isinstance(output, torch.Tensor):
            for path in self.paths[module]:
                self.output_shapes[path] = tuple(output.shape)

    def _describe(self, module: nn.Module) -> str:
        first, *others = self.paths[module]
        name = "the root module" if first == "" else f"module {first}"
        return f"{name} (also at {', '.join(others)})" if others else name


@torch.no_grad()
def _split(grad: torch.Tensor | None, uses: list[_Use]) -> tuple[list[torch.Tensor], list[str]]:
    """Each use's gradient and label, plus the remainder of ``grad`` that no use explains."""
    if grad is None:
        return [], []
    labels = [use.label for use in uses]
    parts = [use.grad if use.grad is not None else torch.zeros_like(grad) for use in uses]
    if len(parts) == 1 and _same_values(parts[0], grad):
        return [grad], labels  # autograd stored the one use's gradient as .grad
    rest = _unexplained(grad, parts)
    if rest is not None:
        parts.append(rest)
        labels.append(OUTSIDE_LABEL)
    return parts, labels


def _same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` and ``b`` are views of the same memory with the same layout."""
    return (
        a.data_ptr() == b.data_ptr()
        and a.shape == b.shape
        and a.stride() == b.stride()
        and a.dtype == b.dtype
    )


def _unexplained(grad: torch.Tensor, parts: list[torch.Tensor]) -> torch.Tensor | None:
    """``grad`` minus the sum of ``parts``, or None when that difference is rounding noise.

    No parts: ``grad`` itself (no copy) unless it is all zeros. One part equal to ``grad``
    costs one comparison; otherwise the difference is made in place on one temporary.
    """
    if not parts:
        return grad if bool(grad.any()) else None
    if len(parts) == 1 and torch.equal(grad, parts[0]):
        return None
    rest = grad.clone()
    for part in parts:
        rest.sub_(part)
    if not bool(rest.any()):
        return None
    magnitude = parts[0].abs()
    for part in parts[1:]:
        magnitude.add_(part.abs())
    magnitude.mul_(4 * (len(parts) + 1) * torch.finfo(grad.dtype).eps)
    return rest if bool((rest.abs() > magnitude).any()) else None


def _refresh_rnn_weights(module: nn.Module) -> None:
    """RNN modules cache their weights in ``_flat_weights``; make them re-read the swap."""
    if isinstance(module, nn.RNNBase):
        module._update_flat_weights()


@torch.no_grad()
def uses_sum_error(uses: list[torch.Tensor], grad: torch.Tensor) -> float:
    """Largest absolute difference between the sum of a tensor's uses and its ``.grad``."""
    rest = grad.detach().clone()
    for use in uses:
        rest.sub_(use)
    return float(rest.abs().max()) if rest.numel() else 0.0


@torch.no_grad()
def use_scale(uses: list[torch.Tensor], grad: torch.Tensor) -> float:
    """One colour range for the uses and their total: the 99th percentile of |value| over
    the cells their heatmaps draw (``explorer.reduce.colour_limit``), so one large use does
    not wash out the others. ``explorer.figures.uses_heatmaps`` draws them with it."""
    return colour_limit(downsample(t)[0] for t in [*uses, grad])
