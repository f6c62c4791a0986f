"""The training lab's core: a deterministic loop, what it records, and training as one action.

The reference answer is a training loop written here in plain PyTorch with the same seed,
the same data order and the same optimizer: the explorer's run must match it bit for bit.
"""

from __future__ import annotations

import copy
import json
import sys

import hypothesis.strategies as st
import pytest
import torch
import torch.nn.functional as F
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from torch import nn

from explorer.core.errors import ExplorerError, SpecError
from explorer.core.limits import DEFAULT_LIMITS
from explorer.engine.tasks import SAMPLES, make_task
from explorer.engine.train import (
    STEP_SEED_HIGH,
    Progress,
    Record,
    TrainSettings,
    frame_steps,
    train,
)
from explorer.session.experiment import Experiment
from explorer.session.state import realize
from explorer.session.workspace import Workspace
from tests.models import rgnet, tied_net, untied_copy


def plain_loop(net, data, steps, opt, batch_size, seed, loss_fn, reseed=False):
    """The reference: the loop a student would write, drawing batches as explorer.train does."""
    order = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        index = torch.randint(0, len(data.x), (batch_size,), generator=order)
        step_seed = int(torch.randint(0, STEP_SEED_HIGH, (1,), generator=order))
        if reseed:
            torch.manual_seed(step_seed)  # dropout draws, repeated
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(data.x[index]), data.y[index])
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return torch.stack(losses)


def assert_same_values(a: nn.Module, b: nn.Module) -> None:
    pairs = zip(a.named_parameters(), b.named_parameters(), strict=True)
    for (name, p), (other, q) in pairs:
        assert name == other
        assert torch.equal(p, q), name


def test_training_the_tied_net_matches_a_plain_pytorch_loop():
    """SGD with momentum on the tied net: the same loss curve and final values, bit for bit."""
    net, ref = tied_net(), tied_net()
    data = make_task("regression", net, (4,), seed=0)
    log = train(net, data, 40, "sgd", lr=0.05, momentum=0.9, batch_size=16, seed=3)
    opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    losses = plain_loop(ref, data, 40, opt, 16, 3, F.mse_loss)
    assert torch.equal(log.loss, losses)
    assert_same_values(net, ref)
    assert net[2].weight is net[4].weight  # still one tensor


def test_adam_on_rgnet_matches_a_plain_pytorch_loop():
    """Adam on the nested rgnet, teacher task: bit-identical to torch.optim.Adam in a plain loop."""
    net, ref = rgnet(), rgnet()
    data = make_task("teacher", net, (4,), seed=1)
    log = train(net, data, 15, "adam", lr=0.01, batch_size=8, seed=0)
    opt = torch.optim.Adam(ref.parameters(), lr=0.01)
    assert torch.equal(log.loss, plain_loop(ref, data, 15, opt, 8, 0, F.mse_loss))
    assert_same_values(net, ref)


def test_dropout_draws_repeat_with_the_step_seed():
    """A model with dropout: the step seed makes its masks, and the run equals the plain loop."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))
    ref, again = copy.deepcopy(net), copy.deepcopy(net)
    data = make_task("moons", net, (2,), seed=0)
    log = train(net, data, 10, "sgd", lr=0.1, batch_size=8, seed=5)
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    losses = plain_loop(ref, data, 10, opt, 8, 5, lambda o, y: F.cross_entropy(o, y), reseed=True)
    assert torch.equal(log.loss, losses)
    assert_same_values(net, ref)
    assert torch.equal(train(again, data, 10, lr=0.1, batch_size=8, seed=5).loss, log.loss)


def test_each_use_of_a_tied_tensor_has_its_own_gradient_norm():
    """Step 1's per-use norms equal the grads of an untied copy, and the uses sum to .grad."""
    net = tied_net()
    untied = untied_copy(net)
    data = make_task("regression", net, (4,), seed=0)
    log = train(net, data, 1, lr=0.05, batch_size=16, seed=2)
    order = torch.Generator().manual_seed(2)
    index = torch.randint(0, SAMPLES, (16,), generator=order)
    F.mse_loss(untied(data.x[index]), data.y[index]).backward()
    for key, layers in {"2.weight": (2, 4), "2.bias": (2, 4)}.items():
        local = key.split(".")[1]
        expected = [torch.linalg.vector_norm(getattr(untied[i], local).grad) for i in layers]
        assert torch.allclose(log.use_norm[key][0], torch.stack(expected), rtol=1e-6, atol=0)
        assert len(log.use_labels[key]) == 2
    total = untied[2].weight.grad + untied[4].weight.grad
    grad_norm = log.grad_norm[0, log.column("4.weight")]
    assert torch.allclose(grad_norm, torch.linalg.vector_norm(total), rtol=1e-6)


def test_the_update_ratio_is_the_relative_change_of_the_values():
    """Plain SGD's first step: ‖Δw‖/‖w‖ = lr·‖g‖/‖w‖, and the value norm is ‖w − lr·g‖."""
    net = tied_net()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    data = make_task("teacher", net, (4,), seed=0)
    log = train(net, data, 1, lr=0.1, batch_size=32, seed=0)
    for name, w0 in before.items():
        col = log.column(name)
        g = log.grad_norm[0, col]
        expected = 0.1 * g / torch.linalg.vector_norm(w0)
        assert torch.allclose(log.update_ratio[0, col], expected, rtol=1e-4), name
        assert torch.equal(
            log.value_norm[0, col], torch.linalg.vector_norm(net.get_parameter(name))
        )


def test_norms_cover_every_precision_and_missing_gradients():
    """One fused call for float32/float64, float32 maths for bfloat16, 0 for a None grad."""
    from explorer.engine.train import norms

    a, b = torch.randn(3, 4), torch.randn(5, dtype=torch.float64)
    c = torch.randn(6).to(torch.bfloat16)
    got = norms([a, None, b, c])
    expected = [
        torch.linalg.vector_norm(a),
        torch.tensor(0.0),
        torch.linalg.vector_norm(b).float(),
        torch.linalg.vector_norm(c.float()),
    ]
    assert got.dtype == torch.float32 and torch.equal(got, torch.stack(expected))


def test_snapshots_are_the_values_at_their_frames():
    """Frame 0 holds the values before training, the last frame the trained values."""
    net = tied_net()
    start = net[2].weight.detach().clone()
    data = make_task("regression", net, (4,))
    log = train(net, data, 12, lr=0.05, record=Record(params=("4.weight",), frames=4))
    assert log.frames == (0, 4, 8, 12)
    assert set(log.snapshots) == {"2.weight"}
    assert torch.equal(log.snapshot("4.weight", 0), start)
    assert torch.equal(log.snapshot("2.weight", 3), net[2].weight.detach())
    assert log.snapshot("0.weight", 0) is None


def test_frames_are_at_most_the_limit_and_span_the_run():
    """At most 50 frames from step 0 to the last step, in order, without repeats."""
    frames = frame_steps(1000, 50)
    assert len(frames) == 50 and frames[0] == 0 and frames[-1] == 1000
    assert list(frames) == sorted(set(frames))
    assert frame_steps(3, 50) == (0, 1, 2, 3)


def test_snapshots_over_the_budget_are_refused_before_training():
    """Asking for snapshots larger than max_snapshot_bytes raises and leaves the values alone."""
    from dataclasses import replace

    net = tied_net()
    before = [p.detach().clone() for p in net.parameters()]
    tiny = replace(DEFAULT_LIMITS, max_snapshot_bytes=1000)
    data = make_task("regression", net, (4,))
    with pytest.raises(SpecError, match="snapshot fewer parameters"):
        train(net, data, 5, record=Record(params=("2.weight",)), limits=tiny)
    assert all(torch.equal(p, b) for p, b in zip(net.parameters(), before, strict=True))
    log = train(net, data, 5, limits=tiny)  # the default: what fits
    assert sum(f.nbytes for f in log.snapshots.values()) <= 1000


def test_steps_are_capped_by_the_limits():
    """More steps than max_train_steps is refused with the range."""
    net = tied_net()
    data = make_task("regression", net, (4,))
    with pytest.raises(SpecError, match="steps: must be a whole number from 0 to 5000"):
        train(net, data, 5001)


def test_a_stop_leaves_the_model_at_the_last_finished_step():
    """Stopping after 3 steps gives the values of a 3-step run, and says it stopped."""
    net, ref = tied_net(), tied_net()
    data = make_task("regression", net, (4,))
    seen: list[Progress] = []
    log = train(net, data, 50, lr=0.05, on_step=seen.append, should_stop=lambda: len(seen) >= 3)
    assert log.stopped and log.done == 3 and log.frames[-1] == 3
    assert [p.done for p in seen] == [1, 2, 3] and seen[-1].steps == 50
    assert seen[-1].loss == float(log.loss[-1])
    train(ref, data, 3, lr=0.05)
    assert_same_values(net, ref)


def test_training_restores_the_modules_training_flags():
    """A model in eval mode trains in train mode and is left in eval mode."""
    net = tied_net().eval()
    train(net, make_task("regression", net, (4,)), 2)
    assert not any(m.training for m in net.modules())


def test_a_lazy_model_is_refused_with_what_to_do():
    """An unmaterialized model cannot train: run a forward pass first."""
    from tests.models import lazy_mlp

    with pytest.raises(SpecError, match="run a forward pass first"):
        make_task("regression", lazy_mlp(), (4,))


# --- tasks ---


def test_each_task_fits_the_model_or_says_why():
    """Moons on one output is binary cross-entropy; regression on a CNN is refused."""
    torch.manual_seed(0)
    one = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    two = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert make_task("moons", one, (3,)).loss == "bce"
    assert make_task("moons", two, (3,)).loss == "cross_entropy"
    assert make_task("moons", two, (3,)).y.dtype == torch.int64
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 36, 3))
    with pytest.raises(SpecError, match="try the teacher task"):
        make_task("regression", cnn, (1, 8, 8))
    data = make_task("teacher", cnn, (1, 8, 8))
    assert data.x.shape == (SAMPLES, 1, 8, 8) and data.y.shape == (SAMPLES, 3)
    with pytest.raises(SpecError, match="token model"):
        make_task("next_token", two, (3,))


def test_task_data_is_the_same_for_the_same_seed_and_differs_for_another():
    """Two draws with seed 0 are equal; seed 1 gives other data."""
    net = tied_net()
    a, b, c = (make_task("moons", net, (4,), seed=s) for s in (0, 0, 1))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)


def test_next_token_sequences_follow_one_successor_per_token():
    """Every token is always followed by the same token: the task is learnable."""
    from explorer.spec.presets import PRESETS

    ws = Workspace.from_preset("tied_lm")
    ws.materialize()
    data = make_task("next_token", ws.module, (6,), vocab=PRESETS["tied_lm"].vocab)
    successor = {}
    for a, b in zip(data.x.flatten().tolist(), data.y.flatten().tolist(), strict=True):
        assert successor.setdefault(a, b) == b
    assert torch.equal(data.x[:, 1:], data.y[:, :-1])


# --- training as an action ---


SETTINGS = {"task": "regression", "steps": 6, "lr": 0.05, "batch_size": 16}


def test_training_is_one_action_that_replay_reproduces_bit_for_bit():
    """After ws.train, realize(ws.experiment) has the live values and the same loss curve."""
    ws = Workspace.from_preset("tied")
    log = ws.train(SETTINGS)
    op = ws.experiment.ops[-1]
    assert op["op"] == "train" and op["steps"] == 6 and op["input"] == (4,)
    replay = realize(ws.experiment, ws.limits)
    assert replay.fingerprint() == ws.state.fingerprint()
    assert torch.equal(replay.train_log.loss, log.loss)
    assert ws.state.train_log is log and ws.state.last_run is None
    assert all(p.grad is None for p in ws.module.parameters())


def test_undo_returns_to_before_training_and_redo_to_after():
    """The whole run is one undo step."""
    ws = Workspace.from_preset("tied")
    ws.backward()
    before = ws.state.fingerprint()
    ws.train(SETTINGS)
    after = ws.state.fingerprint()
    assert after != before and len(ws.history.undo) == 2
    assert ws.undo() and ws.state.fingerprint() == before
    assert ws.state.train_log is None
    assert ws.redo() and ws.state.fingerprint() == after


def test_a_stopped_run_records_the_steps_it_did_and_replays_them():
    """Stopped after 2 of 50 steps: the op says 2, and the replay has the same values."""
    ws = Workspace.from_preset("tied")
    count = iter(range(100))
    ws.train({**SETTINGS, "steps": 50}, should_stop=lambda: next(count) >= 2)
    assert ws.experiment.ops[-1]["steps"] == 2
    assert realize(ws.experiment, ws.limits).fingerprint() == ws.state.fingerprint()


def test_a_run_stopped_before_its_first_step_changes_nothing():
    """No step done: no op, no undo entry, the same state."""
    ws = Workspace.from_preset("rgnet")
    state = ws.state
    ws.train(SETTINGS, should_stop=lambda: True)
    assert ws.state is state and ws.history.undo == ()


def test_training_never_writes_into_the_previous_states_tensors():
    """The old state keeps its values and buffers; the new one has new tensors."""
    ws = Workspace.from_preset("rgnet")
    old = ws.state
    fingerprint = old.fingerprint()
    ws.train(SETTINGS)
    assert old.fingerprint() == fingerprint
    assert all(
        p.data_ptr() != old.module.get_parameter(n).data_ptr()
        for n, p in ws.module.named_parameters()
    )


def test_a_lazy_model_gets_its_shapes_first_and_shows_the_deferred_table():
    """The MLP preset trains straight away; the first-forward shapes are kept for the table."""
    ws = Workspace.from_preset("mlp")
    ws.train(SETTINGS)
    assert dict(ws.state.deferred)["0.weight"] == (8, 4)
    assert ws.experiment.materialized
    assert realize(ws.experiment, ws.limits).fingerprint() == ws.state.fingerprint()


def test_later_run_settings_do_not_change_what_the_training_replays():
    """A new loss or input after training keeps the trained values, and replay agrees."""
    ws = Workspace.from_preset("rgnet")
    ws.train(SETTINGS)
    ws.change(loss="mse", input_shape=(3, 4))
    assert realize(ws.experiment, ws.limits).fingerprint() == ws.state.fingerprint()


def test_edits_and_moves_after_training_replay_too():
    """Train, edit, move to float64, train again: the replay equals the live state."""
    ws = Workspace.from_preset("tied")
    ws.train(SETTINGS)
    ws.edit("2.weight", "set", 3.0, (0, 0))
    ws.move(dtype="float64")
    ws.train({**SETTINGS, "task": "teacher", "optimizer": "adam", "lr": 0.01})
    assert ws.module[2].weight.dtype == torch.float64
    assert realize(ws.experiment, ws.limits).fingerprint() == ws.state.fingerprint()
    assert ws.state.train_log.settings["optimizer"] == "adam"


class Planted(RuntimeError):
    """A failure planted inside a training run."""


def test_a_failure_inside_training_changes_nothing(monkeypatch):
    """A crash at step 3 leaves experiment, values and history as they were."""
    ws = Workspace.from_preset("tied")
    ws.backward()
    before = (ws.experiment, ws.state.fingerprint(), ws.history.undo, ws.version)
    real, calls = sys.modules["explorer.engine.train"].task_loss, {"n": 0}

    def failing(*args):
        calls["n"] += 1
        if calls["n"] > 2:
            raise Planted("step 3")
        return real(*args)

    monkeypatch.setattr(sys.modules["explorer.engine.train"], "task_loss", failing)
    with pytest.raises(Planted):
        ws.train(SETTINGS)
    assert (ws.experiment, ws.state.fingerprint(), ws.history.undo, ws.version) == before


def test_an_action_during_training_drops_the_run():
    """If the state moved on while training ran, the run is not swapped over it."""
    ws = Workspace.from_preset("tied")
    ws.materialize()

    def meanwhile(progress):
        if progress.done == 1:
            ws.edit("0.bias", "set", 1.0)  # another click while the job runs

    with pytest.raises(ExplorerError, match="changed while training"):
        ws.train(SETTINGS, on_step=meanwhile)
    assert ws.experiment.ops[-1]["op"] == "edit"


def test_training_waits_in_a_heavy_work_slot(monkeypatch):
    """The run holds one of the server's heavy slots, and says when it waits."""
    train_module = sys.modules["explorer.engine.train"]  # explorer.train is the function
    entered = []
    real = train_module.heavy

    def spy(limits, on_wait=None):
        entered.append(on_wait)
        return real(limits, on_wait)

    monkeypatch.setattr(train_module, "heavy", spy)
    told = []
    Workspace.from_preset("tied").train(SETTINGS, on_wait=told.append)
    assert entered == [told.append]


def test_a_train_op_round_trips_through_json_and_bad_ones_are_refused():
    """The op is part of the experiment's JSON; unknown fields and bad values name the place."""
    ws = Workspace.from_preset("tied")
    ws.train(TrainSettings(steps=2))
    text = ws.experiment.to_json()
    assert Experiment.from_json(text) == ws.experiment
    data = json.loads(text)
    data["ops"][0]["lr"] = -1
    with pytest.raises(SpecError, match=r"ops\[0\]\.lr: must be a number in \(0, 10\]"):
        Experiment.from_json(json.dumps(data))
    data["ops"][0] = {**data["ops"][0], "lr": 0.1, "extra": 1}
    with pytest.raises(SpecError, match=r"ops\[0\]\.extra: unknown field"):
        Experiment.from_json(json.dumps(data))


@settings(max_examples=6, stateful_step_count=5, deadline=None)
class TrainingSession(RuleBasedStateMachine):
    """Random actions with training among them: live values always equal the replay."""

    def __init__(self):
        super().__init__()
        self.ws = Workspace.from_preset("tied")

    @rule(task=st.sampled_from(["regression", "moons", "teacher"]), adam=st.booleans())
    def train(self, task, adam):
        self.ws.train(
            {**SETTINGS, "task": task, "steps": 2, "optimizer": "adam" if adam else "sgd"}
        )

    @rule(value=st.sampled_from([0.5, -2.0]))
    def edit(self, value):
        if not self.ws.state.lazy:
            self.ws.edit("2.weight", "multiply", value)

    @rule(dtype=st.sampled_from(["float32", "float64"]))
    def move(self, dtype):
        self.ws.move(dtype=dtype)

    @rule()
    def backward(self):
        self.ws.backward()

    @rule()
    def undo(self):
        self.ws.undo()

    @rule()
    def redo(self):
        self.ws.redo()

    @invariant()
    def values_are_what_the_experiment_says(self):
        replay = realize(self.ws.experiment, self.ws.limits)
        assert replay.fingerprint() == self.ws.state.fingerprint()


test_training_session = TrainingSession.TestCase


# --- figures and the Train tab ---


def test_the_curves_have_one_trace_per_tensor_and_the_uses_against_their_sum():
    """Norm curves: a line per distinct tensor (aliases joined); uses: each use, then the sum."""
    from explorer.labs.charts import loss_figure, norms_figure, uses_figure

    net = tied_net()
    log = train(net, make_task("regression", net, (4,)), 5, lr=0.05)
    names = [trace.name for trace in norms_figure(log, "grad_norm").data]
    assert names == ["0.weight", "0.bias", "2.weight = 4.weight", "2.bias = 4.bias", "6.weight",
                     "6.bias"]  # fmt: skip
    uses = uses_figure(log, "2.weight").data
    assert [t.name.split(":")[0] for t in uses] == ["use 1", "use 2", "sum of the uses = .grad"]
    assert list(uses[2].y) == log.grad_norm[:, log.column("2.weight")].double().tolist()
    assert list(loss_figure(log.loss).data[0].y) == log.loss.double().tolist()


def _train_in_the_app(steps: int):
    """AppTest: the tied net, the Train tab, ``steps`` steps, Train pressed; (app, its job)."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).parent.parent / "app.py"), default_timeout=120)
    at.run()
    at.selectbox(key="preset_choice").select("tied").run()
    at.session_state["tabs"] = next(t.label for t in at.tabs if t.label.endswith("Train"))
    at.run()
    at.number_input(key="train_steps").set_value(steps).run()
    at.button(key="train_button").click().run()
    assert not at.exception
    return at, at.session_state["train_job"]


def test_the_train_tab_trains_in_a_worker_and_shows_the_curves_and_the_step_slider():
    """AppTest: Train starts a worker; afterwards the metrics, curves and the scrubber show."""
    import time

    at, job = _train_in_the_app(steps=8)
    deadline = time.monotonic() + 120
    while not job.finished and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.finished and job.error is None and job.done == 8
    at.run()
    assert not at.exception
    assert [m.label for m in at.metric][:2] == ["Steps", "Loss"]
    assert at.metric[0].value == "8"
    at.session_state["tabs"] = next(t.label for t in at.tabs if t.label.endswith("Explore"))
    at.session_state["selected"] = "4/weight"
    at.run()
    assert not at.exception
    slider = at.select_slider[0]
    assert slider.label == "Training step" and slider.value == 8


def test_a_model_on_the_meta_device_has_no_values_to_train():
    """Structure only: training is refused with the reason, and nothing changes."""
    from explorer.spec.presets import PRESETS

    ws = Workspace(Experiment(spec=PRESETS["rgnet"].spec, device="meta", root_name="rgnet"))
    with pytest.raises(SpecError, match="meta device"):
        ws.train(SETTINGS)
    assert ws.history.undo == ()


def test_the_stop_button_ends_a_long_run_and_keeps_its_steps():
    """AppTest: Train 5000 steps, press Stop while it runs: the finished steps are kept."""
    import time

    at, job = _train_in_the_app(steps=5000)
    deadline = time.monotonic() + 60
    while job.done < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    at.run()  # the progress fragment, with its Stop button
    assert at.button(key="train_button").disabled
    at.button(key="train_stop").click().run()
    while not job.finished and time.monotonic() < deadline + 60:
        time.sleep(0.05)
    assert job.finished and job.error is None and 2 <= job.done < 5000
    at.run()
    assert not at.exception
    ws = at.session_state["workspace"]
    assert ws.experiment.ops[-1]["steps"] == job.done == ws.state.train_log.done
