"""Actions: pure functions from one state to the next.

Each action checks everything first, then builds the new state aside: it never writes into
the module of the state it is given. It returns the new state, or raises an
``ExplorerError`` and leaves nothing changed. The values of the result always equal
``realize(result.experiment)``: that is what lets undo, links and saved files replay them.

What an action costs in memory is one copy of what it changes: an edit clones one tensor,
a re-initialization allocates the tensors its rules target, a move copies every tensor.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from explorer.core.devices import DTYPES, resolve_device
from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.core.rebind import distinct_parameters, with_tensors
from explorer.engine.run import accumulate
from explorer.engine.train import TrainSettings, train_op
from explorer.init.rules import initial_values
from explorer.session.checkpoint_load import compare, loaded_module, refusal
from explorer.session.experiment import Experiment, Ran, check_experiment
from explorer.session.ops import EditHow, Replay, apply_op, check_op, edited_values
from explorer.session.state import (
    State,
    no_values,
    realize,
    run_batch,
    with_mode,
    with_run,
)

__all__ = [
    "change",
    "reinitialize",
    "materialize",
    "forward",
    "backward",
    "edit",
    "move",
    "load",
    "load_checkpoint",
    "train",
    "VALUE_FIELDS",
]

# Fields whose change gives new values: the parameters are re-initialized from the rules.
VALUE_FIELDS = frozenset({"spec", "rules", "seed"})
# Fields that only change what a run computes: the values stay, the last run goes.
RUN_FIELDS = frozenset({"loss", "input_shape", "input_kind", "vocab", "mode"})
LABEL_FIELDS = frozenset({"preset", "root_name"})


def change(state: State, limits: Limits = DEFAULT_LIMITS, **fields) -> State:
    """The state after changing experiment fields (spec, rules, seed, input, loss, ...).

    A new spec, rules or seed re-initializes the model (edits and training are dropped). A new
    input, loss or mode (``"train"``/``"eval"``) keeps the values and drops the last run,
    with its gradients and the buffers it updated, except that lazy layers that took their
    shapes from the old input start afresh, as a new ``nn.LazyLinear`` would.
    """
    unknown = set(fields) - VALUE_FIELDS - RUN_FIELDS - LABEL_FIELDS
    if unknown:
        raise SpecError(f"cannot change {', '.join(sorted(unknown))} here")
    old = state.experiment
    exp = old.replace(**fields)
    if fields.get("spec") is not None and old.source is not None:
        exp = exp.replace(source=None)  # a spec (a preset, the builder) replaces the code model
    if exp == old:
        return state
    restart = bool(VALUE_FIELDS & fields.keys())
    lazy_spec = old.materialized or state.lazy
    if {"input_shape", "input_kind"} & fields.keys() and lazy_spec:
        restart = True
        exp = exp.replace(materialized=False)
    if restart:
        exp = _fresh(exp)
        if set(fields) <= {"rules"} and not old.ops and not state.lazy:
            return _reinitialize_in_place(state, exp, limits)
        return realize(exp, limits, state.version + 1)
    exp = exp.replace(ran=Ran.NONE, passes=1)
    check_experiment(exp, limits)
    return _values(state, exp, with_mode(state.values, exp.mode))


def reinitialize(state: State, limits: Limits = DEFAULT_LIMITS) -> State:
    """The state with the rules applied afresh with the seed: edits and training are dropped.

    A lazy model first gets its shapes from a no-grad forward pass on the input.
    """
    exp = _fresh(state.experiment).replace(materialized=state.experiment.materialized or state.lazy)
    if not state.experiment.ops and not state.lazy:
        return _reinitialize_in_place(state, exp, limits)
    return realize(exp, limits, state.version + 1)


def materialize(state: State, limits: Limits = DEFAULT_LIMITS) -> State:
    """The state after a no-grad forward pass gave lazy layers their shapes (and rules applied)."""
    no_values(state, "run")
    if not state.lazy:
        return state
    exp = state.experiment.replace(materialized=True, ran=Ran.NONE)
    return realize(exp, limits, state.version + 1)


def forward(state: State, limits: Limits = DEFAULT_LIMITS) -> State:
    """The state after running the batch forward: the output and loss, and every grad None."""
    return _run(state, Ran.FORWARD, limits)


def backward(state: State, limits: Limits = DEFAULT_LIMITS, accumulate: bool = False) -> State:
    """The state after a forward and a backward pass: grads, split by each use of a tensor.

    After a backward pass, ``accumulate`` runs one more without ``zero_grad()``: each
    ``.grad`` becomes the sum of both passes, as ``loss.backward()`` twice gives.
    """
    if accumulate and state.experiment.ran == Ran.BACKWARD:
        return _again(state, limits)
    return _run(state, Ran.BACKWARD, limits)


def edit(
    state: State,
    name: str,
    how: str,
    value: float,
    index: tuple[int, ...] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> State:
    """The state after ``net.<name>.data[index] = value`` (or ``+=``, ``*=``); aliases follow."""
    if how not in {str(h) for h in EditHow}:
        raise SpecError(f"unknown edit {how!r}; use one of {', '.join(EditHow)}", "how")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"must be a number, got {value!r}", "value")
    op = {"op": "edit", "name": name, "how": how, "value": float(value)}
    op["index"] = None if index is None else [int(i) for i in index]
    check_op(op, "edit", limits)
    no_values(state, "be edited")
    if name not in state.tree.params:
        raise SpecError(f"no parameter is named {name!r}", "name")
    module = with_tensors(state.values, {name: edited_values(state.values, op)})
    exp = _with_op(state.experiment, op)
    return _values(state, exp, module, pristine=state.pristine - _aliases(state, name))


def move(
    state: State,
    device: str | None = None,
    dtype: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> State:
    """The state with the values on another device or in another dtype; they are cast, not redrawn.

    An unavailable device or unknown dtype raises before anything is copied.
    """
    no_values(state, "move: load the preset on another device instead")
    target = str(resolve_device(device or state.device))
    dtype = dtype or state.dtype
    if dtype not in DTYPES:
        raise SpecError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}", "dtype")
    if (target, dtype) == (state.device, state.dtype):
        return state
    old = state.experiment
    if not old.ops and not state.lazy and target == state.device and state.dtype == "float32":
        # the values are the rules' float32 draws: a cast is exactly what realize would give
        op = {"op": "move", "device": target, "dtype": dtype}
        exp = old.replace(dtype=dtype, ran=Ran.NONE, passes=1)
        return _values(state, exp, apply_op(state.values, op, Replay(limits)))
    if not old.ops or state.lazy:  # nothing to keep but what the rules give: rebuild there
        exp = old.replace(device=target, dtype=dtype, ops=(), ran=Ran.NONE, passes=1)
        return realize(exp, limits, state.version + 1)
    op = {"op": "move", "device": target, "dtype": dtype}
    return _values(state, _with_op(old, op), apply_op(state.values, op, Replay(limits)))


def train(
    state: State,
    settings,
    limits: Limits = DEFAULT_LIMITS,
    on_step=None,
    should_stop=None,
    on_wait=None,
) -> State:
    """The state after a training run (``explorer.engine.train.TrainSettings`` or a dict of them).

    It trains a copy of the values (``explorer.engine.train.train_op``) and records one op with the
    steps actually done, so a stopped run replays exactly; a run stopped before its first
    step changes nothing. A lazy model first gets its shapes, as a forward pass would.
    """
    if not isinstance(settings, TrainSettings):
        try:
            settings = TrainSettings(**settings)
        except TypeError as err:
            raise SpecError(f"unknown training setting: {err}", "train") from None
    before = state
    no_values(state, "train")
    if state.lazy:
        state = materialize(state, limits)
    exp = state.experiment
    op = settings.op(exp.input_shape[1:], exp.vocab, exp.seed)
    check_op(op, "train", limits)
    module, log = train_op(state.values, op, limits, on_step, should_stop, on_wait)
    if log.done == 0:
        return before
    exp = _with_op(exp, {**op, "steps": log.done})
    return _values(state, exp, module, pristine=frozenset(), train_log=log)


def load(
    state: State, experiment: Experiment, limits: Limits = DEFAULT_LIMITS, blobs=None
) -> State:
    """The state an experiment describes (a saved file, a link, an undo step)."""
    return realize(experiment, limits, state.version + 1, blobs)


def load_checkpoint(
    state: State,
    ckpt,
    limits: Limits = DEFAULT_LIMITS,
    allow_partial: bool = False,
    allow_nonfinite: bool = False,
) -> State:
    """The state with a checkpoint's values (``explorer.io.checkpoints.Checkpoint``) loaded.

    Refused unless every key matches or ``allow_partial``; NaN or Inf only with
    ``allow_nonfinite``. The experiment records ``{"op": "load", "digest", "name", "keys"}``;
    the tensors stay in the session's blob store, so undo and redo replay the load.
    """
    no_values(state, "load a checkpoint")
    if state.lazy:
        raise SpecError("lazy layers have no shapes yet: run a forward pass first, then load")
    report = compare(state.values, ckpt.tensors)
    reason = refusal(report, allow_partial, allow_nonfinite)
    if reason is not None:
        raise SpecError(reason, "checkpoint")
    op = {"op": "load", "digest": ckpt.digest, "name": ckpt.name[:255], "keys": report.keys}
    check_op(op, "load", limits)
    exp = _with_op(state.experiment, op)
    module = loaded_module(state.values, ckpt.tensors)
    return _values(state, exp, module, pristine=frozenset())


def _run(state: State, ran: Ran, limits: Limits) -> State:
    """Run the batch afresh on a twin of the values: new Parameter objects on the same memory
    get the grads, cloned buffers the updates (BatchNorm's statistics in train mode)."""
    no_values(state, "run")
    if state.lazy:
        state = materialize(state, limits)
    exp = state.experiment.replace(ran=ran, passes=1)
    ran_state = with_run(replace(state, experiment=exp, module=state.values, base=None), limits)
    return ran_state.renumbered(state.version + 1)


def _again(state: State, limits: Limits) -> State:
    """One more forward and backward pass on the state that ran: the gradients add up."""
    exp = state.experiment.replace(passes=state.experiment.passes + 1)
    check_experiment(exp, limits)
    twin = with_tensors(state.module, {}, clone_buffers=True)
    grads = {name: p.grad for name, p in distinct_parameters(state.module)}
    result = accumulate(twin, run_batch(twin, exp, limits), state.last_run, grads)
    return replace(state, experiment=exp, module=twin, last_run=result, version=state.version + 1)


def _values(state: State, exp: Experiment, module, **changes) -> State:
    """The next state: new values (or the same ones), not run; the last run's twin goes."""
    return replace(
        state,
        experiment=exp,
        module=module,
        base=None,
        last_run=None,
        version=state.version + 1,
        **changes,
    )


def _with_op(exp: Experiment, op: dict) -> Experiment:
    """The experiment with one more recorded value change; the batch has not run on it."""
    return exp.replace(ops=(*exp.ops, op), ran=Ran.NONE, passes=1)


def _fresh(exp: Experiment) -> Experiment:
    """The experiment re-initialized where its values are now: no ops, no run."""
    device, dtype = exp.device, exp.dtype
    for op in exp.ops:
        if op["op"] == "move":
            device, dtype = op["device"], op["dtype"]
    return exp.replace(device=device, dtype=dtype, ops=(), ran=Ran.NONE, passes=1)


def _reinitialize_in_place(state: State, exp: Experiment, limits: Limits) -> State:
    """New rule values for the targeted tensors only; every other tensor is shared.

    Valid when the current values are the rules' plus untouched defaults (no ops, no lazy
    layers) and spec and seed are the same; then the tensors no new rule targets, and that
    still hold the build's default values, are reused. Otherwise the model is rebuilt.
    """
    old = state.experiment
    same_build = (exp.spec, exp.seed, exp.device, exp.dtype) == (
        old.spec,
        old.seed,
        old.device,
        old.dtype,
    )
    if not same_build or exp.dtype != "float32":  # rules draw in float32, then cast
        return realize(exp, limits, state.version + 1)
    check_experiment(exp, limits)
    log: list[str] = []
    result = initial_values(state.values, exp.rules, exp.seed, log)
    untouched = {n for n, rule in result.provenance.items() if rule is None}
    if not untouched <= state.pristine:  # an untargeted tensor lost its default: rebuild
        return realize(exp, limits, state.version + 1)
    return State(
        exp,
        with_tensors(state.values, result.values),
        MappingProxyType(result.provenance),
        tuple(log),
        state.deferred,
        frozenset(untouched),
        None,
        state.version + 1,
    )


def _aliases(state: State, name: str) -> frozenset[str]:
    return frozenset(state.tree.group_of(name))
