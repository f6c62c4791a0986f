"""The Build tab for a model written as code: where it came from, and its spec where one exists."""

from __future__ import annotations

import streamlit as st

from explorer.session.workspace import Workspace
from explorer.spec.derive import spec_of
from explorer.spec.validate import to_json
from ui import session_state

__all__ = ["code_model_panel"]

_WHERE = "code_model"


def code_model_panel(ws: Workspace) -> None:
    """Say that the model came from code; offer the spec view where one can be derived."""
    st.info(
        "This model came from code: its factory built it, so there is no outline of blocks "
        "to edit here. Every other tab works on it.",
        icon=":material/code:",
    )
    st.code(ws.experiment.source, language=None)
    spec = session_state.cached("derived_spec", None, lambda: spec_of(ws.module))
    if spec is None:
        st.caption(
            "No spec can describe this model exactly (custom forward code, or layers and "
            "ties the spec format does not have), so it stays as code."
        )
        return
    st.markdown("**The same structure as a spec** (`explorer.build(spec)` rebuilds it)")
    st.code(to_json(spec), language="json")
    st.button(
        "Edit as blocks",
        key="code_model_to_spec",
        icon=":material/construction:",
        help="Rebuild the model from this spec, with values drawn afresh by the rules; "
        "undo returns to the model from code.",
        on_click=session_state.act,
        args=(_WHERE, lambda: session_state.workspace().change(spec=spec)),
    )
    session_state.show_error(_WHERE)
