"""The experiment: one immutable, JSON-serializable value that says how to rebuild a session.

An ``Experiment`` holds everything that decides the model and its values: the spec, the
initializer rules and seed, the device and dtype, the input batch, the loss, the value
changes made after initialization (``ops``: edits, moves, training runs) and how far the
batch was run (``ran``). Undo, saved files, links and exported code all read and write this
one value; ``explorer.session.state.realize`` turns it back into a model, bit for bit on the CPU.

Example::

    exp = Experiment.from_preset("tied")
    text = exp.to_json()
    Experiment.from_json(text) == exp     # True
    exp.replace(seed=1).seed             # 1; exp itself never changes
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from explorer.core.devices import DTYPES
from explorer.core.errors import SpecError
from explorer.core.frozen import freeze, thaw
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.engine.run import InputKind, Loss
from explorer.init.rules import check_rules
from explorer.session.ops import check_op
from explorer.spec.factory import check_source
from explorer.spec.fields import Field, Kind, check_fields, check_known, whole
from explorer.spec.presets import preset
from explorer.spec.validate import parse_json, validate

__all__ = [
    "SCHEMA_VERSION",
    "FIELDS",
    "Ran",
    "Mode",
    "Experiment",
    "values_key",
    "check_experiment",
]

SCHEMA_VERSION = 1
DEFAULT_RULES = ({"init": "default", "target": "*"},)


class Ran(StrEnum):
    """How far the batch has been run on the current values."""

    NONE = "none"
    FORWARD = "forward"
    BACKWARD = "backward"


class Mode(StrEnum):
    """``model.train()`` or ``model.eval()``: dropout and BatchNorm's statistics follow it."""

    TRAIN = "train"
    EVAL = "eval"


@dataclass(frozen=True)
class Experiment:
    """How to rebuild one session's model and values; compare, hash and store it freely."""

    spec: Any = None  # a spec (explorer.spec.blocks), or None when ``source`` names a factory
    rules: tuple = DEFAULT_RULES
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    input_shape: tuple[int, ...] = (2, 4)
    input_kind: str = InputKind.UNIFORM
    vocab: int | None = None
    loss: str = Loss.SUM
    preset: str | None = None
    root_name: str = "net"  # what the chapter calls the model: net, rgnet
    materialized: bool = False  # lazy layers have had their first forward on this input
    ops: tuple = ()  # value changes after initialization, replayed in order
    ran: str = Ran.NONE
    source: str | None = None  # "path/file.py:factory" or "package.module:factory"
    mode: str | None = None  # "train" or "eval"; None: as the build or the factory left it
    passes: int = 1  # times the batch ran on these values; backward passes add up in .grad
    version: int = field(default=SCHEMA_VERSION)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "spec", freeze(self.spec))
        set_(self, "rules", freeze(tuple(self.rules)))
        set_(self, "ops", freeze(tuple(self.ops)))
        if isinstance(self.input_shape, list | tuple):
            set_(self, "input_shape", tuple(self.input_shape))
        for name in ("input_kind", "loss", "ran", "mode"):
            value = getattr(self, name)
            if isinstance(value, StrEnum):
                set_(self, name, str(value))

    def replace(self, **changes) -> Experiment:
        """A new experiment with some fields changed; this one stays as it is."""
        return replace(self, **changes)

    @property
    def lazy_features(self) -> tuple[int, ...] | None:
        """The input shape when its last size feeds lazy layers' features, else None."""
        return self.input_shape if self.input_kind == InputKind.UNIFORM else None

    def to_dict(self) -> dict:
        """Plain JSON data, with ``version`` first."""
        data = {f.name: thaw(getattr(self, f.name)) for f in fields(self)}
        return {"version": data.pop("version"), **data}

    def to_json(self, indent: int | None = None) -> str:
        """The experiment as JSON text; ``from_json`` reads it back equal."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: object, limits: Limits = DEFAULT_LIMITS) -> Experiment:
        """Read and check an experiment from JSON data; ``SpecError`` names the bad field."""
        if not isinstance(data, dict):
            raise SpecError(f"must be an experiment object, got {type(data).__name__}")
        version = data.get("version", 1)
        whole(version, "version", 1, 2**31)
        if version > SCHEMA_VERSION:
            raise SpecError(
                f"this experiment was saved by a newer explorer (format {version}); "
                f"this one reads formats up to {SCHEMA_VERSION}",
                "version",
            )
        check_known(data, [f.name for f in fields(cls)])
        exp = cls(**{**data, "version": SCHEMA_VERSION})
        check_experiment(exp, limits)
        return exp

    @classmethod
    def from_json(cls, text: str | bytes, limits: Limits = DEFAULT_LIMITS) -> Experiment:
        """Parse and check JSON text; anything malformed is a ``SpecError``."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise SpecError("not valid JSON: the text is not UTF-8") from None
        return cls.from_dict(parse_json(text, limits), limits)

    @classmethod
    def from_preset(cls, key: str) -> Experiment:
        """The experiment of one of the chapter's presets, with the default seed 0."""
        p = preset(key)
        return cls(
            spec=p.spec,
            rules=tuple(p.rules),
            input_shape=tuple(p.input_shape),
            input_kind=p.input_kind,
            vocab=p.vocab,
            loss=p.loss,
            preset=key,
            root_name=p.root_name,
            device=p.device or "cpu",
        )


# The fields checked one by one; spec, rules, source and ops have checks of their own.
FIELDS = (
    Field("seed", Kind.WHOLE, "the seed of every draw", lo=0, hi="max_seed"),
    Field(
        "device",
        Kind.TEXT,
        "where the model is built",
        hi="max_device_chars",
        noun="a device name such as cpu or cuda:0",
    ),
    Field("dtype", Kind.CHOICE, "the values' dtype", choices=tuple(DTYPES)),
    Field("input_shape", Kind.SHAPE, "the batch's shape", hi="max_input_dims"),
    Field("input_kind", Kind.CHOICE, "what the batch holds", choices=tuple(InputKind)),
    Field("vocab", Kind.WHOLE, "token ids' range", hi="max_embeddings", nullable=True),
    Field("loss", Kind.CHOICE, "the loss", choices=tuple(Loss)),
    Field("preset", Kind.TEXT, "the preset", hi=64, nullable=True, noun="a preset name or null"),
    Field("root_name", Kind.NAME, "the model's name", noun="a Python name such as net"),
    Field("materialized", Kind.FLAG, "lazy layers have their shapes"),
    Field("ran", Kind.CHOICE, "how far the batch ran", choices=tuple(Ran)),
    Field("mode", Kind.CHOICE, "train or eval", choices=tuple(Mode), nullable=True),
    Field("passes", Kind.WHOLE, "runs of the batch on these values", hi="max_passes"),
)


def check_experiment(exp: Experiment, limits: Limits = DEFAULT_LIMITS) -> None:
    """Check every field before anything is built; raise ``SpecError`` naming the field."""
    check_fields({f.name: getattr(exp, f.name) for f in FIELDS}, FIELDS, "", limits)
    elements = math.prod(exp.input_shape)
    if elements > limits.max_input_elements:
        raise SpecError(
            f"the input would have {elements:,} elements; the limit is "
            f"{limits.max_input_elements:,}",
            "input_shape",
        )
    if exp.input_kind == InputKind.TOKENS:
        whole(exp.vocab, "vocab", 1, limits.max_embeddings)
    if exp.source is not None:
        if exp.spec is not None:
            raise SpecError("give a spec or a source, not both", "source")
        check_source(exp.source, limits)
    elif exp.spec is None:
        raise SpecError("an experiment needs a spec, or a source that names a factory", "spec")
    else:
        validate(exp.spec, limits, input_shape=exp.lazy_features, device=exp.device)
    check_rules(exp.rules, limits)
    for i, op in enumerate(exp.ops):
        check_op(op, f"ops[{i}]", limits)


def values_key(exp: Experiment) -> Experiment:
    """What decides an experiment's values before its ops: experiments with equal keys
    whose ops start alike have equal values up to their common ops."""
    return exp.replace(ops=(), ran=Ran.NONE, passes=1, loss=Loss.SUM, preset=None, root_name="net")
