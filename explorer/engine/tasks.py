"""Small training tasks made in torch from a seed: no downloads, the same data every time.

Four tasks, each shaped to fit the model it trains:

- ``regression``: a 1-D regression. ``t ~ U(-1, 1)`` is fed as the polynomial features
  ``t, t², …`` (one per input feature, as D2L's polynomial regression does); the targets
  are ``sin(π·k·t)`` plus a little noise, one per output.
- ``moons``: scikit-learn's two moons (two interleaved half circles, noise 0.1); input
  features beyond the first two carry noise. Two or more outputs are class logits
  (cross-entropy); one output is a logit of class 1 (binary cross-entropy).
- ``teacher``: a random teacher network, ``y = tanh(x W1 + b1) W2`` with 16 hidden units,
  on ``x ~ N(0, 1)`` of the model's input shape, targets of its output shape (MSE).
- ``next_token``: next-token prediction for token models: sequences that follow a fixed
  random successor of each token, as long as the model's input.

The data functions use plain torch only, so ``explorer.io.script`` copies them verbatim into
the scripts it writes.

Example::

    data = make_task("teacher", net, input_shape=(4,), seed=0)
    data.x.shape, data.y.shape, data.loss      # (512, 4), (512, 1), "mse"
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parameter import is_lazy

from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.core.rebind import meta_twin

__all__ = [
    "Task",
    "TaskLoss",
    "Dataset",
    "SAMPLES",
    "TASK_TEXT",
    "make_task",
    "task_loss",
    "output_shape",
    "regression_data",
    "moons_data",
    "teacher_data",
    "next_token_data",
]

SAMPLES = 512  # examples per task: part of the task's definition, the same in every profile
TEACHER_HIDDEN = 16


class Task(StrEnum):
    """What a training run learns; plain strings such as ``"moons"`` work too."""

    REGRESSION = "regression"
    MOONS = "moons"
    TEACHER = "teacher"
    NEXT_TOKEN = "next_token"


class TaskLoss(StrEnum):
    """The loss a task is trained with."""

    MSE = "mse"
    CROSS_ENTROPY = "cross_entropy"
    BCE = "bce"  # binary cross-entropy on one logit


TASK_TEXT = {
    Task.REGRESSION: "1-D regression: sin(π·k·t) from t, t², … (MSE)",
    Task.MOONS: "two moons: classify points on two half circles (cross-entropy)",
    Task.TEACHER: "random teacher network: match a fixed random net's outputs (MSE)",
    Task.NEXT_TOKEN: "next token: predict each token's successor in a synthetic sequence",
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A task's examples: inputs ``x`` (N, *input shape), targets ``y``, and its loss."""

    task: str
    x: torch.Tensor
    y: torch.Tensor
    loss: str

    def __repr__(self) -> str:
        return (
            f"Dataset({self.task}, x={tuple(self.x.shape)} {self.x.dtype}, "
            f"y={tuple(self.y.shape)} {self.y.dtype}, loss={self.loss})"
        )

    def __len__(self) -> int:
        return self.x.shape[0]


def regression_data(n, features, outputs, generator):
    """1-D regression: t ~ U(-1, 1) as features t, t², …; targets sin(π·k·t) + noise."""
    t = torch.rand(n, 1, generator=generator) * 2 - 1  # (n, 1)
    x = t ** torch.arange(1, features + 1)  # (n, features)
    k = torch.arange(1, outputs + 1)
    y = torch.sin(math.pi * k * t) + 0.05 * torch.randn(n, outputs, generator=generator)
    return x, y


def moons_data(n, features, generator):
    """Two interleaved half circles with noise 0.1 (scikit-learn's make_moons); labels 0/1."""
    y = torch.randint(0, 2, (n,), generator=generator)
    angle = torch.rand(n, generator=generator) * math.pi
    first = torch.where(y == 0, torch.cos(angle), 1 - torch.cos(angle))
    second = torch.where(y == 0, torch.sin(angle), 0.5 - torch.sin(angle))
    points = torch.stack([first, second], 1) + 0.1 * torch.randn(n, 2, generator=generator)
    extra = 0.1 * torch.randn(n, features - 2, generator=generator)  # features past 2: noise
    return torch.cat([points, extra], 1), y


def teacher_data(n, input_shape, output_shape, generator, hidden=16):
    """A random teacher network y = tanh(x W1 + b1) W2 on x ~ N(0, 1)."""
    x = torch.randn(n, *input_shape, generator=generator)
    flat = x.reshape(n, -1)  # (n, inputs)
    outputs = math.prod(output_shape)
    w1 = torch.randn(flat.shape[1], hidden, generator=generator) / math.sqrt(flat.shape[1])
    b1 = 0.1 * torch.randn(hidden, generator=generator)
    w2 = torch.randn(hidden, outputs, generator=generator) / math.sqrt(hidden)
    y = torch.tanh(flat @ w1 + b1) @ w2  # (n, outputs)
    return x, y.reshape(n, *output_shape)


def next_token_data(n, length, vocab, generator):
    """Sequences where each token is followed by its fixed random successor; inputs, targets."""
    successor = torch.randperm(vocab, generator=generator)
    tokens = [torch.randint(0, vocab, (n,), generator=generator)]
    for _ in range(length):
        tokens.append(successor[tokens[-1]])
    sequences = torch.stack(tokens, 1)  # (n, length + 1)
    return sequences[:, :-1], sequences[:, 1:]


def output_shape(module: nn.Module, input_shape: tuple[int, ...], tokens: bool) -> tuple:
    """The model's output shape for one example, from a meta-device pass (no memory, no RNG)."""
    if any(is_lazy(p) for p in module.parameters()):
        raise SpecError("the model has lazy layers: run a forward pass first", "task")
    x = torch.empty((1, *input_shape), dtype=torch.int64 if tokens else torch.float32)
    twin = meta_twin(module).eval()  # one example: BatchNorm cannot train on it, but can eval
    try:
        with torch.no_grad():
            out = twin(x.to("meta"))
    except (RuntimeError, NotImplementedError, TypeError, ValueError, IndexError) as err:
        raise SpecError(
            f"the model does not run on an input of shape {(1, *input_shape)}: "
            f"{str(err).splitlines()[0][:200]}",
            "task",
        ) from None
    if isinstance(out, tuple | list):
        out = out[0]
    return tuple(out.shape[1:])


def make_task(
    task: str,
    module: nn.Module,
    input_shape: tuple[int, ...],
    *,
    vocab: int | None = None,
    seed: int = 0,
    limits: Limits = DEFAULT_LIMITS,
) -> Dataset:
    """The task's ``SAMPLES`` examples for a model taking one example of ``input_shape``.

    ``vocab`` is the number of token ids for ``next_token``. The data is drawn on the CPU
    from a generator seeded with ``seed``, so it is the same on every machine; it is cast
    to the model's dtype and moved to its device. A task that does not fit the model
    raises ``SpecError`` saying why.
    """
    kind = _task(task)
    shape = tuple(int(n) for n in input_shape)
    elements = SAMPLES * math.prod(shape)
    if elements > limits.max_input_elements:
        raise SpecError(
            f"{SAMPLES} examples of shape {shape} would be {elements:,} values; the limit is "
            f"{limits.max_input_elements:,}: use a smaller input",
            "input_shape",
        )
    tokens = kind == Task.NEXT_TOKEN
    out = output_shape(module, shape, tokens)
    generator = torch.Generator().manual_seed(seed)
    if kind == Task.REGRESSION:
        _need_vector(kind, shape, out, 1)
        x, y = regression_data(SAMPLES, shape[0], out[0], generator)
        loss = TaskLoss.MSE
    elif kind == Task.MOONS:
        _need_vector(kind, shape, out, 2)
        x, y = moons_data(SAMPLES, shape[0], generator)
        loss = TaskLoss.CROSS_ENTROPY if out[0] >= 2 else TaskLoss.BCE
        if loss == TaskLoss.BCE:
            y = y.unsqueeze(1).float()  # (n, 1): 1.0 for class 1
    elif kind == Task.TEACHER:
        x, y = teacher_data(SAMPLES, shape, out, generator, TEACHER_HIDDEN)
        loss = TaskLoss.MSE
    else:
        _need_tokens(shape, out, vocab)
        x, y = next_token_data(SAMPLES, shape[0], vocab, generator)
        loss = TaskLoss.CROSS_ENTROPY
    return _placed(Dataset(str(kind), x, y, str(loss)), module)


def task_loss(kind: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The scalar loss of a batch: MSE, cross-entropy over the last dimension, or BCE."""
    if kind == TaskLoss.MSE:
        return F.mse_loss(output, target)
    if kind == TaskLoss.BCE:
        return F.binary_cross_entropy_with_logits(output, target)
    return F.cross_entropy(output.reshape(-1, output.shape[-1]), target.reshape(-1))


def _task(task: str) -> Task:
    if task not in {str(t) for t in Task}:
        raise SpecError(f"unknown task {task!r}; use one of {', '.join(Task)}", "task")
    return Task(task)


def _need_vector(kind: Task, shape: tuple, out: tuple, least: int) -> None:
    """Regression and moons need (batch, features) in and (batch, outputs) out."""
    if len(shape) != 1 or len(out) != 1:
        raise SpecError(
            f"{kind} needs a model taking (batch, features) and giving (batch, outputs); "
            f"this one maps {('batch', *shape)} to {('batch', *out)}: try the teacher task",
            "task",
        )
    if shape[0] < least:
        raise SpecError(f"{kind} needs at least {least} input features, got {shape[0]}", "task")


def _need_tokens(shape: tuple, out: tuple, vocab: int | None) -> None:
    if vocab is None or len(shape) != 1:
        raise SpecError(
            "next_token needs a token model: an input of (batch, length) token ids", "task"
        )
    if out != (shape[0], vocab):
        raise SpecError(
            f"next_token needs logits of shape (batch, {shape[0]}, {vocab}), one per token "
            f"of the vocabulary; this model gives {('batch', *out)}",
            "task",
        )


def _placed(data: Dataset, module: nn.Module) -> Dataset:
    """The data on the model's device, floats in the model's dtype; class ids stay int64."""
    param = next(iter(module.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32

    def place(t: torch.Tensor) -> torch.Tensor:
        return t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)

    return Dataset(data.task, place(data.x), place(data.y), data.loss)
