"""Undo and redo: the steps behind and ahead of the current state, some of them kept whole.

Each step is the experiment of a state the session had, with the words for the action that
made it ("forward + backward"). A step may keep its whole ``State`` (a keyframe): undo to it
is a swap, whatever the history's length. Kept are the newest ``limits.history_states``
steps on each side, every ``history_states``-th step of the session (by its serial number),
and every training run and checkpoint load (costly to replay), as long as what they hold
beyond the current state fits ``limits.max_history_bytes``. A step that is not kept is
rebuilt from the nearest kept state whose ops begin its own, replaying only the ops after
them (``explorer.session.state.realize`` with ``start``): fewer than ``history_states``.
An edit also keeps what it overwrote (a ``Delta``: one element's old value, or the old
tensor for a whole-tensor edit), so undo past the kept states restores it into a copy of
the edited tensor: one edit's cost, however far back.

Example::

    history = History(state).acted(new_state, "edit 2.weight[0, 0] = 42", False, limits)
    history.undo[-1].state is state     # kept whole: undo is a swap
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from explorer.core.limits import Limits
from explorer.core.rebind import with_tensors
from explorer.session.experiment import Experiment
from explorer.session.state import State, continues

__all__ = ["Delta", "Step", "History", "delta_of", "storages"]


@dataclass(frozen=True, eq=False)
class Delta:
    """What an edit overwrote: the state before it is the one after it with this put back."""

    name: str
    index: tuple[int, ...] | None  # one element, or None: the whole tensor
    old: torch.Tensor  # the values it had there
    pristine: frozenset[str]  # the names that still held the build's values before it

    @property
    def nbytes(self) -> int:
        return self.old.nbytes

    def undo(self, state: State, experiment: Experiment) -> State:
        """The state before the edit, from the state after it: the old values restored."""
        values = state.values.get_parameter(self.name).detach().clone()
        if self.index is None:
            values.copy_(self.old)
        else:
            values[self.index] = self.old
        module = with_tensors(state.values, {self.name: values})
        return replace(
            state,
            experiment=experiment,
            module=module,
            base=None,
            last_run=None,
            pristine=self.pristine,
        )


def delta_of(state: State, name: str, index: tuple[int, ...] | None) -> Delta:
    """What editing ``name`` (at ``index``) in ``state`` would overwrite."""
    param = state.values.get_parameter(name).detach()
    old = param.clone() if index is None else param[tuple(index)].clone()
    return Delta(name, None if index is None else tuple(index), old, state.pristine)


@dataclass(frozen=True)
class Step:
    """A state the session had: its experiment, the action that made it, and maybe itself."""

    experiment: Experiment
    label: str  # what undoing (or redoing) to here undoes: "forward + backward"
    state: State | None = None  # kept whole, or None: rebuilt when taken
    costly: bool = False  # made by a training run or a load: kept before cheaper steps
    serial: int = 0  # the action's number in the session: every n-th step is a keyframe
    back: Delta | None = None  # how the step before this one follows from this one


@dataclass(frozen=True)
class History:
    """The current state, the action that made it, and the steps behind and ahead."""

    state: State
    label: str = ""
    undo: tuple[Step, ...] = ()
    redo: tuple[Step, ...] = ()
    costly: bool = False
    serial: int = 0
    last: int = 0  # the highest serial given so far
    back: Delta | None = None  # how the last step behind follows from the current state

    def here(self) -> Step:
        """The current state as a step of the history."""
        exp, label = self.state.experiment, self.label
        return Step(exp, label, self.state, self.costly, self.serial, self.back)

    def acted(
        self, new: State, label: str, costly: bool, limits: Limits, back: Delta | None = None
    ) -> History:
        """The history after an action made ``new``: the old state goes behind, redo is gone."""
        undo = (*self.undo, self.here())[-limits.max_undo :]
        serial = self.last + 1
        return History(new, label, undo, (), costly, serial, serial, back).trimmed(limits)

    def undone(self, state: State, limits: Limits) -> History:
        """The history after undo rebuilt the last step behind as ``state``."""
        s = self.undo[-1]
        redo = (*self.redo, self.here())
        rest = self.undo[:-1]
        back = History(state, s.label, rest, redo, s.costly, s.serial, self.last, s.back)
        return back.trimmed(limits)

    def redone(self, state: State, limits: Limits) -> History:
        """The history after redo rebuilt the next step ahead as ``state``."""
        s = self.redo[-1]
        undo = (*self.undo, self.here())
        rest = self.redo[:-1]
        ahead = History(state, s.label, undo, rest, s.costly, s.serial, self.last, s.back)
        return ahead.trimmed(limits)

    def start_for(self, experiment: Experiment) -> State | None:
        """The kept state nearest to ``experiment``: the one with the fewest ops left to replay."""
        kept = [self.state, *(s.state for s in (*self.undo, *self.redo) if s.state is not None)]
        fits = [s for s in kept if continues(s, experiment)]
        return max(fits, key=lambda s: len(s.experiment.ops), default=None)

    def without(self, digests: set[str]) -> History:
        """The history without the steps that load one of these checkpoints."""
        keep = lambda step: not _loads(step.experiment) & digests  # noqa: E731
        return replace(
            self,
            undo=tuple(s for s in self.undo if keep(s)),
            redo=tuple(s for s in self.redo if keep(s)),
        )

    def trimmed(self, limits: Limits) -> History:
        """Keep whole the nearest steps and the costly ones, within the history's bytes."""
        seen = dict(storages(self.state))
        used, keep = 0, set()
        order = sorted(self._ranked(), key=lambda item: (not item[2].costly, item[1]))
        for where, rank, step in order:
            spaced = step.serial % limits.history_states == 0
            if step.state is None or not (step.costly or spaced or rank < limits.history_states):
                continue
            extra = {k: n for k, n in storages(step.state).items() if k not in seen}
            if used + sum(extra.values()) > limits.max_history_bytes:
                continue
            used += sum(extra.values())
            seen.update(extra)
            keep.add(where)
        undo = tuple(_kept(s, ("undo", i) in keep) for i, s in enumerate(self.undo))
        redo = tuple(_kept(s, ("redo", i) in keep) for i, s in enumerate(self.redo))
        return _deltas_within(replace(self, undo=undo, redo=redo), limits, used)

    def _ranked(self):
        """(where, distance from the current state, step) for every step on both sides."""
        for i, step in enumerate(self.undo):
            yield ("undo", i), len(self.undo) - 1 - i, step
        for i, step in enumerate(self.redo):
            yield ("redo", i), len(self.redo) - 1 - i, step

    def nbytes(self) -> int:
        """Bytes held by the current state and the kept steps, each storage counted once."""
        seen: dict = {}
        for state in [self.state, *(s.state for s in (*self.undo, *self.redo) if s.state)]:
            seen.update(storages(state))
        return sum(seen.values())


def _deltas_within(h: History, limits: Limits, used: int) -> History:
    """Keep the nearest edits' deltas within what the kept states leave of the budget."""
    room = limits.max_history_bytes - used - (h.back.nbytes if h.back else 0)
    undo = list(h.undo)
    for i in range(len(undo) - 1, -1, -1):  # the nearest first
        delta = undo[i].back
        if delta is not None:
            room -= delta.nbytes
            if room < 0:
                undo[i] = replace(undo[i], back=None)
    redo = [s if s.back is None or s.back.nbytes <= room else replace(s, back=None) for s in h.redo]
    return replace(h, undo=tuple(undo), redo=tuple(redo))


def _kept(step: Step, keep: bool) -> Step:
    return step if keep or step.state is None else replace(step, state=None)


def _loads(exp: Experiment) -> set[str]:
    return {op["digest"] for op in exp.ops if op["op"] == "load"}


def storages(state: State) -> dict[tuple, int]:
    """The memory a state holds (values, gradients, buffers), by storage: (device, address)."""
    found = state.__dict__.get("_storages")
    if found is None:
        found = {}
        for module in {id(m): m for m in (state.module, state.values)}.values():
            _add(module, found)
        state.__dict__["_storages"] = found  # a State never changes: computed once
    return found


def _add(module: nn.Module, found: dict) -> None:
    tensors = [*module.parameters(), *module.buffers()]
    tensors += [p.grad for p in module.parameters() if p.grad is not None]
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.device.type != "meta" and not _lazy(t):
            storage = t.untyped_storage()
            found[(str(t.device), storage.data_ptr())] = storage.nbytes()


def _lazy(t: torch.Tensor) -> bool:
    return isinstance(t, nn.parameter.UninitializedTensorMixin)
