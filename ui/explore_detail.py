"""The detail panel: what a selected parameter or block holds, its gradient, and value edits.

Everything here is computed for the selection only, once per state version
(``session_state.cached``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer.core.errors import SpecError
from explorer.engine.uses import use_scale, uses_sum_error
from explorer.init.initializers import expected
from explorer.session.state import State
from explorer.session.workspace import EDIT_OPS, Workspace
from explorer.view.figures import heatmap, histogram, uses_figure
from explorer.view.reduce import tensor_preview
from ui import lab_tabs, session_state
from ui.edition_views import (
    framework_view,
    last_edit_view,
    no_gradient_lines,
    summed_gradient_lines,
)
from ui.table_tabs import counts_row, literal
from ui.tree_rows import name_of, parameter_rows

_PLOT = {"displayModeBar": False}
HEATMAP_MAX_WIDTH = 560  # px: wider heatmaps stretch to the panel instead
_STATE_DICT_MAX = 24  # tensors a block's printed state_dict() may hold


def detail_panel(ws: Workspace) -> None:
    """Show the selection: a parameter's values and gradient, or a block's parameter table."""
    s = ws.state
    tree = s.tree
    selected = session_state.selection()
    name = name_of(selected)
    if name is not None and name in tree.params:
        _parameter(s, name)
    elif name is None and selected in tree.blocks:
        _block(s, selected)
    else:
        _block(s, "")


def _describe_rule(s: State, name: str) -> str:
    index = s.provenance.get(name)
    if index is None:
        if s.lazy:
            return "not initialized yet: lazy layers get values at the first forward pass"
        return "PyTorch's default `reset_parameters` (no rule matched)"
    rule = s.applied_rules[index]
    target = rule.get("regex") or rule.get("target", "*")
    return f"rule {index + 1}: **{rule['init']}** on {literal(target)}"


def _parameter(s: State, name: str) -> None:
    tree = s.tree
    info = tree.params[name]
    group = sorted(tree.group_of(name) - {name})
    st.subheader(f"Parameter {literal(name)}")
    st.code(tree.access_path(name), language="python")
    listed = min(tree.group_of(name), key=list(tree.params).index)
    shape = "?" if info.shape is None else tuple(info.shape)
    facts = [
        f"class `Parameter` · shape `{shape}` · `{info.dtype}` · `{info.device}` · "
        f"requires_grad `{info.requires_grad}`",
        f"state_dict key {literal(name)} · named_parameters() lists it as {literal(listed)}"
        + ("" if listed == name else " (aliases are skipped: remove_duplicate=True)"),
        f"set by {_describe_rule(s, name)}",
    ]
    if group:
        letter = tree.group_labels[name]
        others = ", ".join(literal(g) for g in group)
        facts.append(
            f":material/link: **tied {letter}**: the same tensor as {others}; editing one edits all"
        )
    st.markdown("  \n".join(facts))
    framework_view(s, name)
    if info.is_lazy:
        st.info(
            "Shape unknown (`?`): this lazy parameter is created by the first forward pass. "
            "Press **Forward** in the sidebar.",
            icon=":material/hourglass_empty:",
        )
        return
    if info.device == "meta":
        st.info("No values on the meta device: this model is structure only.", icon="ℹ️")
        return
    _values(s, name)
    lab_tabs.snapshot_scrubber(s, name)
    _gradient(s, name)
    _edit_form(s, name, info.shape)


def _values(s: State, name: str) -> None:
    tree = s.tree
    param = tree.tensor(name)
    owner_path, _, local = name.rpartition(".")
    owner = tree.module.get_submodule(owner_path) if owner_path else tree.module
    edited = name in s.edited
    rule = s.rule_of(name) or {"init": "default"}
    overlay = None if edited else expected(rule, param, owner, local)
    cell = _edited_cell(s, name, param.dim()) if edited else None
    with st.container(horizontal=True, gap="medium"):  # side by side when they fit
        fig = session_state.cached(
            "heatmap", name, lambda: heatmap(param, f"{name} values", highlight=cell)
        )
        _chart(fig, f"heat_{name}")
        fig = session_state.cached(
            "hist", name, lambda: histogram(param, f"{name} histogram", expected=overlay)
        )
        _chart(fig, f"hist_{name}")
    if edited:
        st.caption("Values were edited after initialization, so no initializer overlay is drawn.")
    stats = session_state.cached("stats", name, lambda: tree.stats(name))
    _stats_row(stats)
    with st.expander(f"{session_state.plain(name)}.data", expanded=False):
        st.code(session_state.cached("preview", name, lambda: tensor_preview(param)), language=None)


def _edited_cell(s: State, name: str, ndim: int) -> tuple[int, int] | None:
    """The (row, col) of the element edited last in this tensor, to box on the heatmap."""
    aliases = s.tree.group_of(name)
    for op in reversed(s.experiment.ops):
        if op["op"] == "edit" and op["name"] in aliases:
            index = op.get("index")
            if index is None or ndim not in (1, 2):
                return None
            return (0, index[0]) if ndim == 1 else (index[0], index[1])
    return None


def _stats_row(stats: dict, prefix: str = "") -> None:
    keys = ["mean", "std", "min", "max", "norm", "zero_fraction"]
    heads = ["mean", "std", "min", "max", "L2 norm", "zeros"]
    cells = [
        f"{stats[prefix + k]:.1%}" if k == "zero_fraction" else f"{stats[prefix + k]:.4g}"
        for k in keys
    ]
    st.dataframe(
        pd.DataFrame([cells], columns=heads),
        hide_index=True,
        key=f"stats_{prefix or 'values'}",
    )


def _gradient(s: State, name: str) -> None:
    tree = s.tree
    st.markdown("#### Gradient")
    param = tree.tensor(name)
    access = tree.access_path(name)
    if param.grad is None or s.last_run is None:
        after = "run Backward" if s.experiment.ran == "forward" else "run Forward, then Backward"
        st.info(
            f"No gradient yet: {literal(access + '.grad')} is `None` until a backward pass "
            f"({after}).  \n" + no_gradient_lines(s, name),
            icon=":material/block:",
        )
        return
    uses = s.last_run.grad_by_use.get(name, [])
    labels = s.last_run.use_labels.get(name, [])
    grad = param.grad
    stats = session_state.cached("stats", name, lambda: tree.stats(name))
    st.caption(
        f"{literal(access + '.grad')} · ‖grad‖ = {stats['grad_norm']:.4g} · "
        f"loss = {s.experiment.loss} · "
        f"{len(uses)} use(s) in the forward pass"
    )
    _stats_row(stats, "grad_")
    if len(uses) > 1:
        _uses_row(name, uses, labels, grad)
        fig = session_state.cached(
            "grad_hist", name, lambda: histogram(grad, f"{name}.grad histogram")
        )
        st.plotly_chart(fig, key=f"grad_hist_{name}", config=_PLOT)
        return
    with st.container(horizontal=True, gap="medium"):
        fig = session_state.cached("grad", name, lambda: heatmap(grad, f"{name}.grad"))
        _chart(fig, f"grad_only_{name}")
        fig = session_state.cached(
            "grad_hist", name, lambda: histogram(grad, f"{name}.grad histogram")
        )
        _chart(fig, f"grad_hist_{name}")


def _chart(fig, key: str) -> None:
    """A figure at the size it was made for (heatmaps keep their aspect), or 420 px wide."""
    width = fig.layout.width
    st.plotly_chart(
        fig,
        key=key,
        config=_PLOT,
        width=int(width) if width and width <= HEATMAP_MAX_WIDTH else "stretch",
    )


def _uses_row(name: str, uses, labels, grad) -> None:
    """The chapter's picture: each use's gradient and their sum, one figure, one colour scale."""
    titles = [
        f"use {i + 1}" + (f": {labels[i]}" if i < len(labels) else "") for i in range(len(uses))
    ]
    fig = session_state.cached("uses", name, lambda: uses_figure(list(uses), grad, titles=titles))
    scale = session_state.cached("use_scale", name, lambda: use_scale(uses, grad))
    diff = session_state.cached("use_check", name, lambda: uses_sum_error(uses, grad))
    terms = " + ".join(f"use {i + 1}" for i in range(len(uses)))
    ok = diff <= 1e-5 * max(1.0, scale)
    (st.success if ok else st.warning)(
        f"{terms} = total {'✓' if ok else '✗'} (largest difference {diff:.2g}): the gradients "
        "of every use of a tied tensor are added together."
    )
    with st.container(horizontal=True, gap="medium"):
        _chart(fig, f"uses_{name}")
        with st.container(width=320):
            st.markdown("  \n".join(session_state.plain(t) for t in titles))
            st.markdown(summed_gradient_lines(session_state.workspace().state, name))


def _edit_form(s: State, name: str, shape) -> None:
    st.markdown("#### Edit values")
    key = f"edit_{name}"
    with st.form(key=f"{key}_form", border=True):
        cols = st.columns([2, 2, 3])
        cols[0].selectbox(
            "Operation",
            EDIT_OPS,
            key=f"{key}_op",
            format_func={
                "set": "set =",
                "add": "add +=",
                "multiply": "multiply *=",
                "divide": "divide /=",
            }.get,
        )
        cols[1].number_input("Value", value=42.0, key=f"{key}_value", format="%g")
        cols[2].text_input(
            "Index (empty = every element)",
            value=", ".join("0" * len(shape)) if shape else "",
            key=f"{key}_index",
            placeholder="e.g. 0, 0",
        )
        st.form_submit_button(
            "Apply edit", type="primary", key=f"{key}_apply", on_click=_apply_edit, args=(name,)
        )
    session_state.show_error("edit")
    last_edit_view(s, name)


def _apply_edit(name: str) -> None:
    key = f"edit_{name}"
    how = st.session_state.get(f"{key}_op") or "set"
    value = st.session_state.get(f"{key}_value")
    index = _parse_index(st.session_state.get(f"{key}_index") or "")

    def run() -> None:
        if index is False:
            raise SpecError(
                "whole numbers separated by commas, or empty for every element", "index"
            )
        session_state.workspace().edit(name, how, value, index)

    session_state.act("edit", run)


def _parse_index(text: str):
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        return None
    if not all(p.isdigit() and len(p) <= 9 for p in parts):
        return False
    return tuple(int(p) for p in parts)


def _block(s: State, path: str) -> None:
    tree = s.tree
    node = tree.block(path)
    st.subheader(f"Block {literal(path or tree.root_name)} · {node.type}")
    st.code(tree.access_path(path) if path else tree.root_name, language="python")
    if not path and s.deferred:
        _deferred_table(s)
    counts_row(tree.counts(path), session_state.name_filter(), tree, path)
    rows = parameter_rows(tree, s.provenance, block=path)
    if rows:
        frame = pd.DataFrame(rows).set_index("name")
        st.dataframe(frame, key=f"block_table_{path}", width="stretch")
    else:
        st.caption("This block has no parameters (an activation, say).")
    module = tree.module.get_submodule(path) if path else tree.module
    access = tree.access_path(path) if path else tree.root_name
    with st.expander(f"print({access})", expanded=not path):
        text = session_state.cached("print", path, lambda: str(module))
        st.code(text if len(text) < 20_000 else text[:20_000] + "\n…", language=None)
    with st.expander(f"{access}.state_dict(), with its values", expanded=bool(path)):
        st.code(
            session_state.cached("state_dict", path, lambda: state_dict_text(module)), language=None
        )


def state_dict_text(module) -> str:
    """``print(module.state_dict())`` as PyTorch prints it, for a block of a few tensors."""
    entries = module.state_dict(keep_vars=True)
    if len(entries) > _STATE_DICT_MAX:
        return (
            f"# {len(entries)} tensors: too many to print here; select a smaller block.\n"
            + "\n".join(f"{k}: {tuple(v.shape)}" for k, v in list(entries.items())[:50])
        )
    if any(v.is_meta for v in entries.values()):
        return "# structure only (meta device): no values"
    return str(module.state_dict())


def _deferred_table(s: State) -> None:
    """Deferred initialization: the lazy parameters' shapes before and after the first forward."""
    st.markdown("#### Deferred initialization: shapes before and after the first forward")
    frame = pd.DataFrame(
        [
            {"parameter": n, "before": "? (uninitialized)", "after": str(shape)}
            for n, shape in s.deferred.items()
        ]
    ).set_index("parameter")
    st.dataframe(frame, key="deferred_table", width="stretch")
    st.caption(
        f"The first forward pass on the input {tuple(s.experiment.input_shape)} decided these "
        "shapes; the rules were applied right after."
    )
