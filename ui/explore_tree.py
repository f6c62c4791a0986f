"""The clickable parameter tree, its regex filter, the tied-groups list and the overview treemap."""

from __future__ import annotations

import streamlit as st

from explorer.core.limits import DEFAULT_LIMITS
from explorer.session.workspace import Workspace
from explorer.view.figures import treemap, treemap_id_to_path
from explorer.view.tree import ParamTree
from ui import session_state
from ui.tree_rows import related_ids, tree_rows, treemap_rows
from ui.tree_view import tree_view, view_state

TREE_KEY = "param_tree"


def tree_panel(ws: Workspace) -> None:
    """The tree (filtered by the sidebar's one filter), then the tied groups and the overview.

    It runs inside the Explore tab's fragment: a click, an open block or a page of rows
    reruns the tree and the detail panel only. Clicks are callbacks, so the selection is
    set before anything is drawn and both panels show it in the same run.
    """
    tree = ws.tree()
    _tree(ws)
    _tied_groups(tree)
    _overview(tree, session_state.selection())


def _tree(ws: Workspace) -> None:
    tree = ws.tree()
    pattern = session_state.filter_regex()
    selected = session_state.selection()
    output_shapes = ws.last_run.output_shapes if ws.last_run else None
    rows = tree_rows(
        tree,
        view=view_state(TREE_KEY, tree.structure_key),
        selected=selected,
        pattern=pattern,
        output_shapes=output_shapes,
        limits=DEFAULT_LIMITS,
    )
    if pattern and not rows:
        st.info("No parameter name matches the filter.")
    tree_view(
        rows,
        selected=selected,
        key=TREE_KEY,
        model=tree.structure_key,
        height=min(520, 60 + 28 * len(rows)),
        on_click=_clicked,
    )


def _clicked() -> None:
    clicked = (st.session_state.get(TREE_KEY) or {}).get("clicked")
    if isinstance(clicked, str):
        session_state.select(clicked)


def _tied_groups(tree: ParamTree) -> None:
    """One line per tied group, reused module and partial overlap, as plain text."""
    first = {}
    for name, label in tree.group_labels.items():
        first.setdefault(label, []).append(name)
    lines = [f"{label}  {' = '.join(sorted(names))}" for label, names in first.items()]
    lines += [f"module reused at {' and '.join(sorted(p))}" for p in tree.shared_blocks]
    lines += [f"memory overlaps: {', '.join(sorted(g))}" for g in tree.overlaps]
    if not lines:
        return
    with st.container(border=True, key="tied_groups_box"):
        st.markdown("**:material/link: Tied groups** — one tensor, several names")
        st.text("\n".join(lines))  # names are user text: never markdown


def _overview(tree: ParamTree, selected: str) -> None:
    with st.expander("Overview: where the parameters are", expanded=True):
        highlighted = related_ids(tree, selected) | ({selected} if selected else set())
        rows = session_state.cached(
            "treemap_rows", None, lambda: treemap_rows(tree, DEFAULT_LIMITS)
        )
        fig = session_state.cached(
            "treemap", selected, lambda: treemap(rows, highlighted=highlighted, selected=selected)
        )
        st.plotly_chart(
            fig,
            key="treemap",
            on_select=_treemap_clicked,
            selection_mode="points",
            config={"displayModeBar": False},
        )


def _treemap_clicked() -> None:
    points = ((st.session_state.get("treemap") or {}).get("selection") or {}).get("points") or []
    if points:
        session_state.select(treemap_id_to_path(points[0].get("id", "")))
