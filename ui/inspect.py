"""The detail panel: what a selected parameter or block holds, its gradient, and value edits."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer.figures import heatmap, histogram
from explorer.initializers import expected
from explorer.tree import tensor_preview
from explorer.uses import use_scale, uses_sum_error
from explorer.workspace import EDIT_OPS, Workspace
from ui import state
from ui.tables import counts_row
from ui.view import group_labels, name_of, parameter_rows


def detail_panel(ws: Workspace) -> None:
    """Show the selection: a parameter's values and gradient, or a block's parameter table."""
    tree = ws.tree()
    selected = state.selection()
    name = name_of(selected)
    if name is not None and name in tree.params:
        _parameter(ws, tree, name)
    elif name is None and selected in {n.path for n in tree.root.walk()}:
        _block(ws, tree, selected)
    else:
        state.select("")
        _block(ws, tree, "")


def _describe_rule(ws: Workspace, name: str) -> str:
    index = ws.provenance.get(name)
    if index is None:
        if ws.has_lazy():
            return "not initialized yet: lazy layers get values at the first forward pass"
        return "PyTorch's default `reset_parameters` (no rule matched)"
    rule = ws.applied_rules[index]
    target = f"regex `{rule['regex']}`" if "regex" in rule else f"`{rule['target']}`"
    return f"rule {index + 1}: **{rule['init']}** on {target}"


def _parameter(ws: Workspace, tree, name: str) -> None:
    info = tree.params[name]
    group = sorted(tree.group_of(name) - {name})
    st.subheader(f"Parameter `{name}`")
    st.code(tree.access_path(name), language="python")
    listed = min(tree.group_of(name), key=list(tree.params).index)
    facts = [
        f"class `Parameter` · shape `{'?' if info.shape is None else tuple(info.shape)}` · "
        f"`{info.dtype}` · `{info.device}` · requires_grad `{info.requires_grad}`",
        f"state_dict key `{name}` · named_parameters() lists it as `{listed}`"
        + ("" if listed == name else " (aliases are skipped: remove_duplicate=True)"),
        f"set by {_describe_rule(ws, name)}",
    ]
    if group:
        letter = group_labels(tree)[name]
        others = ", ".join(f"`{g}`" for g in group)
        facts.append(
            f":material/link: **tied {letter}**: the same tensor as {others}; editing one edits all"
        )
    st.markdown("  \n".join(facts))
    if info.is_lazy:
        st.info(
            "Shape unknown (`?`): this lazy parameter is created by the first forward pass. "
            "Press **Forward + backward** in the sidebar."
        )
        return
    _values(ws, tree, name)
    _gradient(ws, tree, name)
    _edit_form(ws, name, info.shape)


def _values(ws: Workspace, tree, name: str) -> None:
    param = tree.tensor(name)
    owner_path, _, local = name.rpartition(".")
    owner = tree.module.get_submodule(owner_path) if owner_path else tree.module
    rule = ws.rule_of(name) or ({"init": "default"} if not ws.edited else None)
    overlay = expected(rule, param, owner, local) if name not in ws.edited else None
    left, right = st.columns(2)
    with left:
        cell = _edited_cell(name, param.dim()) if name in ws.edited else None
        fig = state.cached(
            f"heatmap{cell}", name, lambda: heatmap(param, f"{name} values", highlight=cell)
        )
        st.plotly_chart(fig, key=f"heat_{name}", config={"displayModeBar": False})
    with right:
        fig = state.cached(
            "hist", name, lambda: histogram(param, f"{name} histogram", expected=overlay)
        )
        st.plotly_chart(fig, key=f"hist_{name}", config={"displayModeBar": False})
    if name in ws.edited:
        st.caption("Values were edited after initialization, so no initializer overlay is drawn.")
    stats = state.cached("stats", name, lambda: tree.stats(name))
    _stats_row(stats)
    with st.expander(f"{name}.data", expanded=False):
        st.code(tensor_preview(param), language=None)


def _edited_cell(name: str, ndim: int) -> tuple[int, int] | None:
    """The (row, col) of the element edited last in this parameter, to box on the heatmap."""
    edited, index = st.session_state.get("last_edit", (None, None))
    if edited != name or index is None or ndim not in (1, 2):
        return None
    return (0, index[0]) if ndim == 1 else (index[0], index[1])


def _stats_row(stats: dict, prefix: str = "") -> None:
    keys = ["mean", "std", "min", "max", "norm", "zero_fraction"]
    heads = ["mean", "std", "min", "max", "L2 norm", "zeros"]
    cells = [
        f"{stats[prefix + k]:.1%}" if k == "zero_fraction" else f"{stats[prefix + k]:.4g}"
        for k in keys
    ]
    st.markdown(
        "| "
        + " | ".join(heads)
        + " |\n|"
        + "---|" * len(keys)
        + "\n| "
        + " | ".join(f"`{c}`" for c in cells)
        + " |"
    )


def _gradient(ws: Workspace, tree, name: str) -> None:
    st.markdown("#### Gradient")
    param = tree.tensor(name)
    if param.grad is None or ws.last_run is None:
        st.info(
            f"No gradient yet: run forward + backward. (`{tree.access_path(name)}.grad` is `None`)",
            icon=":material/block:",
        )
        return
    uses = ws.last_run.grad_by_use.get(name, [])
    labels = ws.last_run.use_labels.get(name, [])
    grad = param.grad
    stats = state.cached("stats", name, lambda: tree.stats(name))
    st.caption(
        f"‖grad‖ = {stats['grad_norm']:.4g} · loss = {ws.setup.loss} · {len(uses)} use(s) "
        "in the forward pass"
    )
    _stats_row(stats, "grad_")
    if len(uses) > 1:
        _uses_row(name, uses, labels, grad)
    left, right = st.columns(2)
    if len(uses) <= 1:
        with left:
            fig = state.cached("grad", name, lambda: heatmap(grad, f"{name}.grad"))
            st.plotly_chart(fig, key=f"grad_only_{name}", config={"displayModeBar": False})
    with right if len(uses) <= 1 else left:
        fig = state.cached("grad_hist", name, lambda: histogram(grad, f"{name}.grad histogram"))
        st.plotly_chart(fig, key=f"grad_hist_{name}", config={"displayModeBar": False})


def _uses_row(name: str, uses, labels, grad) -> None:
    """One heatmap per use and the total, on one colour scale, and the sum check."""
    scale = state.cached("use_scale", name, lambda: use_scale(uses, grad))
    cols = st.columns(len(uses) + 1)
    for i, (use, label) in enumerate(zip(uses, labels, strict=False)):
        with cols[i]:
            fig = state.cached(
                f"use{i}", name, lambda u=use, i=i: heatmap(u, f"use {i + 1}", zmax=scale)
            )
            st.plotly_chart(fig, key=f"use_{name}_{i}", config={"displayModeBar": False})
            st.caption(label)
    with cols[-1]:
        fig = state.cached("grad", name, lambda: heatmap(grad, "total .grad", zmax=scale))
        st.plotly_chart(fig, key=f"grad_{name}", config={"displayModeBar": False})
    diff = state.cached("use_check", name, lambda: uses_sum_error(uses, grad))
    terms = " + ".join(f"use {i + 1}" for i in range(len(uses)))
    ok = diff <= 1e-5 * max(1.0, scale)
    (st.success if ok else st.warning)(
        f"{terms} = total {'✓' if ok else '✗'} (largest difference {diff:.2g}): the gradients "
        "of every use of a tied tensor are added together."
    )


def _edit_form(ws: Workspace, name: str, shape) -> None:
    st.markdown("#### Edit values")
    with st.form(key=f"edit_form_{name}", border=True):
        st.caption("As `net[0].weight.data[:] += 1` and `net[0].weight.data[0, 0] = 42`.")
        cols = st.columns([2, 2, 3])
        op = cols[0].selectbox(
            "Operation",
            EDIT_OPS,
            key=f"edit_op_{name}",
            format_func={"set": "set =", "add": "add +=", "multiply": "multiply *="}.get,
        )
        value = cols[1].number_input("Value", value=42.0, key=f"edit_value_{name}", format="%g")
        index_text = cols[2].text_input(
            "Index (empty = every element)",
            value=", ".join("0" * len(shape)) if shape else "",
            key=f"edit_index_{name}",
            placeholder="e.g. 0, 0",
        )
        if st.form_submit_button("Apply edit", type="primary", key=f"edit_apply_{name}"):
            index = _parse_index(index_text)
            if index is False:
                st.error("Index: whole numbers separated by commas, or empty for every element.")
            elif state.act("edit", lambda: ws.edit(name, op, value, index)):
                st.session_state["last_edit"] = (name, index)
                st.rerun()
    state.show_messages("edit")


def _parse_index(text: str):
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        return None
    if not all(p.isdigit() for p in parts):
        return False
    return tuple(int(p) for p in parts)


def _block(ws: Workspace, tree, path: str) -> None:
    node = tree.block(path)
    st.subheader(f"Block `{path or tree.root_name}` · {node.type}")
    st.code(tree.access_path(path) if path else tree.root_name, language="python")
    counts_row(tree.counts(path))
    rows = parameter_rows(tree, ws.provenance, block=path)
    if rows:
        frame = pd.DataFrame(rows).set_index("name")
        st.dataframe(frame, key=f"block_table_{path}", use_container_width=True)
    else:
        st.caption("This block has no parameters (an activation, say).")
    if not path and ws.deferred:
        _deferred_table(ws)
    with st.expander("print(module)", expanded=not path):
        module = tree.module.get_submodule(path) if path else tree.module
        text = str(module)
        st.code(text if len(text) < 20_000 else text[:20_000] + "\n…", language=None)


def _deferred_table(ws: Workspace) -> None:
    """Exercise 3: the lazy parameters' shapes before and after the first forward pass."""
    with st.expander("Deferred initialization: shapes before and after the first forward"):
        frame = pd.DataFrame(
            [
                {"parameter": n, "before": "? (uninitialized)", "after": str(s)}
                for n, s in ws.deferred.items()
            ]
        ).set_index("parameter")
        st.dataframe(frame, key="deferred_table", use_container_width=True)
        st.caption(
            f"The first forward pass on the input {tuple(ws.setup.input_shape)} gave the "
            "lazy layers their shapes; the rules were applied right after."
        )
