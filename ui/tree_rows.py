"""How the tree's facts look: rows with ids, names, badges and highlights, visible rows only.

The core (``explorer.view.tree``) says what the model is; this module decides what the screen
shows: which blocks are open, what is badged and highlighted, and how counts are written.
No streamlit here, so every rule is a plain function a test can call.

Ids are block paths (``""`` is the root, ``"0.1"``) and, for parameters,
``"<block path>/<local name>"`` (``"0.1/bias"``, ``"/weight"`` on a root layer). The paging
rows under block ``b`` have the ids ``".earlier:b"`` and ``".more:b"``: a module's key is
never empty and never holds a ".", so no block path or parameter id starts with ".".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.core.patterns import MatchMode, compile_pattern
from explorer.view.tree import BlockNode, ParamTree

__all__ = [
    "TreeView",
    "param_id",
    "name_of",
    "group_labels",
    "related_ids",
    "count_text",
    "tree_rows",
    "treemap_rows",
    "parameter_rows",
    "compile_filter",
]


@dataclass(frozen=True)
class TreeView:
    """What the user opened, closed and paged in one model's tree (kept by the browser)."""

    open: dict[str, bool] = field(default_factory=dict)  # id -> open, where the user chose
    shown: dict[str, int] = field(default_factory=dict)  # id -> children shown, when paged
    first: dict[str, str] = field(default_factory=dict)  # id -> id of the first child shown

    @classmethod
    def from_json(cls, value: object) -> TreeView:
        """A view from the component's state, ignoring anything malformed."""
        if not isinstance(value, dict):
            return cls()

        def table(key: str) -> dict:
            part = value.get(key)
            return part if isinstance(part, dict) else {}

        def counts(key: str) -> dict[str, int]:
            return {
                str(k): v
                for k, v in table(key).items()
                if isinstance(v, int) and not isinstance(v, bool) and v > 0
            }

        return cls(
            {str(k): bool(v) for k, v in table("open").items()},
            counts("shown"),
            {str(k): v for k, v in table("first").items() if isinstance(v, str)},
        )


def param_id(name: str) -> str:
    """The tree id of a parameter name: ``"0.1.bias"`` -> ``"0.1/bias"``."""
    block, _, local = name.rpartition(".")
    return f"{block}/{local}"


def name_of(node_id: str) -> str | None:
    """The parameter name of a tree id, or None for a block id."""
    if "/" not in node_id:
        return None
    block, _, local = node_id.rpartition("/")  # a block's key may itself hold a "/"
    return f"{block}.{local}" if block else local


def group_labels(tree: ParamTree) -> dict[str, str]:
    """Each tied parameter name -> its group's letters ("A", …, "Z", "AA"), named by the core."""
    return tree.group_labels


def related_ids(tree: ParamTree, selected: str) -> set[str]:
    """Ids sharing a tensor or module with the selection (the selection itself excluded)."""
    name = name_of(selected)
    if name is not None:
        if name not in tree.params:
            return set()
        return {param_id(n) for n in tree.group_of(name)} - {selected}
    related: set[str] = set()
    for paths in tree.shared_blocks:
        if selected in paths:
            related |= paths - {selected}
    return related


def count_text(tree: ParamTree, path: str = "") -> str:
    """A block's count as ``parameters()`` gives it: "121 params (+72 via aliases)", "? params"."""
    count = tree.block_count(path)
    if count.lazy:
        return "? params"
    text = f"{count.elements:,} params"
    return f"{text} (+{count.alias_elements:,} via aliases)" if count.alias_elements else text


def _filter(tree: ParamTree, pattern: str | None) -> set[str] | None:
    """Ids kept by a pattern over parameter names: matching parameters and their ancestors."""
    if not pattern:
        return None
    keep: set[str] = set()
    for name in tree.select(pattern):
        block = tree.params[name].block
        keep.add(param_id(name))
        parts = block.split(".") if block else []
        keep.update(".".join(parts[:i]) for i in range(len(parts) + 1))
    return keep


def _id(item) -> str:
    """The tree id of a block node or a parameter."""
    return item.path if isinstance(item, BlockNode) else param_id(item.name)


def _ancestors(node_id: str) -> set[str]:
    """Block paths above an id (the root included), opened to show a selection."""
    if node_id == "":
        return set()
    block = node_id.rpartition("/")[0] if "/" in node_id else node_id.rpartition(".")[0]
    parts = block.split(".") if block else []
    return {".".join(parts[:i]) for i in range(len(parts) + 1)}


def tree_rows(
    tree: ParamTree,
    *,
    view: TreeView | None = None,
    selected: str = "",
    pattern: str | None = None,
    output_shapes: dict[str, tuple] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[dict]:
    """The rows on screen, in pre-order: open blocks' children, paged, and nothing below.

    A tree of at most ``limits.tree_open_rows`` rows opens fully, a larger one with only
    the root open; a filter that keeps at most that many rows opens them all; the
    selection's ancestors open. The user's choices in ``view`` override these defaults.
    Each open block shows a window of its children: ``limits.tree_page_rows`` of them from
    the first (or the window ``view.first`` and ``view.shown`` ask for: the id of its first
    child and how many), or, when the selection lies outside that window, the page of
    ``tree_page_rows`` children that holds it. Rows "show earlier" and "show more" stand for
    the children above and below the window; each carries the ``next`` window (``first``,
    ``shown``) that clicking it asks for.
    """
    view = view or TreeView()
    keep = _filter(tree, pattern)
    shown = len(tree.params) + len(tree.blocks) if keep is None else len(keep)
    small = shown <= limits.tree_open_rows
    forced = _ancestors(selected) if selected else set()
    related = related_ids(tree, selected) if selected else set()
    rows: list[dict] = []

    def is_open(node: BlockNode, depth: int) -> bool:
        default = small or depth < 1 or node.path in forced
        return view.open.get(node.path, default)  # the user's choice wins

    def children(node: BlockNode) -> list:
        items = [*node.params, *node.children]
        if keep is None:
            return items
        return [item for item in items if _id(item) in keep]

    def visit(node: BlockNode, parent: str | None, depth: int) -> None:
        items = children(node)
        opened = bool(items) and is_open(node, depth)
        rows.append(_block_row(tree, node, parent, depth, items, opened, related, output_shapes))
        if not opened:
            return
        start, limit = _window(node.path, items, view, forced, selected, limits.tree_page_rows)
        if start:
            rows.append(_earlier_row(node.path, depth + 1, items, start, limit, limits))
        for item in items[start : start + limit]:
            if isinstance(item, BlockNode):
                visit(item, node.path, depth + 1)
            else:
                rows.append(_param_row(tree, item, depth + 1, related))
        hidden = len(items) - start - limit
        if hidden > 0:
            rows.append(_more_row(node.path, depth + 1, items, start, limit, limits))

    if keep is None or "" in keep:
        visit(tree.root, None, 0)
    return rows


def _window(
    path: str, items: list, view: TreeView, forced: set[str], selected: str, page: int
) -> tuple[int, int]:
    """The children of block ``path`` on screen, as (index of the first, how many).

    A window the browser asked for starts at a child's id, so it survives a filter that
    drops children (a start the filter dropped is the top). A selection outside it brings
    the whole page of ``page`` children holding it, so a click within that page moves
    nothing.
    """
    ids = [_id(item) for item in items]
    first = view.first.get(path)
    start = ids.index(first) if first in ids else 0
    limit = max(view.shown.get(path, page), page)
    if path in forced:
        at = next((i for i, x in enumerate(ids) if x == selected or x in forced), -1)
        if at >= 0 and not start <= at < start + limit:
            start, limit = at // page * page, page
    return start, limit


def _block_row(tree, node, parent, depth, items, opened, related, output_shapes) -> dict:
    detail = count_text(tree, node.path)
    if output_shapes and node.path in output_shapes:
        detail += f" · out {tuple(output_shapes[node.path])}"
    others = sorted(next((p for p in tree.shared_blocks if node.path in p), set()) - {node.path})
    name = node.name if node.path else tree.root_name
    return {
        "id": node.path,
        "parent": parent,
        "depth": depth,
        "kind": "block",
        "name": name,
        "type": node.type,
        "title": f"{node.path} · {node.type}" if node.path else f"{name} · {node.type}",
        "detail": detail,
        "badge": f"same as {', '.join(others)}" if others else "",
        "highlight": node.path in related,
        "children": len(items),
        "open": opened,
    }


def _param_row(tree: ParamTree, info, depth: int, related: set[str]) -> dict:
    pid = param_id(info.name)
    label = tree.group_labels.get(info.name)
    overlap = next((g for g in tree.overlaps if info.name in g), None)
    badge = f"tied {label}" if label else ("overlaps" if overlap else "")
    title = info.name
    if overlap:
        title += " · shares memory with " + ", ".join(sorted(overlap - {info.name}))
    shape = "?" if info.shape is None else str(tuple(info.shape))
    return {
        "id": pid,
        "parent": info.block,
        "depth": depth,
        "kind": "param",
        "name": info.local,
        "type": "",
        "title": title,
        "detail": f"{shape} {info.dtype}",
        "badge": badge,
        "highlight": pid in related,
        "children": 0,
        "open": False,
    }


def _more_row(parent: str, depth: int, items: list, start: int, limit: int, limits) -> dict:
    hidden = len(items) - start - limit
    step = min(hidden, limits.tree_page_rows)
    window = {"first": _id(items[start]), "shown": limit + step}
    row = _paging_row(parent, "more", depth, hidden, window)
    return row | {"name": f"show {step:,} more", "title": f"{hidden:,} more rows in this block"}


def _earlier_row(parent: str, depth: int, items: list, start: int, limit: int, limits) -> dict:
    step = min(start, limits.tree_page_rows)
    window = {"first": _id(items[start - step]), "shown": limit + step}
    row = _paging_row(parent, "earlier", depth, start, window)
    return row | {"name": f"show {step:,} earlier", "title": f"{start:,} rows above in this block"}


def _paging_row(parent: str, where: str, depth: int, hidden: int, next_view: dict) -> dict:
    """A row standing for ``hidden`` children; clicking it asks for the window ``next_view``."""
    return {
        "id": f".{where}:{parent}",
        "parent": parent,
        "depth": depth,
        "kind": "more",
        "name": "",
        "type": "",
        "title": "",
        "detail": f"{hidden:,} hidden",
        "badge": "",
        "highlight": False,
        "children": 0,
        "open": False,
        "next": next_view,
    }


def _parent(path: str) -> str | None:
    return None if not path else path.rpartition(".")[0]


def treemap_rows(tree: ParamTree, limits: Limits = DEFAULT_LIMITS) -> list[dict]:
    """Rows for the overview treemap, sized by each parameter name's element count.

    Blocks are opened breadth-first while the rows stay within ``limits.treemap_nodes``; a
    block left closed is one box holding its whole subtree's count.
    """
    rows = [_treemap_block(tree, tree.root, leaf=False)]
    where = {"": 0}  # block path -> its row
    level = [tree.root]
    while level:
        below = []
        for node in level:
            extra = len(node.params) + len(node.children)
            if extra and len(rows) + extra > limits.treemap_nodes:
                rows[where[node.path]] = _treemap_block(tree, node, leaf=True)
                continue
            rows += [_treemap_param(p) for p in node.params]
            for child in node.children:
                where[child.path] = len(rows)
                rows.append(_treemap_block(tree, child, leaf=False))
            below += node.children
        level = below
    return rows


def _treemap_block(tree: ParamTree, node: BlockNode, *, leaf: bool) -> dict:
    count = tree.block_count(node.path)
    return {
        "id": node.path,
        "parent": _parent(node.path),
        "kind": "block",
        "label": f"{node.path or tree.root_name} {node.type}",
        "value": count.elements + count.alias_elements if leaf else 0,
    }


def _treemap_param(info) -> dict:
    return {
        "id": param_id(info.name),
        "parent": info.block,
        "kind": "param",
        "label": info.name,
        "value": info.numel,
    }


def parameter_rows(
    tree: ParamTree,
    provenance: dict[str, int | None] | None = None,
    pattern: str | None = None,
    block: str = "",
) -> list[dict]:
    """One row per parameter name under ``block``, as the chapter's named_parameters() listing."""
    names = tree.select(pattern) if pattern else list(tree.params)
    prefix = f"{block}." if block else ""
    rows = []
    for name in names:
        if not name.startswith(prefix):
            continue
        info = tree.params[name]
        label = tree.group_labels.get(name)
        others = ", ".join(sorted(tree.group_of(name) - {name}))
        rows.append(
            {
                "name": name,
                "local key": name.removeprefix(prefix),
                "shape": "?" if info.shape is None else str(tuple(info.shape)),
                "dtype": info.dtype,
                "device": info.device,
                "numel": info.numel,
                "requires_grad": info.requires_grad,
                "tied": f"{label}: {others}" if label else "",
                "rule": _rule_text((provenance or {}).get(name), info.is_lazy),
                "access": tree.access_path(name),
            }
        )
    return rows


def _rule_text(rule: int | None, lazy: bool) -> str:
    if lazy:
        return "pending: set at the first forward"
    return "PyTorch default" if rule is None else f"rule {rule + 1}"


def compile_filter(pattern: str) -> str | None:
    """The pattern if RE2 can match it in linear time; raise ``SpecError`` saying why not."""
    if pattern:
        compile_pattern(pattern, MatchMode.FULL, path="filter")
    return pattern or None
