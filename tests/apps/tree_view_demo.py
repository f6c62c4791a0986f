"""The tree widget on small real models, for browser tests (`streamlit run` this file).

Query parameters: ``?blocks=N`` shows a Sequential of N Linear layers instead of the mixed
model; ``?selected=<id>`` sets a selection made elsewhere in the app; ``?narrow=1`` puts the
tree in a third of a wide page, as the app's Explore tab does. The tree is a fragment:
"script runs" counts whole-page runs, "tree runs" counts the fragment's own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere

import explorer  # noqa: E402
from ui.tree_rows import tree_rows  # noqa: E402
from ui.tree_view import tree_view, view_state  # noqa: E402

KEY = "demo_tree"


def mixed() -> nn.Module:
    """A root parameter named like markup, a tied embedding, a nested block and a lazy layer."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Embedding(10, 4),
        nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4)),
        nn.Linear(4, 10),
        nn.LazyLinear(3),
    )
    net[2].weight = net[0].weight
    net.register_parameter("<b>scale</b>", nn.Parameter(torch.ones(1)))
    return net


def wide(blocks: int) -> nn.Module:
    """A Sequential of ``blocks`` Linear(8, 8) layers: the size check for large models."""
    with torch.device("meta"):  # structure only: no values are needed here
        return nn.Sequential(*(nn.Linear(8, 8) for _ in range(blocks)))


def tree(blocks: int) -> explorer.view.tree.ParamTree:
    """The model's tree, inspected once per session as the app inspects once per state."""
    cache = st.session_state.setdefault("demo_trees", {})
    if blocks not in cache:
        cache[blocks] = explorer.inspect(wide(blocks) if blocks else mixed(), root_name="model")
    return cache[blocks]


@st.fragment
def tree_fragment(blocks: int) -> None:
    st.session_state["tree_runs"] = st.session_state.get("tree_runs", 0) + 1
    shown = tree(blocks)
    pattern = st.text_input("filter", key="demo_filter") or None  # a full-match pattern
    clicked = (st.session_state.get(KEY) or {}).get("selected")
    selected = clicked or st.query_params.get("selected") or ""
    rows = tree_rows(
        shown,
        view=view_state(KEY, shown.structure_key),
        selected=selected,
        pattern=pattern,
        output_shapes=None if blocks else {"0": (3, 4), "2": (3, 10)},
    )
    value = tree_view(
        rows,
        selected=selected or None,
        key=KEY,
        model=shown.structure_key,
        height=420,
    )
    st.write("selected:", value)
    st.caption(f"clicked this run: {st.session_state[KEY].get('clicked')}")
    st.caption(f"rows sent: {len(rows)}")
    st.caption(f"tree runs: {st.session_state['tree_runs']}")


narrow = st.query_params.get("narrow") == "1"
st.set_page_config(page_title="Tree view demo", layout="wide" if narrow else "centered")
st.session_state["script_runs"] = st.session_state.get("script_runs", 0) + 1
st.subheader("Parameter tree")
with st.columns([1, 2])[0] if narrow else st.container():
    tree_fragment(int(st.query_params.get("blocks", "0")))
st.caption(f"script runs: {st.session_state['script_runs']}")
