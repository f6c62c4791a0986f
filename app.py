"""Parameter Explorer: see inside a PyTorch model's parameters, as in D2L's "Parameter Management".

Run with ``make run`` (or ``streamlit run app.py``).
"""

import streamlit as st

from ui import sidebar
from ui.builder import builder_panel
from ui.inspect import detail_panel
from ui.rules import rules_panel
from ui.state import workspace
from ui.tables import all_parameters_panel, code_panel
from ui.tree_panel import tree_panel

st.set_page_config(
    page_title="Parameter Explorer", page_icon=":material/account_tree:", layout="wide"
)

ws = workspace()
sidebar.render(ws)
sidebar.status_line(ws)

explore, build, init, table, code = st.tabs(
    [
        ":material/account_tree: Explore",
        ":material/construction: Build",
        ":material/casino: Initialize",
        ":material/table_rows: All parameters",
        ":material/code: Code",
    ],
    key="tabs",
)
with explore:
    left, right = st.columns([2, 3], gap="medium")
    with left:
        tree_panel(ws)
    with right:
        detail_panel(ws)
with build:
    builder_panel(ws)
with init:
    rules_panel(ws)
with table:
    all_parameters_panel(ws)
with code:
    code_panel(ws)
