"""Why initialization matters: the signal through depth, and the symmetry a constant init keeps.

``signal_through_depth`` runs one batch forward and backward and records, layer by layer in
the order they run, the mean and std of each layer's output and the gradient norm of each
layer's parameters. ``compare`` does it for the same model under several rule sets, so
normal(0, 0.01) can be set against xavier_uniform and kaiming: with small weights the
activations shrink layer after layer until nothing reaches the output, and the gradients
of the first layers vanish with them.

``symmetry`` initializes every weight of a layer to one constant and trains: every hidden
unit then computes the same value and receives the same gradient, so the rows of each
weight stay identical (``distinct_rows`` is 1), however long it trains.

Example::

    exp = Experiment.from_preset("deep_mlp")
    normal, kaiming = compare(exp, {"normal": RULE_SETS["normal"], "kaiming": RULE_SETS["kaiming"]})
    normal.layers[-1].act_std, kaiming.layers[-1].act_std     # ~1e-12 and ~0.5
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.core.slots import heavy
from explorer.engine.run import InputKind, check_activations, run
from explorer.engine.tasks import Task
from explorer.engine.train import TrainSettings, train_op
from explorer.session.experiment import Experiment, Ran
from explorer.session.state import batch as state_batch
from explorer.session.state import realize

__all__ = [
    "RULE_SETS",
    "RULE_LABELS",
    "LayerSignal",
    "DepthProfile",
    "SymmetryRow",
    "signal_through_depth",
    "compare",
    "distinct_rows",
    "constant_rules",
    "symmetry",
    "DEPTH_BATCH",
]

DEPTH_BATCH = 256  # examples in the batch whose signal is followed through the layers
_ZERO_BIAS = {"init": "zeros", "target": "*.bias"}
RULE_SETS: dict[str, tuple[dict, ...]] = {
    "normal": ({"init": "normal", "target": "*.weight", "mean": 0.0, "std": 0.01}, _ZERO_BIAS),
    "xavier": ({"init": "xavier_uniform", "target": "*.weight"}, _ZERO_BIAS),
    "kaiming": (
        {"init": "kaiming_normal", "target": "*.weight", "nonlinearity": "relu"},
        _ZERO_BIAS,
    ),
    "default": ({"init": "default", "target": "*"},),
}
RULE_LABELS = {
    "normal": "normal(0, 0.01)",
    "xavier": "xavier_uniform",
    "kaiming": "kaiming_normal (ReLU)",
    "default": "PyTorch's default",
    "current": "the current rules",
}


@dataclass(frozen=True)
class LayerSignal:
    """One layer call: its output's mean and std, and its parameters' gradient norm."""

    name: str  # "4 Linear"; a module called twice appears twice ("2 Linear, call 2")
    act_mean: float
    act_std: float
    grad_norm: float | None  # ‖∇‖ over the layer's own parameters; None without any


@dataclass(frozen=True)
class DepthProfile:
    """The signal through one model's layers under one rule set."""

    label: str
    layers: tuple[LayerSignal, ...]
    loss: float

    def __repr__(self) -> str:
        last = self.layers[-1] if self.layers else None
        tail = f", last std {last.act_std:.3g}" if last else ""
        return f"DepthProfile({self.label}, {len(self.layers)} layers{tail})"


def signal_through_depth(
    module: nn.Module,
    x: torch.Tensor,
    loss: str = "sum",
    label: str = "",
    limits: Limits = DEFAULT_LIMITS,
) -> DepthProfile:
    """Run ``x`` forward and backward once; each leaf layer's output stats and grad norm.

    The layers' ``.grad`` hold this pass's gradients afterwards; hooks are removed.
    """
    calls: list[tuple[nn.Module, str, float, float]] = []
    count: dict[nn.Module, int] = {}
    paths: dict[nn.Module, str] = {}
    for path, m in module.named_modules():
        paths.setdefault(m, path)

    def note(m: nn.Module, args, output) -> None:
        if m not in paths:
            return
        if isinstance(output, tuple | list):
            output = output[0]
        if not isinstance(output, torch.Tensor) or not output.is_floating_point():
            return
        count[m] = count.get(m, 0) + 1
        name = f"{paths[m]} {type(m).__name__}" + (f", call {count[m]}" if count[m] > 1 else "")
        values = output.detach().float()
        calls.append((m, name, float(values.mean()), float(values.std(unbiased=False))))

    check_activations(module, x, limits, backward=True)  # on a meta twin, before any hook
    leaves = [m for m in module.modules() if not list(m.children())]
    handles = [m.register_forward_hook(note) for m in leaves]
    try:
        result = run(module, x, loss=loss, backward=True, limits=limits, probe=False)
    finally:
        for handle in handles:
            handle.remove()
    layers = tuple(LayerSignal(name, mean, std, _grad_norm(m)) for m, name, mean, std in calls)
    return DepthProfile(label, layers, result.loss)


def _grad_norm(m: nn.Module) -> float | None:
    grads = [p.grad for p in m.parameters(recurse=False) if p.grad is not None]
    if not grads:
        return None
    flat = torch.cat([g.detach().reshape(-1) for g in grads]).double()
    return float(torch.linalg.vector_norm(flat))


def compare(
    experiment: Experiment,
    rule_sets: Mapping[str, tuple | list],
    limits: Limits = DEFAULT_LIMITS,
    batch: int = DEPTH_BATCH,
) -> list[DepthProfile]:
    """The experiment's model under each rule set (keyed by label), on one batch of ``batch``.

    Each model is built and initialized afresh with the experiment's seed; the batch is
    drawn with the same seed, so the profiles differ only by their rules.
    """
    _has_values(experiment)
    profiles = []
    for label, rules in rule_sets.items():
        exp = experiment.replace(rules=tuple(rules), ops=(), ran=Ran.NONE, materialized=True)
        with heavy(limits):
            state = realize(exp, limits)
            x = state_batch(exp, state.device, exp.dtype, limits, size=batch)
            profiles.append(signal_through_depth(state.module, x, exp.loss, label, limits))
    return profiles


def _has_values(exp: Experiment) -> None:
    if exp.device == "meta":
        raise SpecError(
            "the model is on the meta device: it has shapes but no values to run; "
            "pick a real device",
            "device",
        )


def distinct_rows(t: torch.Tensor) -> int:
    """How many different rows a tensor has (exactly equal rows count once); 1-D: values."""
    t = t.detach()
    rows = t.reshape(t.shape[0], -1) if t.dim() > 1 else t.reshape(-1, 1)
    return int(torch.unique(rows, dim=0).shape[0])


def constant_rules(value: float) -> tuple[dict, ...]:
    """Every weight set to ``value`` and every bias to 0: the chapter's ``init_constant``."""
    return ({"init": "constant", "target": "*.weight", "value": float(value)}, _ZERO_BIAS)


@dataclass(frozen=True)
class SymmetryRow:
    """One weight: its rows, how many differ, in its values and gradient, before and after."""

    name: str
    rows: int
    values_before: int
    grads_before: int
    values_after: int
    output: bool = False  # the last layer: each row (output) has its own target, so they part


def symmetry(
    experiment: Experiment,
    value: float,
    steps: int = 20,
    limits: Limits = DEFAULT_LIMITS,
) -> list[SymmetryRow]:
    """Initialize every weight to ``value`` (biases 0), run a backward pass, train ``steps``.

    Returns, for each weight of 2 or more dimensions in ``named_parameters`` order (the last
    is taken as the output layer), the distinct rows of its values and gradient at the
    start and of its values after training (the teacher task, or next token
    for token models; SGD with lr 0.05 and momentum 0.9).
    """
    _has_values(experiment)
    if not math.isfinite(value):
        raise SpecError(f"must be a finite number, got {value!r}", "value")
    exp = experiment.replace(
        rules=constant_rules(value), ops=(), ran=Ran.BACKWARD, materialized=True
    )
    state = realize(exp, limits)
    tokens = exp.input_kind == InputKind.TOKENS
    task = Task.NEXT_TOKEN if tokens else Task.TEACHER
    op = TrainSettings(task=task, steps=steps, lr=0.05, momentum=0.9).op(
        exp.input_shape[1:], exp.vocab, exp.seed
    )
    trained, _ = train_op(state.module, op, limits)
    weights = [
        (n, p) for n, p in state.module.named_parameters() if p.dim() >= 2 and p.grad is not None
    ]
    return [
        SymmetryRow(
            name,
            p.shape[0],
            distinct_rows(p),
            distinct_rows(p.grad),
            distinct_rows(trained.get_parameter(name)),
            output=i == len(weights) - 1,
        )
        for i, (name, p) in enumerate(weights)
    ]
