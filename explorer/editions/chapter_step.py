"""One step of the guided chapter: the chapter's cell, the state one click sets up, the checks.

See ``explorer.editions.chapter`` for the table of steps per edition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from explorer.editions.chapter_facts import Fact, Live
from explorer.session.experiment import Experiment, Ran

__all__ = ["Setup", "Step", "edit", "SEEDS"]

# The seeds (in ../shared/seeds), by the short names docs/editions.md uses.
SEEDS = {
    "DJL": "d2l-djl-parameters.txt",
    "DJL-zh": "d2l-zh-djl-parameters.txt",
    "Gluon": "d2l-gluon-parameters.txt",
    "MX-PT-TF": "d2l-mxnet-pytorch-tf-parameters.txt",
    "newest": "d2l-pytorch-mxnet-jax-tf-parameters.txt",
}


def edit(name: str, how: str, value: float, index: tuple[int, ...] | None = None) -> dict:
    """A recorded value edit, as the Edit values form makes it."""
    return {"op": "edit", "name": name, "how": how, "value": value, "index": index}


@dataclass(frozen=True)
class Setup:
    """The state a step's one click sets up: a preset (or a spec), rules, edits, how far it ran.

    ``select`` is the tree id the step selects ("2", "2/weight") and ``tab`` where to look.
    """

    preset: str = "mlp"
    spec: dict | None = None  # instead of the preset's model (the preset gives input and loss)
    rules: tuple | None = None  # None: the preset's own
    ops: tuple = ()
    ran: str = Ran.FORWARD
    input_shape: tuple[int, ...] | None = None
    select: str = ""
    tab: str = "Explore"
    filter: str = ""  # the sidebar's filter text the step types (the app's, not the state's)

    def experiment(self) -> Experiment:
        """The experiment this setup describes (checked when a workspace loads it)."""
        exp = Experiment.from_preset(self.preset)
        changes: dict = {"ran": str(self.ran), "materialized": self.ran != Ran.NONE}
        if self.spec is not None:
            changes.update(spec=self.spec, preset=None)
        if self.rules is not None:
            changes["rules"] = tuple(self.rules)
        if self.ops:
            changes["ops"] = tuple(self.ops)
        if self.input_shape is not None:
            changes["input_shape"] = tuple(self.input_shape)
        return exp.replace(**changes)


@dataclass(frozen=True)
class Step:
    """One cell of the chapter (or one exercise) in one edition."""

    key: str  # unique in its edition; a link names it: ?step=pytorch-state_dict
    title: str
    code: str  # the chapter's code, as this edition writes it
    seed: str  # the short name of the seed its code and printed output are quoted from
    printed: tuple[str, ...]  # what the chapter printed, in fragments quoted from the seed
    setup: Setup
    live: Live  # the app's output, written as the chapter's code prints it
    facts: tuple[Fact, ...]  # what must agree between the chapter and the app
    look: str  # what to look at, and where
    note: str = ""  # about the printed output (which edition printed it, what was lost)
    exercise: bool = False
    quoted: bool = True  # the code is the seed's; False: written for the step (the chapter says
    # it in words, or defines the class in another section)
    code_seed: str = ""  # the seed the code is quoted from, when not ``seed``
    language: str = "python"
    extra: dict = field(default_factory=dict, compare=False)  # per-edition details, unused here
