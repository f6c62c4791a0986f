"""Links in the address bar: the URL follows the model, and says why a link did not open.

A session's first workspace comes from the link in the URL (``ui.session_state``); this
module keeps the URL on the current model and shows the link to share.
"""

from __future__ import annotations

import streamlit as st

from explorer.core.errors import ExplorerError
from explorer.io import links
from explorer.session.workspace import Workspace
from ui.session_state import cached, show_message, start_notes

__all__ = ["start", "link_box"]


def start(ws: Workspace) -> None:
    """At the top of every run: say why a link did not open, and keep the URL on this model."""
    version, notes = start_notes()
    if notes and version == ws.version:
        show_message(" ".join(notes))
    token = _token(ws)
    if token is None:
        st.query_params.pop(links.QUERY_KEY, None)
    elif st.query_params.get(links.QUERY_KEY) != token:
        st.query_params[links.QUERY_KEY] = token


def _token(ws: Workspace) -> str | None:
    """This state's link token (encoded once per state version), or None if it has none."""

    def make() -> str | None:
        if links.linkable(ws.experiment) is not None:
            return None
        try:
            return links.encode(ws.experiment, ws.limits)
        except ExplorerError:
            return None

    return cached("link_token", None, make)


def link_box(ws: Workspace) -> None:
    """The link to this model, with a copy button; or why there is none."""
    st.markdown("**Link to this model**")
    try:
        token = links.encode(ws.experiment, ws.limits)
    except ExplorerError as err:
        st.text(str(err))
        return
    st.caption(
        "Anyone who opens it gets this model with the same values, rebuilt on the CPU: "
        "edits and runs are replayed. The copy button is at the right of the box."
    )
    st.code(links.url(st.context.url or "", token), language=None, wrap_lines=True)
