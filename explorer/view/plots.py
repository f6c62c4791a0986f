"""The app's heatmap and histogram of a tensor or a named parameter, for notebooks.

Example::

    import explorer
    net = explorer.build(explorer.PRESETS["tied"].spec)
    explorer.heatmap("2.weight", net)               # as the Explore tab draws it
    explorer.histogram(net[0].weight, net)          # found by identity: "0.weight histogram"
    explorer.histogram("0.weight", net, rule={"init": "xavier_uniform"})  # with its overlay
"""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go
import torch
from torch import nn
from torch.nn.parameter import is_lazy

from explorer.core.errors import ExplorerError, SpecError
from explorer.init.initializers import expected
from explorer.init.rules import check_rules
from explorer.view import figures

__all__ = ["heatmap", "histogram"]

DEFAULT_RULE = {"init": "default"}  # what the app assumes when no rule set a parameter


def heatmap(
    tensor_or_name: torch.Tensor | str,
    module: nn.Module | None = None,
    *,
    grad: bool = False,
    highlight: tuple[int, int] | None = None,
) -> go.Figure:
    """The heatmap the app draws for a parameter (by name in ``module``) or any tensor.

    ``grad=True`` draws the parameter's ``.grad`` instead, titled ``"<name>.grad"``.
    Example: ``explorer.heatmap("0.weight", net)``
    """
    name, tensor, _ = _resolve(tensor_or_name, module)
    if grad:
        return figures.heatmap(_grad_of(name, tensor), f"{name}.grad", highlight=highlight)
    return figures.heatmap(_values_of(name, tensor), f"{name} values", highlight=highlight)


def histogram(
    tensor_or_name: torch.Tensor | str,
    module: nn.Module | None = None,
    *,
    grad: bool = False,
    rule: Mapping | None = None,
    overlay: bool = True,
    bins: int | None = None,
) -> go.Figure:
    """The histogram the app draws, over the density the parameter's initializer should give.

    The overlay is ``rule``'s (a rule as ``explorer.initialize`` takes it); without one, a
    named parameter gets PyTorch's default initialization for its layer, as in the app.
    ``overlay=False`` draws the bars alone; a gradient (``grad=True``) never has one.
    Example: ``explorer.histogram("0.weight", net, rule={"init": "xavier_uniform"})``
    """
    name, tensor, owner = _resolve(tensor_or_name, module)
    if grad:
        return figures.histogram(_grad_of(name, tensor), f"{name}.grad histogram", bins=bins)
    values = _values_of(name, tensor)
    chosen = DEFAULT_RULE if owner is not None else None
    if rule is not None:
        chosen = check_rules([rule])[0]  # options filled in and checked, as initialize does
    local = name.rpartition(".")[2]
    density = expected(chosen, values, owner, local) if overlay and chosen else None
    return figures.histogram(values, f"{name} histogram", bins=bins, expected=density)


def _resolve(
    tensor_or_name: torch.Tensor | str, module: nn.Module | None
) -> tuple[str, torch.Tensor, nn.Module | None]:
    """The display name, the tensor, and the module that owns it (None for a loose tensor)."""
    if isinstance(tensor_or_name, str):
        if module is None:
            raise SpecError("a parameter name needs its module: heatmap(name, module)", "module")
        return tensor_or_name, _parameter(module, tensor_or_name), _owner(module, tensor_or_name)
    if not isinstance(tensor_or_name, torch.Tensor):
        kind = type(tensor_or_name).__name__
        raise SpecError(f"must be a tensor or a parameter name, got {kind}", "tensor_or_name")
    if module is not None:
        for name, param in module.named_parameters(remove_duplicate=False):
            if param is tensor_or_name:
                return name, tensor_or_name, _owner(module, name)
    return f"tensor {tuple(tensor_or_name.shape)}", tensor_or_name, None


def _parameter(module: nn.Module, name: str) -> torch.Tensor:
    names = [n for n, _ in module.named_parameters(remove_duplicate=False)]
    if name not in names:
        shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
        raise SpecError(f"no parameter is named {name!r}; parameters: {shown}", "name")
    return module.get_parameter(name)


def _owner(module: nn.Module, name: str) -> nn.Module:
    path = name.rpartition(".")[0]
    return module.get_submodule(path) if path else module


def _values_of(name: str, tensor: torch.Tensor) -> torch.Tensor:
    if is_lazy(tensor):
        raise ExplorerError(f"{name}: shape unknown until the first forward pass; run one first")
    return tensor


def _grad_of(name: str, tensor: torch.Tensor) -> torch.Tensor:
    if tensor.grad is None:
        raise ExplorerError(f"{name}: no gradient yet; run a forward and backward pass first")
    return tensor.grad
