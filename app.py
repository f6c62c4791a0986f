"""Parameter Explorer: see inside a PyTorch model's parameters, as in D2L's "Parameter Management".

Run with ``make run`` (or ``streamlit run app.py``). Every action runs in a widget callback,
before anything below is drawn, so the whole page always shows one state. Only the open
tab is computed; the Explore tab is a fragment, so a click in the tree reruns the tree and
the detail panel only.
"""

from pathlib import Path

import streamlit as st

from ui import chapter_tab, lab_tabs, session_state, sidebar, url
from ui.build_tab import builder_panel
from ui.explore_detail import detail_panel
from ui.explore_tree import tree_panel
from ui.files_tab import files_panel
from ui.init_tab import rules_panel
from ui.table_tabs import all_parameters_panel, code_panel

session_state.freeze_imports()  # once per process: Streamlit's per-run gc.collect() stays cheap
st.set_page_config(
    page_title="Parameter Explorer",
    page_icon=str(Path(__file__).parent / "ui" / "icon.png"),  # served locally: no outside fetch
    layout="wide",
)

session_state.warm_up_once()
linked_step = chapter_tab.start()  # ?step=pytorch-state_dict: that step, set up
ws = session_state.workspace()
url.start(ws)  # why a link did not open; the URL follows the model
session_state.page_drawn()  # callbacks ran already: this whole run draws this version
sidebar.render(ws)
sidebar.status_line(ws)


@st.fragment
def explore() -> None:
    """The tree and the selection's details: a click reruns only this."""
    session_state.follow_page()
    ws = session_state.workspace()
    left, right = st.columns([2, 3], gap="medium")
    with left:
        tree_panel(ws)
    with right:
        detail_panel(ws)


# The tab bar's labels, by the names the chapter's "Look in …" uses. Words only: with icons the
# nine tabs overflow the bar at a 1,024 px window.
TABS = {
    "Start here": "Start here",
    "Explore": "Explore",
    "Build": "Build",
    "Initialize": "Initialize",
    "All parameters": "All parameters",
    "Code": "Code",
    "Files": "Files",
    "Train": "Train",
    "Depth": "Depth",
}
PANELS = {
    TABS["Start here"]: lambda: chapter_tab.chapter_panel(ws, TABS),
    TABS["Explore"]: explore,
    TABS["Build"]: lambda: builder_panel(ws),
    TABS["Initialize"]: lambda: rules_panel(ws),
    TABS["All parameters"]: lambda: all_parameters_panel(ws),
    TABS["Code"]: lambda: code_panel(ws),
    TABS["Files"]: lambda: files_panel(ws),
    TABS["Train"]: lambda: lab_tabs.train_panel(ws),
    TABS["Depth"]: lambda: lab_tabs.depth_panel(ws),
}
# fixed for the session: a tab bar whose default changed would be a new widget, reset to it
opening = st.session_state.setdefault(
    "opening_tab", TABS["Start here"] if linked_step else TABS["Explore"]
)
for tab, panel in zip(
    st.tabs(list(PANELS), key="tabs", on_change="rerun", default=opening),
    PANELS.values(),
    strict=True,
):
    if tab.open:
        with tab:
            panel()
