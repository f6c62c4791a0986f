"""A ParamTree in a notebook: collapsible self-contained HTML, and a pandas table.

``ParamTree._repr_html_`` and ``ParamTree.to_frame`` call these, so in Jupyter
``explorer.inspect(model)`` draws itself. The HTML fetches nothing (its style is inline),
escapes every name, and shows at most ``limits.tree_page_rows`` children per block.

Example::

    tree = explorer.inspect(model)
    tree                       # in Jupyter: the collapsible tree
    tree.to_frame(stats=True)  # one row per parameter name, with mean, std, ...
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import pandas as pd

from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.view.reduce import STAT_NAMES

if TYPE_CHECKING:  # the tree renders itself with these functions (ParamTree._repr_html_)
    from explorer.view.tree import BlockNode, ParamInfo, ParamTree

__all__ = ["tree_html", "tree_frame"]

_STYLE = """
.pe-tree{font:13px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937}
.pe-tree details{margin-left:1.1em}
.pe-tree>details{margin-left:0}
.pe-tree summary{cursor:pointer}
.pe-tree .pe-p{margin-left:2.2em}
.pe-tree .pe-dim{color:#6b7280}
.pe-tree .pe-badge{display:inline-block;padding:0 6px;border-radius:9px;font-size:11px;
  background:#fde68a;color:#78350f;border:1px solid #fbbf24}
.pe-tree code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#334155}
.pe-tree ul{margin:2px 0 6px;padding-left:1.4em}
"""


def tree_html(tree: ParamTree, limits: Limits = DEFAULT_LIMITS) -> str:
    """The tree as one ``<div>`` of nested ``<details>``: counts, shapes, ties, access paths."""
    small = len(tree.params) + len(tree.blocks) <= limits.tree_open_rows
    parts = [f'<div class="pe-tree"><style>{_STYLE}</style>', _summary(tree)]
    _block(tree, tree.root, 0, small, limits, parts)
    parts.append("</div>")
    return "".join(parts)


def _summary(tree: ParamTree) -> str:
    counts = tree.counts()
    head = (
        f"<b>{counts.unique_elements:,}</b> parameters in {counts.unique_tensors:,} tensors "
        f"(<code>parameters()</code>); {counts.state_dict_entries:,} names and "
        f"{counts.state_dict_elements:,} elements in <code>state_dict()</code>"
    )
    first: dict[str, list[str]] = {}
    for name, label in tree.group_labels.items():
        first.setdefault(label, []).append(name)
    items = [
        f'<li><span class="pe-badge">tied {escape(label)}</span> '
        + " = ".join(f"<code>{escape(n)}</code>" for n in sorted(names))
        + "</li>"
        for label, names in first.items()
    ]
    items += [
        "<li>memory overlaps: "
        + ", ".join(f"<code>{escape(n)}</code>" for n in sorted(g))
        + "</li>"
        for g in tree.overlaps
    ]
    return f"<div>{head}{'<ul>' + ''.join(items) + '</ul>' if items else ''}</div>"


def _block(tree, node: BlockNode, depth: int, small: bool, limits: Limits, parts: list) -> None:
    count = tree.block_count(node.path)
    if count.lazy:
        size = "? params"
    else:
        size = f"{count.elements:,} params"
        if count.alias_elements:
            size += f" (+{count.alias_elements:,} via aliases)"
    name = node.name if node.path else tree.root_name
    where = escape(tree.access_path(node.path)) if node.path else escape(tree.root_name)
    opened = " open" if small or depth == 0 else ""
    parts.append(
        f"<details{opened}><summary><b>{escape(name)}</b> "
        f'<span class="pe-dim">{escape(node.type)} · {size}</span> '
        f'<code title="{where}">{where}</code></summary>'
    )
    items = [*node.params, *node.children]  # parameters first, then the blocks
    for i, item in enumerate(items[: limits.tree_page_rows]):
        if i < len(node.params):
            parts.append(_param(tree, item))
        else:
            _block(tree, item, depth + 1, small, limits, parts)
    hidden = len(items) - limits.tree_page_rows
    if hidden > 0:
        parts.append(
            f'<div class="pe-p pe-dim">… {hidden:,} more here: <code>tree.to_frame()</code> '
            "lists every name</div>"
        )
    parts.append("</details>")


def _param(tree: ParamTree, info: ParamInfo) -> str:
    shape = "?" if info.shape is None else str(tuple(info.shape))
    label = tree.group_labels.get(info.name)
    badge = f' <span class="pe-badge">tied {escape(label)}</span>' if label else ""
    if any(info.name in g for g in tree.overlaps):
        badge += ' <span class="pe-badge">overlaps</span>'
    return (
        f'<div class="pe-p">{escape(info.local)} <span class="pe-dim">{escape(shape)} '
        f"{escape(info.dtype)}</span>{badge} <code>{escape(tree.access_path(info.name))}</code>"
        "</div>"
    )


def tree_frame(
    tree: ParamTree, *, stats: bool = False, provenance: dict[str, int | None] | None = None
) -> pd.DataFrame:
    """One row per parameter name, aliases included: path, shape, dtype, device, numel, tie.

    ``alias_of`` marks a name that ``named_parameters()`` skips (the same Parameter under an
    earlier name). ``rule`` (the index of the rule that set it) appears when ``provenance``
    is given; ``stats=True`` adds mean, std, min, max, norm and zero_fraction of the values.
    """
    rows = []
    for name, info in tree.params.items():
        row = {
            "path": name,
            "shape": info.shape,
            "dtype": info.dtype,
            "device": info.device,
            "numel": None if info.is_lazy else info.numel,
            "tied": tree.group_labels.get(name, ""),
            "alias_of": info.alias_of or "",
            "access": tree.access_path(name),
        }
        if provenance is not None:
            row["rule"] = provenance.get(name)
        if stats:
            row.update(tree.stats(name) if not info.is_lazy else dict.fromkeys(STAT_NAMES))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=_columns(stats, provenance is not None))
    frame["numel"] = frame["numel"].astype("Int64")
    if provenance is not None:
        frame["rule"] = frame["rule"].astype("Int64")
    return frame


def _columns(stats: bool, rules: bool) -> list[str]:
    columns = ["path", "shape", "dtype", "device", "numel", "tied", "alias_of", "access"]
    return columns + (["rule"] if rules else []) + (list(STAT_NAMES) if stats else [])
