"""The session state as one value: every action swaps in a whole new state, or changes nothing.

A hypothesis state machine runs random sequences of every action, injecting failures at
random depths; after a failed step the state equals the state before it, and after a good
step undo returns the state before it, bit for bit.
"""

from __future__ import annotations

import json
import sys

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from explorer.core.errors import ExplorerError, SpecError
from explorer.io.checkpoints import read_checkpoint
from explorer.io.downloads import safetensors_bytes
from explorer.session import actions
from explorer.session.experiment import SCHEMA_VERSION, Experiment
from explorer.session.state import State, batch, realize, with_mode
from explorer.session.workspace import Workspace
from explorer.spec.presets import PRESETS
from tests.invariant import assert_live_is_replay
from tests.models import BATCHNORM_SPEC

RULE_SETS = [
    [{"init": "default", "target": "*"}],
    [{"init": "normal", "target": "*.weight", "std": 0.01}, {"init": "zeros", "target": "*.bias"}],
    [{"init": "constant", "target": "*", "value": 1.0}],
    [{"init": "xavier_uniform", "target": "*.weight"}],
    [{"init": "xavier_uniform", "target": "*"}],  # fails on every bias: 1-D
    [{"init": "formula", "target": "*.weight", "expr": "w / 0"}],  # fails: inf
]
SPECS = ["mlp", "tied", "rgnet", "tied_lm", "batchnorm"]

# Inner calls a failure can be injected into: (module, attribute).
DEPTHS = [
    ("explorer.session.state", "build"),
    ("explorer.session.state", "initialize"),
    ("explorer.session.state", "run"),
    ("explorer.session.ops", "edited_values"),
    ("explorer.session.actions", "edited_values"),
    ("explorer.session.ops", "with_tensors"),
    ("explorer.session.actions", "with_tensors"),
    ("explorer.session.actions", "realize"),
    ("explorer.engine.run", "_forward"),
    ("explorer.engine.run", "UseRecorder"),
    ("explorer.session.state", "inspect"),
    ("explorer.session.state", "materialize"),
    ("explorer.session.actions", "with_run"),
    ("explorer.session.actions", "accumulate"),
    ("explorer.session.actions", "train_op"),
    ("explorer.session.actions", "loaded_module"),
    ("explorer.session.ops", "train_op"),
]


class Injected(RuntimeError):
    """A failure planted inside an action by the test."""


def snapshot(ws: Workspace) -> dict:
    """Everything a user could see of a workspace, compared by value (module by hash)."""
    s = ws.state
    run = s.last_run
    return {
        "experiment": s.experiment,
        "values": s.fingerprint(),
        "provenance": dict(s.provenance),
        "undo": ws.history.undo,
        "redo": ws.history.redo,
        "run": None if run is None else (run.loss, run.output.tolist()),
        "grads": {
            n: None if p.grad is None else p.grad.tolist() for n, p in s.module.named_parameters()
        },
        "version": s.version,
    }


def seen(snap: dict) -> dict:
    """A snapshot without the history bookkeeping that undo itself moves."""
    return {k: v for k, v in snap.items() if k not in ("undo", "redo", "version")}


class Session(RuleBasedStateMachine):
    """Random actions on one workspace, some of them made to fail part-way through."""

    def __init__(self):
        super().__init__()
        self.ws = Workspace.from_preset("tied")
        self.patch = pytest.MonkeyPatch()

    def teardown(self):
        self.patch.undo()

    def attempt(self, action, fail_at=None):
        """Run ``action``; a failure (planted or real) must leave the workspace as it was."""
        before = snapshot(self.ws)
        if fail_at is not None:
            self._plant(*fail_at)
        try:
            action()
        except (ExplorerError, Injected):
            assert snapshot(self.ws) == before, "a failed action changed the state"
            return
        finally:
            self.patch.undo()
        after = snapshot(self.ws)
        assert after["version"] >= before["version"]
        if after["experiment"] != before["experiment"]:
            assert after["version"] > before["version"]
            assert self.ws.undo()
            assert seen(snapshot(self.ws)) == seen(before), "undo did not return the state"
            assert self.ws.redo()
            assert seen(snapshot(self.ws)) == seen(after), "redo did not return the state"

    def _plant(self, depth: int, calls: int):
        module_name, attr = DEPTHS[depth]
        module = sys.modules[module_name]
        real = getattr(module, attr)
        count = {"n": 0}

        def failing(*args, **kwargs):
            count["n"] += 1
            if count["n"] > calls:
                raise Injected(f"planted in {module_name}.{attr}")
            return real(*args, **kwargs)

        self.patch.setattr(module, attr, failing)

    planted = st.tuples(st.integers(0, len(DEPTHS) - 1), st.integers(0, 2))
    fail = st.one_of(st.none(), st.none(), planted)  # a failure planted in a third of steps

    @rule(key=st.sampled_from(SPECS), fail_at=fail)
    def change_spec(self, key, fail_at):
        if key == "batchnorm":
            fields = {"spec": BATCHNORM_SPEC, "input_shape": (4, 4), "input_kind": "uniform",
                      "vocab": None, "loss": "sum", "preset": None}  # fmt: skip
        else:
            p = PRESETS[key]
            fields = {"spec": p.spec, "input_shape": p.input_shape, "input_kind": p.input_kind,
                      "vocab": p.vocab, "loss": p.loss, "preset": key}  # fmt: skip
        self.attempt(lambda: self.ws.change(**fields), fail_at)

    @rule(loss=st.sampled_from(["sum", "mse"]), fail_at=fail)
    def change_loss(self, loss, fail_at):
        self.attempt(lambda: self.ws.change(loss=loss), fail_at)

    @rule(rows=st.integers(2, 5), fail_at=fail)
    def change_input_rows(self, rows, fail_at):
        shape = (rows, *self.ws.experiment.input_shape[1:])
        self.attempt(lambda: self.ws.change(input_shape=shape), fail_at)

    @rule(mode=st.sampled_from(["train", "eval"]), fail_at=fail)
    def change_mode(self, mode, fail_at):
        self.attempt(lambda: self.ws.change(mode=mode), fail_at)

    @rule(fail_at=fail)
    def backward_again(self, fail_at):
        self.attempt(lambda: self.ws.backward(accumulate=True), fail_at)

    @rule(steps=st.integers(1, 3), fail_at=fail)
    def train(self, steps, fail_at):
        task = "next_token" if self.ws.experiment.input_kind == "tokens" else "regression"
        self.attempt(lambda: self.ws.train({"task": task, "steps": steps}), fail_at)

    @rule(seed=st.integers(1, 3), fail_at=fail)
    def load_checkpoint(self, seed, fail_at):
        if self.ws.state.lazy or self.ws.device == "meta":
            return
        other = realize(self.ws.experiment.replace(seed=seed, ops=(), ran="none"), self.ws.limits)
        data = safetensors_bytes(with_mode(other.module, None))
        self.attempt(lambda: self.ws.load_checkpoint(read_checkpoint(data, "other")), fail_at)

    @rule(index=st.integers(0, len(RULE_SETS) - 1), fail_at=fail)
    def change_rules(self, index, fail_at):
        self.attempt(lambda: self.ws.change(rules=RULE_SETS[index]), fail_at)

    @rule(seed=st.integers(0, 3), fail_at=fail)
    def change_seed(self, seed, fail_at):
        self.attempt(lambda: self.ws.change(seed=seed), fail_at)

    @rule(fail_at=fail)
    def reinitialize(self, fail_at):
        self.attempt(self.ws.reinitialize, fail_at)

    @rule(fail_at=fail)
    def materialize(self, fail_at):
        self.attempt(self.ws.materialize, fail_at)

    @rule(fail_at=fail)
    def forward(self, fail_at):
        self.attempt(self.ws.forward, fail_at)

    @rule(fail_at=fail)
    def backward(self, fail_at):
        self.attempt(self.ws.backward, fail_at)

    @rule(
        pick=st.integers(0, 20),
        how=st.sampled_from(["set", "add", "multiply"]),
        value=st.sampled_from([42.0, -1.5, 0.0, 1e39]),
        whole=st.booleans(),
        fail_at=fail,
    )
    def edit(self, pick, how, value, whole, fail_at):
        params = self.ws.state.tree.params
        if not params:
            return
        name = list(params)[pick % len(params)]
        shape = params[name].shape
        index = None if whole or shape is None else tuple(0 for _ in shape)
        self.attempt(lambda: self.ws.edit(name, how, value, index), fail_at)

    @rule(dtype=st.sampled_from(["float32", "float64"]), fail_at=fail)
    def move(self, dtype, fail_at):
        self.attempt(lambda: self.ws.move(dtype=dtype), fail_at)

    @precondition(lambda self: not torch.cuda.is_available())
    @rule()
    def move_to_missing_cuda(self):
        self.attempt(lambda: self.ws.move(device="cuda"))

    @rule(fail_at=fail)
    def undo(self, fail_at):
        self.attempt_history(self.ws.undo, fail_at)

    @rule(fail_at=fail)
    def redo(self, fail_at):
        self.attempt_history(self.ws.redo, fail_at)

    def attempt_history(self, step, fail_at):
        before = snapshot(self.ws)
        if fail_at is not None:
            self._plant(*fail_at)
        try:
            step()
        except (ExplorerError, Injected):
            assert snapshot(self.ws) == before
        finally:
            self.patch.undo()

    @invariant()
    def values_are_what_the_experiment_says(self):
        """The live values, grads, buffers and mode always equal a fresh replay."""
        assert_live_is_replay(self.ws)
        replay = realize(self.ws.experiment, self.ws.limits, blobs=self.ws.blobs)
        assert dict(replay.provenance) == dict(self.ws.state.provenance)


Session.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=12,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow],
)
test_session_state_machine = Session.TestCase


# --- one targeted test per action, each with a failure planted inside it ---


def _planted(monkeypatch, module_name: str, attr: str):
    def boom(*args, **kwargs):
        raise Injected(f"planted in {module_name}.{attr}")

    monkeypatch.setattr(sys.modules[module_name], attr, boom)


ACTIONS = {
    "change spec": lambda ws: ws.change(spec=PRESETS["rgnet"].spec),
    "change rules": lambda ws: ws.change(rules=RULE_SETS[1]),
    "change seed": lambda ws: ws.change(seed=7),
    "reinitialize": lambda ws: ws.reinitialize(),
    "forward": lambda ws: ws.forward(),
    "backward": lambda ws: ws.backward(),
    "edit": lambda ws: ws.edit("2.weight", "set", 5.0, (0, 0)),
    "move": lambda ws: ws.move(dtype="float64"),
}
PLANTS = {
    "change spec": ("explorer.session.state", "build"),
    "change rules": ("explorer.session.state", "initialize"),
    "change seed": ("explorer.session.state", "initialize"),
    "reinitialize": ("explorer.session.state", "initialize"),
    "forward": ("explorer.engine.run", "_forward"),
    "backward": ("explorer.engine.run", "UseRecorder"),
    "edit": ("explorer.session.actions", "with_tensors"),
    "move": ("explorer.session.ops", "with_tensors"),
}


@pytest.mark.parametrize("name", list(ACTIONS))
def test_a_failure_inside_an_action_changes_nothing(name, monkeypatch):
    """A failure deep inside each action leaves experiment, values, run, history as they were."""
    ws = Workspace.from_preset("tied")
    ws.backward()
    ws.edit("0.bias", "add", 1.0)
    before = snapshot(ws)
    _planted(monkeypatch, *PLANTS[name])
    with pytest.raises(Injected):
        ACTIONS[name](ws)
    assert snapshot(ws) == before


def test_the_reported_rgnet_failure_keeps_the_model_and_pushes_no_undo():
    """Issue 7's reproducer: xavier on every parameter fails on a bias and changes nothing."""
    ws = Workspace.from_preset("rgnet")
    before = snapshot(ws)
    with pytest.raises(SpecError, match="2 or more dimensions"):
        ws.change(
            spec=PRESETS["gluon_dense"].spec, rules=[{"init": "xavier_uniform", "target": "*"}]
        )
    assert snapshot(ws) == before
    assert ws.history.undo == ()


def test_issue_10_row_6_a_rule_dividing_by_zero_does_not_swap_the_model():
    """A failing rule on a new spec leaves the previous model, as the app says it does."""
    ws = Workspace.from_preset("mlp")
    ws.backward()
    before = snapshot(ws)
    bad = [{"init": "formula", "target": "*.weight", "expr": "1 / 0"}]
    with pytest.raises(SpecError):
        ws.change(spec=PRESETS["rgnet"].spec, rules=bad)
    assert snapshot(ws) == before


def test_an_action_never_writes_into_the_previous_states_tensors():
    """Old states stay intact: an edit and a re-initialization leave the old module's values."""
    ws = Workspace.from_preset("rgnet")
    old = ws.state
    fingerprint = old.fingerprint()
    ws.edit("1.weight", "set", 3.0)
    ws.change(rules=RULE_SETS[2])
    assert old.fingerprint() == fingerprint
    assert ws.state.module is not old.module


def _same_memory(a, b) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def test_an_edit_shares_every_tensor_it_does_not_change():
    """An edit allocates one tensor: every other parameter shares the old one's memory."""
    ws = Workspace.from_preset("rgnet")
    old = ws.state.module
    ws.edit("1.weight", "set", 3.0, (0, 0))
    new = ws.state.module
    changed = [n for n, p in new.named_parameters() if not _same_memory(p, old.get_parameter(n))]
    assert changed == ["1.weight"]


def test_a_rules_change_shares_the_tensors_no_rule_targets():
    """Re-initializing only the weights reuses the bias tensors that still hold defaults."""
    ws = Workspace.from_preset("rgnet")
    ws.change(rules=[{"init": "normal", "target": "*.weight", "std": 0.01}])
    old = ws.state.module
    ws.change(rules=[{"init": "xavier_uniform", "target": "*.weight"}])
    new = ws.state.module
    shared = {n for n, p in new.named_parameters() if _same_memory(p, old.get_parameter(n))}
    assert shared == {n for n in dict(new.named_parameters()) if n.endswith("bias")}
    assert ws.state.fingerprint() == realize(ws.experiment, ws.limits).fingerprint()


def test_the_tree_is_computed_once_per_state():
    """Reading the tree twice gives the same object; a new state gets a new one."""
    ws = Workspace.from_preset("rgnet")
    tree = ws.state.tree
    assert ws.state.tree is tree
    ws.edit("1.weight", "set", 1.0, (0, 0))
    assert ws.state.tree is not tree


def test_the_experiment_is_immutable_json_with_a_version():
    """An experiment round-trips through JSON, refuses changes, and carries its format version."""
    ws = Workspace.from_preset("tied")
    ws.backward()
    ws.edit("2.weight", "set", 100.0, (0, 0))
    exp = ws.experiment
    data = json.loads(exp.to_json())
    assert data["version"] == SCHEMA_VERSION
    assert Experiment.from_json(exp.to_json()) == exp
    with pytest.raises(TypeError):
        exp.spec["type"] = "linear"
    with pytest.raises(AttributeError):
        exp.seed = 3


def test_an_experiment_from_a_newer_explorer_is_refused_clearly():
    """A file with a higher format version names both versions."""
    data = json.loads(Experiment.from_preset("mlp").to_json())
    data["version"] = SCHEMA_VERSION + 1
    with pytest.raises(SpecError, match="newer explorer"):
        Experiment.from_json(json.dumps(data))


def test_replaying_an_experiment_gives_the_same_values_and_gradients():
    """A saved experiment rebuilds the same values and the same gradients, bit for bit."""
    ws = Workspace.from_preset("tied_lm")
    ws.change(rules=RULE_SETS[1], seed=5)
    ws.edit("1.weight", "multiply", 2.0)
    ws.backward()
    replay = realize(Experiment.from_json(ws.experiment.to_json()))
    assert replay.fingerprint() == ws.state.fingerprint()
    assert replay.last_run.loss == ws.last_run.loss
    for name, p in ws.module.named_parameters():
        assert torch.equal(replay.module.get_parameter(name).grad, p.grad)


def test_a_run_leaves_the_previous_states_grads_alone():
    """A backward pass on a new state never writes into an older state's ``.grad``s."""
    ws = Workspace.from_preset("rgnet")
    ws.backward()
    first = ws.state
    grads = [p.grad.clone() for p in first.module.parameters()]
    ws.edit("1.weight", "multiply", 2.0)
    ws.backward()
    kept = [torch.equal(p.grad, g) for p, g in zip(first.module.parameters(), grads, strict=True)]
    assert all(kept)


def test_a_run_updates_buffers_on_a_twin_and_keeps_the_values_before_it():
    """A training-mode forward updates BatchNorm's statistics in the state's module, as
    PyTorch does; the values before the run (what the next change starts from) keep theirs."""
    from tests.models import batchnorm_net

    net = batchnorm_net()
    before = {n: b.clone() for n, b in net.named_buffers()}
    spec = {"type": "linear", "in_features": 4, "out_features": 8}
    state = State(Experiment(spec=spec, input_shape=(6, 4)), net)
    after = actions.backward(state)
    assert after.values is net and after.module is not net
    assert not torch.equal(
        dict(after.module.named_buffers())["1.running_mean"], before["1.running_mean"]
    )
    for name, buffer in net.named_buffers():
        assert torch.equal(buffer, before[name]), name
    assert after.last_run is not None


def test_forward_keeps_every_grad_none_and_backward_fills_them():
    """The chapter's order: after forward `.grad` is None; after backward it is set."""
    ws = Workspace.from_preset("tied")
    ws.forward()
    assert ws.last_run is not None
    assert all(p.grad is None for p in ws.module.parameters())
    ws.backward()
    assert all(p.grad is not None for p in ws.module.parameters())


def test_actions_are_pure_functions_of_a_state():
    """Calling an action twice on the same state gives equal states and changes neither input."""
    state = realize(Experiment.from_preset("rgnet"))
    fingerprint = state.fingerprint()
    a = actions.edit(state, "1.bias", "add", 1.0)
    b = actions.edit(state, "1.bias", "add", 1.0)
    assert a.fingerprint() == b.fingerprint() != fingerprint
    assert state.fingerprint() == fingerprint


def test_a_runs_output_shapes_come_from_the_specs_meta_pass_and_match_the_model(monkeypatch):
    """The app's run reuses the shapes its spec's probe measured (no second meta pass of the
    real model), and they are the real model's shapes, path for path."""
    probe = sys.modules["explorer.engine.run"]  # the module, not explorer.run the function
    ws = Workspace.from_preset("tied_lm")
    measured = []
    real_pass = probe._measure_activations
    monkeypatch.setattr(
        probe, "_measure_activations", lambda m, *a: measured.append(m) or real_pass(m, *a)
    )
    ws.backward()
    shapes = dict(ws.last_run.output_shapes)
    assert all(m is not ws.module for m in measured)  # only the spec's own meta module
    x = batch(ws.experiment, "cpu", "float32", ws.limits)
    expected = probe.meta_pass(ws.module, x, ws.experiment.loss, backward=True)[1]
    assert shapes == expected and "" in shapes
