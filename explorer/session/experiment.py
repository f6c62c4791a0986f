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
import re
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

import torch

from explorer.core.errors import SpecError
from explorer.core.frozen import freeze, thaw
from explorer.core.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "SCHEMA_VERSION",
    "DTYPES",
    "InputKind",
    "Loss",
    "Ran",
    "EditHow",
    "Experiment",
    "check_experiment",
]

SCHEMA_VERSION = 1
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}
DEFAULT_RULES = ({"init": "default", "target": "*"},)


class InputKind(StrEnum):
    """What the batch holds: ``torch.rand`` values or integer token ids."""

    UNIFORM = "uniform"
    TOKENS = "tokens"


class Loss(StrEnum):
    """The scalar a backward pass starts from."""

    SUM = "sum"
    MSE = "mse"
    CROSS_ENTROPY = "cross_entropy"


class Ran(StrEnum):
    """How far the batch has been run on the current values."""

    NONE = "none"
    FORWARD = "forward"
    BACKWARD = "backward"


class EditHow(StrEnum):
    """A value edit, as ``net[0].weight.data[0, 0] = 42``, ``+= 1``, ``*= 2`` or ``/= 9``.

    ``divide`` is a true division, as DJL's ``divi(9)`` (not a multiply by 1/9).
    """

    SET = "set"
    ADD = "add"
    MULTIPLY = "multiply"
    DIVIDE = "divide"


OP_KINDS = ("edit", "move", "train", "load")


@dataclass(frozen=True)
class Experiment:
    """How to rebuild one session's model and values; compare, hash and store it freely."""

    spec: Any  # a spec (explorer.spec.blocks), or None when ``source`` names a factory
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
    version: int = field(default=SCHEMA_VERSION)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "spec", freeze(self.spec))
        set_(self, "rules", freeze(tuple(self.rules)))
        set_(self, "ops", freeze(tuple(self.ops)))
        if isinstance(self.input_shape, list | tuple):
            set_(self, "input_shape", tuple(self.input_shape))
        for name in ("input_kind", "loss", "ran"):
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
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise SpecError(f"must be a whole number from 1, got {version!r}", "version")
        if version > SCHEMA_VERSION:
            raise SpecError(
                f"this experiment was saved by a newer explorer (format {version}); "
                f"this one reads formats up to {SCHEMA_VERSION}",
                "version",
            )
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise SpecError(f"unknown field; allowed: {', '.join(sorted(known))}", str(key))
        if "spec" not in data and "source" not in data:
            raise SpecError("an experiment needs a spec", "spec")
        try:
            exp = cls(**{**data, "version": SCHEMA_VERSION})
        except (TypeError, ValueError) as err:
            raise SpecError(f"not a valid experiment: {err}") from None
        check_experiment(exp, limits)
        return exp

    @classmethod
    def from_json(cls, text: str | bytes, limits: Limits = DEFAULT_LIMITS) -> Experiment:
        """Parse and check JSON text; anything malformed is a ``SpecError``."""
        from explorer.spec.validate import parse_json

        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise SpecError("not valid JSON: the text is not UTF-8") from None
        return cls.from_dict(parse_json(text, limits), limits)

    @classmethod
    def from_preset(cls, key: str) -> Experiment:
        """The experiment of one of the chapter's presets, with the default seed 0."""
        from explorer.spec.presets import preset

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


def check_experiment(exp: Experiment, limits: Limits = DEFAULT_LIMITS) -> None:
    """Check every field before anything is built; raise ``SpecError`` naming the field."""
    from explorer.init.rules import check_rules
    from explorer.spec.validate import validate

    _check_input(exp, limits)
    if exp.source is not None:
        from explorer.spec.factory import check_source

        if exp.spec is not None:
            raise SpecError("give a spec or a source, not both", "source")
        check_source(exp.source, limits)
    else:
        validate(exp.spec, limits, input_shape=exp.lazy_features, device=exp.device)
    check_rules(exp.rules)
    if len(exp.rules) > limits.max_rules:
        raise SpecError(f"at most {limits.max_rules} rules", "rules")
    _one_of(exp.loss, Loss, "loss")
    _one_of(exp.ran, Ran, "ran")
    _one_of(exp.dtype, DTYPES, "dtype")
    _whole(exp.seed, 0, limits.max_seed, "seed")
    if not isinstance(exp.device, str) or not 0 < len(exp.device) <= 16:
        raise SpecError(
            f"must be a device name such as cpu or cuda:0, got {exp.device!r}", "device"
        )
    if exp.preset is not None and not isinstance(exp.preset, str):
        raise SpecError(f"must be a preset name or null, got {exp.preset!r}", "preset")
    if not isinstance(exp.root_name, str) or not exp.root_name.isidentifier():
        raise SpecError(f"must be a Python name such as net, got {exp.root_name!r}", "root_name")
    if not isinstance(exp.materialized, bool):
        raise SpecError("must be true or false", "materialized")
    for i, op in enumerate(exp.ops):
        check_op(op, f"ops[{i}]", limits)


def check_op(op: object, where: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Check one recorded value change (an edit, a move or a training run)."""
    if not isinstance(op, dict) or op.get("op") not in OP_KINDS:
        raise SpecError(f"must be an object with op one of {', '.join(OP_KINDS)}", where)
    kind = op["op"]
    if kind == "edit":
        _allowed(op, {"op", "name", "how", "value", "index"}, where)
        if not isinstance(op.get("name"), str) or not 0 < len(op["name"]) <= 1000:
            raise SpecError("must be a parameter name", f"{where}.name")
        _one_of(op.get("how"), EditHow, f"{where}.how")
        value = op.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(f"must be a number, got {value!r}", f"{where}.value")
        if not math.isfinite(value) or abs(value) > 1e38:
            raise SpecError(
                f"must be a finite number of at most 1e38 in size, got {value!r}", f"{where}.value"
            )
        index = op.get("index")
        if index is not None and (
            not isinstance(index, list | tuple)
            or len(index) > 8
            or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in index)
        ):
            raise SpecError("must be a list of whole numbers, or null", f"{where}.index")
    elif kind == "load":
        _allowed(op, {"op", "digest", "name", "keys"}, where)
        digest = op.get("digest")
        if not isinstance(digest, str) or re.fullmatch(r"[0-9a-f]{64}", digest) is None:
            raise SpecError("must be a sha256 digest in hex", f"{where}.digest")
        if not isinstance(op.get("name"), str) or not 0 < len(op["name"]) <= 255:
            raise SpecError("must be the checkpoint's file name", f"{where}.name")
        _whole(op.get("keys"), 1, limits.max_param_names, f"{where}.keys")
    elif kind == "train":
        from explorer.engine.train import check_train_op

        check_train_op(op, where, limits)
    else:
        _allowed(op, {"op", "device", "dtype"}, where)
        _one_of(op.get("dtype"), DTYPES, f"{where}.dtype")
        if not isinstance(op.get("device"), str):
            raise SpecError("must be a device name", f"{where}.device")


def _check_input(exp: Experiment, limits: Limits) -> None:
    shape = exp.input_shape
    if (
        not isinstance(shape, tuple)
        or not 1 <= len(shape) <= 5
        or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape)
    ):
        raise SpecError(f"must be 1 to 5 positive whole numbers, got {shape!r}", "input_shape")
    elements = math.prod(shape)
    if elements > limits.max_input_elements:
        raise SpecError(
            f"the input would have {elements:,} elements; the limit is "
            f"{limits.max_input_elements:,}",
            "input_shape",
        )
    _one_of(exp.input_kind, InputKind, "input_kind")
    if exp.input_kind == InputKind.TOKENS:
        _whole(exp.vocab, 1, limits.max_embeddings, "vocab")


def _one_of(value: object, allowed, where: str) -> None:
    names = [str(a) for a in allowed]
    if not isinstance(value, str) or value not in names:
        raise SpecError(f"must be one of {', '.join(names)}, got {value!r}", where)


def _whole(value: object, lo: int, hi: int, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SpecError(f"must be a whole number from {lo} to {hi}, got {value!r}", where)


def _allowed(op: dict, keys: set[str], where: str) -> None:
    for key in op:
        if key not in keys:
            raise SpecError(f"unknown field; allowed: {', '.join(sorted(keys))}", f"{where}.{key}")
