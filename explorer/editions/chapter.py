"""The chapter, step by step, in each edition: the table the app's "Start here" tab walks.

Each ``Step`` is one cell of *Parameter Management* (or one exercise) in one edition: the
chapter's code and what it printed (quoted from the seeds; tests/test_chapter.py checks every
fragment), the state that one click sets up (a preset or spec, rules, value edits, how far
the batch ran), the app's own output written as that code prints it, the facts that must
agree between the two, what to look at, and where in the app to look.

Code comes from the newest edition where it has the cell (PyTorch, JAX), else from the
MXNet/PyTorch/TensorFlow edition, whose outputs are printed; DJL from the English DJL
edition; MXNet's regex filter from the oldest (Gluon) edition.

Example::

    step = find("pytorch-state_dict")
    experiment_of(step).preset        # 'mlp'
    step.setup.select                 # '2': the block the step selects
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from explorer.editions import steps_djl, steps_flax, steps_keras, steps_mxnet, steps_pytorch
from explorer.editions.chapter_step import Setup, Step
from explorer.editions.places import LABELS, Framework
from explorer.session.experiment import Experiment
from explorer.session.state import State

__all__ = [
    "Setup",
    "Step",
    "Check",
    "EDITIONS",
    "EDITION_STEPS",
    "steps",
    "find",
    "link",
    "experiment_of",
    "check",
    "live",
    "titles",
    "edition_label",
]

EDITION_STEPS: dict[Framework, tuple[Step, ...]] = {
    Framework.PYTORCH: steps_pytorch.STEPS,
    Framework.MXNET: steps_mxnet.STEPS,
    Framework.KERAS: steps_keras.STEPS,
    Framework.FLAX: steps_flax.STEPS,
    Framework.DJL: steps_djl.STEPS,
}
EDITIONS: tuple[Framework, ...] = tuple(EDITION_STEPS)


@dataclass(frozen=True)
class Check:
    """Whether the app's output agrees with the chapter's: one line per fact."""

    facts: tuple[tuple[str, bool], ...] = field(default=())
    problem: str = ""  # why nothing could be checked on this state

    @property
    def ok(self) -> bool:
        """Every fact holds (and there was something to check)."""
        return not self.problem and all(ok for _, ok in self.facts)


def steps(edition: Framework | str) -> tuple[Step, ...]:
    """The steps of one edition, in the chapter's order, exercises last."""
    return EDITION_STEPS[Framework(edition)]


def link(edition: Framework | str, step: Step) -> str:
    """The step's id in a link: ``?step=pytorch-state_dict``."""
    return f"{Framework(edition).value}-{step.key}"


def find(ref: str) -> tuple[Framework, Step] | None:
    """The edition and step a link's ``step`` value names, or None."""
    edition, _, key = str(ref).partition("-")
    if edition not in {fw.value for fw in EDITIONS}:
        return None
    found = [s for s in steps(edition) if s.key == key]
    return (Framework(edition), found[0]) if found else None


def experiment_of(step: Step) -> Experiment:
    """The experiment one click sets up for the step."""
    return step.setup.experiment()


def check(step: Step, s: State) -> Check:
    """The step's facts on the state ``s``, or why they cannot be checked on it."""
    try:
        return Check(tuple(fact(s) for fact in step.facts))
    except (LookupError, AttributeError, TypeError, ValueError, RuntimeError) as err:
        return Check(problem=f"this state does not have what the step looks at ({err})")


def live(step: Step, s: State) -> str:
    """The app's output for the step, or why it cannot be shown on this state."""
    try:
        return step.live(s)
    except (LookupError, AttributeError, TypeError, ValueError, RuntimeError) as err:
        return f"# this state does not have what the step prints ({err}); press Set up"


def titles(edition: Framework | str) -> Sequence[str]:
    """The numbered step titles of an edition, for a picker."""
    return [f"{i + 1}. {s.title}" for i, s in enumerate(steps(edition))]


def edition_label(edition: Framework | str) -> str:
    """The edition's name as the app shows it."""
    return LABELS[Framework(edition)]
