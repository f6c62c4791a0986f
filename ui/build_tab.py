"""The Build tab: assemble nested blocks without code; every change rebuilds the model.

Each row of the outline is one block with small buttons; one row at a time opens for
editing. Every change is a new spec handed to ``ws.change`` inside ``session_state.act``,
in a widget callback, so the whole page then draws the new model. Widget keys carry
``ws.version``: after any change they are new widgets, and old widget state cannot leak
into a moved block.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from explorer.core.errors import SpecError
from explorer.session.workspace import Workspace
from explorer.spec import edit as se
from explorer.spec.blocks import BLOCKS
from explorer.spec.fields import Field, Kind
from explorer.spec.validate import from_json, to_json
from ui import session_state
from ui.code_model import code_model_panel
from ui.table_tabs import literal

__all__ = ["builder_panel", "widget_key", "row_key"]

HINT = "Every change rebuilds the model. Reuse a named block to tie its parameters."
_OPEN = "builder_open"  # path of the row open for editing, or None
_ATTEMPT = "builder_attempt"  # what the last failed change tried: version, acted path, spec
_WHERE, _WHERE_JSON = "builder", "builder_json"

# Material icons ship with Streamlit, so they render where emoji fonts are missing.
ICONS = {name: bt.icon for name, bt in BLOCKS.items()}
_WEIGHTED = {name for name, bt in BLOCKS.items() if bt.field("tie") is not None}  # tie targets
_NAME = Field("name", Kind.REF, "A named block can be reused elsewhere (its parameters are tied).")
_KEY = Field("key", Kind.REF, "Its attribute name in the parent, e.g. block 0 (default: index).")
_ADD_TO, _ADD_KIND, _ADD = "builder_add_to", "builder_add_kind", "builder_add"
_NO_TIE = "(none)"
_INDENT = "&emsp;"  # markdown strips leading spaces but keeps an entity, so rows indent


def builder_panel(ws: Workspace) -> None:
    """Draw the Build tab: undo/redo, the block outline with per-row edits, and the JSON view."""
    if ws.experiment.source is not None:  # a model written as code has no outline to edit
        return code_model_panel(ws)
    st.caption(HINT)
    rows = se.outline(ws.setup.spec)
    error_at, error_text = _error_place(ws)
    _add_bar(ws, rows)
    with st.container(border=True, key="builder_outline", gap="xxsmall"):
        for row in rows:
            with st.container(key=row_key(row.path), gap="xsmall"):
                _row(ws, row)
                is_open = st.session_state.get(_OPEN) == row.path
                if is_open or row.path == error_at:
                    _, box = st.columns([0.3 + 0.4 * row.depth, 20])  # indented under the row
                    if is_open:
                        _editor(ws, row, box)
                    if row.path == error_at:
                        with box:
                            session_state.show_message(error_text)
    _json_view(ws)


def widget_key(ws: Workspace, path: se.Path, what: str) -> str:
    """The key of a row's widget; it changes with every action so no stale state survives."""
    return f"builder_{ws.version}_{se.path_str(path) or 'root'}_{what}"


def row_key(path: se.Path) -> str:
    """The key of a row's container, e.g. ``builder_row_children_2``."""
    return "builder_row_" + "_".join(map(str, path)) if path else "builder_row_root"


# --- the outline ---


def _add_bar(ws: Workspace, rows: list[se.Row]) -> None:
    """One "add" control for the whole outline: which sequential, which block, and a button.

    One set of widgets however many blocks there are (a menu per row made every rerun cost
    grow with the square of the blocks).
    """
    targets = {se.path_str(r.path): r for r in rows if r.type == "sequential"}
    if not targets:
        return
    kinds = [*se.KINDS, *(f"shared:{r.name}" for r in rows if r.name is not None)]
    if st.session_state.get(_ADD_TO) not in targets:
        st.session_state[_ADD_TO] = next(iter(targets))
    if st.session_state.get(_ADD_KIND) not in kinds:
        st.session_state[_ADD_KIND] = kinds[0]
    with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
        st.selectbox(
            "Add to",
            list(targets),
            key=_ADD_TO,
            format_func=lambda p: _target_label(targets[p]),
            help="The sequential block that gets the new block at its end",
        )
        st.selectbox("Block", kinds, key=_ADD_KIND, format_func=_kind_label)
        st.button("Add", key=_ADD, icon=":material/add:", type="primary", on_click=_add, args=(ws,))


def _target_label(row: se.Row) -> str:
    return f"{'· ' * row.depth}{row.label or 'net'}: {row.summary}"


@dataclass(frozen=True)
class _Tool:
    """A small button on a block's row: when it shows, when it is greyed, and what it does."""

    what: str  # the widget key's last part
    label: str
    icon: str  # a Material icon name
    help: str
    shown: Callable[[se.Row, dict, tuple | None], bool]  # row, block, (index, siblings)
    click: Callable[[Workspace, se.Path], tuple[Callable, tuple]]  # the callback and its args
    disabled: Callable[[tuple | None], bool] = lambda slot: False


def _spec_edit(change: Callable[[dict, se.Path], dict], reopen: bool = False):
    """A tool that applies one pure spec edit to its row (and keeps it open when asked)."""
    return lambda ws, path: (
        _apply,
        (ws, path, lambda s: change(s, path), path if reopen else None),
    )


def _in_sequential(row, block, slot) -> bool:
    return slot is not None


def _holds_one(row, block, slot) -> bool:
    return row.type == "repeat" or (row.type == "sequential" and len(block["children"]) == 1)


def _always(row, block, slot) -> bool:
    return True


# The row's tools, left to right, after the row's text; the edit toggle comes last.
_TOOLS = (
    _Tool(
        "up",
        "",
        "arrow_upward",
        "Move up",
        _in_sequential,
        lambda ws, path: (_move, (ws, path, -1)),
        lambda slot: slot[0] == 0,
    ),
    _Tool(
        "down",
        "",
        "arrow_downward",
        "Move down",
        _in_sequential,
        lambda ws, path: (_move, (ws, path, 1)),
        lambda slot: slot[0] == slot[1] - 1,
    ),
    _Tool("remove", "", "close", "Remove this block", _in_sequential, _spec_edit(se.remove)),
    _Tool(
        "nest",
        "nest",
        "subdirectory_arrow_right",
        "Nest this block in a new sequential",
        _always,
        _spec_edit(lambda s, path: se.wrap(s, path, "sequential")),
    ),
    _Tool(
        "repeat",
        "× N",
        "repeat",
        "Repeat this block (2 copies, each with its own parameters)",
        _always,
        _spec_edit(lambda s, path: se.wrap(s, path, "repeat"), reopen=True),
    ),
    _Tool(
        "unwrap",
        "unwrap",
        "unfold_less",
        "Replace this block by the one block inside it",
        _holds_one,
        _spec_edit(se.unwrap),
    ),
)
_WIDTHS = [4, 0.4, 0.4, 0.4, 0.8, 0.8, 1.0, 0.9]  # the text, each tool, the edit toggle


def _row(ws: Workspace, row: se.Row) -> None:
    """One block's row: its text, the tools that apply to it, and the edit toggle."""
    spec, path = ws.setup.spec, row.path
    block, slot = se.get(spec, path), _sibling_slot(spec, path)
    text, *cols, edit = st.columns(_WIDTHS, gap="xxsmall", vertical_alignment="center")
    text.markdown(_row_text(row), help=_row_help(row))
    for col, tool in zip(cols, _TOOLS, strict=True):
        if tool.shown(row, block, slot):
            on_click, args = tool.click(ws, path)
            col.button(
                tool.label,
                icon=f":material/{tool.icon}:",
                key=widget_key(ws, path, tool.what),
                type="tertiary",
                help=tool.help,
                disabled=tool.disabled(slot),
                on_click=on_click,
                args=args,
            )
    is_open = st.session_state.get(_OPEN) == path
    edit.button(
        "done" if is_open else "edit",
        key=widget_key(ws, path, "edit"),
        icon=":material/check:" if is_open else ":material/edit:",
        type="tertiary",
        help="Close the editor" if is_open else "Edit this block's fields",
        on_click=_set_open,
        args=(None if is_open else path,),
    )


def _row_text(row: se.Row) -> str:
    kind, rest = re.match(r"(\w*)(.*)", row.summary).groups()
    label = literal(row.label or "net")  # a key is user text: a code span it cannot leave
    name = f" :blue-badge[{row.name}]" if row.name else ""
    icon = ICONS.get(row.type, "help")
    return f"{_INDENT * 2 * row.depth}:material/{icon}: {label} **{kind}**{rest}{name}"


def _row_help(row: se.Row) -> str | None:
    if row.type == "repeat":
        return "Its block is copied; each copy has its own parameters, as block2() in the chapter."
    if row.type == "shared":
        return "The very same module as the named block: its parameters are tied."
    return None


def _kind_label(option: str) -> str:
    if option.startswith("shared:"):
        return f"reuse block {option.split(':', 1)[1]} (same module, tied)"
    return option


# --- the editor of the open row ---


def _editor(ws: Workspace, row: se.Row, box) -> None:
    block = se.get(ws.setup.spec, row.path)
    bt = BLOCKS.get(row.type)
    fields = [f for f in bt.fields if f.kind not in (Kind.BLOCK, Kind.BLOCKS)] if bt else []
    if row.keyed:
        fields = [_KEY, *fields]
    if row.type != "shared":  # a shared block is the named block itself: no name of its own
        fields = [_NAME, *fields]
    cols = box.container(border=True).columns(
        max(5, len(fields)), gap="small", vertical_alignment="bottom"
    )
    for col, f in zip(cols, fields, strict=False):
        with col:
            _field(ws, row, block, f)


def _field(ws: Workspace, row: se.Row, block: dict, f: Field) -> None:
    """The widget of one field, chosen by the field's kind in the block-type table."""
    key = widget_key(ws, row.path, f.name)
    value = block.get(f.name, f.default)
    args = dict(key=key, on_change=_on_field, args=(ws, row.path, f, key))
    widget = _name_input if f is _NAME else _text_input if f is _KEY else _WIDGETS[f.kind]
    widget(ws, row, block, f, value, args)


def _name_input(ws, row, block, f: Field, value, args: dict) -> None:
    copied = "Blocks inside a repeat are copied, so they cannot be named."
    st.text_input(
        "name",
        value or "",
        disabled=row.in_repeat,
        placeholder="optional",
        help=copied if row.in_repeat else f.help,
        **args,
    )


def _text_input(ws, row, block, f: Field, value, args: dict) -> None:
    st.text_input(f.name, value or "", placeholder=row.label or "{i}", help=f.help, **args)


def _whole_input(ws, row, block, f: Field, value, args: dict) -> None:
    if isinstance(value, list | tuple):
        st.caption(f"{f.name} {list(value)}: edit it in the JSON view")
        return
    lazy = "Leave empty to infer it at the first forward pass (a Lazy layer)."
    st.number_input(
        f.name,
        min_value=int(f.lo),
        step=1,
        value=value,
        placeholder="? (lazy)" if f.lazy else None,
        help=lazy if f.lazy else f.help,
        **args,
    )


def _number_input(ws, row, block, f: Field, value, args: dict) -> None:
    hi = f.upper(ws.limits)
    small = f.step is not None and f.step < 0.01
    st.number_input(
        f.name,
        min_value=float(f.lo),
        max_value=None if hi is None else float(hi),
        value=float(value),
        step=f.step,
        format="%g" if small else None,
        help=f.help,
        **args,
    )


def _flag_input(ws, row, block, f: Field, value, args: dict) -> None:
    st.checkbox(f.name, value=bool(value), help=f.help, **args)


def _choice_input(ws, row, block, f: Field, value, args: dict) -> None:
    options = list(f.choices)
    st.selectbox(f.name, options, index=options.index(value), help=f.help, **args)


def _ref_input(ws, row, block, f: Field, value, args: dict) -> None:
    options = se.names(ws.setup.spec)
    index = options.index(value) if value in options else None
    st.selectbox("reuse block", options, index=index, **args)


def _tie_input(ws, row, block, f: Field, value, args: dict) -> None:
    options = _tie_options(ws.setup.spec, block)
    current = (value or {}).get("weight", _NO_TIE)
    st.selectbox(
        "tie weight to",
        options,
        index=options.index(current) if current in options else 0,
        help="Use another block's weight tensor as this one's (same shape).",
        **args,
    )


# The widget of each kind of field the editor shows (blocks are rows of their own).
_WIDGETS = {
    Kind.WHOLE: _whole_input,
    Kind.SIZE: _whole_input,
    Kind.NUMBER: _number_input,
    Kind.FLAG: _flag_input,
    Kind.CHOICE: _choice_input,
    Kind.REF: _ref_input,
    Kind.TIE: _tie_input,
    Kind.KEY_FORMAT: _text_input,
}


def _tie_options(spec: dict, block: dict) -> list[str]:
    own = block.get("name")
    targets = [
        f"{r.name}.weight"
        for r in se.outline(spec)
        if r.name is not None and r.name != own and r.type in _WEIGHTED
    ]
    current = (block.get("tie") or {}).get("weight")
    extra = [current] if current and current not in targets else []
    return [_NO_TIE, *targets, *extra]


# --- callbacks: every change goes through session_state.act ---


def _apply(
    ws: Workspace,
    acted: se.Path,
    edit: Callable[[dict], dict],
    open_after: se.Path | None | bool = False,
) -> bool:
    """Try ``edit`` on the spec; on an error remember what was tried, to place the message."""
    tried: dict = {}

    def action() -> None:
        tried["spec"] = edit(ws.setup.spec)
        ws.change(spec=tried["spec"])

    version = ws.version
    ok = session_state.act(_WHERE, action)
    st.session_state[_ATTEMPT] = {"version": version, "acted": acted, "spec": tried.get("spec")}
    if ok and open_after is not False:
        st.session_state[_OPEN] = open_after
    return ok


def _move(ws: Workspace, path: se.Path, delta: int) -> None:
    index, count = _sibling_slot(ws.setup.spec, path)
    moved = (*path[:-1], max(0, min(count - 1, index + delta)))
    was_open = st.session_state.get(_OPEN) == path
    _apply(ws, path, lambda s: se.move(s, path, delta), moved if was_open else None)


def _add(ws: Workspace) -> None:
    parent = se.parse_path(st.session_state.get(_ADD_TO) or "")
    kind, _, ref = (st.session_state.get(_ADD_KIND) or se.KINDS[0]).partition(":")
    index = len(se.get(ws.setup.spec, parent).get("children", ()))
    _apply(
        ws,
        parent,
        lambda s: se.insert(s, parent, index, se.new_block(kind, ref or None)),
        (*parent, "children", index),
    )


def _on_field(ws: Workspace, path: se.Path, f: Field, key: str) -> None:
    value = st.session_state.get(key)
    if isinstance(value, str):
        value = value.strip()
    if f is _NAME:
        edit = lambda s: se.rename(s, path, value or "")  # noqa: E731
    elif value is None or value == "" or value == f.default or value == _NO_TIE:
        edit = lambda s: se.del_field(s, path, f.name)  # noqa: E731
    elif f.kind == Kind.TIE:
        edit = lambda s: se.set_field(s, path, f.name, {"weight": value})  # noqa: E731
    else:
        edit = lambda s: se.set_field(s, path, f.name, value)  # noqa: E731
    _apply(ws, path, edit)


def _set_open(path: se.Path | None) -> None:
    st.session_state[_OPEN] = path


def _sibling_slot(spec: dict, path: se.Path) -> tuple[int, int] | None:
    """(index, sibling count) of a sequential's child; None for the root or a repeat's block."""
    if len(path) < 2 or path[-2] != "children":
        return None
    return path[-1], len(se.get(spec, path[:-2])["children"])


def _error_place(ws: Workspace) -> tuple[se.Path | None, str]:
    """The row to show the builder's last error under, and the message; (None, "") if none.

    The error names a place in the spec that was tried. If that block is not where it was
    (a remove or move shifted it), the message goes under the row the user acted on.
    """
    err, tried = session_state.failure(_WHERE), st.session_state.get(_ATTEMPT)
    if err is None or tried is None or tried["version"] != ws.version:
        return None, ""
    old = ws.setup.spec
    new = tried["spec"] if tried["spec"] is not None else old
    err_path = err.path
    at = se.block_of_error(new, err_path)
    if at != tried["acted"] and _block_or_none(old, at) != _block_or_none(new, at):
        at = tried["acted"]
    where = se.path_str(at)
    if err_path == where:
        return at, err.reason
    if where and err_path.startswith(where + "."):
        return at, f"{err_path[len(where) + 1 :]}: {err.reason}"
    return at, err.message


def _block_or_none(spec: dict, path: se.Path) -> object:
    try:
        return se.get(spec, path)
    except SpecError:
        return None


# --- the JSON view ---


def _json_view(ws: Workspace) -> None:
    with st.expander("Spec as JSON", expanded=False):
        key = f"builder_json_{ws.version}"  # kept as typed while an apply fails
        st.text_area(
            "The whole model as a spec",
            to_json(ws.setup.spec),
            key=key,
            height=260,
            help="Edit and apply; an invalid spec leaves the model as it is.",
        )
        st.button(
            "Apply JSON",
            key="builder_json_apply",
            type="primary",
            on_click=_apply_json,
            args=(ws, key),
        )
        session_state.show_error(_WHERE_JSON)


def _apply_json(ws: Workspace, key: str) -> None:
    text = st.session_state.get(key, "")
    if session_state.act(_WHERE_JSON, lambda: ws.change(spec=from_json(text, ws.limits))):
        st.session_state[_OPEN] = None
