"""A clickable, collapsible parameter tree: a Streamlit v2 component, sent a screen at a time.

The JavaScript and CSS live in ``tree_view.js`` and ``tree_view.css`` beside this file. The
v2 API resolves asset *paths* only for components installed as packages with a manifest,
so the files are read here once and handed over as text.

Python sends the rows on screen (see ``ui.tree_rows.tree_rows``). The browser keeps, per model,
which blocks the user opened or closed and how far each block is paged, and sends that as
the component state ``view`` whenever it changes; the caller reads it with
``view_state(key, model)`` and builds the next rows from it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.tree_rows import TreeView

__all__ = ["tree_view", "view_state"]

_HERE = Path(__file__).resolve().parent
_component = st.components.v2.component(
    "param_explorer.tree_view",
    css=(_HERE / "tree_view.css").read_text(encoding="utf-8"),
    js=(_HERE / "tree_view.js").read_text(encoding="utf-8"),
)


def _noop() -> None:
    """Callback whose registration declares a state or trigger of the component."""


def _raw_view(key: str, model: str) -> dict | None:
    """The ``view`` state the browser last sent for ``model``, as sent; None for another model."""
    value = (st.session_state.get(key) or {}).get("view")
    if isinstance(value, dict) and value.get("model") == model:
        return value
    return None


def view_state(key: str, model: str) -> TreeView:
    """What the user opened, closed and paged in the tree ``key`` while it showed ``model``."""
    return TreeView.from_json(_raw_view(key, model))


def tree_view(
    rows: list[dict],
    *,
    selected: str | None,
    key: str,
    model: str,
    height: int = 480,
    on_click=None,
) -> str | None:
    """Show ``rows`` as a collapsible tree and return the id of the last row the user clicked.

    ``rows`` are the visible rows in pre-order, as ``ui.tree_rows.tree_rows`` makes them (``id``,
    ``parent``, ``depth``, ``kind``, ``name``, ``type``, ``title``, ``detail``, ``badge``,
    ``highlight``, ``children``, ``open``, and ``next`` on paging rows). ``model`` keys the
    browser's memory of open blocks and windows (pass ``tree.structure_key``), so two models
    never share it. ``on_click`` runs as the click's callback, before the script, with
    ``st.session_state[key]["clicked"]`` set to the clicked id.

    The return value is ``st.session_state[key]["selected"]``: ``None`` before the first
    click, then the last clicked id. When the selection can also change elsewhere, read
    ``st.session_state[key].get("clicked")``: the clicked id on the click's own rerun and
    ``None`` on every other run.

    Example:
        >>> rows = tree_rows(tree, view=view_state("param_tree", tree.structure_key))
        >>> tree_view(rows, selected=sel, key="param_tree", model=tree.structure_key)
    """
    sent = _raw_view(key, model) or {}
    data = {
        "model": model,
        "selected": selected,
        "height": int(height),
        "view": {k: sent.get(k) or {} for k in ("open", "shown", "first")},
        "rows": rows,
    }
    result = _component(
        key=key,
        data=data,
        height="content",
        on_selected_change=_noop,
        on_clicked_change=on_click or _noop,
        on_view_change=_noop,
    )
    value = result.get("selected")
    return value if isinstance(value, str) else None
