"""Pure edits of a spec for the builder: each returns a new spec and never mutates its input.

A block is addressed by a spec path, a tuple of steps such as ``("children", 0, "block")``;
``path_str`` writes it as ``children[0].block``, the form ``SpecError.path`` uses. Example::

    spec = new_block("sequential")
    spec = insert(spec, (), 0, new_block("linear"))
    spec = set_field(spec, ("children", 0), "out_features", 4)
    outline(spec)[1].summary  # "linear ? → 4, bias"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from explorer.core.errors import SpecError
from explorer.core.frozen import thaw
from explorer.spec.blocks import BLOCKS, example
from explorer.spec.fields import Kind

__all__ = [
    "Path",
    "Row",
    "KINDS",
    "get",
    "replace",
    "insert",
    "remove",
    "move",
    "wrap",
    "unwrap",
    "set_field",
    "del_field",
    "rename",
    "names",
    "path_str",
    "parse_path",
    "block_of_error",
    "outline",
    "new_block",
]

Path = tuple[str | int, ...]

# Block kinds a user can add, in menu order; "shared" needs a ref, so it is offered per name.
KINDS = tuple(name for name, bt in BLOCKS.items() if bt.menu)
_STEP = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


@dataclass(frozen=True)
class Row:
    """One block of the outline: where it is, how deep, and a one-line summary."""

    path: Path
    depth: int
    type: str
    name: str | None
    summary: str
    label: str  # its key as PyTorch prints it: "2", "block 0", or "0–3" for a repeat's copies
    in_repeat: bool  # inside a repeat, so it cannot be named
    keyed: bool = False  # a child of a sequential, so it may carry a "key"

    def __repr__(self) -> str:
        return f"Row({path_str(self.path) or 'root'}, {self.summary!r})"


def get(spec: dict, path: Path) -> object:
    """The block (or field) at ``path``; ``SpecError`` if there is none."""
    node = spec
    for step in path:
        try:
            if isinstance(step, int) and not isinstance(node, list | tuple):
                raise KeyError(step)
            node = node[step]
        except (KeyError, IndexError, TypeError):
            raise SpecError("there is no block here", path_str(path)) from None
    return node


def replace(spec: dict, path: Path, block: dict) -> dict:
    """The spec with the block at ``path`` replaced by ``block``."""
    if not path:
        return thaw(block)
    new = thaw(spec)
    get(new, path)
    get(new, path[:-1])[path[-1]] = thaw(block)
    return new


def insert(spec: dict, parent_path: Path, index: int, block: dict) -> dict:
    """The spec with ``block`` inserted as child ``index`` of the sequential at ``parent_path``."""
    new = thaw(spec)
    children = _children_of(new, parent_path)
    children.insert(max(0, min(index, len(children))), thaw(block))
    return new


def remove(spec: dict, path: Path) -> dict:
    """The spec without the child block at ``path``; the root and a repeat's block stay.

    A block whose name is reused elsewhere is refused, naming the place that reuses it.
    """
    parent, i = _sibling_slot(spec, path, "remove")
    for row in outline(get(spec, path)):
        outside = [u for u in _uses(spec, row.name) if u[: len(path)] != path]
        if row.name is not None and outside:
            raise SpecError(
                f"block {row.name!r} is reused at {path_str(outside[0]) or 'the root'}"
                "; remove that reuse first",
                path_str(path + row.path + ("name",)),
            )
    new = thaw(spec)
    del _children_of(new, parent)[i]
    return new


def move(spec: dict, path: Path, delta: int) -> dict:
    """The spec with the child at ``path`` moved ``delta`` places among its siblings, clamped."""
    parent, i = _sibling_slot(spec, path, "move")
    new = thaw(spec)
    children = _children_of(new, parent)
    block = children.pop(i)
    children.insert(max(0, min(i + delta, len(children))), block)
    return new


def wrap(spec: dict, path: Path, kind: str) -> dict:
    """The spec with the block at ``path`` nested in a new ``"sequential"`` or ``"repeat"`` (× 2).

    Names inside a new repeat are dropped, since copies cannot be named; a name that is
    reused elsewhere is refused instead, because dropping it would break the reuse. The
    block's ``key`` in its parent moves to the new wrapper.
    """
    block = thaw(get(spec, path))
    key = block.pop("key", None)
    if kind == "sequential":
        wrapper = {"type": "sequential", "children": [block]}
    elif kind == "repeat":
        for row in outline(block):
            inner = get(block, row.path)
            if row.name is not None and _uses(spec, row.name):
                where = path_str(path + row.path + ("name",))
                raise SpecError(
                    f"block {inner['name']!r} is reused elsewhere, and blocks inside a "
                    "repeat cannot be named; remove the reuse first",
                    where,
                )
            inner.pop("name", None)
        wrapper = {"type": "repeat", "times": 2, "block": block}
    else:
        raise SpecError(f"can wrap in a sequential or a repeat, not {kind!r}")
    return replace(spec, path, wrapper if key is None else {**wrapper, "key": key})


def unwrap(spec: dict, path: Path) -> dict:
    """The spec with a one-child sequential or a repeat replaced by its only block.

    The wrapper's name moves to the block if the block has none; the block takes the
    wrapper's place, and with it the wrapper's ``key``.
    """
    block = get(spec, path)
    if block.get("type") == "repeat":
        inner = block["block"]
    elif block.get("type") == "sequential" and len(block.get("children", [])) == 1:
        inner = block["children"][0]
    else:
        raise SpecError(
            "only a sequential with one child, or a repeat, can be unwrapped", path_str(path)
        )
    inner = thaw(inner)
    inner.pop("key", None)
    if "name" in block and "name" not in inner:
        inner["name"] = block["name"]
    if "key" in block:
        inner["key"] = block["key"]
    return replace(spec, path, inner)


def set_field(spec: dict, path: Path, key: str, value: object) -> dict:
    """The spec with field ``key`` of the block at ``path`` set to ``value``."""
    new = thaw(spec)
    _block(new, path)[key] = thaw(value)
    return new


def del_field(spec: dict, path: Path, key: str) -> dict:
    """The spec without field ``key`` on the block at ``path`` (unchanged if it is absent)."""
    new = thaw(spec)
    _block(new, path).pop(key, None)
    return new


def rename(spec: dict, path: Path, name: str | None) -> dict:
    """The spec with the block at ``path`` renamed (or unnamed, with ``None`` or ``""``).

    Every ``shared`` ref and ``tie`` that pointed at the old name follows it to the new one.
    """
    old = _block(spec, path).get("name")
    new = del_field(spec, path, "name") if not name else set_field(spec, path, "name", name)
    if old is None or not name:
        return new
    for row in outline(new):
        block = get(new, row.path)
        if block.get("type") == "shared" and block.get("ref") == old:
            block["ref"] = name
        tie = block.get("tie")
        if isinstance(tie, dict):
            for own, target in tie.items():
                if isinstance(target, str) and target.split(".")[0] == old:
                    tie[own] = f"{name}.{target.split('.', 1)[1]}"
    return new


def names(spec: dict) -> list[str]:
    """Names of the named blocks, in outline order: what ``shared`` refs and ties may point at."""
    return [r.name for r in outline(spec) if r.name is not None]


def path_str(path: Path) -> str:
    """A path as text: ``("children", 2, "block")`` is ``"children[2].block"``."""
    text = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path)
    return text.lstrip(".")


def parse_path(text: str) -> Path:
    """The inverse of ``path_str``: ``"children[2].block"`` is ``("children", 2, "block")``."""
    steps: list[str | int] = []
    pos = 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None or (m.group(0).startswith(".") and pos == 0):
            raise SpecError(f"not a spec path: {text!r}")
        steps.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    return tuple(steps)


def block_of_error(spec: dict, err_path: str) -> Path:
    """The deepest block of ``spec`` whose path prefixes an error's field path (root if none).

    Example: ``block_of_error(mlp, "children[2].out_features")`` is ``("children", 2)``.
    """
    try:
        steps = parse_path(err_path)
    except SpecError:
        return ()
    node, found = spec, ()
    while (child := _child_step(node, steps[len(found) :])) is not None:
        node, found = child[0], found + child[1]
    return found


def outline(spec: dict) -> list[Row]:
    """Every block in pre-order with its path, depth and a one-line summary, for the builder."""
    rows: list[Row] = []

    def walk(block: dict, path: Path, depth: int, label: str, in_repeat: bool, keyed: bool):
        if not isinstance(block, dict):
            return
        kind, name = str(block.get("type")), block.get("name")
        rows.append(Row(path, depth, kind, name, _summary(block), label, in_repeat, keyed))
        for step, child, child_label, copied, child_keyed in _child_blocks(block):
            walk(child, (*path, *step), depth + 1, child_label, in_repeat or copied, child_keyed)

    walk(spec, (), 0, "", False, False)
    return rows


def _child_blocks(block: dict):
    """(steps, child, label, copied, keyed) for each block held by ``block``'s block fields."""
    bt = BLOCKS.get(block.get("type")) if isinstance(block.get("type"), str) else None
    for f in bt.child_fields if bt is not None else ():
        value = block.get(f.name)
        if f.kind == Kind.BLOCKS and isinstance(value, list | tuple):
            for i, child in enumerate(value):
                key = child.get("key") if isinstance(child, dict) else None
                yield (f.name, i), child, str(i) if key is None else str(key), False, True
        elif f.kind == Kind.BLOCK and f.name in block:
            yield (f.name,), value, _copies_label(block, bt), bt.copies_child, False


def _copies_label(block: dict, bt) -> str:
    """How PyTorch prints the copies of a repeat's block: ``0–3``, ``block 0–3``; else the field."""
    if not bt.copies_child:
        return "block"
    times = block.get("times")
    copies = f"0–{times - 1}" if isinstance(times, int) and times > 1 else "0"
    key_format = block.get("key_format")
    return key_format.replace("{i}", copies) if isinstance(key_format, str) else copies


def new_block(kind: str, ref: str | None = None) -> dict:
    """A new block of ``kind`` with sensible defaults; ``"shared"`` needs the ``ref`` to reuse."""
    if kind == "shared":
        if not ref:
            raise SpecError("a shared block needs the name of the block to reuse")
        return {"type": "shared", "ref": ref}
    if kind not in KINDS:
        raise SpecError(f"unknown block type {kind!r}; use one of {', '.join(KINDS)}, shared")
    return example(kind)


def _block(spec: dict, path: Path) -> dict:
    block = get(spec, path)
    if not isinstance(block, dict):
        raise SpecError("not a block", path_str(path))
    return block


def _children_of(spec: dict, parent_path: Path) -> list:
    parent = _block(spec, parent_path)
    if parent.get("type") in ("repeat", "residual"):
        raise SpecError(
            f"a {parent['type']} holds exactly one block; nest its block in a sequential to "
            "add more",
            path_str(parent_path),
        )
    if parent.get("type") != "sequential" or not isinstance(parent.get("children"), list):
        raise SpecError("only a sequential has children", path_str(parent_path))
    return parent["children"]


def _sibling_slot(spec: dict, path: Path, verb: str) -> tuple[Path, int]:
    """The parent path and index of a sequential's child, or ``SpecError`` for anything else."""
    if not path:
        raise SpecError(f"cannot {verb} the root block")
    if len(path) < 2 or path[-2] != "children" or not isinstance(path[-1], int):
        raise SpecError(
            f"cannot {verb} a repeat's block; {verb} the repeat instead", path_str(path)
        )
    get(spec, path)
    return path[:-2], path[-1]


def _child_step(node: object, steps: Path) -> tuple[dict, Path] | None:
    """The child block the next steps lead to, with those steps; None if they leave the blocks."""
    if not isinstance(node, dict):
        return None
    for step, child, *_ in _child_blocks(node):
        if tuple(steps[: len(step)]) == step:
            return child, step
    return None


def _uses(spec: dict, name: str | None) -> list[Path]:
    """Paths of the blocks that reuse ``name``: ``shared`` refs to it and ties to its parameters."""
    found = []
    for row in outline(spec):
        block = get(spec, row.path)
        tie = block.get("tie")
        targets = [t for t in tie.values() if isinstance(t, str)] if isinstance(tie, dict) else []
        if (block.get("type") == "shared" and block.get("ref") == name) or any(
            t.split(".")[0] == name for t in targets
        ):
            found.append(row.path)
    return found


def _summary(block: dict) -> str:
    kind = block.get("type")
    if not isinstance(kind, str) or kind not in BLOCKS:
        return str(kind)
    bt = BLOCKS[kind]
    try:
        return bt.summary(bt.get(block))
    except (TypeError, ValueError, KeyError, AttributeError):  # a spec not validated yet
        return kind
