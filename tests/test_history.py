"""The live state is exactly its experiment, and undo costs one step, not the whole history.

Each test here names one way the screen could show something the experiment does not say
(stale gradients, buffers, the mode), or a way undo, a concurrent action or an upload could
lose the student's work.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import explorer.session.state as state_module
from explorer.core.errors import ExplorerError
from explorer.core.limits import DEFAULT_LIMITS
from explorer.core.rng import seeded
from explorer.io.checkpoints import read_checkpoint
from explorer.io.downloads import safetensors_bytes
from explorer.session import actions
from explorer.session.experiment import Experiment
from explorer.session.state import batch, realize
from explorer.session.workspace import Workspace
from tests.invariant import assert_live_is_replay

ROOT = Path(__file__).resolve().parent.parent
BATCHNORM = str(ROOT / "tests" / "model_files" / "batchnorm.py") + ":make_model"


def tied_workspace() -> Workspace:
    """The chapter's tied net with its lazy first layer shaped, so every tensor has values."""
    ws = Workspace.from_preset("tied")
    ws.materialize()
    return ws


def batchnorm_workspace() -> Workspace:
    return Workspace(Experiment(source=BATCHNORM, rules=(), input_shape=(4, 4)))


# --- stale gradients and buffers ---


@pytest.mark.parametrize(
    "change", [{"loss": "mse"}, {"input_shape": (3, 4)}], ids=["loss", "input"]
)
def test_a_run_field_change_after_backward_leaves_no_gradient(change):
    """After Forward + backward, a new loss or input drops every .grad, as realize gives."""
    ws = Workspace.from_preset("tied")
    ws.backward()
    ws.change(**change)
    assert ws.last_run is None
    assert all(p.grad is None for p in ws.module.parameters())
    assert not any(info.has_grad for info in ws.state.tree.params.values())
    assert_live_is_replay(ws)


def test_running_statistics_after_a_run_are_what_the_replay_gives():
    """A train-mode forward updates BatchNorm's statistics, in the live state and the replay."""
    ws = batchnorm_workspace()
    before = ws.module[1].running_mean.clone()
    ws.backward()
    assert not torch.equal(ws.module[1].running_mean, before)  # it visibly changed
    assert int(ws.module[1].num_batches_tracked) == 1
    assert_live_is_replay(ws)
    ws.undo()
    assert torch.equal(ws.module[1].running_mean, before)
    assert_live_is_replay(ws)
    ws.redo()
    assert_live_is_replay(ws)


def test_an_edit_after_a_run_starts_from_the_values_before_the_run():
    """Buffers a run updated go with the run: an edit after it keeps the pre-run statistics."""
    ws = batchnorm_workspace()
    ws.forward()
    ws.edit("0.weight", "set", 1.0, (0, 0))
    assert int(ws.module[1].num_batches_tracked) == 0
    assert_live_is_replay(ws)


def test_forward_twice_is_one_forward():
    """Pressing Forward again runs the batch on the same values: no second statistics update."""
    ws = batchnorm_workspace()
    ws.forward()
    ws.forward()
    assert int(ws.module[1].num_batches_tracked) == 1
    assert_live_is_replay(ws)


# --- train/eval mode ---


def test_eval_mode_is_part_of_the_experiment():
    """Switching to eval mode is an action: every module evaluates, and realize agrees."""
    ws = batchnorm_workspace()
    ws.change(mode="eval")
    assert ws.experiment.mode == "eval"
    assert not any(m.training for m in ws.module.modules())
    ws.backward()
    assert int(ws.module[1].num_batches_tracked) == 0  # eval mode keeps the statistics
    assert_live_is_replay(ws)
    assert Experiment.from_json(ws.experiment.to_json()) == ws.experiment


def test_eval_mode_loss_is_plain_pytorchs_eval_loss():
    """The loss in eval mode is what model.eval() then model(X).sum() gives."""
    ws = batchnorm_workspace()
    ws.change(mode="eval")
    ws.forward()
    ref = realize(ws.experiment.replace(ran="none", mode=None), DEFAULT_LIMITS).module
    ref.eval()
    with torch.no_grad(), seeded(0):
        expected = ref(batch(ws.experiment, "cpu", "float32", DEFAULT_LIMITS)).sum()
    assert ws.last_run.loss == float(expected)


# --- backward twice: accumulation as loss.backward() without zero_grad() ---


def test_backward_twice_accumulates_as_plain_pytorch_does():
    """Two backward passes without zero_grad: .grad is plain PyTorch's, bit for bit."""
    ws = Workspace.from_preset("mlp")
    ws.backward()
    ws.backward(accumulate=True)
    assert ws.experiment.passes == 2
    ref = realize(ws.experiment.replace(ran="none", passes=1), DEFAULT_LIMITS).module
    x = batch(ws.experiment, "cpu", "float32", DEFAULT_LIMITS)
    for _ in range(2):
        with seeded(0):
            ref(x).sum().backward()
    for (name, p), (_, q) in zip(ws.module.named_parameters(), ref.named_parameters(), strict=True):
        assert torch.equal(p.grad, q.grad), name
    assert_live_is_replay(ws)


def test_backward_without_accumulating_starts_afresh():
    """A plain Backward after Backward gives one pass's gradients again."""
    ws = Workspace.from_preset("mlp")
    ws.backward()
    first = [p.grad.clone() for p in ws.module.parameters()]
    ws.backward()
    assert ws.experiment.passes == 1
    assert all(torch.equal(a, p.grad) for a, p in zip(first, ws.module.parameters(), strict=True))


def test_accumulated_uses_still_add_up_to_the_gradient():
    """On the tied net, each use's accumulated gradient still sums to .grad."""
    ws = Workspace.from_preset("tied")
    ws.backward()
    ws.backward(accumulate=True)
    for name, uses in ws.last_run.grad_by_use.items():
        grad = ws.module.get_parameter(name).grad
        assert torch.allclose(sum(uses), grad, rtol=1e-6, atol=1e-7), name
    assert_live_is_replay(ws)


# --- undo costs one step ---


def _count_replayed_ops(monkeypatch) -> list:
    calls: list = []
    real = state_module.apply_op

    def counting(*args, **kwargs):
        calls.append(args[1]["op"])
        return real(*args, **kwargs)

    monkeypatch.setattr(state_module, "apply_op", counting)
    return calls


def test_undo_after_many_edits_replays_no_edit(monkeypatch):
    """After 30 edits, undo and redo swap in kept states: no op is replayed."""
    ws = tied_workspace()
    for i in range(30):
        ws.edit("2.weight", "set", float(i), (0, 0))
    calls = _count_replayed_ops(monkeypatch)
    assert ws.undo() and ws.redo() and ws.undo()
    assert calls == []
    assert float(ws.module[2].weight[0, 0]) == 28.0
    assert_live_is_replay(ws)


def test_undo_past_the_kept_states_replays_from_the_nearest_one(monkeypatch):
    """Far back in the history, undo replays a few edits from the nearest kept state."""
    ws = tied_workspace()
    ws.train({"steps": 20})
    for i in range(40):
        ws.edit("2.weight", "set", float(i), (0, 0))
    calls = _count_replayed_ops(monkeypatch)
    for _ in range(40):
        before = len(calls)
        assert ws.undo()
        assert len(calls) - before < ws.limits.history_states  # a few edits, never all
    assert "train" not in calls  # the state after training is a kept state
    assert_live_is_replay(ws)
    for _ in range(40):
        before = len(calls)
        assert ws.redo()
        assert len(calls) - before < ws.limits.history_states
    assert_live_is_replay(ws)


def test_undo_of_an_edit_puts_back_what_it_overwrote(monkeypatch):
    """With no state kept, undo of an edit restores the old value: nothing is replayed."""
    ws = tied_workspace()
    ws.backward()
    for i in range(20):  # 40 edits: within max_undo
        ws.edit("2.weight", "set", float(i), (0, 0))
        ws.edit("6.bias", "multiply", 2.0)
    ws.limits = replace(ws.limits, max_history_bytes=0)  # no room: every step is rebuilt
    calls = _count_replayed_ops(monkeypatch)
    while ws.undo_label != "forward + backward":
        assert ws.undo()
        assert_live_is_replay(ws)
    assert calls == []
    assert ws.experiment.ops == () and ws.last_run is not None  # back to the first backward


def test_undo_says_what_it_undoes():
    """The undo and redo labels name the action, not only that there is one."""
    assert Workspace.from_preset("tied").undo_label is None
    ws = tied_workspace()
    assert ws.undo_label == "first forward (lazy shapes)"
    ws.edit("2.weight", "set", 42.0, (0, 0))
    ws.backward()
    assert ws.undo_label == "forward + backward"
    ws.undo()
    assert ws.undo_label == "edit 2.weight[0, 0] = 42"
    assert ws.redo_label == "forward + backward"


def test_undo_after_a_load_and_a_run_undoes_the_run_first(tmp_path):
    """Load a checkpoint, press Forward + backward: undo names the run, then the load."""
    ws = tied_workspace()
    other = Workspace(ws.experiment.replace(seed=5))
    ckpt = read_checkpoint(safetensors_bytes(other.module), "other.safetensors")
    ws.load_checkpoint(ckpt)
    ws.backward()
    assert ws.undo_label == "forward + backward"
    ws.undo()
    assert ws.undo_label == "load other.safetensors"
    ws.undo()
    assert ws.experiment.ops == ()


# --- no lost action ---


def test_two_threads_acting_at_once_lose_no_edit(monkeypatch):
    """Actions on one workspace are serialized: every edit that returned is in the experiment."""
    ws = tied_workspace()
    real = actions.edit

    def slow_edit(*args, **kwargs):
        new = real(*args, **kwargs)
        time.sleep(0.02)  # a swap from another thread would land here without a lock
        return new

    monkeypatch.setattr(actions, "edit", slow_edit)

    def edits(offset: int) -> None:
        for i in range(5):
            ws.edit("2.weight", "set", float(offset + i), (0, 0))

    threads = [threading.Thread(target=edits, args=(k * 100,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ws.experiment.ops) == 10


def test_a_training_run_that_finds_the_state_changed_ends_with_a_message():
    """An edit while training runs wins; the run is dropped and says why."""
    ws = tied_workspace()
    edited = threading.Event()

    def on_step(progress):
        if progress.done == 1 and not edited.is_set():
            ws.edit("2.weight", "set", 7.0, (0, 0))
            edited.set()

    with pytest.raises(ExplorerError, match="changed while training ran"):
        ws.train({"steps": 5}, on_step=on_step)
    assert [op["op"] for op in ws.experiment.ops] == ["edit"]


def _uploads(ws: Workspace):
    return [
        read_checkpoint(safetensors_bytes(Workspace(ws.experiment.replace(seed=k)).module), name)
        for k, name in ((1, "a.safetensors"), (2, "b.safetensors"))
    ]


def test_an_upload_an_undo_step_needs_is_kept():
    """A second upload never evicts the first while undo needs it and both fit."""
    ws = tied_workspace()
    a, b = _uploads(ws)
    ws.load_checkpoint(a)
    ws.reinitialize()  # the load is now only in the undo steps
    ws.load_checkpoint(b)
    assert ws.take_notice() is None
    while ws.undo():  # every step can be taken, the load of a included
        assert_live_is_replay(ws)


def test_when_uploads_must_go_the_undo_steps_that_need_them_go_and_the_student_is_told():
    """Over the upload budget, the oldest upload goes with the steps that need it, said once."""
    ws = tied_workspace()
    a, b = _uploads(ws)
    ws.load_checkpoint(a)
    ws.reinitialize()
    ws.blobs.max_bytes = ws.blobs.nbytes + 8  # room for one upload at a time
    ws.load_checkpoint(b)
    notice = ws.take_notice()
    assert "a.safetensors" in notice and "dropped" in notice and ws.take_notice() is None
    assert not any(op["op"] == "load" and op["name"] == "a.safetensors"
                   for exp in ws.undo_stack for op in exp.ops)  # fmt: skip
    while ws.undo():  # what is left can be taken
        assert_live_is_replay(ws)


# --- clean exits ---


@pytest.mark.parametrize(
    "code",
    [
        "import ui.session_state",
        "from streamlit.testing.v1 import AppTest; AppTest.from_file('app.py', "
        "default_timeout=120).run()",
    ],
    ids=["import", "apptest"],
)
def test_a_process_that_imports_the_app_exits_with_0(code):
    """No thread started at import keeps a process inside PyTorch when it ends."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr
