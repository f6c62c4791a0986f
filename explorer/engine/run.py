"""One forward and backward pass, with each parameter's gradient split by the call that used it."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

import torch
import torch.nn.functional as F
from torch import nn

from explorer.core.devices import module_device, resolve_device
from explorer.core.errors import DeviceError, ExplorerError, SpecError
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.core.rebind import distinct_parameters, meta_twin, walk_modules
from explorer.engine.uses import UseRecorder

__all__ = [
    "InputKind",
    "Loss",
    "RunResult",
    "run",
    "accumulate",
    "training_mode",
    "make_input",
    "activation_bytes",
    "meta_pass",
    "check_activations",
]


class InputKind(StrEnum):
    """What the batch holds: ``torch.rand`` values or integer token ids."""

    UNIFORM = "uniform"
    TOKENS = "tokens"


class Loss(StrEnum):
    """The scalar a backward pass starts from."""

    SUM = "sum"
    MSE = "mse"
    CROSS_ENTROPY = "cross_entropy"


LOSSES = tuple(Loss)
INPUT_KINDS = tuple(InputKind)


@dataclass
class RunResult:
    """What one run produced; gradients are keyed by every parameter name, aliases included.

    ``grad_by_use[name][i]`` is what call ``i`` of the parameter's module(s) added to
    ``param.grad`` (labelled by ``use_labels[name][i]``); the list sums to ``param.grad``.
    ``seconds`` is the pass with its capture, until the device has finished it.
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


class _Summed(Mapping):
    """Each name's per-use gradients of two passes added, computed when first read."""

    def __init__(self, earlier: Mapping, later: Mapping):
        self._earlier, self._later = earlier, later

    def __getitem__(self, name: str) -> list[torch.Tensor]:
        before, now = self._earlier.get(name, []), self._later[name]
        if len(before) != len(now):
            return now
        return [
            a + b if a is not None and b is not None else b
            for a, b in zip(before, now, strict=True)
        ]

    def __iter__(self):
        return iter(self._later)

    def __len__(self) -> int:
        return len(self._later)


def accumulate(
    module: nn.Module, result: RunResult, earlier: RunResult, grads: Mapping[str, torch.Tensor]
) -> RunResult:
    """A second backward pass without ``zero_grad()``: each ``.grad`` becomes the earlier
    gradient (``grads``, by first name) plus this pass's, as PyTorch's ``AccumulateGrad``
    adds them; each use's gradient is the sum of that use's in both passes."""
    for name, p in distinct_parameters(module):
        old = grads.get(name)
        if old is not None:
            p.grad = old if p.grad is None else old + p.grad
    result.grad_by_use = _Summed(earlier.grad_by_use, result.grad_by_use)
    return result


def run(
    module: nn.Module,
    x: torch.Tensor,
    loss: str = "sum",
    device: str | None = None,
    target: torch.Tensor | None = None,
    backward: bool = True,
    limits: Limits = DEFAULT_LIMITS,
    probe: bool = True,
) -> RunResult:
    """Run one forward and (unless ``backward=False``) one backward pass; split grads by call.

    ``loss`` is ``"sum"``, ``"mse"`` (against ``target``, zeros by default) or
    ``"cross_entropy"`` (random class ids from a generator seeded 0 by default).
    ``device`` None keeps the module where it is; otherwise the module is moved there with
    ``module.to`` and stays there after a successful run (after a failure it is moved back).
    ``x`` is copied to the device, never changed. Parameter grads hold this run's gradients;
    a forward-only run leaves every ``.grad`` None and keeps no graph. The last run's
    gradients are dropped after the forward pass, before backward allocates new ones (as
    ``zero_grad(set_to_none=True)`` then ``backward()``), so a second run needs no room for
    two sets. After a failure before or in the forward pass every ``.grad`` is what it was
    before the call; after one in the backward pass (out of memory) every ``.grad`` is None,
    unless the run moved the model: it then goes back with the grads it had.

    Before anything runs, the same pass is probed on the meta device, and an input whose
    activations would exceed ``limits.max_activation_bytes`` is refused with the size asked for
    (``probe=False`` skips this when the caller has checked already).

    Example: ``run(nn.Sequential(nn.Linear(4, 8)), make_input((2, 4))).loss``
    """
    _check_request(x, loss, limits)
    modules = walk_modules(module)
    shapes = None
    if probe:
        need, shapes = _meta_pass(module, modules, x, loss, backward)
        check_activations(module, x, limits, backward, need)
    shapes = _Shapes(module, modules, x, loss, backward, shapes)
    original = module_device(module)
    chosen = original if device is None else resolve_device(device)
    moved = chosen != original
    training = [m.training for _, m in modules]
    kept = {p: p.grad for p in module.parameters()} if moved else {}  # .grad stays behind
    try:
        move = device is not None
        return _run_on(module, modules, x, loss, target, chosen, backward, moved, move, shapes)
    except BaseException as err:
        _recover(module, kept, original, moved)
        if isinstance(err, torch.OutOfMemoryError):
            raise DeviceError(
                f"out of memory on {chosen} while running the model on an input of shape "
                f"{tuple(x.shape)}; the model was left on {original}: try a smaller input"
            ) from err
        raise
    finally:
        if [m.training for _, m in modules] != training:
            for (_, m), mode in zip(modules, training, strict=True):
                m.training = mode


@contextmanager
def training_mode(module: nn.Module, training: bool):
    """Set every module's training flag for a block; each gets its own flag back after."""
    modes = [(m, m.training) for m in module.modules()]
    module.train(training)
    try:
        yield module
    finally:
        for m, mode in modes:
            m.training = mode


def make_input(
    shape: tuple[int, ...],
    kind: str = "uniform",
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    high: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> torch.Tensor:
    """A repeatable input: ``torch.rand`` values, or int64 token ids in ``[0, high)``.

    Values are drawn on the CPU from a generator seeded with ``seed``, so every device
    gets the same numbers. Example: ``make_input((2, 4))`` is the chapter's
    ``X = torch.rand(size=(2, 4))``; ``make_input((2, 5), "tokens", high=100)`` feeds an embedding.
    """
    size = _checked_shape(shape, limits)
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


def activation_bytes(
    module: nn.Module, x: torch.Tensor, loss: str = "sum", backward: bool = True
) -> int | None:
    """Bytes one pass would hold, measured on a meta-device twin: no memory is used.

    With ``backward`` it is what autograd saves for the backward pass (parameters left out)
    plus the output; without, the largest output of any module call. None when the model
    cannot run on the meta device (the real pass then reports its own errors).

    A module's answer is kept while its modules, their classes and training flags, its
    tensors (objects, shapes, dtypes) and the input's shape and dtype stay the same, so a
    second run of the same model costs no second probe.
    """
    return meta_pass(module, x, loss, backward)[0]


def meta_pass(
    module: nn.Module, x: torch.Tensor, loss: str = "sum", backward: bool = True
) -> tuple[int | None, dict[str, tuple[int, ...]]]:
    """``activation_bytes`` and each module path's output shape (``RunResult.output_shapes``),
    from one pass on a meta-device twin, kept per module as ``activation_bytes`` says."""
    return _meta_pass(module, walk_modules(module), x, loss, backward)


def _meta_pass(module, modules, x, loss: str, backward: bool) -> tuple[int | None, dict]:
    key = (_shape_key(modules), tuple(x.shape), x.dtype, loss, backward)
    with _probe_lock:
        known = _probed.get(module)
    if known is not None and known[0] == key:
        return known[1]
    found = _measure_activations(module, x, loss, backward)
    with _probe_lock:
        _probed[module] = (key, found)
    return found


_probed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_probe_lock = threading.Lock()


def _shape_key(modules: list[tuple[str, nn.Module]]) -> tuple:
    """What decides the activations' sizes, short of the module's own Python code."""
    key = []
    for _, m in modules:
        key.append((id(m), type(m), m.training))
        for tensors in (m._parameters, m._buffers):
            for t in tensors.values():
                if t is not None and not isinstance(t, nn.parameter.UninitializedTensorMixin):
                    key.append((id(t), t.shape, t.dtype))
    return tuple(key)


def _measure_activations(
    module: nn.Module, x: torch.Tensor, loss: str, backward: bool
) -> tuple[int | None, dict[str, tuple[int, ...]]]:
    """The bytes (see ``activation_bytes``) and each path's output shape, on a meta twin;
    ``(None, {})`` when the model cannot run on the meta device."""
    twin, meta_x = meta_twin(module), x.to("meta")
    params = {id(p) for p in twin.parameters()}
    saved, largest = 0, 0
    shapes: dict[str, tuple[int, ...]] = {}
    paths: dict[nn.Module, list[str]] = {}
    for path, m in walk_modules(twin):
        paths.setdefault(m, []).append(path)

    def pack(t: torch.Tensor):
        nonlocal saved
        if id(t) not in params and not (t._base is not None and id(t._base) in params):
            saved += t.nbytes
        return t

    def note(m, _args, output):
        nonlocal largest
        if isinstance(output, torch.Tensor):
            largest = max(largest, output.nbytes)
        first = output[0] if isinstance(output, (tuple, list)) and output else output
        if isinstance(first, torch.Tensor):
            shapes.update(dict.fromkeys(paths[m], tuple(first.shape)))

    handles = [m.register_forward_hook(note) for m in paths]
    try:
        with (
            torch.set_grad_enabled(backward),
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
        ):
            out = _forward(twin, meta_x)
            _loss(out, loss, None)
    except (RuntimeError, NotImplementedError, ExplorerError, TypeError, ValueError):
        return None, {}
    finally:
        for handle in handles:
            handle.remove()
    return (saved + out.nbytes if backward else max(largest, out.nbytes)), shapes


class _Shapes(Mapping):
    """Each module path's output shape in a run, from the meta-device pass of the same model
    and input: kept from ``run``'s own check, or measured when first read."""

    def __init__(self, module, modules, x, loss: str, backward: bool, found: dict | None):
        self._args = (module, modules, x.detach(), loss, backward)
        self._found = found

    @property
    def _shapes(self) -> dict[str, tuple[int, ...]]:
        if self._found is None:
            self._found = _meta_pass(*self._args)[1]
            self._args = None
        return self._found

    def __getitem__(self, path: str) -> tuple[int, ...]:
        return self._shapes[path]

    def __iter__(self):
        return iter(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)

    def __repr__(self) -> str:
        return repr(self._shapes)


def check_activations(
    module: nn.Module,
    x: torch.Tensor,
    limits: Limits = DEFAULT_LIMITS,
    backward: bool = True,
    need: int | None = None,
) -> None:
    """Refuse a pass whose activations would exceed ``limits.max_activation_bytes``.

    ``need`` is the size when the caller measured it already (see ``activation_bytes``).
    """
    if need is None:
        need = activation_bytes(module, x, backward=backward)
    if need is not None and need > limits.max_activation_bytes:
        raise SpecError(
            f"a {'forward + backward' if backward else 'forward'} pass on an input of shape "
            f"{tuple(x.shape)} would hold {_mib(need)} of activations; the limit is "
            f"{_mib(limits.max_activation_bytes)}: use a smaller input or a smaller model",
            "input_shape",
        )


def _mib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"


def _check_request(x: torch.Tensor, loss: str, limits: Limits) -> None:
    """Refuse a bad loss name or an oversized input before anything is moved or allocated."""
    if loss not in LOSSES:
        raise SpecError(f"must be one of {', '.join(LOSSES)}, got {loss!r}", path="loss")
    if not isinstance(x, torch.Tensor):
        raise SpecError(f"must be a tensor, got {type(x).__name__}", path="input")
    if x.numel() > limits.max_input_elements:
        raise SpecError(
            f"has {x.numel():,} elements; the limit is {limits.max_input_elements:,}",
            path="input",
        )


def _checked_shape(shape: tuple[int, ...], limits: Limits) -> tuple[int, ...]:
    """The shape as a tuple of positive whole numbers no larger than the input limit."""
    size = tuple(shape)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in size):
        raise SpecError(f"must be whole numbers of at least 1, got {size}", path="shape")
    if torch.Size(size).numel() > limits.max_input_elements:
        raise SpecError(f"{size} exceeds {limits.max_input_elements:,} elements", path="shape")
    return size


def _run_on(
    module, modules, x, loss, target, device: torch.device, backward, moved, move, shapes
) -> RunResult:
    """Move module (when ``move``) and a copy of ``x`` to ``device``, then run with the use
    recorder on. Without ``move`` the module stays as it is: no walk over its tensors."""
    if moved:  # no gradient travels with the move
        module.zero_grad(set_to_none=True)
    if move:
        module.to(device)
    inputs = x.to(device)
    _synchronize(device)
    start = time.perf_counter()
    with UseRecorder(module, modules) as recorder:
        output, value = _forward_backward(module, recorder, inputs, loss, target, backward)
    grads, labels = recorder.split()
    _synchronize(device)  # the bookkeeping above ran while the device finished the pass
    seconds = time.perf_counter() - start
    dtype = str(output.dtype).removeprefix("torch.")
    return RunResult(
        output.detach(),
        float(value.item()),
        grads,
        labels,
        shapes,
        str(device),
        dtype,
        seconds,
    )


def _recover(module: nn.Module, kept: dict, original: torch.device, moved: bool) -> None:
    """After a failed run: move the module back with the grads it had, free cached GPU memory."""
    if moved:
        module.to(original)
        for param, grad in kept.items():
            param.grad = grad
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _forward_backward(module, recorder, x, loss, target, backward: bool = True):
    """The forward and backward pass, queued; returns ``(output, loss tensor)``."""
    with torch.set_grad_enabled(backward):
        output = _forward(module, x)
        value = _loss(output, loss, target)
        recorder.drop_grads()  # the last run's grads: freed before backward
        if backward and value.requires_grad:
            try:
                value.backward()
            except BaseException:
                recorder.drop_grads()  # no half-accumulated gradient is left
                raise
    return output, value


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
