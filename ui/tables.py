"""The "All parameters" table and the code view."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer.errors import SpecError
from explorer.presets import PRESETS
from explorer.spec import to_json
from explorer.view import compile_filter, parameter_rows
from explorer.workspace import Workspace

FRAMEWORK_NOTES = """
- **MXNet / Gluon** set biases to **0** by default; PyTorch draws them from U(±1/√fan_in).
  Gluon selects parameters with a regex: `net.collect_params('.*weight')` — the filter box here.
- **DJL** `setInitializer` does not overwrite an initializer set earlier unless asked; rules here
  always apply in order, the later one winning.
- **Keras** drops a duplicated layer from `net.layers` (3 layers, not 4) — PyTorch keeps both
  names, which is why `state_dict()` has more entries than `parameters()` has tensors.
- **JAX / Flax** keeps one entry in the params dict for a shared module.
- **PyTorch lazy layers** (`nn.LazyLinear`) have no shape until the first forward: the tree
  shows `?` until then.
"""


@st.fragment
def all_parameters_panel(ws: Workspace) -> None:
    """Every parameter name and shape, as ``[(n, p.shape) for n, p in net.named_parameters()]``."""
    tree = ws.tree()
    text = st.text_input("Filter (regex, full match)", key="table_filter", placeholder=".*weight")
    try:
        pattern = compile_filter(text.strip())
    except SpecError as err:
        st.error(str(err), icon=":material/error:")
        pattern = None
    counts = tree.counts()
    a, b, c = st.columns(3)
    a.metric(
        "Unique: parameters()",
        f"{counts.unique_tensors}",
        help=f"{counts.unique_elements:,} elements",
    )
    b.metric(
        "All names: state_dict()",
        f"{counts.state_dict_entries}",
        help=f"{counts.state_dict_elements:,} elements",
    )
    c.metric("Unique vs per-layer sum", f"{counts.unique_elements:,} vs {counts.per_layer_sum:,}")
    rows = parameter_rows(tree, ws.provenance, pattern=pattern)
    if not rows:
        st.info("No parameter matches." if pattern else "This model has no parameters.")
        return
    st.dataframe(
        pd.DataFrame(rows).set_index("name"),
        key="all_params_table",
        use_container_width=True,
        height=min(600, 40 + 35 * len(rows)),
    )


def code_panel(ws: Workspace) -> None:
    """The chapter's PyTorch code for the preset, the built module and the spec."""
    key = ws.setup.preset
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
        st.markdown("**The spec** (`explorer.build(spec)` rebuilds this model)")
        st.code(to_json(ws.setup.spec), language="json")
