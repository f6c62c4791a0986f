"""One field of a block type: its kind, range, default and help, and how a value is checked.

A ``Field`` is a row of the block-type table (``explorer.spec.blocks``). The same record checks
a value (``check``), describes itself for the README (``text``) and for JSON Schema
(``schema``), and tells the builder which widget to draw (``kind``, ``lo``, ``upper``).

Example::

    units = Field("out_features", Kind.WHOLE, "output features", required=True, hi="max_units")
    units.check(-3, "children[2].out_features", LOCAL)
    # SpecError: children[2].out_features: must be a whole number from 1 to 65536, got -3
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from explorer.core.errors import SpecError
from explorer.core.limits import Limits

__all__ = [
    "Kind",
    "Field",
    "show",
    "whole",
    "numbers",
    "size_pair",
    "key_error",
    "check_fields",
    "check_known",
]

TIE_OWN = ("weight", "bias")


class Kind(StrEnum):
    """What a field holds."""

    WHOLE = "whole"  # a whole number in [lo, hi]
    SIZE = "size"  # a whole number or a pair [h, w] of them
    NUMBER = "number"  # a real number in a range
    FLAG = "flag"  # true or false
    CHOICE = "choice"  # one of a few words
    REF = "ref"  # the name of another block
    TIE = "tie"  # {"weight": "NAME.weight"}: a parameter that is another block's
    BLOCK = "block"  # one block
    BLOCKS = "blocks"  # a list of blocks
    KEY_FORMAT = "key_format"  # text with {i}, the keys of a repeat's copies
    TEXT = "text"  # text of 1 to hi characters (matching ``pattern`` when it has one)
    NAME = "name"  # a Python identifier, such as net
    SHAPE = "shape"  # 1 to hi positive whole numbers: a tensor's shape
    INDEX = "index"  # 0 to hi whole numbers from 0: one element of a tensor


@dataclass(frozen=True)
class Field:
    """A field of a block type; ``hi`` is a number or the name of a ``Limits`` field."""

    name: str
    kind: Kind
    help: str
    required: bool = False
    default: Any = None  # what an absent optional field means
    lo: float | str = 1  # a number, or a Limits field's name ("-max_x": its negative)
    hi: float | str | None = None
    lo_open: bool = False
    hi_open: bool = False
    noun: str = "a number"  # NUMBER messages: "must be a probability from 0 to below 1"
    lazy: bool = False  # absent: a lazy layer infers it at the first forward pass
    example: Any = None  # what a block new in the builder starts with (a value or a function)
    choices: tuple[str, ...] = ()
    step: float | None = None  # the builder's number-input step
    nullable: bool = False  # null is allowed and means "not given"
    pattern: str | None = None  # TEXT: a fixed regular expression the whole text must match
    range_words: str | None = None  # NUMBER: the range as messages say it, e.g. "in (0, {hi}]"

    def upper(self, limits: Limits) -> float | None:
        """The upper bound under these limits."""
        return getattr(limits, self.hi) if isinstance(self.hi, str) else self.hi

    def lower(self, limits: Limits) -> float:
        """The lower bound under these limits."""
        if not isinstance(self.lo, str):
            return self.lo
        bound = getattr(limits, self.lo.removeprefix("-"))
        return -bound if self.lo.startswith("-") else bound

    def sample(self) -> Any:
        """The value a new block starts with, or None to leave the field out."""
        return self.example() if callable(self.example) else self.example

    def check(self, value: object, where: str, limits: Limits) -> None:
        """Raise ``SpecError`` at ``where`` unless ``value`` is allowed here."""
        if value is None and self.nullable:
            return
        hi, lo = self.upper(limits), self.lower(limits)
        if self.kind == Kind.WHOLE:
            whole(value, where, int(lo), int(hi))
        elif self.kind == Kind.SIZE:
            size_pair(value, where, int(lo), int(hi))
        elif self.kind == Kind.NUMBER:
            self._check_number(value, where, lo, hi)
        elif self.kind == Kind.FLAG and not isinstance(value, bool):
            raise SpecError(f"must be true or false, got {show(value)}", where)
        elif self.kind == Kind.CHOICE and (not isinstance(value, str) or value not in self.choices):
            raise SpecError(f"must be one of {', '.join(self.choices)}, got {show(value)}", where)
        elif self.kind == Kind.REF and (not isinstance(value, str) or not value):
            raise SpecError(f"must be the name of a block, got {show(value)}", where)
        elif self.kind == Kind.TIE:
            _check_tie(value, where)
        elif self.kind == Kind.BLOCKS and not isinstance(value, list | tuple):
            raise SpecError(f"must be a list of blocks, got {type(value).__name__}", where)
        elif self.kind == Kind.KEY_FORMAT:
            _check_key_format(value, where, limits)
        elif self.kind == Kind.TEXT:
            self._check_text(value, where, int(hi))
        elif self.kind == Kind.NAME and not (isinstance(value, str) and value.isidentifier()):
            raise SpecError(f"must be {self.noun}, got {show(value)}", where)
        elif self.kind == Kind.SHAPE:
            numbers(value, where, 1, 1, int(hi), f"1 to {int(hi)} positive whole numbers")
        elif self.kind == Kind.INDEX:
            numbers(value, where, 0, 0, int(hi), self.noun)

    def _check_text(self, value: object, where: str, hi: int) -> None:
        ok = isinstance(value, str) and 0 < len(value) <= hi
        if ok and self.pattern is not None:
            ok = re.fullmatch(self.pattern, value) is not None
        if not ok:
            raise SpecError(f"must be {self.noun}, got {show(value)}", where)

    def _check_number(self, value: object, where: str, lo: float, hi: float | None) -> None:
        ok = not isinstance(value, bool) and isinstance(value, int | float)
        ok = ok and not (isinstance(value, float) and not math.isfinite(value))
        if ok:
            above = value > lo if self.lo_open else value >= lo
            below = hi is None or (value < hi if self.hi_open else value <= hi)
            ok = above and below
        if not ok:
            raise SpecError(f"must be {self.noun} {self.range_text(hi)}, got {show(value)}", where)

    def range_text(self, hi: float | None) -> str:
        """The allowed range in words: ``between 0 and 1``, ``from 0 to below 1``."""
        if self.range_words is not None:
            return self.range_words.format(lo=_num(self.lo), hi=_num(hi))
        lo = _num(self.lo)
        if hi is None:
            return f"above {lo}" if self.lo_open else f"of at least {lo}"
        if self.lo_open and self.hi_open:
            return f"between {lo} and {_num(hi)}"
        return f"{'above' if self.lo_open else 'from'} {lo} to {'below ' * self.hi_open}{_num(hi)}"

    def text(self, limits: Limits) -> str:
        """The field as one README cell entry, e.g. ``in_features`` (1–65536; lazy if absent)."""
        hi = self.upper(limits)
        parts = []
        if self.kind in (Kind.WHOLE, Kind.SIZE):
            both = ", or `[h, w]`" if self.kind == Kind.SIZE else ""
            parts.append(f"{_num(self.lo)}–{_num(hi)}{both}")
        elif self.kind == Kind.NUMBER:
            parts.append(self.range_text(hi))
        elif self.kind == Kind.CHOICE:
            parts.append(" or ".join(f"`{c}`" for c in self.choices))
        elif self.kind == Kind.KEY_FORMAT:
            parts.append("text with `{i}`, e.g. `block {i}`")
        elif self.kind in (Kind.BLOCK, Kind.BLOCKS, Kind.REF, Kind.TIE):
            parts.append(self.help)
        if self.lazy:
            parts.append("lazy if absent")
        elif self.default is not None:
            parts.append(f"default `{_json(self.default)}`")
        elif not self.required:
            parts.append("optional")
        return f"`{self.name}` ({'; '.join(parts)})"

    def schema(self, limits: Limits) -> dict:
        """This field as JSON Schema; blocks refer to ``#/$defs/block``."""
        hi = self.upper(limits)
        if self.kind == Kind.WHOLE:
            out = _int_schema(self.lo, hi)
        elif self.kind == Kind.SIZE:
            one = _int_schema(self.lo, hi)
            out = {"oneOf": [one, {"type": "array", "items": one, "minItems": 2, "maxItems": 2}]}
        elif self.kind == Kind.NUMBER:
            out = {"type": "number", ("exclusiveMinimum" if self.lo_open else "minimum"): self.lo}
            if hi is not None:
                out["exclusiveMaximum" if self.hi_open else "maximum"] = hi
        elif self.kind == Kind.FLAG:
            out = {"type": "boolean"}
        elif self.kind == Kind.CHOICE:
            out = {"enum": list(self.choices)}
        elif self.kind == Kind.REF:
            out = {"type": "string", "minLength": 1}
        elif self.kind == Kind.TIE:
            target = {"type": "string", "pattern": r"^[^.]+\.[^.]+$"}
            out = {
                "type": "object",
                "properties": {own: target for own in TIE_OWN},
                "additionalProperties": False,
                "minProperties": 1,
            }
        elif self.kind == Kind.BLOCK:
            out = {"$ref": "#/$defs/block"}
        elif self.kind == Kind.BLOCKS:
            out = {"type": "array", "items": {"$ref": "#/$defs/block"}}
        else:
            out = {"type": "string", "pattern": r"^[^.{}]*\{i\}[^.{}]*$"}
        out["description"] = self.help
        if self.default is not None:
            out["default"] = self.default
        return out


def whole(value: object, where: str, lo: int, hi: int) -> int:
    """A whole number in [lo, hi], or ``SpecError`` naming the place and the range."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SpecError(f"must be a whole number from {lo} to {hi}, got {show(value)}", where)
    return value


def numbers(
    value: object, where: str, lo: int, fewest: int, most: int, noun: str
) -> tuple[int, ...]:
    """A list of ``fewest`` to ``most`` whole numbers of at least ``lo`` (a shape, an index)."""
    if (
        not isinstance(value, list | tuple)
        or not fewest <= len(value) <= most
        or any(isinstance(n, bool) or not isinstance(n, int) or n < lo for n in value)
    ):
        raise SpecError(f"must be {noun}, got {show(value)}", where)
    return tuple(value)


def size_pair(value: object, where: str, lo: int, hi: int) -> tuple[int, int]:
    """A size that is a whole number or a list of two (kernel sizes, strides), as a pair."""
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise SpecError(f"must be a whole number or a list of two, got {show(value)}", where)
        return whole(value[0], where, lo, hi), whole(value[1], where, lo, hi)
    v = whole(value, where, lo, hi)
    return v, v


def key_error(key: object, limits: Limits, reserved: frozenset[str]) -> str | None:
    """Why ``key`` cannot name a child module, or None if it can."""
    if not isinstance(key, str) or not key:
        return f"must be non-empty text, got {show(key)}"
    if len(key) > limits.max_key_chars:
        return f"must be at most {limits.max_key_chars} characters, got {len(key):,}"
    if not key.isprintable() or "." in key:
        return f"must be printable text without '.', got {show(key)}"
    if key in reserved:
        return f"{key!r} is already an attribute of nn.Sequential; choose another key"
    return None


def show(value: object) -> str:
    """A short, safe rendering of any value for an error message (no huge numbers or text)."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        digits = int(value.bit_length() * 0.30103) + 1
        return repr(value) if digits <= 30 else f"a whole number of about {digits:,} digits"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else f"{value[:40]!r}… ({len(value):,} characters)"
    if isinstance(value, list | tuple):
        scalar = all(isinstance(v, int | float | str | None) for v in value)
        if len(value) <= 4 and scalar:
            return "[" + ", ".join(show(v) for v in value) + "]"
        return f"a list of {len(value):,} items"
    if isinstance(value, dict):
        return f"an object with {len(value):,} fields"
    return f"a {type(value).__name__}"


def _check_tie(tie: object, where: str) -> None:
    if not isinstance(tie, dict) or not tie:
        raise SpecError(
            'must map a parameter to "NAME.param", e.g. {"weight": "embed.weight"}', where
        )
    for own, target in tie.items():
        if own not in TIE_OWN:
            raise SpecError("only weight or bias can be tied", f"{where}.{show(own)}")
        if not isinstance(target, str) or target.count(".") != 1:
            raise SpecError(
                f'must be "NAME.weight" or "NAME.bias", got {show(target)}', f"{where}.{own}"
            )


def _check_key_format(value: object, where: str, limits: Limits) -> None:
    text = value if isinstance(value, str) else ""
    rest = text.replace("{i}", "", 1)
    if text.count("{i}") != 1 or "{" in rest or "}" in rest:
        raise SpecError(
            f'must be text with {{i}} once, e.g. "block {{i}}", got {show(value)}', where
        )
    reason = key_error(text.replace("{i}", "0"), limits, frozenset())
    if reason is not None or len(text) > limits.max_key_chars:
        raise SpecError(reason or f"must be at most {limits.max_key_chars} characters", where)


def _int_schema(lo: float, hi: float | None) -> dict:
    out = {"type": "integer", "minimum": int(lo)}
    return out if hi is None else {**out, "maximum": int(hi)}


def _num(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else f"{value:,}"


def _json(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else _num(value)


def check_fields(
    record: Mapping, table: tuple[Field, ...], where: str, limits: Limits, *, partial=False
) -> None:
    """Check a record against a table of fields: unknown keys, missing required ones, values.

    ``where`` prefixes each field's name in messages (``ops[0]`` gives ``ops[0].lr``).
    ``partial`` checks only the values the record has.
    """
    if not partial:
        check_known(record, [f.name for f in table], where)
    for f in table:
        if f.name not in record:
            if f.required and not partial:
                raise SpecError(f"needs {f.name!r}", where or f.name)
            continue
        f.check(record[f.name], _at(where, f.name), limits)


def check_known(record: Mapping, names, where: str = "") -> None:
    """Refuse a key that is none of ``names``; the message lists the allowed ones."""
    known = set(names)
    for key in record:
        if key not in known:
            allowed = ", ".join(sorted(known))
            raise SpecError(f"unknown field; allowed: {allowed}", _at(where, show_key(key)))


def show_key(key: object) -> str:
    """A key as it appears in a message: itself when it is short text."""
    return key if isinstance(key, str) and len(key) <= 40 else show(key)


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
