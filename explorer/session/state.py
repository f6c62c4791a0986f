"""A state: an experiment together with the model it rebuilds and what was computed on it.

``realize(experiment)`` is the one definition of what an experiment's values are:

1. build the spec on the experiment's device, PyTorch's default initialization drawn with
   the seed;
2. if ``materialized``, run one no-grad forward pass on the input so lazy layers get their
   shapes (seeded too);
3. apply the initializer rules with the seed, in float32; then cast to the experiment's dtype;
4. replay ``ops`` in order (edits, moves, training runs);
5. run the batch as far as ``ran`` says (forward, or forward + backward).

A ``State`` is never changed after it is made; actions (explorer/session/actions.py) build the next
one aside. Anything derived from it, such as its ``tree``, is computed once and kept.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from types import MappingProxyType

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from explorer.core.devices import DTYPES, resolve_device
from explorer.core.errors import SpecError
from explorer.core.frozen import canonical
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.core.rebind import distinct_parameters, meta_twin, with_tensors
from explorer.core.rng import seeded
from explorer.core.slots import heavy
from explorer.engine.run import (
    InputKind,
    RunResult,
    accumulate,
    check_activations,
    make_input,
    meta_pass,
    run,
)
from explorer.engine.train import TrainLog, train_op
from explorer.init.rules import check_rules, initialize
from explorer.session.experiment import Experiment, Mode, Ran, check_experiment, values_key
from explorer.session.ops import Replay, apply_op, edit_in_place, edited_values
from explorer.spec.build import build
from explorer.spec.factory import make_module
from explorer.view.tree import ParamTree, inspect

__all__ = [
    "State",
    "realize",
    "continues",
    "with_mode",
    "with_run",
    "edited_names",
    "lazy_params",
    "no_values",
    "probe",
    "warm_up",
]

INIT_DTYPE = torch.float32  # rules draw in float32; the experiment's dtype is a cast after


@dataclass(frozen=True, eq=False)
class State:
    """One session's experiment, its model, and what was computed on that model.

    ``provenance`` maps every parameter name (each alias of a tied tensor) to the index of
    the rule that set it (None: PyTorch's default). ``pristine`` names the parameters that
    still hold the seeded build's default values. ``version`` grows with every action, so
    caches keyed by it never show an older state's figures.
    """

    experiment: Experiment
    module: nn.Module
    provenance: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    init_log: tuple[str, ...] = ()
    deferred: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    pristine: frozenset[str] = frozenset()
    last_run: RunResult | None = None
    version: int = 0
    train_log: TrainLog | None = None  # what the last train op recorded
    base: nn.Module | None = None  # the module before the batch ran on a twin of it

    def __repr__(self) -> str:
        exp = self.experiment
        return (
            f"State(v{self.version}, {exp.preset or 'custom'}, rules={len(exp.rules)}, "
            f"ops={len(exp.ops)}, ran={exp.ran}, {self.device}/{self.dtype})"
        )

    @cached_property
    def tree(self) -> ParamTree:
        """The parameter tree of this state's module, computed once."""
        return inspect(self.module, root_name=self.experiment.root_name)

    @cached_property
    def applied_rules(self) -> list[dict]:
        """The experiment's rules with every option filled in."""
        return check_rules(self.experiment.rules)

    @cached_property
    def edited(self) -> frozenset[str]:
        """Names (every alias) whose values were edited after initialization."""
        return edited_names(self.module, self.experiment.ops)

    @cached_property
    def lazy(self) -> bool:
        """Whether some parameter still waits for its first forward pass to get a shape."""
        return bool(lazy_params(self.module))

    @property
    def values(self) -> nn.Module:
        """The module as initialization and the ops left it, before the batch ran: what the
        next change starts from (a run changes a twin of it: ``.grad`` and buffers)."""
        return self.module if self.base is None else self.base

    def renumbered(self, version: int) -> State:
        """This state under a new version number (an undo step taken again), with what was
        computed on it kept."""
        new = replace(self, version=version)
        for name in ("tree", "applied_rules", "edited", "lazy"):
            if name in self.__dict__:
                new.__dict__[name] = self.__dict__[name]
        return new

    @property
    def device(self) -> str:
        """Where the values are now (after any move)."""
        return _now(self.experiment)[0]

    @property
    def dtype(self) -> str:
        return _now(self.experiment)[1]

    def rule_of(self, name: str) -> dict | None:
        """The rule that last set a parameter, or None when PyTorch's default did."""
        index = self.provenance.get(name)
        return None if index is None else self.applied_rules[index]

    def input(self, limits: Limits = DEFAULT_LIMITS) -> torch.Tensor:
        """The batch the model runs on: the same numbers for the same seed, on its device."""
        return batch(self.experiment, self.device, self.dtype, limits)

    def fingerprint(self) -> str:
        """A hash of every parameter's and buffer's name, shape, dtype and values."""
        digest = hashlib.sha256()
        for name, t in [*self.module.named_parameters(), *self.module.named_buffers()]:
            shape = "?" if is_lazy(t) else tuple(t.shape)
            digest.update(f"{name}|{t.dtype}|{shape}|".encode())
            if not is_lazy(t) and t.device.type != "meta":
                raw = t.detach().cpu().contiguous().reshape(-1)  # 0-d too: a BatchNorm count
                digest.update(raw.view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()


def realize(
    experiment: Experiment,
    limits: Limits = DEFAULT_LIMITS,
    version: int = 0,
    blobs=None,
    start: State | None = None,
) -> State:
    """Build the model an experiment describes, with its values, bit for bit on the CPU.

    ``start``, a state whose experiment has the same ``values_key`` and whose ops begin
    this one's, is continued instead: only the ops after its own are replayed. Every check
    runs first; a failure raises ``SpecError``/``DeviceError`` and nothing is kept.
    """
    exp = experiment
    check_experiment(exp, limits)
    if exp.device == "meta":
        return _structure_only(exp, limits, version)
    state = start if continues(start, exp) else _initialized(exp, limits)
    done = len(state.experiment.ops)
    module, pristine, train_log = state.values, state.pristine, state.train_log
    edits: dict[int, torch.Tensor] = {}  # private copies the edits in a row write into
    for op in exp.ops[done:]:
        if op["op"] == "edit":
            _edit_aside(module, op, edits)
            continue
        module = _with_edits(module, edits)
        if op["op"] == "train":
            module, train_log = train_op(module, op, limits)
        else:
            module = apply_op(module, op, Replay(limits, blobs))
    module = _with_edits(module, edits)
    if exp.ops[done:]:
        pristine = frozenset()
    state = replace(
        state,
        experiment=exp,
        module=with_mode(module, exp.mode),
        pristine=pristine,
        train_log=train_log,
        last_run=None,
        base=None,
        version=version,
    )
    return with_run(state, limits)


def _edit_aside(module: nn.Module, op: dict, edits: dict[int, torch.Tensor]) -> None:
    """Replay one edit into a private copy of its tensor: edits in a row clone it once."""
    try:
        param = module.get_parameter(op["name"])
    except AttributeError:
        raise SpecError(f"no parameter is named {op['name']!r}", "name") from None
    if id(param) not in edits:
        edits[id(param)] = edited_values(module, op)
    else:
        edit_in_place(edits[id(param)], op)


def _with_edits(module: nn.Module, edits: dict[int, torch.Tensor]) -> nn.Module:
    """The module holding the replayed edits' tensors (and ``edits`` emptied)."""
    if not edits:
        return module
    names = {id(p): n for n, p in module.named_parameters(remove_duplicate=False)}
    new = with_tensors(module, {names[key]: t for key, t in edits.items()})
    edits.clear()
    return new


def continues(start: State | None, exp: Experiment) -> bool:
    """Whether ``exp``'s values are ``start``'s values with more ops replayed after them."""
    if start is None or start.experiment.device == "meta" or start.lazy:
        return False
    ops = start.experiment.ops
    return values_key(start.experiment) == values_key(exp) and exp.ops[: len(ops)] == ops


def _initialized(exp: Experiment, limits: Limits) -> State:
    """The seeded build, its lazy shapes, the rules and the dtype: the values before ops."""
    device = resolve_device(exp.device)
    with seeded(exp.seed), torch.device(device):
        module = build(exp.spec, limits) if exp.source is None else make_module(exp.source, limits)
    deferred: dict[str, tuple[int, ...]] = {}
    if exp.materialized and lazy_params(module):
        deferred = materialize(module, exp, limits)
    provenance, log = {}, []
    if not lazy_params(module):
        provenance = initialize(module, exp.rules, exp.seed, log)
    pristine = frozenset(n for n, rule in provenance.items() if rule is None)
    if exp.dtype != "float32":
        module = module.to(DTYPES[exp.dtype])
    return State(
        exp.replace(ops=(), ran=Ran.NONE, passes=1),
        module,
        MappingProxyType(provenance),
        tuple(log),
        MappingProxyType(deferred),
        pristine,
    )


def with_mode(module: nn.Module, mode: str | None) -> nn.Module:
    """The module in ``model.train()`` or ``model.eval()`` mode: a new module tree on the
    same tensors when a flag changes (another state may hold this one); None keeps it."""
    if mode is None or all(m.training == (mode == Mode.TRAIN) for m in module.modules()):
        return module
    copy = with_tensors(module, {})
    copy.train(mode == Mode.TRAIN)
    return copy


def with_run(state: State, limits: Limits) -> State:
    """The state with its batch run as far as its experiment says, ``passes`` times, on a
    twin of its values: new Parameters get the gradients and cloned buffers the updates."""
    exp = state.experiment
    if exp.ran == Ran.NONE:
        return state
    base = state.values
    twin = with_tensors(base, {}, clone_buffers=True)
    result = None
    for _ in range(exp.passes):
        grads = {name: p.grad for name, p in distinct_parameters(twin)}
        now = run_batch(twin, exp, limits)
        result = now if result is None else accumulate(twin, now, result, grads)
    return replace(state, module=twin, base=base, last_run=result)


def _structure_only(exp: Experiment, limits: Limits, version: int) -> State:
    """A model on the meta device: names, shapes, counts and tying, and no values at all."""
    if exp.source is not None or exp.ops or exp.ran != Ran.NONE or exp.materialized:
        raise SpecError(
            "a model on the meta device has no values: it cannot run, be edited or trained",
            "device",
        )
    module = build(exp.spec, limits, device="meta")
    log: list[str] = []
    provenance = initialize(module, exp.rules, exp.seed, log)  # which rule sets what, no values
    if exp.dtype != "float32":
        module = module.to(DTYPES[exp.dtype])
    return State(exp, module, MappingProxyType(provenance), tuple(log), version=version)


def no_values(state: State, what: str) -> None:
    """Refuse ``what`` on a structure-only model, saying why."""
    if state.device == "meta":
        raise SpecError(
            f"no values on the meta device: this model is structure only, so it cannot {what}. "
            "Pick a smaller preset to see values.",
            "device",
        )


def materialize(module: nn.Module, exp: Experiment, limits: Limits) -> dict[str, tuple]:
    """Give lazy layers their shapes with one seeded no-grad forward pass, in place.

    Only for a module no state holds yet. The size the layers would get, and the memory of
    the pass, are checked on the meta device first. Returns each lazy parameter's new shape.
    """
    lazy = lazy_params(module)
    x = batch(exp, exp.device, "float32", limits)
    found = probe(exp, backward=False)
    if found is None:
        _check_materialized_size(module, x, limits)
    else:
        _refuse_materialized_size(found.params, x, limits)
    check_activations(module, x, limits, False, None if found is None else found.activations)
    try:
        with seeded(exp.seed), torch.no_grad():
            module(x)
    except RuntimeError as err:
        raise SpecError(
            f"the input {tuple(exp.input_shape)} does not fit the model: "
            f"{str(err).splitlines()[0]}",
            "input_shape",
        ) from None
    return {name: tuple(module.get_parameter(name).shape) for name in lazy}


def _check_materialized_size(module: nn.Module, x: torch.Tensor, limits: Limits) -> None:
    """Refuse a first forward whose lazy layers would exceed the budget, before allocating."""
    twin = meta_twin(module)
    try:
        with torch.no_grad():
            twin(x.to("meta"))
    except (RuntimeError, NotImplementedError):
        return  # the real forward reports the mismatch with its own message
    _refuse_materialized_size(
        sum(p.numel() for p in twin.parameters() if not is_lazy(p)), x, limits
    )


def _refuse_materialized_size(count: int, x: torch.Tensor, limits: Limits) -> None:
    if count > limits.max_params:
        raise SpecError(
            f"with the input {tuple(x.shape)} the lazy layers would make {count:,} "
            f"parameters, over the limit of {limits.max_params:,}; use a smaller input or "
            "give in_features explicitly",
            "input_shape",
        )


def run_batch(
    module: nn.Module, exp: Experiment, limits: Limits, ran: str | None = None
) -> RunResult:
    """Run the experiment's batch forward (and backward when ``ran`` is backward), seeded.

    The memory the pass needs is measured once per spec and input (``probe``) and refused
    above ``limits.max_activation_bytes`` before anything runs.
    """
    ran = ran or exp.ran
    backward = ran == Ran.BACKWARD
    device, dtype = _now(exp)
    x = batch(exp, device, dtype, limits)
    found = probe(exp, backward)
    if found is not None:
        scale = torch.empty((), dtype=DTYPES[dtype]).element_size() / 4  # probed in float32
        need = None if found.activations is None else int(found.activations * scale)
        check_activations(module, x, limits, backward, need)
    size = sum(p.numel() for p in module.parameters() if not is_lazy(p))
    with heavy(limits) if size > limits.heavy_params else nullcontext(), seeded(exp.seed):
        result = run(
            module, x, loss=exp.loss, backward=backward, limits=limits, probe=found is None
        )
    if found is not None and found.activations is not None:
        result.output_shapes = found.shapes  # the spec's meta pass measured them already
    return result


@dataclass(frozen=True)
class Probe:
    """What a meta-device pass of a spec on an input measured: memory and parameter count."""

    activations: int | None  # bytes one pass holds in float32; None if it cannot run on meta
    params: int  # parameter elements once lazy layers have their shapes
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # each path's output


def probe(exp: Experiment, backward: bool) -> Probe | None:
    """The meta-device measurements of the experiment's spec on its input (cached)."""
    if exp.spec is None:
        return None
    return _probe(
        canonical(exp.spec), exp.input_shape, exp.input_kind, exp.vocab, exp.loss, backward
    )


@lru_cache(maxsize=256)
def _probe(spec_text, shape, kind, vocab, loss, backward) -> Probe:
    """A pure function of the spec text and the input: sizes only, no values, no user data."""
    module = build(json.loads(spec_text), device="meta")
    tokens = kind == InputKind.TOKENS
    x = torch.empty(shape, dtype=torch.int64 if tokens else torch.float32, device="meta")
    with torch.no_grad():
        try:
            module(x)
        except (RuntimeError, NotImplementedError, TypeError, ValueError):
            return Probe(None, 0)
    count = sum(p.numel() for p in module.parameters() if not is_lazy(p))
    need, shapes = meta_pass(module, x, loss, backward)
    return Probe(need, count, shapes)


def batch(
    exp: Experiment, device: str, dtype: str, limits: Limits, size: int | None = None
) -> torch.Tensor:
    """The experiment's input: ``torch.rand`` values or token ids, the same for the same seed.

    ``size`` replaces the batch size (the input shape's first number) when given.
    """
    tokens = exp.input_kind == InputKind.TOKENS
    shape = exp.input_shape if size is None else (size, *exp.input_shape[1:])
    return make_input(
        shape,
        exp.input_kind,
        seed=exp.seed,
        dtype=torch.int64 if tokens else DTYPES[dtype],
        device=device,
        high=exp.vocab,
        limits=limits,
    )


def edited_names(module: nn.Module, ops) -> frozenset[str]:
    """Every name (each alias of a tied tensor) that an edit op changed."""
    if any(op["op"] == "train" for op in ops):  # training changed every tensor
        return frozenset(n for n, _ in module.named_parameters(remove_duplicate=False))
    targets = {op["name"] for op in ops if op["op"] == "edit"}
    if not targets:
        return frozenset()
    ids = {id(module.get_parameter(n)) for n in targets}
    return frozenset(n for n, p in module.named_parameters(remove_duplicate=False) if id(p) in ids)


def lazy_params(module: nn.Module) -> list[str]:
    """Names of the parameters still waiting for a first forward pass to get a shape."""
    return [n for n, p in module.named_parameters(remove_duplicate=False) if is_lazy(p)]


def _now(exp: Experiment) -> tuple[str, str]:
    """The device and dtype after the last move op (or the experiment's own)."""
    for op in reversed(exp.ops):
        if op["op"] == "move":
            return op["device"], op["dtype"]
    return exp.device, exp.dtype


def warm_up() -> None:
    """Pay PyTorch's one-time cost of its first meta-device pass (seconds of imports) now."""
    spec = {"type": "sequential", "children": [{"type": "linear", "out_features": 2}]}
    _probe(canonical(spec), (1, 2), InputKind.UNIFORM, None, "sum", True)
