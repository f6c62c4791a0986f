"""One user's session: the current state, and the steps undo and redo go back to.

The app keeps one ``Workspace`` per browser session; notebooks may use it too. Every action
runs a pure function from ``explorer.session.actions`` on the current state and swaps the
result in with one assignment, under the workspace's lock (a training run computes outside
it and swaps only if nothing changed meanwhile). If the action raises, nothing was
assigned: the state, the undo and redo steps and the version are exactly as they were.
Undo and redo say what they take back (``undo_label``) and cost one swap when the step was
kept whole (``explorer.session.history``).

Example::

    ws = Workspace.from_preset("tied")
    ws.backward()                       # forward + backward on the preset's batch
    ws.edit("2.weight", "set", 100.0, (0, 0))
    ws.state.tree.tensor("4.weight")[0, 0]   # 100: the same tensor
    ws.undo()                           # back to before the edit, replayed bit for bit
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from torch import nn

from explorer.core.devices import DTYPES
from explorer.core.errors import ExplorerError
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.engine.run import Loss, RunResult
from explorer.session import actions
from explorer.session.blobs import BlobStore, load_digests
from explorer.session.experiment import Experiment
from explorer.session.history import History, Step, delta_of
from explorer.session.ops import OPS, EditHow
from explorer.session.state import State, realize, with_run
from explorer.view.tree import ParamTree

__all__ = ["Workspace", "History", "DTYPES", "LOSSES", "EDIT_OPS"]

LOSSES = tuple(str(x) for x in Loss)
EDIT_OPS = tuple(str(x) for x in EditHow)


# How "Undo: change ..." names the fields an action changed.
_FIELD_WORDS = {
    "spec": "the model",
    "rules": "the initializer rules",
    "seed": "the seed",
    "input_shape": "the input shape",
    "input_kind": "the input",
    "vocab": "the vocabulary",
    "loss": "the loss",
    "mode": "train/eval mode",
    "preset": "the preset",
    "root_name": "the model's name",
}
SLOW_REPLAY_STEPS = 500  # training steps an undo may replay before it says it will be slow


class Workspace:
    """A session's state and its history, changed only by whole actions."""

    def __init__(self, experiment: Experiment, limits: Limits = DEFAULT_LIMITS):
        self.limits = limits
        self.blobs = BlobStore(limits.max_upload_bytes)  # uploaded checkpoints' tensors
        self.history = History(realize(experiment, limits))
        self._lock = threading.RLock()  # one action at a time on this workspace
        self._notice: str | None = None

    @classmethod
    def restored(
        cls,
        experiment: Experiment,
        undo: tuple[Experiment, ...] = (),
        redo: tuple[Experiment, ...] = (),
        limits: Limits = DEFAULT_LIMITS,
    ) -> Workspace:
        """A workspace rebuilt from a saved history (a page that moved to another server).

        The current experiment is realized now; the undo and redo steps are replayed when
        they are taken.
        """
        ws = cls(experiment, limits)
        step = lambda exp: Step(exp, "a step from before the move")  # noqa: E731
        undo = tuple(map(step, tuple(undo)[-limits.max_undo :]))
        ws.history = History(ws.state, "a step from before the move", undo, tuple(map(step, redo)))
        return ws

    @classmethod
    def from_preset(cls, key: str, limits: Limits = DEFAULT_LIMITS) -> Workspace:
        """A workspace holding one of the chapter's presets, built and initialized."""
        return cls(Experiment.from_preset(key), limits)

    def __repr__(self) -> str:
        h = self.history
        return f"Workspace({h.state!r}, undo={len(h.undo)}, redo={len(h.redo)})"

    # --- the current state, read-only ---

    @property
    def state(self) -> State:
        return self.history.state

    @property
    def experiment(self) -> Experiment:
        return self.history.state.experiment

    setup = experiment  # the name the first app used

    @property
    def version(self) -> int:
        return self.history.state.version

    @property
    def module(self) -> nn.Module:
        return self.history.state.module

    @property
    def last_run(self) -> RunResult | None:
        return self.history.state.last_run

    @property
    def provenance(self):
        return self.history.state.provenance

    @property
    def init_log(self) -> tuple[str, ...]:
        return self.history.state.init_log

    @property
    def applied_rules(self) -> list[dict]:
        return self.history.state.applied_rules

    @property
    def device(self) -> str:
        return self.history.state.device

    @property
    def dtype(self) -> str:
        return self.history.state.dtype

    @property
    def undo_stack(self) -> tuple[Experiment, ...]:
        """The experiments undo goes back to, the nearest last."""
        return tuple(step.experiment for step in self.history.undo)

    @property
    def redo_stack(self) -> tuple[Experiment, ...]:
        """The experiments redo goes forward to, the nearest last."""
        return tuple(step.experiment for step in self.history.redo)

    @property
    def undo_label(self) -> str | None:
        """What undo takes back ("forward + backward"), or None when there is nothing."""
        return self.history.label if self.history.undo else None

    @property
    def redo_label(self) -> str | None:
        """What redo does again, or None when there is nothing."""
        return self.history.redo[-1].label if self.history.redo else None

    def replay_note(self, forward: bool = False) -> str | None:
        """Why undo (or redo) will be slow, when the step was not kept whole; else None."""
        steps = self.history.redo if forward else self.history.undo
        if not steps or steps[-1].state is not None:
            return None
        exp = steps[-1].experiment
        start = self.history.start_for(exp)
        ops = exp.ops[len(start.experiment.ops) :] if start is not None else exp.ops
        trained = sum(op["steps"] for op in ops if op["op"] == "train")
        if trained < SLOW_REPLAY_STEPS:
            return None
        return f"this step is no longer kept in memory: it replays {trained:,} training steps"

    @property
    def nbytes(self) -> int:
        """Bytes this session holds: values, gradients, buffers, kept steps and uploads."""
        return self.history.nbytes() + self.blobs.nbytes

    def take_notice(self) -> str | None:
        """What the last action had to give up to fit (dropped undo steps), once; else None."""
        notice, self._notice = self._notice, None
        return notice

    def tree(self) -> ParamTree:
        """The current state's parameter tree (computed once per state)."""
        return self.history.state.tree

    def has_lazy(self) -> bool:
        return self.history.state.lazy

    def rule_of(self, name: str) -> dict | None:
        return self.history.state.rule_of(name)

    # --- actions ---

    def change(self, **fields) -> None:
        """Change experiment fields (spec, rules, seed, input_shape, loss, ...)."""
        words = ", ".join(_FIELD_WORDS.get(f, f) for f in fields)
        self._act(lambda s: actions.change(s, self.limits, **fields), f"change {words}")

    def reinitialize(self) -> None:
        """Apply the rules afresh with the seed."""
        self._act(lambda s: actions.reinitialize(s, self.limits), "re-initialize")

    def materialize(self) -> None:
        """Give lazy layers their shapes with a no-grad forward pass."""
        self._act(lambda s: actions.materialize(s, self.limits), "first forward (lazy shapes)")

    def forward(self) -> RunResult:
        """Run the batch forward: output and loss; every ``.grad`` stays None."""
        self._act(lambda s: actions.forward(s, self.limits), "forward")
        return self.last_run

    def backward(self, accumulate: bool = False) -> RunResult:
        """Run the batch forward and backward: gradients, split by each use of a tensor.

        ``accumulate`` after a backward pass runs another without ``zero_grad()``: the
        gradients add up, as ``loss.backward()`` twice does.
        """
        again = accumulate and self.experiment.ran == "backward"
        label = "backward again (no zero_grad)" if again else "forward + backward"
        self._act(lambda s: actions.backward(s, self.limits, accumulate), label)
        return self.last_run

    forward_backward = backward

    def edit(self, name: str, how: str, value: float, index: tuple[int, ...] | None = None) -> None:
        """Set, add to or multiply a parameter's values, as ``net[0].weight.data[0, 0] = 42``."""
        op = {"how": how, "value": value, "name": name, "index": index}
        label = OPS["edit"].label(op) if how in EDIT_OPS else "edit"
        with self._lock:
            before = self.history.state
            new = actions.edit(before, name, how, value, index, self.limits)
            back = delta_of(before, name, index)
            self.history = self.history.acted(new, label, False, self.limits, back)

    def move(self, device: str | None = None, dtype: str | None = None) -> None:
        """Move the values to another device or dtype."""
        label = f"move to {device or self.device}, {dtype or self.dtype}"
        self._act(lambda s: actions.move(s, device, dtype, self.limits), label)

    def train(self, settings, on_step=None, should_stop=None, on_wait=None):
        """Train a copy of the values (``TrainSettings`` or a dict of them): one action.

        ``on_step(Progress)`` follows each step; ``should_stop()`` ends the run after the
        step in progress, keeping what was done. Returns the run's ``TrainLog``. If another
        action changed the state while it ran, the run is dropped with an ``ExplorerError``.
        """

        s = self.state
        new = actions.train(s, settings, self.limits, on_step, should_stop, on_wait)
        if new is not s:
            with self._lock:
                if self.history.state is not s:
                    raise ExplorerError("the model changed while training ran; train again")
                label = f"train {new.train_log.done:,} steps"
                self.history = self.history.acted(new, label, True, self.limits)
        return self.state.train_log

    def open_preset(self, key: str) -> None:
        """Open one of the chapter's presets with this seed, where the values are now (a
        structure-only preset stays on the meta device); undo goes back."""
        exp = Experiment.from_preset(key).replace(seed=self.experiment.seed)
        if exp.device != "meta" and self.device != "meta":
            exp = exp.replace(device=self.device, dtype=self.dtype)
        self.load(exp, f"open the preset {key}")

    def load(self, experiment: Experiment, label: str = "open an experiment") -> None:
        """Replace the whole experiment (a saved file or a link); undo goes back."""
        self._act(lambda s: actions.load(s, experiment, self.limits, self.blobs), label, True)

    def load_checkpoint(
        self, ckpt, allow_partial: bool = False, allow_nonfinite: bool = False
    ) -> None:
        """Load a checkpoint's values (``explorer.io.checkpoints.read_checkpoint``); undo goes back.

        A partial load, or values with NaN or Inf, need ``allow_partial``/``allow_nonfinite``.
        """

        with self._lock:
            h = self.history
            new = actions.load_checkpoint(
                h.state, ckpt, self.limits, allow_partial, allow_nonfinite
            )
            behind = [*h.undo, *reversed(h.redo)]  # the least needed first
            needed = [d for step in behind for d in _digests(step.experiment)]
            protected = _digests(h.state.experiment)
            dropped = self.blobs.put(ckpt.digest, ckpt.tensors, needed, protected)
            if dropped:
                names = sorted(_names(h, set(dropped)))
                h = h.without(set(dropped))
                self._notice = (
                    f"To keep {ckpt.name}, the earlier upload {', '.join(names)} and the undo "
                    "steps that needed it were dropped: this session holds at most "
                    f"{self.blobs.max_bytes / 2**20:,.1f} MiB of uploads."
                )
            self.history = h.acted(new, f"load {ckpt.name}", True, self.limits)

    def undo(self) -> bool:
        """Go back to the state before the last action; False when there is none."""
        with self._lock:
            h = self.history
            if not h.undo:
                return False
            self.history = h.undone(self._rebuild(h.undo[-1], h), self.limits)
            return True

    def redo(self) -> bool:
        """Take the last undone action again; False when there is none."""
        with self._lock:
            h = self.history
            if not h.redo:
                return False
            self.history = h.redone(self._rebuild(h.redo[-1], h), self.limits)
            return True

    def _rebuild(self, step: Step, h: History) -> State:
        """The step's state: kept whole (a swap), or replayed from the nearest kept state."""
        version = h.state.version + 1
        if step.state is not None:
            return step.state.renumbered(version)
        if step is h.undo[-1] and h.back is not None:  # an edit: put back what it overwrote
            return with_run(h.back.undo(h.state, step.experiment), self.limits).renumbered(version)
        start = h.start_for(step.experiment)
        return realize(step.experiment, self.limits, version, self.blobs, start=start)

    def _act(self, action: Callable[[State], State], label: str, costly: bool = False) -> None:
        """Run an action aside and swap its state in with one assignment (or raise)."""
        with self._lock:
            h = self.history
            new = action(h.state)
            if new is not h.state:
                self.history = h.acted(new, label, costly, self.limits)


def _digests(exp: Experiment) -> list[str]:
    return sorted(load_digests(exp.ops))


def _names(h: History, digests: set[str]) -> set[str]:
    """The file names of the uploads with these digests, as the history's load ops say."""
    steps = (*h.undo, *h.redo)
    ops = [op for step in steps for op in step.experiment.ops if op["op"] == "load"]
    return {op["name"] for op in ops if op["digest"] in digests}
