"""The Initialize tab: an ordered list of rules, a seed, and the Re-initialize button."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer.formula import FUNCTIONS, NAMES, check_formula
from explorer.initializers import INITIALIZERS, MAX_MAGNITUDE, OptionKind
from explorer.workspace import Workspace
from ui import state
from ui.view import parameter_rows

RECIPES = {
    "init_normal: N(0, 0.01) weights, zero biases": [
        {"init": "normal", "target": "*.weight", "mean": 0.0, "std": 0.01},
        {"init": "zeros", "target": "*.bias"},
    ],
    "init_constant: weights 1, biases 0": [
        {"init": "constant", "target": "*.weight", "value": 1.0},
        {"init": "zeros", "target": "*.bias"},
    ],
    "xavier on layer 0, 42 on layer 2": [
        {"init": "default", "target": "*"},
        {"init": "xavier_uniform", "target": "0.weight"},
        {"init": "constant", "target": "2.weight", "value": 42.0},
    ],
    "my_init: U(-10, 10) kept where |w| ≥ 5": [
        {"init": "default", "target": "*"},
        {
            "init": "formula",
            "target": "*.weight",
            "expr": "u = uniform(-10, 10); where(abs(u) >= 5, u, 0)",
        },
    ],
    "PyTorch default": [{"init": "default", "target": "*"}],
}
CUSTOM = "custom glob…"
REGEX = "regex…"


def rules_panel(ws: Workspace) -> None:
    """Edit the rules, then apply them with the seed."""
    st.markdown(
        "Rules apply **in order**; a later rule that matches a parameter overrides an "
        "earlier one. Each parameter remembers which rule set it."
    )
    _recipes(ws)
    rules = [dict(r) for r in ws.setup.rules]
    names = list(ws.tree().params)
    blocks = [n.path for n in ws.tree().root.walk() if n.path]
    for i, rule in enumerate(rules):
        _rule_row(ws, rules, i, rule, names, blocks)
    cols = st.columns([1, 1, 2])
    if cols[0].button("Add rule", key="add_rule", icon=":material/add:"):
        _commit(ws, [*rules, {"init": "normal", "target": "*.weight", "mean": 0.0, "std": 0.01}])
    if cols[1].button("Re-initialize", type="primary", key="reinit", icon=":material/casino:"):
        with st.spinner("Initializing…"):
            state.act("rules", ws.reinitialize)
    cols[2].caption(
        f"seed {ws.setup.seed} (change it in the sidebar) · same rules + seed = same values"
    )
    state.show_messages("rules")
    _provenance_table(ws)


def _recipes(ws: Workspace) -> None:
    cols = st.columns([3, 1])
    recipe = cols[0].selectbox(
        "Start from the chapter's examples",
        list(RECIPES),
        index=None,
        key="recipe",
        placeholder="Pick a recipe…",
    )
    if cols[1].button("Use recipe", key="use_recipe", disabled=recipe is None):
        _commit(ws, RECIPES[recipe], reinit=True)


def _commit(ws: Workspace, rules: list[dict], reinit: bool = False) -> bool:
    def change():
        ws.change(rules=rules)
        if reinit:
            ws.reinitialize()

    ok = state.act("rules", change)
    if ok:
        st.rerun()
    return ok


def _rule_row(ws, rules, i, rule, names, blocks) -> None:
    key = f"rule{i}_{ws.version}"
    with st.container(border=True, key=f"rule_box_{i}"):
        top = st.columns([3, 4, 1, 1, 1])
        kinds = list(INITIALIZERS)
        init = top[0].selectbox(
            f"Rule {i + 1}", kinds, index=kinds.index(rule["init"]), key=f"{key}_init"
        )
        target = _target_picker(top[1], rule, names, blocks, key)
        moved = None
        if top[2].button("↑", key=f"{key}_up", disabled=i == 0, help="Move up"):
            moved = i - 1
        if top[3].button("↓", key=f"{key}_down", disabled=i == len(rules) - 1, help="Move down"):
            moved = i + 1
        if top[4].button("✕", key=f"{key}_del", help="Remove rule"):
            _commit(ws, rules[:i] + rules[i + 1 :])
        if moved is not None:
            rules[i], rules[moved] = rules[moved], rules[i]
            _commit(ws, rules)
        options = _options(init, rule, key)
        new = {"init": init, **target, **options}
        if new != rule:
            rules[i] = new
            _commit(ws, rules)


def _target_picker(col, rule, names, blocks, key) -> dict:
    choices = ["*", *[f"{b}.*" for b in blocks], *names, "*.weight", "*.bias", CUSTOM, REGEX]
    choices = list(dict.fromkeys(choices))
    current = "regex" in rule and REGEX or rule.get("target", "*")
    if current not in choices:
        current = CUSTOM
    labels = {"*": "* (the whole model)", CUSTOM: CUSTOM, REGEX: REGEX}
    with col:
        pick = st.selectbox(
            "Applies to",
            choices,
            index=choices.index(current),
            format_func=lambda c: labels.get(
                c, c if not c.endswith(".*") else f"{c} (block {c[:-2]})"
            ),
            key=f"{key}_target",
        )
        if pick == REGEX:
            text = st.text_input(
                "Regex (full match)", rule.get("regex", ".*weight"), key=f"{key}_regex"
            )
            return {"regex": text}
        if pick == CUSTOM:
            text = st.text_input("Glob", rule.get("target", "*"), key=f"{key}_glob")
            return {"target": text}
        return {"target": pick}


def _options(init: str, rule: dict, key: str) -> dict:
    """One widget per option of the initializer, as the registry describes it."""
    options = INITIALIZERS[init].options
    if not options:
        return {}
    if init == "formula":
        return {"expr": _formula_box(rule.get("expr", "normal(0, 1) * sqrt(2 / fan_in)"), key)}
    values = {}
    for col, option in zip(st.columns(len(options)), options, strict=True):
        current = rule.get(option.name) if rule.get("init") == init else None
        current = option.default if current is None else current
        widget_key = f"{key}_{option.name}"
        if option.kind is OptionKind.CHOICE:
            values[option.name] = col.selectbox(
                option.name,
                option.choices,
                index=option.choices.index(current),
                key=widget_key,
                help=option.help,
            )
        else:
            values[option.name] = col.number_input(
                option.name,
                value=float(current if current is not None else 0.0),
                min_value=option.low if option.low > -MAX_MAGNITUDE else None,
                max_value=option.high if option.high < MAX_MAGNITUDE else None,
                format="%g",
                key=widget_key,
                help=option.help,
            )
    return values


def _formula_box(expr: str, key: str) -> str:
    text = st.text_input(
        "Formula",
        expr,
        key=f"{key}_expr",
        help="e.g. normal(0, 1) * sqrt(2 / fan_in), or "
        "u = uniform(-10, 10); where(abs(u) >= 5, u, 0)",
    )
    problem = check_formula(text)
    if problem:
        st.error(problem, icon=":material/error:")
    else:
        st.caption("✓ formula is valid")
    with st.popover("What can a formula use?"):
        st.markdown(
            "**Functions**\n"
            + "\n".join(
                f"- `{d[1]}`" if isinstance(d, tuple) else f"- `{n}`" for n, d in FUNCTIONS.items()
            )
        )
        st.markdown("**Names**\n" + "\n".join(f"- `{n}`: {d}" for n, d in NAMES.items()))
    return text if not problem else expr


def _provenance_table(ws: Workspace) -> None:
    tree = ws.tree()
    rows = parameter_rows(tree, ws.provenance)
    if not rows:
        return
    st.markdown("#### Which rule set each parameter")
    frame = pd.DataFrame(rows)[["name", "shape", "rule", "tied"]]
    stats = [
        state.cached("stats", r["name"], lambda n=r["name"]: tree.stats(n))
        if r["shape"] != "?"
        else None
        for r in rows
    ]
    frame["mean"] = [s["mean"] if s else None for s in stats]
    frame["std"] = [s["std"] if s else None for s in stats]
    frame["min"] = [s["min"] if s else None for s in stats]
    frame["max"] = [s["max"] if s else None for s in stats]
    st.dataframe(frame.set_index("name"), key="provenance_table", use_container_width=True)
    if ws.init_log:
        with st.expander("Init log", expanded=False):
            st.code("\n".join(ws.init_log), language=None)
