"""Demo of the tree widget on a small fake model: `streamlit run ui/tree_view_demo.py`."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from ui.tree_view import tree_view  # noqa: E402


def _node(id_: str, label: str, detail: str, *, badge: str = "", highlight: bool = False) -> dict:
    """A row as the explorer builds it: blocks are dotted paths, parameters "<block>/<name>"."""
    block, slash, _ = id_.partition("/")
    depth = block.count(".") + 1 if block else 0
    if slash:
        parent, kind, depth = block, "param", depth + 1
    else:
        parent, kind = (id_.rpartition(".")[0] if id_ else None), "block"
    return {
        "id": id_,
        "parent": parent,
        "depth": depth,
        "kind": kind,
        "label": label,
        "detail": detail,
        "badge": badge,
        "highlight": highlight,
        "expanded": True,
    }


NODES = [
    _node("", "model · Sequential", "127 params"),
    _node("/<b>scale</b>", "<b>scale</b>", "(1,) float32"),
    _node("0", "0 · Embedding", "40 params · out (3, 4)"),
    _node("0/weight", "weight", "(10, 4) float32", badge="tied A", highlight=True),
    _node("1", "1 · Sequential", "76 params"),
    _node("1.0", "0 · Linear", "40 params · out (3, 8)"),
    _node("1.0/weight", "weight", "(8, 4) float32"),
    _node("1.0/bias", "bias", "(8,) float32"),
    _node("1.1", "1 · ReLU", "0 params"),
    _node("1.2", "2 · Linear", "36 params · out (3, 4)"),
    _node("1.2/weight", "weight", "(4, 8) float32"),
    _node("1.2/bias", "bias", "(4,) float32"),
    _node("2", "2 · Linear", "50 params · out (3, 10)"),
    _node("2/weight", "weight", "(10, 4) float32", badge="tied A", highlight=True),
    _node("2/bias", "bias", "(10,) float32"),
    _node("3", "3 · LazyLinear", "? (lazy)"),
    _node("3/weight", "weight", "? (lazy)"),
]


def _big(blocks: int) -> list[dict]:
    """A Sequential of ``blocks`` Linear layers: the size check for large models."""
    nodes = [_node("", "model · Sequential", f"{blocks * 72:,} params")]
    for i in range(blocks):
        nodes += [
            _node(f"{i}", f"{i} · Linear", "72 params"),
            _node(f"{i}/weight", "weight", "(8, 8) float32"),
            _node(f"{i}/bias", "bias", "(8,) float32"),
        ]
    return nodes


# ?blocks=500 shows a large model; ?selected=<id> sets the selection made elsewhere in the app.
blocks = int(st.query_params.get("blocks", "0"))
clicked = st.session_state.get("demo_tree", {}).get("selected")

st.set_page_config(page_title="Tree view demo", layout="centered")
st.subheader("Parameter tree")
value = tree_view(
    _big(blocks) if blocks else NODES,
    selected=clicked or st.query_params.get("selected"),
    key="demo_tree",
    height=420,
)
st.write("selected:", value)
st.caption(f"clicked this run: {st.session_state['demo_tree'].get('clicked')}")
