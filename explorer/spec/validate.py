"""The model spec: plain JSON blocks, checked completely before any tensor exists.

A spec is a dict with a ``"type"`` and the fields of that type (``explorer.spec.blocks``), e.g.::

    {"type": "sequential", "children": [
        {"type": "linear", "out_features": 8},
        {"type": "relu"},
        {"type": "linear", "out_features": 1}]}

``validate`` reads it once and names the exact place of every problem it finds in one read
(a bad value, an unknown type or field, a clashing name or key, a dangling ref: all at once,
in a ``SpecErrors``), and returns a ``SpecInfo``: the named blocks, the parameter shapes it
could infer, and the size of the model once every ``repeat`` and ``shared`` block is
expanded. Those sizes are computed arithmetically, each block's totals once, so a 1 KB spec
that would expand to 2³⁰ modules is refused in microseconds. Frozen specs (``FrozenDict``,
tuples) work the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from explorer.core.errors import SpecError, SpecErrors
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.spec.blocks import BLOCKS, CHAIN, NAME, RESERVED_KEYS, SAME, BlockType, param_count
from explorer.spec.fields import Kind, key_error, show

__all__ = ["SpecInfo", "validate", "to_json", "from_json", "parse_json", "Limits", "DEFAULT_LIMITS"]

_COMMON = ("type", "name", "key")
Features = int | None  # the size of the last input dimension, None where unknown


@dataclass
class SpecInfo:
    """What validation learned: named blocks, inferred shapes and the expanded model's size."""

    named: dict[str, dict] = field(default_factory=dict)
    name_paths: dict[str, str] = field(default_factory=dict)
    shapes: dict[str, dict[str, tuple[int, ...] | None]] = field(default_factory=dict)
    param_count: int = 0  # parameter elements whose shapes are known, each tensor once
    buffer_count: int = 0  # buffer elements (constant_linear's fixed weight)
    blocks: int = 0  # blocks written in the spec
    modules: int = 0  # modules once repeat and shared blocks are expanded
    param_names: int = 0  # parameter names, every alias counted (named_parameters, no dedup)
    depth: int = 0  # nesting once shared blocks are expanded


@dataclass
class _Totals:
    modules: int
    names: int
    depth: int
    out: object  # SAME, an int or None: the output features given the input features


def validate(
    spec: object, limits: Limits = DEFAULT_LIMITS, input_shape=None, *, device=None
) -> SpecInfo:
    """Check a whole spec, return what the builder needs, and raise ``SpecError`` at a problem.

    ``device="meta"`` allows up to ``limits.max_meta_params`` parameters, since nothing is
    allocated. Example: ``validate({"type": "linear", "out_features": 8}).param_count`` is 0
    until ``in_features`` is known, 40 with ``"in_features": 4``.
    """
    checker = _Checker(limits)
    checker.read(spec, "", depth=0, inside_copy=False, keyed=False)
    checker.check_refs()
    checker.report()  # every problem of the reading passes at once
    checker.measure()
    features = input_shape[-1] if input_shape else None
    cap = limits.max_meta_params if str(device) == "meta" else limits.max_params
    checker.count(features, cap)
    checker.check_ties()
    return checker.info


def to_json(spec: dict) -> str:
    """Serialize a spec as indented JSON."""
    return json.dumps(spec, indent=2)


def from_json(text: str, limits: Limits = DEFAULT_LIMITS) -> dict:
    """Parse and validate a spec from JSON text; anything malformed is a ``SpecError``."""
    spec = parse_json(text, limits)
    validate(spec, limits)
    return spec


def parse_json(text: object, limits: Limits = DEFAULT_LIMITS) -> object:
    """Strict JSON: no NaN or Infinity, no repeated field, bounded size and nesting."""
    if not isinstance(text, str):
        raise SpecError(f"must be JSON text, got {type(text).__name__}")
    if len(text) > limits.max_spec_bytes:
        raise SpecError(f"the JSON is longer than {limits.max_spec_bytes:,} characters")
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_fields)
    except json.JSONDecodeError as err:
        raise SpecError(
            f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        ) from None
    except RecursionError:
        raise SpecError("not valid JSON: nested too deeply") from None
    except ValueError as err:
        reason = "a number has too many digits" if "digits" in str(err) else str(err)[:200]
        raise SpecError(f"not valid JSON: {reason}") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _unique_fields(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the field {show(key)} appears twice in one object")
        out[key] = value
    return out


def _where(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


_MAX_PROBLEMS = 20  # problems listed at once; the rest wait for the next check


class _Checker:
    """One pass per concern. The reading passes note each problem and go on (a block whose
    type is unreadable is skipped); the size passes, which need a readable spec, raise."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.info = SpecInfo()
        self.problems: list[SpecError] = []
        self.nodes: dict[str, tuple[dict, BlockType, list[tuple[str, int]]]] = {}
        self.refs: list[tuple[str, str]] = []  # (path of a shared block, the name it reuses)
        self.ties: list[tuple[str, str, str, str]] = []  # (path, own param, target name, param)
        self.totals: dict[str, _Totals] = {}
        self.variants: dict[str, list[dict]] = {}  # every shape set a block gets (repeat copies)

    def note(self, err: SpecError) -> None:
        """Remember a problem and go on reading; too many end the reading."""
        self.problems.append(err)
        if len(self.problems) >= _MAX_PROBLEMS:
            self.report()

    def report(self) -> None:
        """Raise the problems noted so far: one as itself, several together."""
        if len(self.problems) == 1:
            raise self.problems[0]
        if self.problems:
            raise SpecErrors(self.problems)

    # --- reading: types, fields, values, names and keys ---

    def read(self, block: object, path: str, depth: int, inside_copy: bool, keyed: bool) -> None:
        """Check one block and, below it, its children; record it for the later passes."""
        limits = self.limits
        if depth > limits.max_depth:
            raise SpecError(f"blocks are nested more than {limits.max_depth} deep", path)
        self.info.blocks += 1
        if self.info.blocks > limits.max_blocks:
            raise SpecError(f"more than {limits.max_blocks:,} blocks", path)
        try:
            bt = self._block_type(block, path)
        except SpecError as err:
            return self.note(err)  # unreadable: nothing below it can be checked
        complete = self._read_fields(block, bt, path)
        self._noted(self._read_name, block, path, inside_copy)
        if "key" in block:
            reason = (
                key_error(block["key"], limits, RESERVED_KEYS)
                if keyed
                else (
                    "only a child of a sequential has a key; give the key to the sequential's child"
                )
            )
            if reason is not None:
                self.note(SpecError(reason, _where(path, "key")))
        if not complete:
            return
        if bt.is_alias:
            self.refs.append((path, block["ref"]))
        for own, target in (block.get("tie") or {}).items():
            self.ties.append((path, own, *target.split(".")))
        kids: list[tuple[str, int]] = []
        for f in bt.child_fields:
            where = _where(path, f.name)
            if f.kind == Kind.BLOCKS:
                self._read_children(block[f.name], where, depth, inside_copy, kids)
            else:
                copied = inside_copy or bt.copies_child
                self.read(block[f.name], where, depth + 1, copied, keyed=False)
                kids.append((where, bt.copies(bt.get(block))))
        self.nodes[path] = (block, bt, kids)

    def _read_fields(self, block: dict, bt: BlockType, path: str) -> bool:
        """Check every field's value; False when one is missing or wrong (children too)."""
        complete = True
        for f in bt.fields:
            value = block.get(f.name)
            if value is None and f.required:
                self.note(SpecError(f"{bt.name} needs the field {f.name!r}", path))
                complete = False
            elif value is not None:
                complete = (
                    self._noted(f.check, value, _where(path, f.name), self.limits) and complete
                )
        return complete and self._noted(bt.check, bt.get(block), path)

    def _noted(self, check, *args) -> bool:
        """Run one check; note its problem instead of stopping. True when it passed."""
        try:
            check(*args)
        except SpecError as err:
            self.note(err)
            return False
        return True

    def _block_type(self, block: object, path: str) -> BlockType:
        if not isinstance(block, dict):
            raise SpecError(
                f'must be a block object with a "type", got {type(block).__name__}', path
            )
        if "type" not in block:
            raise SpecError(f'needs a "type": one of {", ".join(BLOCKS)}', path)
        kind = block["type"]
        if not isinstance(kind, str) or kind not in BLOCKS:
            raise SpecError(
                f"unknown block type {show(kind)}; use one of {', '.join(BLOCKS)}",
                _where(path, "type"),
            )
        bt = BLOCKS[kind]
        for key in block:
            if not isinstance(key, str):
                raise SpecError(f"field names must be text, got {show(key)}", path)
            if key not in _COMMON and bt.field(key) is None:
                allowed = ", ".join(sorted({*_COMMON, *(f.name for f in bt.fields)}))
                raise SpecError(f"unknown field for {kind}; allowed: {allowed}", _where(path, key))
        return bt

    def _read_name(self, block: dict, path: str, inside_copy: bool) -> None:
        name = block.get("name")
        if name is None:
            return
        where = _where(path, "name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise SpecError(
                f"must be letters, digits or _ (not starting with a digit), got {show(name)}", where
            )
        if inside_copy:
            raise SpecError(
                "a block inside a repeat is copied, so it cannot be named; name the repeat instead",
                where,
            )
        if name in self.info.named:
            raise SpecError(
                f"duplicate name {name!r}: it is already used at "
                f"{self.info.name_paths[name] or 'the root'}",
                where,
            )
        self.info.named[name] = block
        self.info.name_paths[name] = path

    def _read_children(self, children, where: str, depth: int, inside_copy: bool, kids) -> None:
        seen: dict[str, int] = {}  # each child's key in the parent: its "key" or its index
        for i, child in enumerate(children):
            child_path = f"{where}[{i}]"
            self.read(child, child_path, depth + 1, inside_copy, keyed=True)
            key = child.get("key", str(i)) if isinstance(child, dict) else str(i)
            if key in seen:  # blame the child whose "key" field clashes
                at, other = (i, seen[key]) if "key" in child else (seen[key], i)
                self.note(
                    SpecError(
                        f"the key {key!r} is already used by {where}[{other}]; "
                        "the children of a sequential need different keys",
                        f"{where}[{at}].key",
                    )
                )
            seen[key] = i
            kids.append((child_path, 1))

    def check_refs(self) -> None:
        """Fail on a ``shared`` ref to a name that no block has."""
        for path, ref in self.refs:
            if ref not in self.info.named:
                known = sorted(self.info.named)
                listed = ", ".join(known[:20]) + (", …" if len(known) > 20 else "")
                self.note(
                    SpecError(
                        f"no block is named {show(ref)}; named blocks: "
                        f"{listed or 'none yet: give a block a name'}",
                        _where(path, "ref"),
                    )
                )

    # --- the expanded model's size, block by block, without expanding it ---

    def measure(self) -> None:
        """Modules, parameter names and nesting after expansion, or ``SpecError`` over a limit."""
        limits, first_over = self.limits, {}
        caps = {"modules": limits.max_modules, "names": limits.max_param_names}
        caps["depth"] = limits.max_depth
        for path in self._post_order():
            block, bt, kids = self.nodes[path]
            if bt.is_alias:  # the very module it names: every path through it counts again
                totals = self.totals[self.info.name_paths[block["ref"]]]
            elif not bt.child_fields:
                shapes = bt.params(bt.get(block), None)
                submodules = {name.rsplit(".", 1)[0] for name in shapes if "." in name}
                more = len(submodules) if bt.submodules is None else bt.submodules
                totals = _Totals(1 + more, len(shapes), 0, bt.output(bt.get(block)))
            else:
                totals = self._container(bt, block, kids)
            self.totals[path] = totals
            for what, cap in caps.items():
                if getattr(totals, what) > cap:
                    first_over.setdefault(what, path)
        root = self.totals[""]
        self.info.modules, self.info.param_names, self.info.depth = (
            root.modules,
            root.names,
            root.depth,
        )
        if root.depth > limits.max_depth:
            raise SpecError(
                f"blocks are nested {root.depth} deep once shared blocks are expanded; "
                f"the limit is {limits.max_depth}",
                first_over["depth"],
            )
        for what, noun in (("modules", "modules"), ("names", "parameter names")):
            total = getattr(root, what)
            if total > caps[what]:
                at = first_over[what]
                alone = f"; this block alone makes {getattr(self.totals[at], what):,}" if at else ""
                raise SpecError(
                    f"the model would have {total:,} {noun} once repeat and shared blocks are "
                    f"expanded; the limit is {caps[what]:,}{alone}",
                    at,
                )

    def _container(self, bt: BlockType, block: dict, kids: list[tuple[str, int]]) -> _Totals:
        parts = [(self.totals[path], copies) for path, copies in kids]
        out = bt.output(bt.get(block))
        if out is CHAIN:
            out = SAME
            for t, _ in parts:
                out = out if t.out is SAME else t.out
        return _Totals(
            1 + sum(t.modules * n for t, n in parts),
            sum(t.names * n for t, n in parts),
            1 + max((t.depth for t, _ in parts), default=0),
            out,
        )

    def _post_order(self) -> list[str]:
        """Every block's path, each after all it contains or reuses; ``SpecError`` on a cycle."""
        order: list[str] = []
        state: dict[str, bool] = {"": False}  # False: on the current walk; True: finished
        stack = [("", iter(self._edges("")))]
        while stack:
            path, edges = stack[-1]
            nxt = next(edges, None)
            if nxt is None:
                stack.pop()
                state[path] = True
                order.append(path)
            elif nxt not in state:
                state[nxt] = False
                stack.append((nxt, iter(self._edges(nxt))))
            elif state[nxt] is False:
                self._cycle([p for p, _ in stack], nxt)
        return order

    def _edges(self, path: str) -> list[str]:
        block, bt, kids = self.nodes[path]
        return [self.info.name_paths[block["ref"]]] if bt.is_alias else [p for p, _ in kids]

    def _cycle(self, walk: list[str], back_to: str) -> None:
        loop = walk[walk.index(back_to) :]
        k = max(i for i, p in enumerate(loop) if self.nodes[p][1].is_alias)
        ref = self.nodes[loop[k]][0]["ref"]
        names = [self.nodes[p][0].get("name") for p in (*loop[k + 1 :], *loop[: k + 1])]
        cycle = " -> ".join((*(n for n in names if n is not None), ref))
        raise SpecError(
            f"reusing {ref!r} here would put a block inside itself ({cycle})",
            _where(loop[k], "ref"),
        )

    # --- parameter elements and shapes, with the input's feature size flowing through ---

    def count(self, features: Features, cap: int) -> None:
        """Count parameter elements (each tensor once) and buffers; record every block's shapes."""
        memo: dict[tuple[str, Features], tuple[int, int]] = {}
        over: list[str] = []
        params, buffers = self._elements("", features, memo, over, cap)
        self.info.param_count, self.info.buffer_count = params, buffers
        if params + buffers > cap:
            what = f"{params:,} parameters" + (f" and {buffers:,} buffer elements" * bool(buffers))
            raise SpecError(
                f"the model would have {what}; the limit is {cap:,}: make the layers smaller",
                over[0],
            )

    def _elements(
        self, path: str, f: Features, memo: dict, over: list, cap: int
    ) -> tuple[int, int]:
        key = (path, f)
        if key in memo:
            return memo[key]
        block, bt, kids = self.nodes[path]
        params = buffers = 0
        if bt.is_alias:  # counted where it is defined
            pass
        elif not bt.child_fields:
            get = bt.get(block)
            shapes = bt.params(get, f)
            self._record(path, shapes)
            tied = block.get("tie") or {}
            params = param_count({k: s for k, s in shapes.items() if k not in tied})
            buffers = param_count(bt.buffers(get, f))
        else:  # children in a chain; a repeat's copies after the first all see its output
            for child, copies in kids:
                after = self._apply(child, f)
                counts = [(1, self._elements(child, f, memo, over, cap))]
                if copies > 1:
                    counts.append((copies - 1, self._elements(child, after, memo, over, cap)))
                params += sum(n * p for n, (p, _) in counts)
                buffers += sum(n * b for n, (_, b) in counts)
                f = after
        memo[key] = params, buffers
        if params + buffers > cap and not over:
            over.append(path)
        return params, buffers

    def _apply(self, path: str, f: Features) -> Features:
        out = self.totals[path].out
        return f if out is SAME else out

    def _record(self, path: str, shapes: dict) -> None:
        seen = self.variants.setdefault(path, [])
        if shapes not in seen:
            seen.append(shapes)
        self.info.shapes.setdefault(path, shapes)

    def check_ties(self) -> None:
        """A tie must point at an existing parameter of the same, known shape."""
        for path, own, name, param in self.ties:
            where = _where(path, f"tie.{own}")
            if name not in self.info.named:
                raise SpecError(f"no block is named {show(name)}", where)
            target = self.info.shapes.get(self.info.name_paths[name], {})
            if param not in target:
                raise SpecError(f"block {name!r} has no parameter {show(param)}", where)
            for shapes in self.variants.get(path, [{}]):
                self._check_tie_shapes(shapes, own, target[param], f"{name}.{param}", where)

    @staticmethod
    def _check_tie_shapes(shapes: dict, own: str, theirs, target: str, where: str) -> None:
        if own not in shapes:
            raise SpecError(f"this block has no {own} to tie (is bias false?)", where)
        mine = shapes[own]
        if mine is None or theirs is None:
            raise SpecError(
                "a tie needs both shapes known before building: set in_features "
                "(or in_channels) on both layers",
                where,
            )
        if mine != theirs:
            raise SpecError(
                f"shapes differ: {own} is {mine} but {target} is {theirs}; "
                "tied parameters must have the same shape",
                where,
            )
