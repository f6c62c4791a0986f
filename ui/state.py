"""The one place the UI touches ``st.session_state``: the user's workspace, actions and caches."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

import streamlit as st

from explorer.errors import ExplorerError
from explorer.spec import Limits
from explorer.workspace import Workspace

__all__ = ["workspace", "act", "show_messages", "cached", "selection", "select"]

_WS = "workspace"
_ERRORS = "errors"
_CACHE = "figure_cache"
_SELECTED = "selected"
_CACHE_SIZE = 64
_log = logging.getLogger(__name__)

# One browser session's budget on a shared server: 20 M parameters is 80 MB in float32,
# twice that while an action works on a copy.
SESSION_LIMITS = Limits(max_params=20_000_000, max_blocks=2_000)


def workspace() -> Workspace:
    """This session's workspace, created with the chapter's MLP on first visit."""
    if _WS not in st.session_state:
        st.session_state[_WS] = Workspace.from_preset("mlp", limits=SESSION_LIMITS)
    return st.session_state[_WS]


def replace_workspace(ws: Workspace) -> None:
    """Swap in a whole new workspace (a preset), clearing the selection and caches."""
    st.session_state[_WS] = ws
    st.session_state.pop(_CACHE, None)
    st.session_state[_SELECTED] = ""


def act(where: str, action: Callable[[], object]) -> bool:
    """Run an action; on a user error keep the workspace as it was and remember the message.

    ``where`` names the panel that shows the error (``show_messages(where)``).
    """
    errors = st.session_state.setdefault(_ERRORS, {})
    try:
        action()
    except ExplorerError as err:
        errors[where] = err
        return False
    except Exception as err:  # a bug: keep the session alive and say so, without a traceback
        _log.exception("unexpected error in %s", where)
        errors[where] = ExplorerError(
            f"Unexpected error ({type(err).__name__}: {err}). "
            "The previous model is kept; please report this."
        )
        return False
    errors.pop(where, None)
    return True


def error_for(where: str) -> ExplorerError | None:
    """The last error of a panel, if its last action failed."""
    return st.session_state.get(_ERRORS, {}).get(where)


def show_messages(where: str) -> None:
    """Show the panel's last error as ``st.error``, never as a traceback."""
    err = error_for(where)
    if err is not None:
        st.error(str(err), icon=":material/error:")


def clear_error(where: str) -> None:
    st.session_state.get(_ERRORS, {}).pop(where, None)


def cached(kind: str, name: str, make: Callable[[], object]) -> object:
    """A per-session cache of figures and stats, invalidated whenever the values change.

    Keys include the workspace's ``version``, which every action bumps; nothing is
    shared between sessions.
    """
    cache: OrderedDict = st.session_state.setdefault(_CACHE, OrderedDict())
    key = (kind, name, workspace().version)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = make()
    cache[key] = value
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


def selection() -> str:
    """The selected tree id: a block path ("", "0.1") or a parameter ("0.1/bias")."""
    return st.session_state.get(_SELECTED, "")


def select(node_id: str) -> None:
    st.session_state[_SELECTED] = node_id
