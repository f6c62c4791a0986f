"""One user's model, settings and results, changed only by whole, transactional actions.

The app keeps exactly one ``Workspace`` per browser session; notebooks may use it too.
Every action either completes or raises an ``ExplorerError`` and leaves the workspace
exactly as it was, so the user's previous model stays on screen.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from explorer.build import build
from explorer.devices import resolve_device
from explorer.errors import SpecError
from explorer.init import check_rules, initialize
from explorer.presets import PRESETS, preset
from explorer.run import RunResult, make_input, run
from explorer.spec import DEFAULT_LIMITS, Limits, validate
from explorer.tree import ParamTree, inspect

__all__ = ["Setup", "Workspace", "DTYPES", "LOSSES", "EDIT_OPS"]

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}
LOSSES = ("sum", "mse", "cross_entropy")
EDIT_OPS = ("set", "add", "multiply")
MAX_INPUT_ELEMENTS = 1_000_000
COPY_LIMIT = 50_000_000  # elements; larger models are changed in place to spare memory


@dataclass(frozen=True)
class Setup:
    """Everything needed to rebuild the same model: plain JSON, so undo and links are easy."""

    spec: dict
    rules: list[dict]
    input_shape: tuple[int, ...]
    input_kind: str = "uniform"
    vocab: int | None = None
    seed: int = 0
    loss: str = "sum"
    preset: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Workspace:
    """A model built from a ``Setup``, its device and dtype, and the results of actions on it."""

    setup: Setup
    module: nn.Module
    device: str = "cpu"
    dtype: str = "float32"
    provenance: dict[str, int | None] = field(default_factory=dict)
    last_run: RunResult | None = None
    init_log: list[str] = field(default_factory=list)
    applied_rules: list[dict] = field(default_factory=list)
    edited: set[str] = field(default_factory=set)
    deferred: dict[str, tuple[int, ...]] = field(default_factory=dict)
    version: int = 0
    undo_stack: list[Setup] = field(default_factory=list)
    redo_stack: list[Setup] = field(default_factory=list)
    limits: Limits = DEFAULT_LIMITS

    @classmethod
    def from_preset(cls, key: str, limits: Limits = DEFAULT_LIMITS) -> Workspace:
        """A workspace holding one of the chapter's presets, built and initialized."""
        p = preset(key)
        setup = Setup(p.spec, p.rules, p.input_shape, p.input_kind, p.vocab, 0, p.loss, key)
        ws = cls(setup, build(setup.spec, limits), limits=limits)
        ws._initialize_if_ready()
        return ws

    # --- what the model is built from (undoable) ---

    def change(self, **fields) -> None:
        """Change setup fields (spec, rules, input_shape, ...); rebuild and re-initialize if needed.

        Raises ``SpecError`` and keeps the current model when the new setup is invalid.
        """
        new = replace(self.setup, **fields)
        _check_setup(new, self.limits)
        # lazy layers took their shapes from the old input, so a new input starts them afresh
        lazy_model = self.has_lazy() or bool(self.deferred)
        rebuild = "spec" in fields or ("input_shape" in fields and lazy_model)
        if rebuild:
            module = self._fresh_module(new)
            self._commit(new)
            self.module, self.last_run = module, None
            self._initialize_if_ready()
        else:
            self._commit(new)
        self.version += 1

    def undo(self) -> bool:
        """Go back to the previous setup; False when there is none."""
        return self._travel(self.undo_stack, self.redo_stack)

    def redo(self) -> bool:
        """Re-apply the setup undone last; False when there is none."""
        return self._travel(self.redo_stack, self.undo_stack)

    def _travel(self, source: list[Setup], target: list[Setup]) -> bool:
        if not source:
            return False
        setup = source.pop()
        module = self._fresh_module(setup)
        target.append(self.setup)
        self.setup, self.module, self.last_run = setup, module, None
        self._initialize_if_ready()
        self.version += 1
        return True

    def _commit(self, new: Setup) -> None:
        self.undo_stack.append(self.setup)
        del self.undo_stack[:-50]
        self.redo_stack.clear()
        self.setup = new

    def _fresh_module(self, setup: Setup) -> nn.Module:
        module = build(setup.spec, self.limits)
        return module.to(device=resolve_device(self.device), dtype=DTYPES[self.dtype])

    # --- actions on the values ---

    def reinitialize(self) -> dict[str, int | None]:
        """Apply the rules with the seed; lazy layers first get their shapes from a dry forward."""
        self.materialize()
        module = _working_copy(self.module)
        log: list[str] = []
        provenance = initialize(module, self.setup.rules, self.setup.seed, log)
        self.module, self.provenance, self.init_log = module, provenance, log
        self.applied_rules, self.edited = check_rules(self.setup.rules), set()
        self.last_run = None
        self.version += 1
        return provenance

    def forward_backward(self) -> RunResult:
        """One forward and backward pass on the setup's input; lazy layers are initialized first."""
        if self.has_lazy():
            self.reinitialize()
        module = _working_copy(self.module)
        result = run(module, self.input(), loss=self.setup.loss, device=self.device)
        self.module, self.last_run = module, result
        self.version += 1
        return result

    def materialize(self) -> bool:
        """Give lazy layers their shapes with a no-grad forward pass; True if anything changed."""
        if not self.has_lazy():
            return False
        self._check_materialized_size()
        module = _working_copy(self.module)
        lazy = [
            n
            for n, p in module.named_parameters(remove_duplicate=False)
            if isinstance(p, nn.parameter.UninitializedParameter)
        ]
        try:
            with torch.no_grad():
                module(self.input())
        except RuntimeError as err:
            raise SpecError(
                f"the input {tuple(self.setup.input_shape)} does not fit the model: "
                f"{str(err).splitlines()[0]}",
                "input_shape",
            ) from None
        self.module = module
        self.deferred = {n: tuple(module.get_parameter(n).shape) for n in lazy}
        self.version += 1
        return True

    def _check_materialized_size(self) -> None:
        """Refuse a first forward whose lazy layers would exceed the budget, before allocating.

        The same spec is built on the meta device and run on a meta input: shapes come out,
        no memory is used.
        """
        with torch.device("meta"):
            probe = build(self.setup.spec, self.limits)
        x = self.input().to("meta")
        try:
            with torch.no_grad():
                probe(x)
        except RuntimeError:
            return  # the real forward reports the mismatch with its own message
        count = sum(p.numel() for p in probe.parameters())
        if count > self.limits.max_params:
            raise SpecError(
                f"with the input {tuple(self.setup.input_shape)} the lazy layers would make "
                f"{count:,} parameters, over the limit of {self.limits.max_params:,}; "
                "use a smaller input or give in_features explicitly",
                "input_shape",
            )

    def edit(self, name: str, op: str, value: float, index: tuple[int, ...] | None = None) -> None:
        """Set, add to or multiply a parameter's values, as ``net[0].weight.data[0, 0] = 42``.

        With ``index`` only that element changes; without it, every element. Tied aliases
        see the change because they are the same tensor.
        """
        if op not in EDIT_OPS:
            raise SpecError(f"unknown edit {op!r}; use one of {', '.join(EDIT_OPS)}")
        param = self.tree().tensor(name)
        if index is not None:
            if len(index) != param.dim() or any(
                not 0 <= i < n for i, n in zip(index, param.shape, strict=False)
            ):
                raise SpecError(
                    f"index {list(index)} is outside {name}'s shape {tuple(param.shape)}"
                )
            target = param.data[tuple(index)]
        else:
            target = param.data
        with torch.no_grad():
            if op == "set":
                target.fill_(value)
            elif op == "add":
                target.add_(value)
            else:
                target.mul_(value)
        self.edited |= self.tree().group_of(name)
        self.version += 1

    def move(self, device: str | None = None, dtype: str | None = None) -> None:
        """Move the model to another device or dtype; on failure it stays where it was."""
        target = resolve_device(device or self.device)
        if dtype is not None and dtype not in DTYPES:
            raise SpecError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
        module = _working_copy(self.module).to(device=target, dtype=DTYPES[dtype or self.dtype])
        self.module, self.last_run = module, None
        self.device, self.dtype = str(target), dtype or self.dtype
        self.version += 1

    # --- views ---

    def input(self) -> torch.Tensor:
        """The batch the model runs on, the same for the same seed."""
        s = self.setup
        dtype = torch.int64 if s.input_kind == "tokens" else DTYPES[self.dtype]
        return make_input(
            s.input_shape,
            s.input_kind,
            seed=s.seed,
            dtype=dtype,
            device=resolve_device(self.device),
            high=s.vocab,
        )

    def rule_of(self, name: str) -> dict | None:
        """The applied rule that last set a parameter, or None when PyTorch's default did."""
        index = self.provenance.get(name)
        return None if index is None else self.applied_rules[index]

    def tree(self) -> ParamTree:
        """A fresh ``ParamTree`` of the current module, named as the chapter names it."""
        root = PRESETS[self.setup.preset].root_name if self.setup.preset in PRESETS else "net"
        return inspect(self.module, root_name=root)

    def has_lazy(self) -> bool:
        return any(
            isinstance(p, nn.parameter.UninitializedParameter) for p in self.module.parameters()
        )

    def _initialize_if_ready(self) -> None:
        """Apply the rules now unless layers are lazy; then they apply at the first forward."""
        self.deferred = {}
        if self.has_lazy():
            self.provenance = {}
            return
        log: list[str] = []
        self.provenance = initialize(self.module, self.setup.rules, self.setup.seed, log)
        self.init_log = log
        self.applied_rules, self.edited = check_rules(self.setup.rules), set()


def _working_copy(module: nn.Module) -> nn.Module:
    """A copy to change, so a failure leaves the original untouched; big models change in place."""
    if (
        sum(
            p.numel()
            for p in module.parameters()
            if not isinstance(p, nn.parameter.UninitializedParameter)
        )
        > COPY_LIMIT
    ):
        return module
    return copy.deepcopy(module)


def _check_setup(setup: Setup, limits: Limits) -> None:
    features_from = setup.input_shape if setup.input_kind == "uniform" else None
    validate(setup.spec, limits, input_shape=features_from)
    check_rules(setup.rules)
    shape = setup.input_shape
    if (
        not isinstance(shape, tuple | list)
        or not 1 <= len(shape) <= 5
        or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape)
    ):
        raise SpecError(f"must be 1 to 5 positive whole numbers, got {shape!r}", "input_shape")
    elements = 1
    for n in shape:
        elements *= n
    if elements > MAX_INPUT_ELEMENTS:
        raise SpecError(
            f"the input would have {elements:,} elements; the limit is {MAX_INPUT_ELEMENTS:,}",
            "input_shape",
        )
    if setup.input_kind not in ("uniform", "tokens"):
        raise SpecError("must be uniform or tokens", "input_kind")
    if setup.loss not in LOSSES:
        raise SpecError(f"must be one of {', '.join(LOSSES)}", "loss")
    if (
        isinstance(setup.seed, bool)
        or not isinstance(setup.seed, int)
        or not 0 <= setup.seed < 2**32
    ):
        raise SpecError(f"must be a whole number from 0 to {2**32 - 1}", "seed")
