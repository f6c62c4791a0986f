"""The clickable parameter tree, its regex filter, the tied-groups list and the overview treemap."""

from __future__ import annotations

import streamlit as st

from explorer.figures import treemap, treemap_id_to_path
from explorer.limits import DEFAULT_LIMITS
from explorer.tree import ParamTree
from explorer.workspace import Workspace
from ui import state
from ui.tables import regex_filter
from ui.tree_view import tree_view, view_state
from ui.view import related_ids, tree_rows, treemap_rows

TREE_KEY = "param_tree"


def tree_panel(ws: Workspace) -> None:
    """The tree with its filter, then the tied groups and the overview."""
    tree = ws.tree()
    _tree(ws)
    _tied_groups(tree)
    _overview(tree, state.selection())


@st.fragment
def _tree(ws: Workspace) -> None:
    """A fragment: typing a filter, opening a block or paging reruns only the tree.

    A click on a row reruns the whole app, so the detail panel follows the selection.
    """
    tree = ws.tree()
    pattern = regex_filter("Filter parameters (regex, full match)", key="tree_filter")
    selected = state.selection()
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
        page=DEFAULT_LIMITS.tree_page_rows,
        height=min(520, 60 + 28 * len(rows)),
    )
    clicked = st.session_state.get(TREE_KEY, {}).get("clicked")
    if clicked is not None and clicked != selected:
        state.select(clicked)
        st.rerun(scope="app")


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
        fig = treemap(
            treemap_rows(tree, DEFAULT_LIMITS), highlighted=highlighted, selected=selected
        )
        event = st.plotly_chart(
            fig,
            key="treemap",
            on_select="rerun",
            selection_mode="points",
            config={"displayModeBar": False},
        )
        points = (event or {}).get("selection", {}).get("points", []) if event else []
        if points:
            clicked = treemap_id_to_path(points[0].get("id", ""))
            if clicked != selected and clicked != st.session_state.get("treemap_last_click"):
                st.session_state["treemap_last_click"] = clicked
                state.select(clicked)
                st.rerun(scope="app")
