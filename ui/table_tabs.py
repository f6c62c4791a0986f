"""The "All parameters" table and the code view."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer.core.frozen import thaw
from explorer.core.patterns import Pattern
from explorer.session.workspace import Workspace
from explorer.spec.presets import PRESETS
from explorer.spec.validate import to_json
from explorer.view.tree import ParamCounts
from ui import session_state
from ui.edition_views import listings_view, my_init_view, why_share_view
from ui.lab_tabs import export_view
from ui.tree_rows import parameter_rows

FRAMEWORK_NOTES = """
- **MXNet / Gluon** draws weights from **U(−0.07, 0.07)** and sets biases to **0** by default
  (the *MXNet default* recipe); PyTorch draws its biases from U(±1/√fan_in). Gluon writes the
  ReLU into the `Dense` before it, so PyTorch's `net[2]` is Gluon's `net[1]`, named
  `dense1_weight` by a global counter. `net.collect_params('.*weight')` selects with a regex
  matched from the start of the name: the filter's *prefix* mode.
- **DJL** initializes a weight nothing was set on with `XavierInitializer(GAUSSIAN, IN, 2)`,
  N(0, √(2/fan_in)) (`Parameter.Type.WEIGHT`'s default; the *DJL default* recipe), and biases
  to **0**; `new XavierInitializer()` is another one, U(±√2·Glorot). The English edition says
  a second `setInitializer()` does not overwrite the first; the Chinese edition says it the way
  DJL's code does it: 注意:如果参数已经被初始化,setInitializer() 函数并不会对参数有任何影响 (if a
  parameter is already initialized, `setInitializer()` has no effect on it): initialized
  parameters are kept. So `Constant(1)` is ignored, while a fresh net gets 7777 (42 in the
  Chinese edition): a rule with *force_reinit* off.
- **Keras** drops a duplicated layer from `net.layers` (3 layers, not 4). PyTorch drops the
  duplicate too in `children()`, `modules()`, `parameters()` and `named_parameters()`; only
  indexing (`net[4]`), `state_dict()` and `named_parameters(remove_duplicate=False)` keep both
  names, which is why `state_dict()` has more entries than `parameters()` has tensors.
- **JAX / Flax** keeps one entry in the params dict for a shared module
  (`len(params['params']) == 3`), and no gradients: `jax.grad` returns them.
- **PyTorch lazy layers** (`nn.LazyLinear`) have no shape until the first forward: the tree
  shows `?` until then.
"""


def literal(text: str) -> str:
    """``text`` as inline code that markdown cannot interpret (backticks inside are replaced)."""
    return "`" + str(text).replace("`", "'") + "`"


def counts_row(
    counts: ParamCounts, pattern: Pattern | None = None, tree=None, path: str = ""
) -> None:
    """Parameter counts three ways, side by side, because tying makes them differ.

    With a filter, a line says how many names it keeps out of the block's total.
    """
    cells = [
        (
            "parameters()",
            counts.unique_elements,
            f"{counts.unique_tensors} unique tensors",
            "What the model stores and trains: each tied tensor once.",
        ),
        (
            "state_dict()",
            counts.state_dict_elements,
            f"{counts.state_dict_entries} entries",
            "Every name, so each alias of a tied tensor counts again.",
        ),
        (
            "per-layer sum",
            counts.per_layer_sum,
            "naive sum over layers",
            "Adding up each layer's own parameters, as a quick count by hand does.",
        ),
    ]
    with st.container(horizontal=True, gap="medium"):  # wraps at a narrow window, never cuts
        for label, elements, note, help_text in cells:
            with st.container(width="content", gap="xsmall"):
                st.metric(label, f"{elements:,}", help=help_text, width="content")
                st.caption(note)
    if pattern is not None and tree is not None:
        prefix = f"{path}." if path else ""
        names = [n for n in tree.params if n.startswith(prefix)]
        kept = [n for n in names if pattern.matches(n)]
        elements = sum(tree.params[n].numel for n in kept)
        st.caption(
            f"The filter keeps {len(kept)} of {len(names)} parameter names "
            f"({elements:,} elements, aliases counted)."
        )


def all_parameters_panel(ws: Workspace) -> None:
    """``named_parameters()`` as the chapter lists it, then the aliases only state_dict() keeps."""
    s = ws.state
    tree = s.tree
    pattern = session_state.name_filter()
    counts_row(tree.counts(), pattern, tree)
    rows = parameter_rows(tree, s.provenance)
    if pattern is not None:
        rows = [r for r in rows if pattern.matches(r["name"])]
    if not rows:
        st.info("No parameter name matches the filter." if pattern else "No parameters.")
        listings_view(s)
        return
    listed = {name for name, _ in tree.module.named_parameters()}
    unique = [r for r in rows if r["name"] in listed]
    aliases = [r for r in rows if r["name"] not in listed]
    st.markdown(
        "**`[(name, param.shape) for name, param in net.named_parameters()]`**: each tensor "
        "once, under its first name"
    )
    _table(unique, "all_params_table")
    if aliases:
        st.markdown(
            "**Aliases**: names that only `state_dict()` and "
            "`named_parameters(remove_duplicate=False)` list; each is the same tensor as the "
            "name in its *tied* column"
        )
        _table(aliases, "alias_params_table")
    listings_view(s)


def _table(rows: list[dict], key: str) -> None:
    frame = pd.DataFrame(rows).set_index("name")
    st.dataframe(
        frame,
        key=key,
        width="stretch",
        height=min(600, 40 + 35 * len(rows)),
        column_config={
            "access": st.column_config.TextColumn("access", width="medium"),
            "tied": st.column_config.TextColumn("tied", width="medium"),
            "rule": st.column_config.TextColumn("rule", width="medium"),
        },
    )


def code_panel(ws: Workspace) -> None:
    """The current state as a PyTorch script; the chapter's code, the module and the spec."""
    export_view(ws)
    key = ws.experiment.preset
    left, right = st.columns(2)
    with left:
        if key in PRESETS:
            st.markdown(f"**The chapter's code for {PRESETS[key].title}**")
            st.code(PRESETS[key].code, language="python")
        st.markdown("**`print(net)`**")
        st.code(str(ws.module), language=None)
    with right:
        st.markdown("**In the chapter's other frameworks**")
        st.markdown(FRAMEWORK_NOTES)
        why_share_view(ws.state)
        st.markdown("**The spec** (`explorer.build(spec)` rebuilds this model)")
        st.code(to_json(thaw(ws.experiment.spec)), language="json")
    my_init_view(ws.state)
