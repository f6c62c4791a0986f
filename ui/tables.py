"""The "All parameters" table and the code view."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer.errors import SpecError
from explorer.presets import PRESETS
from explorer.spec import to_json
from explorer.tree import ParamCounts
from explorer.workspace import Workspace
from ui.view import compile_filter, parameter_rows

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


def regex_filter(label: str, key: str) -> str | None:
    """A text box for a full-match regex over parameter names; shows an error if it is invalid."""
    text = st.text_input(
        label, key=key, placeholder=".*weight", help="Like Gluon's net.collect_params('.*weight')."
    )
    try:
        return compile_filter(text.strip())
    except SpecError as err:
        st.error(str(err), icon=":material/error:")
        return None


def counts_row(counts: ParamCounts) -> None:
    """Parameter counts three ways, side by side, because tying makes them differ."""
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
    for col, (label, elements, note, help_text) in zip(st.columns(3), cells, strict=True):
        col.metric(label, f"{elements:,}", help=help_text)
        col.caption(note)


@st.fragment
def all_parameters_panel(ws: Workspace) -> None:
    """Every parameter name and shape, as ``[(n, p.shape) for n, p in net.named_parameters()]``."""
    tree = ws.tree()
    pattern = regex_filter("Filter (regex, full match)", key="table_filter")
    counts_row(tree.counts())
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
