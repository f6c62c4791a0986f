"""The Initialize tab: recipes, an ordered list of rules, and the Re-initialize button.

Every control acts in its ``on_change``/``on_click`` callback, before the page is drawn.
Each rule row's widgets come from the initializer registry (``explorer.init.initializers``):
one widget per option, with its range and help. A rule is exactly what its row shows: a
change that cannot be applied (a formula that does not parse, or gives inf/nan on the
shapes it targets) keeps the typed text next to its error, and Re-initialize stays off
until it is fixed, so no hidden older rule runs.
"""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st

from explorer.core.errors import SpecError
from explorer.core.frozen import thaw
from explorer.core.limits import MAX_MAGNITUDE
from explorer.core.patterns import MODE_LABELS, MatchMode
from explorer.init.formula import FUNCTIONS, NAMES
from explorer.init.initializers import INITIALIZERS, RECIPES, OptionKind
from explorer.init.rules import formula_problem
from explorer.io.script import init_lines
from explorer.session.workspace import Workspace
from ui import session_state
from ui.tree_rows import parameter_rows

CUSTOM = "custom glob…"
REGEX = "regex…"
NEW_RULE = {"init": "normal", "target": "*.weight", "mean": 0.0, "std": 0.01}
HE = "normal(0, 1) * sqrt(2 / fan_in)"
BY_LABEL = {recipe.label: key for key, recipe in RECIPES.items()}


def rules_panel(ws: Workspace) -> None:
    """Edit the rules; each change re-initializes with the seed."""
    st.markdown(
        "Rules apply **in order**; a later rule that matches a parameter overrides an "
        "earlier one, unless it does not *overwrite earlier rules* (DJL's `setInitializer`, "
        "Gluon without `force_reinit`). Each parameter remembers which rule set it."
    )
    _recipes(ws)
    rules = thaw(ws.experiment.rules)
    names = list(ws.tree().params)
    blocks = [n.path for n in ws.tree().root.walk() if n.path]
    for i, rule in enumerate(rules):
        _rule_row(i, _filled(rule), len(rules), names, blocks)
        _rule_code(ws, i)
    pending = [i + 1 for i in range(len(rules)) if _row_failed(i)]
    cols = st.columns([1, 1, 2])
    cols[0].button("Add rule", key="add_rule", icon=":material/add:", on_click=_add)
    cols[1].button(
        "Re-initialize",
        type="primary",
        key="reinit",
        icon=":material/casino:",
        disabled=bool(pending),
        on_click=session_state.act,
        args=("rules", lambda: session_state.workspace().reinitialize()),
    )
    cols[2].caption(
        f"seed {ws.experiment.seed} (change it in the sidebar) · same rules + seed = same values"
    )
    if pending:
        st.caption(
            f"Rule {', '.join(map(str, pending))}: a change shown above is not applied; "
            "fix it (see its message) before re-initializing."
        )
    session_state.show_error("rules")
    _provenance_table(ws)


def _rule_code(ws: Workspace, i: int) -> None:
    """The ``torch.nn.init`` line that does what rule ``i`` did, on the first tensor it set."""
    s = ws.state
    if i >= len(s.applied_rules):
        return
    tree = s.tree
    done = [n for n, index in s.provenance.items() if index == i and not tree.params[n].alias_of]
    if not done:
        return
    code = init_lines(s.applied_rules[i], tree.access_path(done[0]))
    if len(done) > 1:
        code += f"\n# ... and the same for {len(done) - 1} more tensor(s)"
    st.code(code, language="python")


def _recipes(ws: Workspace) -> None:
    """The recipe box: it shows a recipe only while the rules are that recipe's."""
    used = st.session_state.get("recipe_used")
    if used is not None and thaw(RECIPES[used].rules) != thaw(ws.experiment.rules):
        del st.session_state["recipe_used"]
        st.session_state.pop("recipe", None)
    cols = st.columns([3, 1])
    cols[0].selectbox(
        "Start from a recipe: the chapter's examples and each framework's default",
        list(BY_LABEL),
        index=None,
        key="recipe",
        placeholder="Pick a recipe…",
    )
    label = st.session_state.get("recipe")
    cols[1].button("Use recipe", key="use_recipe", disabled=label is None, on_click=_use_recipe)
    if label is not None:
        recipe = RECIPES[BY_LABEL[label]]
        st.caption(f"{recipe.edition}: {recipe.doc}")
    session_state.show_error("recipe")


def _use_recipe() -> None:
    key = BY_LABEL.get(st.session_state.get("recipe"))
    if key is None:
        return

    def run() -> None:
        ws = session_state.workspace()
        before = ws.version
        ws.change(rules=thaw(RECIPES[key].rules))
        if ws.version == before:  # the same rules: still start from fresh values
            ws.reinitialize()

    if session_state.act("recipe", run):
        st.session_state["recipe_used"] = key


def _filled(rule: dict) -> dict:
    """The rule with every option shown: its default, or a starting value where it has none."""
    start = {OptionKind.TEXT: HE, OptionKind.NUMBER: 0.0}
    options = INITIALIZERS[rule["init"]].options
    return {
        **{o.name: start.get(o.kind) if o.default is None else o.default for o in options},
        **rule,
    }


def _row_keys(i: int) -> dict[str, str]:
    names = ["init", "target", "regex", "match", "glob", "overwrite", "kernels", "expr"]
    options = {o.name for info in INITIALIZERS.values() for o in info.options}
    return {name: f"rule{i}_{name}" for name in [*names, *sorted(options - {"expr"})]}


def _row_failed(i: int) -> bool:
    return any(session_state.error_for(key) is not None for key in _row_keys(i).values())


def _rule_row(i: int, rule: dict, count: int, names: list[str], blocks: list[str]) -> None:
    keys = _row_keys(i)
    with st.container(border=True, key=f"rule_box_{i}"):
        top = st.columns([3, 4, 1, 1, 1])
        kinds = list(INITIALIZERS)
        _widget(
            top[0].selectbox,
            keys["init"],
            rule["init"],
            i,
            label=f"Rule {i + 1}",
            options=kinds,
            format_func=lambda k: f"{k} — {INITIALIZERS[k].doc}",
        )
        with top[1]:
            _target_picker(i, rule, names, blocks)
        top[2].button(
            "↑", key=f"rule{i}_up", disabled=i == 0, help="Move up", on_click=_move, args=(i, -1)
        )
        top[3].button(
            "↓",
            key=f"rule{i}_down",
            disabled=i == count - 1,
            help="Move down",
            on_click=_move,
            args=(i, 1),
        )
        top[4].button("✕", key=f"rule{i}_del", help="Remove rule", on_click=_delete, args=(i,))
        _options(i, rule)
        flags = st.columns(2)
        _widget(
            flags[0].checkbox,
            keys["overwrite"],
            rule.get("force_reinit", True),
            i,
            label="overwrite earlier rules (force_reinit)",
            help="Off: parameters an earlier rule set keep their values, as DJL's "
            "setInitializer and Gluon's initialize() without force_reinit=True.",
        )
        _widget(
            flags[1].checkbox,
            keys["kernels"],
            rule.get("min_ndim", 0) >= 2,
            i,
            label="tensors of 2+ dimensions only",
            help="Kernels only: skips biases and the 1-D weights of normalization layers.",
        )


def _widget(widget, key: str, value, i: int, **kwargs) -> None:
    """A widget showing one field of rule ``i``; changing it applies the edited rule."""
    session_state.show_value(key, value)
    widget(key=key, on_change=session_state.act, args=(key, partial(_edit, i, key)), **kwargs)
    session_state.show_error(key)


def _target_picker(i: int, rule: dict, names: list[str], blocks: list[str]) -> None:
    keys = _row_keys(i)
    choices = ["*", *[f"{b}.*" for b in blocks], *names, "*.weight", "*.bias", CUSTOM, REGEX]
    choices = list(dict.fromkeys(choices))
    current = REGEX if "regex" in rule else rule.get("target", "*")
    current = current if current in choices else CUSTOM
    labels = {"*": "* (the whole model)"}
    _widget(
        st.selectbox,
        keys["target"],
        current,
        i,
        label="Applies to",
        options=choices,
        format_func=lambda c: labels.get(c, f"{c} (block {c[:-2]})" if c.endswith(".*") else c),
    )
    if current == REGEX:
        _widget(st.text_input, keys["regex"], rule["regex"], i, label="Regex")
        _widget(
            st.selectbox,
            keys["match"],
            rule.get("match", MatchMode.FULL),
            i,
            label="Match",
            options=[MatchMode.FULL, MatchMode.PREFIX],
            format_func=lambda m: MODE_LABELS[m],
        )
    elif current == CUSTOM:
        _widget(st.text_input, keys["glob"], rule.get("target", "*"), i, label="Glob")


def _options(i: int, rule: dict) -> None:
    """One widget per option of the rule's initializer, as the registry describes it."""
    options = INITIALIZERS[rule["init"]].options
    if rule["init"] == "formula":
        _formula_box(i, rule)
        return
    for col, option in zip(st.columns(max(len(options), 1)), options, strict=False):
        kind = dict(label=option.name, help=option.help)
        if option.kind is OptionKind.CHOICE:
            kind.update(options=option.choices)
            _widget(col.selectbox, f"rule{i}_{option.name}", rule[option.name], i, **kind)
            continue
        kind.update(format="%g")
        if option.low > -MAX_MAGNITUDE:
            kind["min_value"] = option.low
        if option.high < MAX_MAGNITUDE:
            kind["max_value"] = option.high
        _widget(col.number_input, f"rule{i}_{option.name}", float(rule[option.name]), i, **kind)


def _formula_box(i: int, rule: dict) -> None:
    """The formula as typed: applied only when it can run on every shape it targets."""
    key = _row_keys(i)["expr"]
    _widget(
        st.text_input,
        key,
        rule["expr"],
        i,
        label="Formula",
        help=f"e.g. {HE}, or u = uniform(-10, 10); where(abs(u) >= 5, u, 0)",
    )
    if session_state.error_for(key) is None:
        st.caption("✓ formula applied: it gives finite values on the shapes it targets")
    with st.popover("What can a formula use?"):
        st.markdown("**Functions**\n" + "\n".join(f"- `{d[1]}`" for d in FUNCTIONS.values()))
        st.markdown("**Names**\n" + "\n".join(f"- `{n}`: {d}" for n, d in NAMES.items()))


def _edit(i: int, changed: str) -> None:
    """Widget ``changed`` of rule ``i`` changed: apply the rule its row now shows."""
    ws = session_state.workspace()
    rules = thaw(ws.experiment.rules)
    rule = _row_rule(i, rules[i], changed)
    if rule["init"] == "formula":
        problem = formula_problem(ws.module, rule, session_state.LIMITS)
        if problem is not None:
            raise SpecError(f"not applied: {problem}")
    rules[i] = rule
    ws.change(rules=rules)


def _row_rule(i: int, old: dict, changed: str) -> dict:
    """Rule ``i`` with the one changed widget's value; every other field as it was."""
    keys, typed = _row_keys(i), st.session_state.get(changed)
    init = typed if changed == keys["init"] else old["init"]
    rule = {"init": init}
    for option in INITIALIZERS[init].options:
        if changed == f"rule{i}_{option.name}":
            rule[option.name] = typed
        elif init == old["init"]:
            rule[option.name] = _filled(old)[option.name]
        else:
            rule[option.name] = _filled({"init": init})[option.name]
    pick = typed if changed == keys["target"] else (REGEX if "regex" in old else None)
    if pick == REGEX:
        rule["regex"] = typed if changed == keys["regex"] else old.get("regex", ".*weight")
        match = typed if changed == keys["match"] else old.get("match", MatchMode.FULL)
        if match == MatchMode.PREFIX:
            rule["match"] = MatchMode.PREFIX.value
    elif pick == CUSTOM or changed == keys["glob"]:
        rule["target"] = typed if changed == keys["glob"] else old.get("target", "*")
    else:
        rule["target"] = pick if pick is not None else old.get("target", "*")
    overwrite = typed if changed == keys["overwrite"] else old.get("force_reinit", True)
    if not overwrite:
        rule["force_reinit"] = False
    kernels = typed if changed == keys["kernels"] else old.get("min_ndim", 0) >= 2
    if kernels:
        rule["min_ndim"] = 2
    return rule


def _change_rules(edit) -> None:
    def run() -> None:
        ws = session_state.workspace()
        ws.change(rules=edit(thaw(ws.experiment.rules)))

    session_state.act("rules", run)


def _add() -> None:
    _change_rules(lambda rules: [*rules, dict(NEW_RULE)])


def _delete(i: int) -> None:
    _change_rules(lambda rules: rules[:i] + rules[i + 1 :])


def _move(i: int, step: int) -> None:
    def edit(rules: list[dict]) -> list[dict]:
        rules[i], rules[i + step] = rules[i + step], rules[i]
        return rules

    _change_rules(edit)


STATS_AT_ONCE = 20_000_000  # elements: above this, the table's statistics wait for a click


def _provenance_table(ws: Workspace) -> None:
    """Which rule set each parameter (filtered like the tree), with value statistics.

    The table is computed once per state version; for a large model the statistics, which
    read every value, are computed only when asked.
    """
    tree = ws.tree()
    pattern = session_state.name_filter()
    rows = [
        r for r in parameter_rows(tree, ws.provenance) if not pattern or pattern.matches(r["name"])
    ]
    if not rows:
        return
    st.markdown("#### Which rule set each parameter")
    frame = pd.DataFrame(rows)[["name", "shape", "rule", "tied"]].set_index("name")
    elements = sum(tree.params[r["name"]].numel for r in rows)
    on_meta = any(tree.params[r["name"]].device == "meta" for r in rows)
    if on_meta:
        st.caption("No values on the meta device, so no statistics.")
    elif elements <= STATS_AT_ONCE or st.toggle(
        f"Show value statistics (reads {elements:,} values)", key="provenance_stats"
    ):
        names = tuple(r["name"] for r in rows)
        stats = session_state.cached("table_stats", names, lambda: _stats_columns(tree, names))
        frame = frame.join(stats)
    st.dataframe(frame, key="provenance_table", width="stretch")
    if ws.init_log:
        with st.expander("Init log", expanded=False):
            st.code("\n".join(ws.init_log), language=None)


def _stats_columns(tree, names: tuple[str, ...]) -> pd.DataFrame:
    """Mean, std, min and max of each named tensor (lazy ones left empty), one row per name."""
    rows = []
    for name in names:
        info = tree.params[name]
        stats = tree.stats(name) if not info.is_lazy else {}
        rows.append({k: stats.get(k) for k in ("mean", "std", "min", "max")})
    return pd.DataFrame(rows, index=pd.Index(names, name="name"))
