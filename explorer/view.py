"""What the tree and the overview show: flat rows with ids, badges and highlights.

Ids are block paths (``""`` is the root, ``"0.1"``) and, for parameters,
``"<block path>/<local name>"`` (``"0.1/bias"``, ``"/weight"`` on a root layer).
"""

from __future__ import annotations

import re
import string

from explorer.errors import SpecError
from explorer.tree import ParamTree

__all__ = [
    "param_id",
    "name_of",
    "group_labels",
    "shared_blocks",
    "related_ids",
    "tree_rows",
    "treemap_rows",
    "parameter_rows",
]

AUTO_COLLAPSE = 200  # rows; bigger trees open collapsed below the first level


def param_id(name: str) -> str:
    """The tree id of a parameter name: ``"0.1.bias"`` -> ``"0.1/bias"``."""
    block, _, local = name.rpartition(".")
    return f"{block}/{local}"


def name_of(node_id: str) -> str | None:
    """The parameter name of a tree id, or None for a block id."""
    if "/" not in node_id:
        return None
    block, local = node_id.split("/", 1)
    return f"{block}.{local}" if block else local


def group_labels(tree: ParamTree) -> dict[str, str]:
    """Each tied parameter name -> a group letter ("A", "B", ...) shared by its aliases."""
    letters = string.ascii_uppercase
    return {
        name: letters[i % 26] + ("" if i < 26 else str(i // 26))
        for i, group in enumerate(tree.tied_groups)
        for name in group
    }


def shared_blocks(tree: ParamTree) -> list[set[str]]:
    """Groups of block paths that are the same module object (a block reused by ``shared``)."""
    by_id: dict[int, set[str]] = {}
    for node in tree.root.walk():
        module = tree.module.get_submodule(node.path) if node.path else tree.module
        if module._parameters or any(True for _ in module.parameters()):
            by_id.setdefault(id(module), set()).add(node.path)
    return [paths for paths in by_id.values() if len(paths) > 1]


def related_ids(tree: ParamTree, selected: str) -> set[str]:
    """Ids sharing a tensor or module with the selection (the selection itself excluded)."""
    name = name_of(selected)
    if name is not None:
        if name not in tree.params:
            return set()
        return {param_id(n) for n in tree.group_of(name)} - {selected}
    related: set[str] = set()
    for paths in shared_blocks(tree):
        if selected in paths:
            related |= paths - {selected}
    return related


def _filter(tree: ParamTree, pattern: str | None) -> set[str] | None:
    """Ids kept by a regex over parameter names: matching parameters and their ancestors."""
    if not pattern:
        return None
    keep: set[str] = set()
    for name in tree.select(pattern):
        info = tree.params[name]
        keep.add(param_id(name))
        parts = info.block.split(".") if info.block else []
        keep.update(".".join(parts[:i]) for i in range(len(parts) + 1))
    return keep


def tree_rows(
    tree: ParamTree,
    *,
    selected: str = "",
    pattern: str | None = None,
    output_shapes: dict[str, tuple] | None = None,
) -> list[dict]:
    """Pre-order rows for the tree widget, filtered by a regex over parameter names."""
    keep = _filter(tree, pattern)
    related = related_ids(tree, selected)
    labels = group_labels(tree)
    reused = {p: paths for paths in shared_blocks(tree) for p in paths}
    subtotal = {
        node.path: sum(p.numel for n in node.walk() for p in n.params) for node in tree.root.walk()
    }
    lazy = {
        node.path
        for node in tree.root.walk()
        if any(p.is_lazy for n in node.walk() for p in n.params)
    }
    rows: list[dict] = []
    big = len(tree.params) + len(subtotal) > AUTO_COLLAPSE
    for node in tree.root.walk():
        if keep is not None and node.path not in keep:
            continue
        depth = node.path.count(".") + 1 if node.path else 0
        detail = "? params" if node.path in lazy else f"{subtotal[node.path]:,} params"
        if output_shapes and node.path in output_shapes:
            detail += f" · out {tuple(output_shapes[node.path])}"
        others = sorted(reused.get(node.path, set()) - {node.path})
        rows.append(
            {
                "id": node.path,
                "parent": _parent(node.path),
                "depth": depth,
                "kind": "block",
                "label": f"{node.path or tree.root_name} · {node.type}",
                "detail": detail,
                "badge": f"same as {', '.join(others)}" if others else "",
                "highlight": node.path in related,
                "expanded": not big or depth < 1,
            }
        )
        for info in node.params:
            pid = param_id(info.name)
            if keep is not None and pid not in keep:
                continue
            shape = "?" if info.shape is None else str(tuple(info.shape))
            rows.append(
                {
                    "id": pid,
                    "parent": node.path,
                    "depth": depth + 1,
                    "kind": "param",
                    "label": info.local,
                    "detail": f"{shape} {info.dtype}",
                    "badge": f"tied {labels[info.name]}" if info.name in labels else "",
                    "highlight": pid in related,
                    "expanded": False,
                }
            )
    return rows


def _parent(path: str) -> str | None:
    if not path:
        return None
    return path.rpartition(".")[0]


def treemap_rows(tree: ParamTree) -> list[dict]:
    """Rows for the overview treemap, sized by each parameter's element count."""
    rows = []
    for node in tree.root.walk():
        rows.append(
            {
                "id": node.path,
                "parent": _parent(node.path),
                "kind": "block",
                "label": f"{node.path or tree.root_name} {node.type}",
                "value": 0,
            }
        )
        rows += [
            {
                "id": param_id(p.name),
                "parent": node.path,
                "kind": "param",
                "label": p.name,
                "value": p.numel,
            }
            for p in node.params
        ]
    return rows


def parameter_rows(
    tree: ParamTree,
    provenance: dict[str, int | None] | None = None,
    pattern: str | None = None,
    block: str = "",
) -> list[dict]:
    """One row per parameter name under ``block``, as the chapter's named_parameters() listing."""
    try:
        names = tree.select(pattern) if pattern else list(tree.params)
    except SpecError:
        raise
    prefix = f"{block}." if block else ""
    labels = group_labels(tree)
    rows = []
    for name in names:
        if not name.startswith(prefix):
            continue
        info = tree.params[name]
        rule = (provenance or {}).get(name)
        rows.append(
            {
                "name": name,
                "local key": name.removeprefix(prefix),
                "shape": "?" if info.shape is None else str(tuple(info.shape)),
                "dtype": info.dtype,
                "device": info.device,
                "numel": info.numel,
                "requires_grad": info.requires_grad,
                "tied": f"{labels[name]}: {', '.join(sorted(tree.group_of(name) - {name}))}"
                if name in labels
                else "",
                "rule": _rule_text(rule, info.is_lazy),
                "access": tree.access_path(name),
            }
        )
    return rows


def _rule_text(rule: int | None, lazy: bool) -> str:
    if lazy:
        return "pending: set at the first forward"
    return "PyTorch default" if rule is None else f"rule {rule + 1}"


def compile_filter(pattern: str) -> str | None:
    """The pattern if it is a valid regex; raise ``SpecError`` explaining the problem."""
    try:
        re.compile(pattern)
    except re.error as err:
        raise SpecError(f"not a valid regular expression: {err}", "filter") from None
    return pattern or None
