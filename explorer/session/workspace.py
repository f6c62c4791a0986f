"""One user's session: the current state, and the experiments undo and redo go back to.

The app keeps one ``Workspace`` per browser session; notebooks may use it too. Every action
runs a pure function from ``explorer.session.actions`` on the current state and swaps the result in
with one assignment. If the action raises, nothing was assigned: the state, the undo and
redo stacks and the version are exactly as they were.

Example::

    ws = Workspace.from_preset("tied")
    ws.backward()                       # forward + backward on the preset's batch
    ws.edit("2.weight", "set", 100.0, (0, 0))
    ws.state.tree.tensor("4.weight")[0, 0]   # 100: the same tensor
    ws.undo()                           # back to before the edit, replayed bit for bit
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from explorer.core.devices import DTYPES
from explorer.core.errors import ExplorerError
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.engine.run import Loss, RunResult
from explorer.session import actions
from explorer.session.blobs import BlobStore, load_digests
from explorer.session.experiment import Experiment
from explorer.session.ops import EditHow
from explorer.session.state import State, realize
from explorer.view.tree import ParamTree

__all__ = ["Workspace", "History", "DTYPES", "LOSSES", "EDIT_OPS"]

LOSSES = tuple(str(x) for x in Loss)
EDIT_OPS = tuple(str(x) for x in EditHow)


@dataclass(frozen=True)
class History:
    """The current state and the experiments behind and ahead of it."""

    state: State
    undo: tuple[Experiment, ...] = ()
    redo: tuple[Experiment, ...] = ()


class Workspace:
    """A session's state and its history, changed only by whole actions."""

    def __init__(self, experiment: Experiment, limits: Limits = DEFAULT_LIMITS):
        self.limits = limits
        self.blobs = BlobStore(limits.max_upload_bytes)  # uploaded checkpoints' tensors
        self.history = History(realize(experiment, limits))

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
        ws.history = History(ws.state, tuple(undo)[-limits.max_undo :], tuple(redo))
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
        return self.history.undo

    @property
    def redo_stack(self) -> tuple[Experiment, ...]:
        return self.history.redo

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
        self._act(lambda s: actions.change(s, self.limits, **fields))

    def reinitialize(self) -> None:
        """Apply the rules afresh with the seed."""
        self._act(lambda s: actions.reinitialize(s, self.limits))

    def materialize(self) -> None:
        """Give lazy layers their shapes with a no-grad forward pass."""
        self._act(lambda s: actions.materialize(s, self.limits))

    def forward(self) -> RunResult:
        """Run the batch forward: output and loss; every ``.grad`` stays None."""
        self._act(lambda s: actions.forward(s, self.limits))
        return self.last_run

    def backward(self) -> RunResult:
        """Run the batch forward and backward: gradients, split by each use of a tensor."""
        self._act(lambda s: actions.backward(s, self.limits))
        return self.last_run

    forward_backward = backward

    def edit(self, name: str, how: str, value: float, index: tuple[int, ...] | None = None) -> None:
        """Set, add to or multiply a parameter's values, as ``net[0].weight.data[0, 0] = 42``."""
        self._act(lambda s: actions.edit(s, name, how, value, index, self.limits))

    def move(self, device: str | None = None, dtype: str | None = None) -> None:
        """Move the values to another device or dtype."""
        self._act(lambda s: actions.move(s, device, dtype, self.limits))

    def train(self, settings, on_step=None, should_stop=None, on_wait=None):
        """Train a copy of the values (``TrainSettings`` or a dict of them): one action.

        ``on_step(Progress)`` follows each step; ``should_stop()`` ends the run after the
        step in progress, keeping what was done. Returns the run's ``TrainLog``. If another
        action changed the state while it ran, the run is dropped with an ``ExplorerError``.
        """

        def run(s: State) -> State:
            new = actions.train(s, settings, self.limits, on_step, should_stop, on_wait)
            if self.history.state is not s:
                raise ExplorerError("the model changed while training ran; train again")
            return new

        self._act(run)
        return self.state.train_log

    def open_preset(self, key: str) -> None:
        """Open one of the chapter's presets with this seed, where the values are now (a
        structure-only preset stays on the meta device); undo goes back."""
        exp = Experiment.from_preset(key).replace(seed=self.experiment.seed)
        if exp.device != "meta" and self.device != "meta":
            exp = exp.replace(device=self.device, dtype=self.dtype)
        self.load(exp)

    def load(self, experiment: Experiment) -> None:
        """Replace the whole experiment (a saved file or a link); undo goes back."""
        self._act(lambda s: actions.load(s, experiment, self.limits, self.blobs))

    def load_checkpoint(
        self, ckpt, allow_partial: bool = False, allow_nonfinite: bool = False
    ) -> None:
        """Load a checkpoint's values (``explorer.io.checkpoints.read_checkpoint``); undo goes back.

        A partial load, or values with NaN or Inf, need ``allow_partial``/``allow_nonfinite``.
        """

        def run(s: State) -> State:
            new = actions.load_checkpoint(s, ckpt, self.limits, allow_partial, allow_nonfinite)
            self.blobs.put(ckpt.digest, ckpt.tensors, keep=self._digests())
            return new

        self._act(run)

    def _digests(self) -> set[str]:
        """The checkpoints the current state and the undo and redo steps refer to."""
        h = self.history
        return load_digests(op for exp in (h.state.experiment, *h.undo, *h.redo) for op in exp.ops)

    def undo(self) -> bool:
        """Go back to the experiment before the last action; False when there is none."""
        h = self.history
        if not h.undo:
            return False
        state = realize(h.undo[-1], self.limits, h.state.version + 1, self.blobs)
        self.history = History(state, h.undo[:-1], (*h.redo, h.state.experiment))
        return True

    def redo(self) -> bool:
        """Re-apply the experiment undone last; False when there is none."""
        h = self.history
        if not h.redo:
            return False
        state = realize(h.redo[-1], self.limits, h.state.version + 1, self.blobs)
        self.history = History(state, (*h.undo, h.state.experiment), h.redo[:-1])
        return True

    def _act(self, action: Callable[[State], State]) -> None:
        """Run an action aside and swap its state in with one assignment (or raise)."""
        h = self.history
        new = action(h.state)
        if new is h.state:
            return
        undo = (*h.undo, h.state.experiment)[-self.limits.max_undo :]
        self.history = History(new, undo, ())
