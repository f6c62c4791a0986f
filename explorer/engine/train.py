"""Training a model in place, watching every parameter as it learns (the chapter's exercise).

``train`` runs a plain PyTorch loop (SGD with momentum, or Adam) on a task from
``explorer.engine.tasks`` and records, per step and cheaply: the loss; each tensor's value norm,
gradient norm and update-to-value ratio ‖Δw‖/‖w‖; and for a tied tensor the gradient norm
of each use (``explorer.engine.uses.UseRecorder``), whose sum is its ``.grad``. Snapshots of
chosen parameters are kept at a bounded number of steps, their memory checked first.

The loop is deterministic. Batches are drawn with replacement from
``torch.Generator().manual_seed(seed)``: per step, ``randint(0, N, (batch_size,))`` and
then one step seed ``randint(0, 2**62, (1,))``, with which the forward and backward pass
run (``explorer.core.rng.seeded``) when the model draws random numbers (``draws_random``: dropout),
so dropout draws repeat too. The same seed on the CPU gives
a bit-identical loss curve and final values; tests/test_train.py checks this against a
loop written in plain PyTorch.

Example::

    net = explorer.build(explorer.PRESETS["tied"].spec)
    net(torch.rand(2, 4))                       # lazy layers get their shapes
    data = make_task("regression", net, input_shape=(4,))
    log = train(net, data, steps=200, optimizer="sgd", lr=0.05, momentum=0.9)
    log.loss[-1] < log.loss[0]                  # tensor(True)
    log.use_norm["2.weight"][-1]                # the gradient norm of each use, last step
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from enum import StrEnum

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.core.pycode import number_text
from explorer.core.rebind import distinct_parameters, with_tensors
from explorer.core.rng import seeded
from explorer.core.slots import heavy
from explorer.engine.run import check_activations, training_mode
from explorer.engine.tasks import Dataset, Task, make_task, task_loss
from explorer.engine.uses import UseRecorder
from explorer.spec.fields import Field, Kind, check_fields

__all__ = [
    "Optimizer",
    "Record",
    "Progress",
    "TrainLog",
    "TrainSettings",
    "train",
    "make_optimizer",
    "frame_steps",
    "draws_random",
    "norms",
    "check_train_op",
    "train_op",
    "optimizer_line",
    "TRAIN_FIELDS",
]

STEP_SEED_HIGH = 2**62


class Optimizer(StrEnum):
    """``torch.optim.SGD`` (with ``momentum``) or ``torch.optim.Adam``."""

    SGD = "sgd"
    ADAM = "adam"


# A training run's settings, as a train op records them (``explorer.session.ops``).
TRAIN_FIELDS = (
    Field("task", Kind.CHOICE, "the data set", True, choices=tuple(Task)),
    Field("optimizer", Kind.CHOICE, "the optimizer", True, choices=tuple(Optimizer)),
    Field(
        "lr",
        Kind.NUMBER,
        "the learning rate",
        True,
        lo=0,
        lo_open=True,
        hi="max_lr",
        range_words="in ({lo}, {hi}]",
    ),
    Field(
        "momentum",
        Kind.NUMBER,
        "SGD's momentum",
        True,
        lo=0,
        hi=1,
        hi_open=True,
        range_words="in [{lo}, {hi})",
    ),
    Field("batch_size", Kind.WHOLE, "examples per step", True, hi="max_train_batch"),
    Field("steps", Kind.WHOLE, "steps", True, lo=0, hi="max_train_steps"),
    Field("seed", Kind.WHOLE, "the data's seed", True, lo=0, hi="max_seed"),
    Field("input", Kind.SHAPE, "one example's shape", True, hi="max_train_example_dims"),
    Field("vocab", Kind.WHOLE, "token ids' range", True, hi="max_embeddings", nullable=True),
)
_OP = Field("op", Kind.CHOICE, "a training run", True, choices=("train",))


@dataclass(frozen=True)
class Record:
    """What a run keeps besides the per-step norms.

    ``params``: the parameters to snapshot (any alias); None snapshots every tensor that
    still fits ``limits.max_snapshot_bytes``, in ``parameters()`` order. ``frames``: at most
    this many snapshots, evenly spaced from before the first step to after the last (None:
    ``limits.max_snapshot_frames``). ``uses``: the gradient norm of each use of a tied tensor.
    """

    params: tuple[str, ...] | None = None
    frames: int | None = None
    uses: bool = True


@dataclass(frozen=True)
class Progress:
    """What ``on_step`` is told after each finished step."""

    done: int
    steps: int
    loss: float


@dataclass(frozen=True, eq=False)
class TrainLog:
    """What a run recorded; tensors are on the CPU, one row per finished step.

    Columns of ``value_norm``, ``grad_norm`` and ``update_ratio`` follow ``names`` (each
    distinct tensor by its first name; ``aliases`` lists all of its names). ``value_norm``
    is ‖w‖ after the step, ``update_ratio`` is ‖w_after − w_before‖ / ‖w_before‖ (nan where
    ‖w_before‖ is 0). ``use_norm[name]`` has one column per use (``use_labels[name]``) of a
    tied tensor. ``snapshots[name][i]`` holds the values after step ``frames[i]`` (0: before
    training).
    """

    settings: Mapping
    names: tuple[str, ...]
    aliases: Mapping[str, tuple[str, ...]]
    loss: torch.Tensor
    value_norm: torch.Tensor
    grad_norm: torch.Tensor
    update_ratio: torch.Tensor
    use_labels: Mapping[str, tuple[str, ...]]
    use_norm: Mapping[str, torch.Tensor]
    frames: tuple[int, ...]
    snapshots: Mapping[str, torch.Tensor]
    stopped: bool = False
    _keys: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        for key, names in self.aliases.items():
            self._keys.update(dict.fromkeys(names, key))

    def __repr__(self) -> str:
        last = f", loss {float(self.loss[0]):.4g} → {float(self.loss[-1]):.4g}" if self.done else ""
        return (
            f"TrainLog({self.settings.get('task')}, {self.done}/{self.settings.get('steps')} "
            f"steps{last}, {len(self.names)} tensors, {len(self.frames)} frames"
            f"{', stopped' if self.stopped else ''})"
        )

    @property
    def done(self) -> int:
        """Steps finished (fewer than asked when the run was stopped)."""
        return self.loss.shape[0]

    def key(self, name: str) -> str | None:
        """The name this log keys a parameter by (its first name), for any of its aliases."""
        return self._keys.get(name)

    def column(self, name: str) -> int:
        """The column of a parameter (any alias) in the norm tables."""
        return self.names.index(self._keys[name])

    def snapshot(self, name: str, frame: int) -> torch.Tensor | None:
        """The values of a parameter (any alias) at frame ``frame``; None if not snapshotted."""
        key = self._keys.get(name)
        frames = self.snapshots.get(key) if key is not None else None
        return None if frames is None else frames[frame]


@dataclass(frozen=True)
class TrainSettings:
    """The settings of a training run in the app; ``seed`` None uses the experiment's."""

    task: str = Task.REGRESSION
    optimizer: str = Optimizer.SGD
    lr: float = 0.05
    momentum: float = 0.9
    batch_size: int = 32
    steps: int = 200
    seed: int | None = None

    def op(self, input_shape: tuple[int, ...], vocab: int | None, seed: int) -> dict:
        """The train op this run records: the settings and the example shape of the batch."""
        return {
            "op": "train",
            "task": str(self.task),
            "optimizer": str(self.optimizer),
            "lr": float(self.lr),
            "momentum": float(self.momentum),
            "batch_size": int(self.batch_size),
            "steps": int(self.steps),
            "seed": int(seed if self.seed is None else self.seed),
            "input": [int(n) for n in input_shape],
            "vocab": None if self.task != Task.NEXT_TOKEN else vocab,
        }


def train(
    module: nn.Module,
    task: Dataset,
    steps: int,
    optimizer: str = "sgd",
    lr: float = 0.1,
    momentum: float = 0.0,
    batch_size: int = 32,
    seed: int = 0,
    record: Record | None = None,
    on_step: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> TrainLog:
    """Train ``module`` in place on ``task`` (from ``make_task``) and return what it recorded.

    Every check (settings, lazy layers, activation memory of a batch, snapshot memory) runs
    before the first step. ``should_stop()`` is asked before each step; the run then ends
    with the model at the last finished step. ``on_step(Progress)`` follows each step.
    Training flags are restored afterwards; ``.grad`` holds the last step's gradients.
    """
    record = record or Record()
    settings = _check(steps, optimizer, lr, momentum, batch_size, seed, limits)
    settings["task"] = task.task
    named = distinct_parameters(module)
    if any(is_lazy(p) for _, p in named):
        raise SpecError("the model has lazy layers: run a forward pass first", "train")
    check_activations(module, task.x[:batch_size], limits, backward=True)
    params = [p for _, p in named]
    frames = frame_steps(steps, record.frames or limits.max_snapshot_frames)
    snapshots = _snapshot_buffers(named, module, record, len(frames), limits)
    aliases = _aliases(module, named)
    tied = [key for key, names in aliases.items() if len(names) > 1] if record.uses else []
    stochastic = draws_random(module)
    opt = make_optimizer(optimizer, [p for p in params if p.requires_grad], lr, momentum)
    watch, rows, taken = _Watch(params), _Rows(), []
    order = torch.Generator().manual_seed(seed)
    stopped = False
    with training_mode(module, True):
        _take(snapshots, named, taken, 0)
        for step in range(steps):
            if should_stop is not None and should_stop():
                stopped = True
                break
            index = torch.randint(0, len(task), (batch_size,), generator=order)
            step_seed = int(torch.randint(0, STEP_SEED_HIGH, (1,), generator=order))
            seeds = seeded(step_seed) if stochastic else nullcontext()
            loss, uses = _step(module, task, index, seeds, opt, watch, tied, rows)
            rows.add_uses(tied, uses)
            if step + 1 in frames:
                _take(snapshots, named, taken, step + 1)
            if on_step is not None:
                on_step(Progress(step + 1, steps, float(loss)))
        done = len(rows.loss)
        if done and (not taken or taken[-1] != done):
            _take(snapshots, named, taken, done)  # a stopped run: its last finished step
    return rows.log(settings, named, aliases, tied, taken, snapshots, stopped)


def make_optimizer(kind: str, params: list[nn.Parameter], lr: float, momentum: float):
    """``torch.optim.SGD(params, lr, momentum)`` or ``torch.optim.Adam(params, lr)``."""
    if kind == Optimizer.ADAM:
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=momentum)


def frame_steps(steps: int, frames: int) -> tuple[int, ...]:
    """At most ``frames`` steps, evenly spaced from 0 (before training) to ``steps``."""
    count = max(1, min(frames, steps + 1))
    if count == 1:
        return (0,)
    return tuple(sorted({round(i * steps / (count - 1)) for i in range(count)}))


def draws_random(module: nn.Module) -> bool:
    """Whether a forward pass may draw random numbers: dropout, or a layer we do not know."""
    for m in module.modules():
        rate = m.p if isinstance(m, _DROPOUTS) else getattr(m, "dropout", None)
        known = type(m).__module__.startswith(("torch.nn.", "explorer."))
        if not known or (isinstance(rate, float) and rate > 0):
            return True
    return False


_DROPOUTS = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


def _step(module, task, index, seeds, opt, watch, tied, rows):
    """One optimizer step on the batch ``index``; appends the step's norms to ``rows``."""
    x, y = task.x[index.to(task.x.device)], task.y[index.to(task.y.device)]
    opt.zero_grad(set_to_none=True)
    uses = {}
    with seeds:
        if tied:
            with UseRecorder(module) as recorder:
                loss = task_loss(task.loss, module(x), y)
                loss.backward()
            grads, labels = recorder.split()  # read now: autograd's own tensors
            uses = {key: ([_norm(g) for g in grads[key]], labels[key]) for key in tied}
        else:
            loss = task_loss(task.loss, module(x), y)
            loss.backward()
    grad_norm = norms([p.grad for p in watch.grads_of])
    value_norm, ratio = watch.step(opt)
    rows.add(loss.detach(), value_norm, grad_norm, ratio)
    return loss.detach(), uses


class _Watch:
    """The parameters' values before each step, kept in one buffer, for ‖Δw‖ and ‖w‖."""

    def __init__(self, params: list[nn.Parameter]):
        self.grads_of = params
        self.params = [p.detach() for p in params]
        with torch.no_grad():
            self.before = [p.clone() for p in self.params]
        self.norm = norms(self.before)  # ‖w‖ before the next step

    def step(self, opt) -> tuple[torch.Tensor, torch.Tensor]:
        """Run ``opt.step()``; return ‖w‖ after it and ‖w_after − w_before‖ / ‖w_before‖."""
        with torch.no_grad():
            opt.step()
            torch._foreach_sub_(self.before, self.params)  # w_before - w_after
            update = norms(self.before)
            torch._foreach_copy_(self.before, self.params)
            value = norms(self.params)
        old, self.norm = self.norm, value
        ratio = torch.where(old > 0, update / old, torch.full_like(old, math.nan))
        return value, ratio


def norms(tensors: list[torch.Tensor | None]) -> torch.Tensor:
    """‖t‖₂ of each tensor as one float32 CPU vector (0 for a missing gradient).

    Tensors in float32 or float64 are measured in one fused call; half precision is
    measured in float32, one tensor at a time.
    """
    out = torch.zeros(len(tensors), dtype=torch.float32)
    wide = [(i, t.detach()) for i, t in enumerate(tensors) if t is not None and t.dtype in _WIDE]
    if wide:
        values = torch._foreach_norm([t for _, t in wide])
        out[[i for i, _ in wide]] = torch.stack(values).float().cpu()
    for i, t in enumerate(tensors):
        if t is not None and t.dtype not in _WIDE:
            out[i] = torch.linalg.vector_norm(t.detach().float()).cpu()
    return out


_WIDE = (torch.float32, torch.float64)


def _norm(t: torch.Tensor | None) -> torch.Tensor:
    """‖t‖₂ as a float32 CPU scalar (0 for a missing gradient)."""
    return norms([t])[0]


class _Rows:
    """Per-step records, stacked into tensors at the end."""

    def __init__(self):
        self.loss, self.value, self.grad, self.ratio = [], [], [], []
        self.uses: dict[str, list[torch.Tensor]] = {}
        self.labels: dict[str, tuple[str, ...]] = {}

    def add(self, loss, value, grad, ratio) -> None:
        self.loss.append(loss.float().cpu())
        self.value.append(value)
        self.grad.append(grad)
        self.ratio.append(ratio)

    def add_uses(self, tied: list[str], uses: dict) -> None:
        for key in tied:
            norms, labels = uses[key]
            width = len(self.labels.setdefault(key, tuple(labels)))
            row = torch.full((width,), math.nan)
            norms = norms[:width]
            if norms:
                row[: len(norms)] = torch.stack(norms)
            self.uses.setdefault(key, []).append(row)

    def log(self, settings, named, aliases, tied, taken, snapshots, stopped) -> TrainLog:
        width = len(named)

        def stack(rows: list, shape: tuple) -> torch.Tensor:
            return torch.stack(rows) if rows else torch.empty(shape)

        return TrainLog(
            settings=settings,
            names=tuple(name for name, _ in named),
            aliases=aliases,
            loss=stack(self.loss, (0,)),
            value_norm=stack(self.value, (0, width)),
            grad_norm=stack(self.grad, (0, width)),
            update_ratio=stack(self.ratio, (0, width)),
            use_labels={key: self.labels.get(key, ()) for key in tied},
            use_norm={key: stack(self.uses.get(key, []), (0, 0)) for key in tied},
            frames=tuple(taken),
            snapshots={key: frames[: len(taken)] for key, frames in snapshots.items()},
            stopped=stopped,
        )


def _aliases(module: nn.Module, named) -> dict[str, tuple[str, ...]]:
    first = {id(p): name for name, p in named}
    names: dict[str, list[str]] = {name: [] for name, _ in named}
    for name, p in module.named_parameters(remove_duplicate=False):
        names[first[id(p)]].append(name)
    return {key: tuple(value) for key, value in names.items()}


def _snapshot_buffers(named, module, record: Record, frames: int, limits: Limits) -> dict:
    """Room for the snapshots on the CPU, its size checked against the budget first."""
    budget = limits.max_snapshot_bytes
    if record.params is None:
        chosen, used = [], 0
        for name, p in named:
            size = frames * p.numel() * p.element_size()
            if used + size <= budget:
                chosen.append((name, p))
                used += size
    else:
        keys = {id(module.get_parameter(n)) for n in _known(module, record.params)}
        chosen = [(name, p) for name, p in named if id(p) in keys]
        used = sum(frames * p.numel() * p.element_size() for _, p in chosen)
        if used > budget:
            raise SpecError(
                f"{frames} snapshots of {', '.join(n for n, _ in chosen)} need {used:,} bytes; "
                f"the limit is {budget:,}: snapshot fewer parameters or fewer frames",
                "record.params",
            )
    return {name: torch.empty((frames, *p.shape), dtype=p.dtype) for name, p in chosen}


def _known(module: nn.Module, names: tuple[str, ...]) -> tuple[str, ...]:
    everything = dict(module.named_parameters(remove_duplicate=False))
    for name in names:
        if name not in everything:
            raise SpecError(f"no parameter is named {name!r}", "record.params")
    return names


def _take(snapshots: dict, named, taken: list[int], step: int) -> None:
    """Copy the snapshotted parameters' values into the next frame."""
    i = len(taken)
    params = dict(named)
    for key, frames in snapshots.items():
        if i < frames.shape[0]:
            frames[i].copy_(params[key].detach())
    taken.append(step)


def _check(steps, optimizer, lr, momentum, batch_size, seed, limits: Limits) -> dict:
    """The run's settings, each checked; ``SpecError`` names the setting and its range."""
    settings = {
        "optimizer": optimizer,
        "lr": lr,
        "momentum": momentum,
        "batch_size": batch_size,
        "steps": steps,
        "seed": seed,
    }
    check_fields(settings, TRAIN_FIELDS, "", limits, partial=True)
    return {**settings, "optimizer": str(optimizer), "lr": float(lr), "momentum": float(momentum)}


# --- the train op: a run recorded in an experiment, replayed exactly ---


def check_train_op(op: Mapping, where: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Check a recorded training run: every setting, the example shape and the vocabulary."""
    check_fields(op, (_OP, *TRAIN_FIELDS), where, limits)


def _has_values(module: nn.Module) -> None:
    if any(p.device.type == "meta" for p in module.parameters()):
        raise SpecError(
            "the model is on the meta device: it has shapes but no values to train; "
            "pick a real device",
            "device",
        )


def train_op(
    module: nn.Module,
    op: Mapping,
    limits: Limits = DEFAULT_LIMITS,
    on_step: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_wait: Callable[[int], None] | None = None,
) -> tuple[nn.Module, TrainLog]:
    """Run a recorded training run on a copy of ``module``'s tensors; ``module`` is untouched.

    The data is the task drawn with ``op["seed"]``, the batches are drawn with
    ``op["seed"] + 1``. The copy holds cloned parameters and buffers (one copy of what
    training changes); its ``.grad``s are None afterwards. The run waits for a heavy-work
    slot (``explorer.core.slots.heavy``).
    """
    check_train_op(op, "train", limits)
    _has_values(module)
    data = make_task(
        op["task"], module, tuple(op["input"]), vocab=op["vocab"], seed=op["seed"], limits=limits
    )
    fresh = {name: p.detach().clone() for name, p in distinct_parameters(module)}
    copy = with_tensors(module, fresh, clone_buffers=True)
    with heavy(limits, on_wait):
        log = train(
            copy,
            data,
            op["steps"],
            op["optimizer"],
            op["lr"],
            op["momentum"],
            op["batch_size"],
            op["seed"] + 1,
            on_step=on_step,
            should_stop=should_stop,
            limits=limits,
        )
    copy.zero_grad(set_to_none=True)
    return copy, log


def optimizer_line(op: Mapping, root: str = "net") -> str:
    """``opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)``, or Adam."""
    if op["optimizer"] == "adam":
        return f"opt = torch.optim.Adam({root}.parameters(), lr={number_text(op['lr'])})"
    momentum = f", momentum={number_text(op['momentum'])}" if op["momentum"] else ""
    return f"opt = torch.optim.SGD({root}.parameters(), lr={number_text(op['lr'])}{momentum})"
