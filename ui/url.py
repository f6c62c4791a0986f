"""Links in the address bar: a first visit opens the link's model; the URL follows the model.

A session starts from, in order: the link in the URL (``?model=e1.…``), the model that
``python -m explorer serve`` was started with, or the chapter's MLP. Whatever could not be
opened is explained in one line above the page, and the session goes on with the next one.
"""

from __future__ import annotations

import streamlit as st

from explorer.core.errors import ExplorerError
from explorer.core.limits import Limits
from explorer.io import links
from explorer.io.serve import served_experiment
from explorer.session.experiment import Experiment
from explorer.session.workspace import Workspace

__all__ = ["first_workspace", "start", "link_box"]

_NOTES = "start_notes"  # why the link or the served model did not open: (version, lines)


def first_workspace(limits: Limits) -> Workspace:
    """The workspace of a session's first visit: the link's model, the served one, or the MLP."""
    notes: list[str] = []
    tried: list[tuple[str, Experiment]] = []
    token = st.query_params.get(links.QUERY_KEY)
    if token is not None:
        try:
            tried.append(("The link", links.decode(token, limits)))
        except ExplorerError as err:
            notes.append(f"The link could not be opened: {err}")
    try:
        served = served_experiment(limits)
    except ExplorerError as err:
        notes.append(f"The served model could not be opened: {err}")
        served = None
    if served is not None:
        tried.append((f"The model from {served.source}", served))
    ws = None
    for what, exp in tried:
        try:
            ws = Workspace(exp, limits)
            break
        except ExplorerError as err:
            notes.append(f"{what} could not be built: {err}")
    if ws is None:
        ws = Workspace.from_preset("mlp", limits)
        if notes:
            notes.append("Showing the chapter's MLP instead.")
    st.session_state[_NOTES] = (ws.version, tuple(notes))
    return ws


def start(ws: Workspace) -> None:
    """At the top of every run: say why a link did not open, and keep the URL on this model."""
    version, notes = st.session_state.get(_NOTES, (None, ()))
    if notes and version == ws.version:
        from ui.session_state import show_message

        show_message(" ".join(notes))
    token = _token(ws)
    if token is None:
        st.query_params.pop(links.QUERY_KEY, None)
    elif st.query_params.get(links.QUERY_KEY) != token:
        st.query_params[links.QUERY_KEY] = token


def _token(ws: Workspace) -> str | None:
    """This state's link token (encoded once per state version), or None if it has none."""
    from ui.session_state import cached

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
