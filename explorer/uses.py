"""Per-use gradients: each call of a module gets its own view of the module's parameters.

A parameter used twice (a tied layer) then has two gradients, one per call, whose sum is
its ``.grad``; this is the chapter's "the gradients ... are added together", made visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from explorer.reduce import colour_limit, downsample

__all__ = ["OUTSIDE_LABEL", "UseRecorder", "uses_sum_error", "use_scale"]

OUTSIDE_LABEL = "outside its module's forward"


@dataclass
class _Use:
    """One module call: its label, and the gradient that call sent to one parameter."""

    label: str
    grad: torch.Tensor | None = None

    def capture(self, grad: torch.Tensor) -> None:
        self.grad = grad.detach().clone()


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

    def split(self, root: nn.Module) -> tuple[dict, dict]:
        """Per-use gradients and labels for every parameter name, aliases included."""
        by_param: dict[int, tuple[list, list]] = {}
        grads, labels = {}, {}
        for name, param in root.named_parameters(remove_duplicate=False):
            if id(param) not in by_param:
                by_param[id(param)] = self._split_one(param)
            grads[name], labels[name] = (list(part) for part in by_param[id(param)])
        return grads, labels

    def _split_one(self, param: nn.Parameter) -> tuple[list, list]:
        if param.grad is None:
            return [], []
        uses = self._uses.get(id(param), [])
        grads = [u.grad if u.grad is not None else torch.zeros_like(param.grad) for u in uses]
        labels = [u.label for u in uses]
        rest = _unexplained(param.grad.detach(), grads)
        if rest is not None:
            grads.append(rest)
            labels.append(OUTSIDE_LABEL)
        return grads, labels

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


def _unexplained(grad: torch.Tensor, parts: list[torch.Tensor]) -> torch.Tensor | None:
    """``grad`` minus the sum of ``parts``, or None when that difference is rounding noise.

    The common cases stay cheap: one use equal to ``grad`` costs one comparison, and the
    general case works in place on a single temporary.
    """
    if not parts:
        return grad.clone() if bool(grad.any()) else None
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
    return float((torch.stack(list(uses)).sum(0) - grad).abs().max())


@torch.no_grad()
def use_scale(uses: list[torch.Tensor], grad: torch.Tensor) -> float:
    """One colour range for the uses and their total: the 99th percentile of |value| over
    the cells their heatmaps draw (``explorer.reduce.colour_limit``), so one large use does
    not wash out the others. ``explorer.figures.uses_heatmaps`` draws them with it."""
    return colour_limit(downsample(t)[0] for t in [*uses, grad])
