"""The model spec: plain JSON blocks, checked completely before any tensor exists.

A spec is a dict with a ``"type"`` and the fields of that type, e.g.::

    {"type": "sequential", "children": [
        {"type": "linear", "out_features": 8},
        {"type": "relu"},
        {"type": "linear", "out_features": 1}]}

``validate`` walks it once, names the exact place of the first problem in a
``SpecError``, and returns a ``SpecInfo`` with what the builder needs: the
named blocks, the static parameter shapes it could infer and a parameter count.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum

from explorer.errors import SpecError

__all__ = ["BlockType", "Limits", "DEFAULT_LIMITS", "SpecInfo", "validate", "to_json", "from_json"]

MAX_UNITS = 65536
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class BlockType(StrEnum):
    """Block types a spec may use; plain strings such as ``"linear"`` work too."""

    SEQUENTIAL = "sequential"
    LINEAR = "linear"
    RELU = "relu"
    GELU = "gelu"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    DROPOUT = "dropout"
    LAYERNORM = "layernorm"
    EMBEDDING = "embedding"
    CONV2D = "conv2d"
    FLATTEN = "flatten"
    REPEAT = "repeat"
    SHARED = "shared"


ACTIVATIONS = {"relu", "gelu", "tanh", "sigmoid", "flatten"}
LAYERS = {"linear", "embedding", "conv2d", "layernorm"}

# Fields each type accepts besides "type" and "name"; the first tuple is required.
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sequential": (("children",), ()),
    "linear": (("out_features",), ("in_features", "bias", "tie")),
    "embedding": (("num_embeddings", "embedding_dim"), ("tie",)),
    "conv2d": (
        ("out_channels",),
        ("in_channels", "kernel_size", "stride", "padding", "bias", "tie"),
    ),
    "layernorm": (("normalized_shape",), ("eps", "tie")),
    "dropout": ((), ("p",)),
    "repeat": (("times", "block"), ()),
    "shared": (("ref",), ()),
    **{a: ((), ()) for a in ACTIVATIONS},
}


@dataclass(frozen=True)
class Limits:
    """Upper bounds checked before building, so a spec cannot exhaust memory."""

    max_params: int = 200_000_000
    max_blocks: int = 5_000
    max_depth: int = 32
    max_repeat: int = 256
    max_embeddings: int = 1_000_000


DEFAULT_LIMITS = Limits()


@dataclass
class SpecInfo:
    """What validation learned: named blocks, inferred shapes and the parameter count."""

    named: dict[str, dict] = field(default_factory=dict)
    name_paths: dict[str, str] = field(default_factory=dict)
    shapes: dict[str, dict[str, tuple[int, ...] | None]] = field(default_factory=dict)
    param_count: int = 0
    blocks: int = 0


def validate(spec: object, limits: Limits = DEFAULT_LIMITS, input_shape=None) -> SpecInfo:
    """Check a whole spec, return what the builder needs, and raise ``SpecError`` at a problem.

    Example: ``validate({"type": "linear", "out_features": 8}).param_count`` is 0
    until ``in_features`` is known, 40 with ``"in_features": 4``.
    """
    checker = _Checker(limits)
    checker.collect_names(spec, "", inside_repeat=False, depth=0)
    checker.check_refs(spec, "", stack=())
    features = input_shape[-1] if input_shape else None
    checker.infer(spec, "", features)
    checker.check_ties()
    return checker.info


def to_json(spec: dict) -> str:
    """Serialize a spec as indented JSON."""
    return json.dumps(spec, indent=2)


def from_json(text: str, limits: Limits = DEFAULT_LIMITS) -> dict:
    """Parse and validate a spec from JSON text."""
    if len(text) > 1_000_000:
        raise SpecError("spec JSON is larger than 1 MB")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise SpecError(
            f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        ) from None
    validate(spec, limits)
    return spec


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def whole(block: dict, key: str, path: str, lo: int, hi: int, default=None) -> int | None:
    """Read an integer field, or raise naming the place and the allowed range."""
    value = block.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SpecError(
            f"must be a whole number from {lo} to {hi}, got {value!r}", _where(path, key)
        )
    return value


def pair(block: dict, key: str, path: str, lo: int, hi: int, default: int) -> tuple[int, int]:
    """Read a field that is an int or a list of two ints (kernel sizes, strides)."""
    value = block.get(key, default)
    if isinstance(value, list) and len(value) == 2:
        return tuple(whole({key: v}, key, path, lo, hi) for v in value)
    if isinstance(value, list):
        raise SpecError(
            f"must be a whole number or a list of two, got {value!r}", _where(path, key)
        )
    v = whole({key: value}, key, path, lo, hi)
    return (v, v)


class _Checker:
    """One pass per concern over the spec; every method raises at the first problem."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.info = SpecInfo()
        self.ties: list[tuple[str, str, str, str]] = []  # (path, own param, target name, param)

    def collect_names(self, block: object, path: str, inside_repeat: bool, depth: int) -> None:
        """Check types and fields, and record every named block with its path."""
        if depth > self.limits.max_depth:
            raise SpecError(f"blocks are nested more than {self.limits.max_depth} deep", path)
        self.info.blocks += 1
        if self.info.blocks > self.limits.max_blocks:
            raise SpecError(f"more than {self.limits.max_blocks} blocks", path)
        kind = self._check_fields(block, path)
        name = block.get("name")
        if name is not None:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise SpecError(
                    f"must be letters, digits or _ (not starting with a digit), got {name!r}",
                    _where(path, "name"),
                )
            if inside_repeat:
                raise SpecError(
                    "a block inside a repeat is copied, so it cannot be named; "
                    "name the repeat instead",
                    _where(path, "name"),
                )
            if name in self.info.named:
                raise SpecError(
                    f"duplicate name {name!r}: it is already used at "
                    f"{self.info.name_paths[name] or 'the root'}",
                    _where(path, "name"),
                )
            self.info.named[name] = block
            self.info.name_paths[name] = path
        if kind == "sequential":
            children = block["children"]
            if not isinstance(children, list):
                raise SpecError(
                    f"must be a list of blocks, got {type(children).__name__}",
                    _where(path, "children"),
                )
            for i, child in enumerate(children):
                self.collect_names(
                    child, f"{_where(path, 'children')}[{i}]", inside_repeat, depth + 1
                )
        elif kind == "repeat":
            whole(block, "times", path, 1, self.limits.max_repeat)
            self.collect_names(block["block"], _where(path, "block"), True, depth + 1)
        elif kind == "shared" and not isinstance(block["ref"], str):
            raise SpecError(
                f"must be the name of a block, got {block['ref']!r}", _where(path, "ref")
            )
        self._check_values(block, kind, path)

    def _check_fields(self, block: object, path: str) -> str:
        if not isinstance(block, dict):
            raise SpecError(
                f'must be a block object with a "type", got {type(block).__name__}', path
            )
        kind = block.get("type")
        if kind not in FIELDS:
            raise SpecError(
                f"unknown block type {kind!r}; use one of {', '.join(FIELDS)}", _where(path, "type")
            )
        required, optional = FIELDS[kind]
        for key in required:
            if key not in block:
                raise SpecError(f"{kind} needs the field {key!r}", path)
        allowed = {"type", "name", *required, *optional}
        for key in block:
            if key not in allowed:
                raise SpecError(
                    f"unknown field for {kind}; allowed: {', '.join(sorted(allowed))}",
                    _where(path, key),
                )
        return kind

    def _check_values(self, block: dict, kind: str, path: str) -> None:
        if kind == "linear":
            whole(block, "out_features", path, 1, MAX_UNITS)
            whole(block, "in_features", path, 1, MAX_UNITS)
        elif kind == "embedding":
            whole(block, "num_embeddings", path, 1, self.limits.max_embeddings)
            whole(block, "embedding_dim", path, 1, MAX_UNITS)
        elif kind == "conv2d":
            whole(block, "out_channels", path, 1, 4096)
            whole(block, "in_channels", path, 1, 4096)
            pair(block, "kernel_size", path, 1, 31, 3)
            pair(block, "stride", path, 1, 16, 1)
            pair(block, "padding", path, 0, 16, 0)
        elif kind == "layernorm":
            whole(block, "normalized_shape", path, 1, MAX_UNITS)
            eps = block.get("eps", 1e-5)
            if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < 1:
                raise SpecError(
                    f"must be a number between 0 and 1, got {eps!r}", _where(path, "eps")
                )
        elif kind == "dropout":
            p = block.get("p", 0.5)
            if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p < 1:
                raise SpecError(
                    f"must be a probability from 0 to below 1, got {p!r}", _where(path, "p")
                )
        if "bias" in block and not isinstance(block["bias"], bool):
            raise SpecError(f"must be true or false, got {block['bias']!r}", _where(path, "bias"))
        if "tie" in block:
            self._collect_tie(block["tie"], _where(path, "tie"), path)

    def _collect_tie(self, tie: object, where: str, path: str) -> None:
        if not isinstance(tie, dict) or not tie:
            raise SpecError(
                'must map a parameter to "NAME.param", e.g. {"weight": "embed.weight"}', where
            )
        for own, target in tie.items():
            if own not in ("weight", "bias"):
                raise SpecError("only weight or bias can be tied", f"{where}.{own}")
            if not isinstance(target, str) or target.count(".") != 1:
                raise SpecError(
                    f'must be "NAME.weight" or "NAME.bias", got {target!r}', f"{where}.{own}"
                )
            name, param = target.split(".")
            self.ties.append((path, own, name, param))

    def check_refs(self, block: dict, path: str, stack: tuple[str, ...]) -> None:
        """Fail on a ``shared`` ref that is missing or dangling, or that would form a cycle."""
        name = block.get("name")
        if name is not None:
            stack = (*stack, name)
        kind = block["type"]
        if kind == "shared":
            ref = block["ref"]
            if ref not in self.info.named:
                known = ", ".join(sorted(self.info.named)) or 'none yet: give a block a "name"'
                raise SpecError(
                    f"no block is named {ref!r}; named blocks: {known}", _where(path, "ref")
                )
            if ref in stack:
                cycle = " -> ".join((*stack[stack.index(ref) :], ref))
                raise SpecError(
                    f"reusing {ref!r} here would put a block inside itself ({cycle})",
                    _where(path, "ref"),
                )
            self.check_refs(self.info.named[ref], self.info.name_paths[ref], stack)
        for child_path, child in _children(block, path):
            self.check_refs(child, child_path, stack)

    def infer(self, block: dict, path: str, features: int | None, count: bool = True) -> int | None:
        """Propagate the feature size through the blocks, recording and counting parameter shapes.

        A ``shared`` block reuses parameters counted where it is defined, so it is not counted
        again; each copy of a ``repeat`` has its own and is.
        """
        kind = block["type"]
        if kind == "sequential":
            for child_path, child in _children(block, path):
                features = self.infer(child, child_path, features, count)
            return features
        if kind == "repeat":
            for _ in range(block["times"]):
                features = self.infer(block["block"], _where(path, "block"), features, count)
            return features
        if kind == "shared":
            target = block["ref"]
            return self.infer(
                self.info.named[target], self.info.name_paths[target], features, count=False
            )
        shapes, out = _layer_shapes(block, features)
        if path not in self.info.shapes or count:
            self.info.shapes[path] = shapes
        if count:
            self._count(shapes, path)
        return out

    def _count(self, shapes: dict, path: str) -> None:
        self.info.param_count += sum(math.prod(s) for s in shapes.values() if s is not None)
        if self.info.param_count > self.limits.max_params:
            raise SpecError(
                f"the model would have more than {self.limits.max_params:,} "
                "parameters; make the layers smaller",
                path,
            )

    def check_ties(self) -> None:
        """A tie must point at an existing parameter of the same, known shape."""
        for path, own, name, param in self.ties:
            where = _where(path, f"tie.{own}")
            if name not in self.info.named:
                raise SpecError(f"no block is named {name!r}", where)
            target_path = self.info.name_paths[name]
            target_shapes = self.info.shapes.get(target_path, {})
            if param not in target_shapes:
                raise SpecError(f"block {name!r} has no parameter {param!r}", where)
            mine, theirs = self.info.shapes[path].get(own), target_shapes[param]
            if own not in self.info.shapes[path]:
                raise SpecError(f"this block has no {own} to tie (is bias false?)", where)
            if mine is None or theirs is None:
                raise SpecError(
                    "a tie needs both shapes known before building: set in_features "
                    "(or in_channels) on both layers",
                    where,
                )
            if mine != theirs:
                raise SpecError(
                    f"shapes differ: {own} is {mine} but {name}.{param} is {theirs}; "
                    "tied parameters must have the same shape",
                    where,
                )


def _children(block: dict, path: str):
    if block["type"] == "sequential":
        for i, child in enumerate(block["children"]):
            yield f"{_where(path, 'children')}[{i}]", child
    elif block["type"] == "repeat":
        yield _where(path, "block"), block["block"]


def _layer_shapes(block: dict, features: int | None) -> tuple[dict, int | None]:
    """Parameter shapes of a leaf block (None where still lazy) and its output feature size."""
    kind, bias = block["type"], block.get("bias", True)
    if kind == "linear":
        n_in, n_out = block.get("in_features", features), block["out_features"]
        shapes = {"weight": (n_out, n_in) if n_in else None}
        return ({**shapes, "bias": (n_out,)} if bias else shapes), n_out
    if kind == "embedding":
        return {"weight": (block["num_embeddings"], block["embedding_dim"])}, block["embedding_dim"]
    if kind == "conv2d":
        n_in, n_out = block.get("in_channels"), block["out_channels"]
        kh, kw = pair(block, "kernel_size", "", 1, 31, 3)
        shapes = {"weight": (n_out, n_in, kh, kw) if n_in else None}
        return ({**shapes, "bias": (n_out,)} if bias else shapes), None
    if kind == "layernorm":
        n = block["normalized_shape"]
        return {"weight": (n,), "bias": (n,)}, features
    return {}, (None if kind == "flatten" else features)
