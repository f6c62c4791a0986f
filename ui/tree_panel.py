"""The clickable parameter tree, its regex filter, the tied-groups list and the overview treemap."""

from __future__ import annotations

import streamlit as st

from explorer.figures import treemap, treemap_id_to_path
from explorer.view import related_ids, shared_blocks, tree_rows, treemap_rows
from explorer.workspace import Workspace
from ui import state
from ui.tables import regex_filter
from ui.tree_view import tree_view


@st.fragment
def tree_panel(ws: Workspace) -> None:
    """The tree with its filter, then tied groups and the overview.

    A fragment: typing a filter reruns only this panel; a click reruns the whole app so
    the detail panel follows the selection.
    """
    tree = ws.tree()
    pattern = regex_filter("Filter parameters (regex, full match)", key="tree_filter")
    selected = state.selection()
    output_shapes = ws.last_run.output_shapes if ws.last_run else None
    rows = tree_rows(tree, selected=selected, pattern=pattern, output_shapes=output_shapes)
    if pattern and len(rows) <= 1:
        st.info(f"No parameter name matches `{pattern}`.")
    tree_view(rows, selected=selected, key="param_tree", height=min(520, 60 + 28 * len(rows)))
    clicked = st.session_state.get("param_tree", {}).get("clicked")
    if clicked is not None and clicked != selected:
        state.select(clicked)
        st.rerun(scope="app")
    _tied_groups(tree)
    _overview(tree, selected)


def _tied_groups(tree) -> None:
    groups, blocks = tree.tied_groups, shared_blocks(tree)
    if not groups:
        return
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    lines = [
        f"- **{letters[i % 26]}** · {' = '.join(f'`{n}`' for n in sorted(g))}"
        for i, g in enumerate(groups)
    ]
    lines += [f"- module reused at {' and '.join(f'`{p}`' for p in sorted(b))}" for b in blocks]
    with st.container(border=True, key="tied_groups_box"):
        st.markdown(
            "**:material/link: Tied groups** — one tensor, several names\n" + "\n".join(lines)
        )


def _overview(tree, selected: str) -> None:
    with st.expander("Overview: where the parameters are", expanded=True):
        highlighted = related_ids(tree, selected) | ({selected} if selected else set())
        fig = treemap(treemap_rows(tree), highlighted=highlighted, selected=selected)
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
