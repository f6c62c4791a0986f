"""The Build tab alone, for AppTest and screenshots: ``streamlit run tests/apps/builder_app.py``.

Open it with ``?preset=rgnet`` to start from another preset.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for explorer and ui

import streamlit as st  # noqa: E402

from explorer.session.workspace import Workspace  # noqa: E402
from ui.build_tab import builder_panel  # noqa: E402
from ui.session_state import workspace  # noqa: E402
from ui.sidebar import history_buttons  # noqa: E402

st.set_page_config(page_title="Builder", layout="wide")
if "workspace" not in st.session_state and "preset" in st.query_params:
    st.session_state["workspace"] = Workspace.from_preset(st.query_params["preset"])
history_buttons(workspace())
builder_panel(workspace())
