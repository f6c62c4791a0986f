"""One forward and backward pass, with each parameter's gradient split by the call that used it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from explorer.devices import module_device, resolve_device
from explorer.errors import DeviceError, ExplorerError, SpecError
from explorer.uses import UseRecorder

__all__ = ["RunResult", "run", "make_input"]

LOSSES = ("sum", "mse", "cross_entropy")
INPUT_KINDS = ("uniform", "tokens")
MAX_INPUT_ELEMENTS = 50_000_000


@dataclass
class RunResult:
    """What one run produced; gradients are keyed by every parameter name, aliases included.

    ``grad_by_use[name][i]`` is what call ``i`` of the parameter's module(s) added to
    ``param.grad`` (labelled by ``use_labels[name][i]``); the list sums to ``param.grad``.
    """

    output: torch.Tensor
    loss: float
    grad_by_use: dict[str, list[torch.Tensor]]
    use_labels: dict[str, list[str]]
    output_shapes: dict[str, tuple[int, ...]]
    device: str
    dtype: str
    seconds: float

    def __repr__(self) -> str:
        uses = {name: len(grads) for name, grads in self.grad_by_use.items()}
        return (
            f"RunResult(loss={self.loss:.6g}, output={tuple(self.output.shape)}, uses={uses}, "
            f"device={self.device!r}, dtype={self.dtype!r}, seconds={self.seconds:.4f})"
        )


def run(
    module: nn.Module,
    x: torch.Tensor,
    loss: str = "sum",
    device: str | None = None,
    target: torch.Tensor | None = None,
) -> RunResult:
    """Run one forward and one backward pass and split every gradient by module call.

    ``loss`` is ``"sum"``, ``"mse"`` (against ``target``, zeros by default) or
    ``"cross_entropy"`` (random class ids from a generator seeded 0 by default).
    ``device`` None keeps the module where it is; otherwise the module is moved there with
    ``module.to`` and stays there after a successful run (after a failure it is moved back).
    ``x`` is copied to the device, never changed. Parameter grads hold this run's gradients.

    Example: ``run(nn.Sequential(nn.Linear(4, 8)), make_input((2, 4))).loss``
    """
    _check_request(x, loss)
    original = module_device(module)
    chosen = original if device is None else resolve_device(device)
    training = {m: m.training for m in module.modules()}
    try:
        return _run_on(module, x, loss, target, chosen)
    except BaseException as err:
        _recover(module, original, moved=chosen != original)
        if isinstance(err, torch.OutOfMemoryError):
            raise DeviceError(
                f"out of memory on {chosen} while running the model on an input of shape "
                f"{tuple(x.shape)}; the model was left on {original}: try a smaller input"
            ) from err
        raise
    finally:
        for m, mode in training.items():
            m.training = mode


def make_input(
    shape: tuple[int, ...],
    kind: str = "uniform",
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    high: int | None = None,
) -> torch.Tensor:
    """A repeatable input: ``torch.rand`` values, or int64 token ids in ``[0, high)``.

    Values are drawn on the CPU from a generator seeded with ``seed``, so every device
    gets the same numbers. Example: ``make_input((2, 4))`` is the chapter's
    ``X = torch.rand(size=(2, 4))``; ``make_input((2, 5), "tokens", high=100)`` feeds an embedding.
    """
    size = _checked_shape(shape)
    place = resolve_device(device)
    generator = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        if not dtype.is_floating_point:
            raise SpecError(f"uniform inputs need a floating dtype, got {dtype}", path="dtype")
        values = torch.rand(size, generator=generator, dtype=dtype)
    elif kind == "tokens":
        if not isinstance(high, int) or high < 1:
            raise SpecError(f"tokens need a vocabulary size of at least 1, got {high!r}", "high")
        values = torch.randint(0, high, size, generator=generator)  # int64
    else:
        raise SpecError(f"must be one of {', '.join(INPUT_KINDS)}, got {kind!r}", path="kind")
    return values.to(place)


def _check_request(x: torch.Tensor, loss: str) -> None:
    """Refuse a bad loss name or an oversized input before anything is moved or allocated."""
    if loss not in LOSSES:
        raise SpecError(f"must be one of {', '.join(LOSSES)}, got {loss!r}", path="loss")
    if not isinstance(x, torch.Tensor):
        raise SpecError(f"must be a tensor, got {type(x).__name__}", path="input")
    if x.numel() > MAX_INPUT_ELEMENTS:
        raise SpecError(
            f"has {x.numel():,} elements; the explorer runs at most {MAX_INPUT_ELEMENTS:,}",
            path="input",
        )


def _checked_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape as a tuple of positive whole numbers no larger than the input limit."""
    size = tuple(shape)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in size):
        raise SpecError(f"must be whole numbers of at least 1, got {size}", path="shape")
    if torch.Size(size).numel() > MAX_INPUT_ELEMENTS:
        raise SpecError(f"{size} exceeds {MAX_INPUT_ELEMENTS:,} elements", path="shape")
    return size


def _run_on(module, x, loss, target, device: torch.device) -> RunResult:
    """Move module and a copy of ``x`` to ``device``, then run with the use recorder on."""
    module.zero_grad(set_to_none=True)
    module.to(device)
    inputs = x.to(device)
    with UseRecorder(module) as recorder:
        output, value, seconds = _forward_backward(module, inputs, loss, target)
    grads, labels = recorder.split(module)
    dtype = str(output.dtype).removeprefix("torch.")
    return RunResult(
        output.detach(),
        float(value.item()),
        grads,
        labels,
        recorder.output_shapes,
        str(device),
        dtype,
        seconds,
    )


def _recover(module: nn.Module, original: torch.device, moved: bool) -> None:
    """After a failed run: clear grads, move the module back, and free cached GPU memory."""
    module.zero_grad(set_to_none=True)
    if moved:
        module.to(original)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _forward_backward(module, x, loss, target):
    """The timed forward and backward pass; returns ``(output, loss tensor, seconds)``."""
    _synchronize(x.device)
    start = time.perf_counter()
    with torch.enable_grad():
        output = _forward(module, x)
        value = _loss(output, loss, target)
        if value.requires_grad:
            value.backward()
    _synchronize(x.device)
    return output, value, time.perf_counter() - start


def _forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Call the module; a torch error (e.g. a shape mismatch) becomes a message for the user."""
    try:
        output = module(x)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as err:
        raise ExplorerError(
            f"the forward pass failed on an input of shape {tuple(x.shape)}: {err}"
        ) from err
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        output = output[0]  # e.g. an LSTM's (output, (h, c))
    if not isinstance(output, torch.Tensor):
        raise ExplorerError(f"the model returned a {type(output).__name__}, not a tensor")
    return output


def _loss(output: torch.Tensor, kind: str, target: torch.Tensor | None) -> torch.Tensor:
    """The scalar loss named ``kind``; see ``run`` for the default targets."""
    if kind == "sum":
        return output.sum()
    if kind == "mse":
        target = torch.zeros_like(output) if target is None else target.to(output.device)
        if target.shape != output.shape:
            raise SpecError(
                f"mse needs a target of the output's shape {tuple(output.shape)}, "
                f"got {tuple(target.shape)}",
                path="target",
            )
        return F.mse_loss(output, target)
    return _cross_entropy(output, target)


def _cross_entropy(output: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy of (N, C) or (N, T, C) logits against class ids."""
    if output.dim() not in (2, 3):
        raise SpecError(
            f"cross_entropy needs an output of shape (N, C) or (N, T, C), "
            f"got {tuple(output.shape)}",
            path="loss",
        )
    logits = output.reshape(-1, output.shape[-1])  # (N*T, C)
    if target is None:
        generator = torch.Generator().manual_seed(0)
        target = torch.randint(0, logits.shape[1], (logits.shape[0],), generator=generator)
    if target.numel() != logits.shape[0]:
        raise SpecError(
            f"cross_entropy needs {logits.shape[0]} class ids, got {target.numel()}",
            path="target",
        )
    return F.cross_entropy(logits, target.reshape(-1).to(logits.device))


def _synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work so the timer measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
