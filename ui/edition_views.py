"""The chapter's five editions in the app: how each names and reaches the selected parameter,
its gradient before backward, the last edit as each edition writes it, ``my_init`` as each
framework's initializer class, and why sharing parameters pays off.

The facts come from explorer/editions/places.py and explorer/editions/snippets.py,
computed once per state.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer.editions.listings import gluon_structure, keras_first, keras_summary
from explorer.editions.places import LABELS, Framework, Place, lengths, listing, places
from explorer.editions.snippets import (
    MY_INIT,
    MY_INIT_FORMULA,
    MY_INIT_PARTS,
    SAFE_EDITS,
    edit_lines,
    gradient_before_backward,
    init_prints,
    sharing_evidence,
    summed_gradient,
)
from explorer.session.state import State
from explorer.spec.presets import PRESETS
from ui import session_state

F = Framework
_LANGUAGE = {F.PYTORCH: "python", F.MXNET: "python", F.KERAS: "python", F.FLAX: "python"}


def first_names(s: State) -> dict[str, int]:
    """Where MXNet's name counters start for this model: the seeds build rgnet after net."""
    key = s.experiment.preset
    return dict(PRESETS[key].mxnet_first) if key in PRESETS else {}


def places_of(s: State) -> dict[str, dict[Framework, Place]]:
    """Every parameter's place in every edition, computed once per state."""
    root, first = s.experiment.root_name, first_names(s)
    return session_state.cached("editions", None, lambda: places(s.module, root, first))


def listings_view(s: State) -> None:
    """All parameters at once, as each edition lists them, and Keras's and Gluon's summaries."""
    root, first = s.experiment.root_name, first_names(s)
    st.markdown("**All parameters at once, in each edition** (shapes as each edition lists them)")
    tabs = st.tabs([LABELS[fw] for fw in Framework], key="listing_tabs")
    for tab, fw in zip(tabs, Framework, strict=True):
        with tab:
            text = session_state.cached(
                "listing", fw, lambda fw=fw: listing(s.module, fw, root, first)
            )
            st.code(_LISTING_CALLS[fw].format(root=root), language=_LANGUAGE.get(fw, "java"))
            st.code(text, language=None)
            for call, extra in _more_listings(s, fw, first):
                st.code(call.format(root=root), language="python")
                st.code(extra, language=None)
    if first:
        st.caption(
            "Names continue the counters of the net built before this one in the seeds' "
            f"notebooks: MXNet starts at dense{first.get('dense', 0)}, "
            f"sequential{first.get('sequential', 0)}; Keras at dense_{first.get('dense', 0)}."
        )


_LISTING_CALLS = {
    F.PYTORCH: "[(name, param.shape) for name, param in {root}.named_parameters()]",
    F.MXNET: "print({root}.collect_params())",
    F.DJL: "for (var pair : {root}.getParameters()) {{ System.out.println(pair.getKey()); }}",
    F.KERAS: "[w.shape for w in {root}.get_weights()]",
    F.FLAX: "jax.tree_util.tree_map(lambda x: x.shape, params)",
}


def _more_listings(s: State, fw: Framework, first: dict) -> list[tuple[str, str]]:
    """Gluon's ``print(net.collect_params)`` and Keras's ``summary()``, where they apply."""
    module, shape = s.module, tuple(s.experiment.input_shape)
    if fw == F.MXNET:
        text = session_state.cached("gluon", None, lambda: gluon_structure(module))
        return [] if text is None else [("print({root}.collect_params)", text)]
    if fw == F.KERAS:
        text = session_state.cached(
            "summary", None, lambda: keras_summary(module, shape, keras_first(first))
        )
        return [] if text is None else [("{root}.summary()", text)]
    return []


def framework_view(s: State, name: str) -> None:
    """The selected parameter in all five editions: its name, how to reach it, its layout."""
    where = places_of(s)[name]
    with st.expander("In the chapter's five editions: PyTorch, MXNet, DJL, Keras, Flax"):
        rows = [
            {
                "edition": LABELS[fw],
                "name": p.name or "—",
                "reach it": p.access[0] if p.access else "—",
                "shape": _shape(p),
            }
            for fw, p in where.items()
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"editions_{name}", width="stretch")
        for fw, p in where.items():
            st.caption(_escape(f"{LABELS[fw]}: {p.missing or _NOTES[fw]}"))
        if s.experiment.preset == "rgnet":
            st.caption(_escape(_RGNET_SIZES))
        st.markdown("**Every way each edition reaches it**")
        st.code(_every_access(where), language=None)
        _lengths_line(s)
        if len(s.tree.group_of(name)) > 1:
            why_share_view(s)


def no_gradient_lines(s: State, name: str) -> str:
    """Markdown lines for the "no gradient yet" box: what each other edition shows instead."""
    where = places_of(s)[name]
    lines = []
    for fw, (code, text) in gradient_before_backward(where).items():
        if fw != F.PYTORCH:
            text = _escape(text)
            lines.append(f"- {LABELS[fw]}: " + (f"{literal(code)} {text}" if code else text))
    return "The other editions before a backward pass:  \n" + "\n".join(lines)


def summed_gradient_lines(s: State, name: str) -> str:
    """Markdown lines: where each edition keeps the summed gradient of this tied tensor."""
    lines = []
    for fw, (code, text) in summed_gradient(places_of(s)[name]).items():
        lines.append(f"- {LABELS[fw]}: " + (f"{literal(code)}: " if code else "") + _escape(text))
    return "Where each edition keeps the sum:  \n" + "\n".join(lines)


def last_edit_view(s: State, name: str) -> None:
    """The last edit of this tensor written in every edition, with each edition's safe-edit note."""
    aliases = s.tree.group_of(name)
    op = next(
        (o for o in reversed(s.experiment.ops) if o["op"] == "edit" and o["name"] in aliases),
        None,
    )
    if op is None:
        return
    where = places_of(s)[op["name"]]
    index = None if op.get("index") is None else tuple(op["index"])
    lines = edit_lines(where, op["how"], op["value"], index)
    st.caption("The last edit, in every edition:")
    st.code("\n".join(f"{_mark(fw)} {LABELS[fw]}\n{line}" for fw, line in lines.items()))
    with st.expander("Editing values safely, as each edition says"):
        for fw, sentences in SAFE_EDITS.items():
            st.text(f"{LABELS[fw]}: {' '.join(sentences)}")


def my_init_view(s: State) -> None:
    """The chapter's ``my_init`` as each framework's initializer class, beside the formula."""
    st.markdown("**Custom initializers as classes: the chapter's `my_init` in every edition**")
    st.caption(
        "The explorer's formula does the same as each edition's class; the recipe *my_init* "
        "applies it to the weights only, as the classes do."
    )
    st.code(MY_INIT_FORMULA, language=None)
    rows = [
        {"formula": step, **{LABELS[fw]: code for fw, code in by.items()}}
        for step, by in MY_INIT_PARTS
    ]
    parts = pd.DataFrame(rows)
    st.dataframe(parts, hide_index=True, key="my_init_parts", width="stretch")
    tabs = st.tabs([LABELS[fw] for fw in MY_INIT], key="my_init_tabs")
    prints = session_state.cached("init_prints", None, lambda: init_prints(s.module, places_of(s)))
    for tab, (fw, code) in zip(tabs, MY_INIT.items(), strict=True):
        with tab:
            st.code(code, language=_LANGUAGE.get(fw, "java"))
            if prints.get(fw):
                st.caption("On this model it prints:")
                st.code(prints[fw], language=None)


def why_share_view(s: State) -> None:
    """Why share parameters (an exercise in every edition), with this model's evidence."""
    evidence = session_state.cached("sharing", None, lambda: sharing_evidence(s.tree, s.last_run))
    st.markdown("**Why share parameters?** (an exercise in every edition)")
    if evidence is None:
        st.caption(
            "This model ties no parameters: pick the *Tied layers* or the *Language model with "
            "tied embeddings* preset."
        )
        return
    share = evidence.saved / evidence.state_dict_elements if evidence.state_dict_elements else 0
    lines = [
        f"1. **Fewer numbers to store and train.** Here `parameters()` holds "
        f"{evidence.unique_elements:,} elements and `state_dict()` names "
        f"{evidence.state_dict_elements:,}: tying saves {evidence.saved:,} ({share:.0%}).",
        "2. **Every use trains the one tensor.** Its gradient is the sum of each use's gradient "
        '("the gradients of the second hidden layer and the third hidden layer are added '
        'together").',
        '3. **The same parameters where the task wants them**: "when learning word embeddings, '
        'it might be sensible to use the same parameters both for encoding and decoding words" '
        "(the tied LM preset).",
    ]
    st.markdown("\n".join(lines))
    checks = []
    for names, uses, error in zip(evidence.groups, evidence.uses, evidence.sum_error, strict=True):
        head = ", ".join(literal(n) for n in names[:3]) + (" …" if len(names) > 3 else "")
        if error is None:
            checks.append(f"- {head}: run **Forward + backward** to see the gradient sum")
        else:
            terms = " + ".join(f"use {i + 1}" for i in range(uses))
            checks.append(f"- {head}: {terms} = `.grad`, largest difference {error:.2g}")
    st.markdown("\n".join(checks))


def _escape(text: str) -> str:
    """Text that markdown shows as typed (a class name from a user's model stays plain)."""
    return "".join("\\" + c if c in "\\`*_{}[]()<>#+-.!|~$:" else c for c in text)


def literal(text: str) -> str:
    """``text`` as inline code that markdown cannot interpret (as ui.table_tabs.literal)."""
    return "`" + str(text).replace("`", "'") + "`"


def _shape(p: Place) -> str:
    if p.missing or p.shape is None:
        return "—" if p.missing else "?"
    dims = ", ".join("?" if d is None else str(d) for d in p.shape)
    text = f"({dims},)" if len(p.shape) == 1 else f"({dims})"
    return text + (" = weight.T" if p.transposed else "")


def _every_access(where: dict[Framework, Place]) -> str:
    blocks = []
    for fw, p in where.items():
        body = "\n".join(p.access) if p.access else f"{_mark(fw)} {p.missing}"
        blocks.append(f"{_mark(fw)} {LABELS[fw]}\n{body}")
    return "\n\n".join(blocks)


def _mark(fw: Framework) -> str:
    """The comment mark of the edition's language: Java for DJL, Python for the others."""
    return "//" if fw == F.DJL else "#"


def _lengths_line(s: State) -> None:
    sizes = session_state.cached("lengths", None, lambda: lengths(s.module))
    if sizes[F.PYTORCH] is None:
        return
    root = s.experiment.root_name
    calls = {
        F.PYTORCH: f"len({root})",
        F.MXNET: f"len({root})",
        F.DJL: f"{root}.getChildren().size()",
        F.KERAS: f"len({root}.layers)",
        F.FLAX: "len(params['params'])",
    }
    st.caption(
        "The top level, per edition: "
        + " · ".join(f"{LABELS[fw]} {literal(calls[fw])} = {n}" for fw, n in sizes.items())
    )


_RGNET_SIZES = (
    "Sizes as in PyTorch's rgnet (Linear 8, 4 → 1). MXNet's and DJL's rgnet is Dense(32), "
    "Dense(16) → Dense(10) and Keras's Dense(4) → Dense(1): the presets Gluon's rgnet, DJL's "
    "rgnet and Keras's rgnet build them."
)

_NOTES = {
    F.PYTORCH: "state_dict key; named_parameters() lists a tied tensor once",
    F.MXNET: "each ReLU is fused into the Dense before it, so indices shift; names come from "
    "global counters (a net built later continues: rgnet gets dense2 … dense10)",
    F.DJL: "children are numbered from 01 with their class (Activation.reluBlock() is a "
    "LambdaBlock); getParameters() lists a block added twice twice",
    F.KERAS: "ReLU fused into the Dense; Flatten() is layer 0 as in the chapter's Keras code; "
    "net.layers lists a layer added twice once; kernel = weight transposed",
    F.FLAX: "positions as in PyTorch (nn.relu takes one); a layer used twice is stored once; "
    "kernel = weight transposed",
}
