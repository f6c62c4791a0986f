"""Start here: the chapter, step by step, in the edition the student picks (PyTorch first).

Each step shows the chapter's code and what it printed beside the app's own output for the
current state, and checks what must agree. *Set up this step* loads the step's state in one
action (undo goes back); *Look in …* opens the tab where the step's picture is. A link with
``?step=pytorch-state_dict`` opens this tab on that step, set up (``start``).

The steps are data: ``explorer.editions.chapter``.
"""

from __future__ import annotations

import streamlit as st

from explorer.editions import chapter
from explorer.editions.places import Framework
from explorer.session.workspace import Workspace
from ui import session_state

TEXT = {
    "intro": "The chapter *Parameter Management*, cell by cell. Pick your edition, press "
    "**Set up this step**, and compare the chapter's output with the app's. Every step is "
    "also a link an instructor can share.",
    "set_up": "Set up this step",
    "set_up_help": "Loads this step's model, rules, edits and run in one action (Undo in the "
    "Build tab goes back).",
    "not_set_up": "The app shows another state: press **Set up this step** to see this "
    "step's output.",
    "agrees": "The app agrees with the chapter",
    "differs": "The app differs from the chapter",
    "todo": "Your turn",
}
EDITION_KEY, STEP_KEY, STARTED = "chapter_edition", "chapter_step", "chapter_started"
QUERY = "step"  # ?step=pytorch-state_dict


def start() -> bool:
    """Once per session: open the step a link names (``?step=…``), set up, unless the link also
    carries a model. True when this run should open the chapter tab."""
    if st.session_state.get(STARTED):
        return False
    st.session_state[STARTED] = True  # only a session's first page reads the link
    ref = st.query_params.get(QUERY)
    found = None if ref is None else chapter.find(ref)
    if found is None:
        return False
    edition, step = found
    st.session_state[EDITION_KEY] = edition.value
    st.session_state[STEP_KEY] = chapter.steps(edition).index(step)
    if "model" not in st.query_params:
        _set_up(edition.value, step.key)
    return True


def chapter_panel(ws: Workspace, tabs: dict[str, str]) -> None:
    """The guided chapter: edition, step, the chapter beside the app, and the check."""
    st.markdown(TEXT["intro"])
    edition, step, index = _pickers()
    s = ws.state
    st.subheader(f"{index + 1}. {step.title}" + (" (exercise)" if step.exercise else ""))
    here = ws.experiment == chapter.experiment_of(step)
    _actions(edition, step, here, tabs)
    st.info(step.look, icon=":material/visibility:")
    left, right = st.columns(2, gap="medium")
    with left:
        _chapter_side(edition, step)
    with right:
        _app_side(step, s, here)
    link = chapter.link(edition, step)
    st.caption(f"Link to this step: add ?{QUERY}={link} to the app's address.")
    st.code(f"?{QUERY}={link}", language=None)


def _pickers() -> tuple[Framework, chapter.Step, int]:
    """The edition (PyTorch by default) and the step."""
    st.session_state.setdefault(EDITION_KEY, Framework.PYTORCH.value)
    st.session_state.setdefault(STEP_KEY, 0)
    cols = st.columns([2, 3], vertical_alignment="bottom")
    with cols[0]:
        st.selectbox(
            "Edition",
            [fw.value for fw in chapter.EDITIONS],
            format_func=chapter.edition_label,
            key=EDITION_KEY,
            on_change=_edition_changed,
        )
    edition = Framework(st.session_state[EDITION_KEY])
    names = chapter.titles(edition)
    if st.session_state[STEP_KEY] >= len(names):
        st.session_state[STEP_KEY] = 0
    with cols[1]:
        st.selectbox(
            "Step",
            range(len(names)),
            format_func=names.__getitem__,
            key=STEP_KEY,
            on_change=_step_changed,
        )
    index = st.session_state[STEP_KEY]
    return edition, chapter.steps(edition)[index], index


def _edition_changed() -> None:
    st.session_state[STEP_KEY] = 0
    _step_changed()


def _step_changed() -> None:
    edition = Framework(st.session_state[EDITION_KEY])
    step = chapter.steps(edition)[st.session_state[STEP_KEY]]
    st.query_params[QUERY] = chapter.link(edition, step)


def _move(delta: int) -> None:
    n = len(chapter.steps(st.session_state[EDITION_KEY]))
    st.session_state[STEP_KEY] = max(0, min(n - 1, st.session_state[STEP_KEY] + delta))
    _step_changed()


def _actions(edition: Framework, step: chapter.Step, here: bool, tabs: dict[str, str]) -> None:
    """Back, Set up this step, Look in …, Next: one row that wraps, never cuts a label."""
    index, last = st.session_state[STEP_KEY], len(chapter.steps(edition)) - 1
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        st.button("Back", key="chapter_back", icon=":material/arrow_back:", disabled=index == 0,
                  on_click=_move, args=(-1,))  # fmt: skip
        st.button(
            TEXT["set_up"],
            key="chapter_set_up",
            type="secondary" if here else "primary",
            icon=":material/check_circle:" if here else ":material/play_arrow:",
            help=TEXT["set_up_help"],
            on_click=_set_up,
            args=(edition.value, step.key),
        )
        target = tabs.get(step.setup.tab)
        if target is not None:
            st.button(f"Look in {step.setup.tab}", key="chapter_look",
                      icon=":material/open_in_new:", on_click=_open_tab,
                      args=(target, step.setup.select))  # fmt: skip
        st.button("Next", key="chapter_next", icon=":material/arrow_forward:",
                  disabled=index == last, on_click=_move, args=(1,))  # fmt: skip
    st.caption("This step is set up." if here else TEXT["not_set_up"])
    session_state.show_error("chapter")


def _set_up(edition: str, key: str) -> None:
    """Load the step's experiment (one action), select what it looks at, type its filter."""
    found = chapter.find(f"{edition}-{key}")
    if found is None:
        return
    _, step = found
    setup = step.setup
    if session_state.act("chapter", lambda: session_state.workspace().load(setup.experiment())):
        session_state.select(setup.select)
        st.session_state["filter"] = setup.filter  # a whole-name regex, as the filter reads


def _open_tab(label: str, select: str) -> None:
    st.session_state["tabs"] = label
    session_state.select(select)


def _chapter_side(edition: Framework, step: chapter.Step) -> None:
    st.markdown(f"**The chapter's code** ({chapter.edition_label(edition)})")
    language = "java" if edition == Framework.DJL else "python"
    st.code(step.code, language=language, wrap_lines=True)
    if not step.quoted:
        st.caption("Written for this step: the chapter says it in words, or defines it elsewhere.")
    st.markdown("**The chapter printed**")
    if step.printed:
        st.code("\n…\n".join(step.printed), language=None, wrap_lines=True)
    else:
        st.caption("Nothing is printed here in this edition.")
    if step.note:
        st.caption(session_state.plain(step.note))


def _app_side(step: chapter.Step, s, here: bool) -> None:
    st.markdown("**The app, live** (the current state, printed as the chapter's code prints it)")
    key = (step.key, step.title)
    text = session_state.cached("chapter_live", key, lambda: chapter.live(step, s))
    st.code(text, language=None, wrap_lines=True)
    result = session_state.cached("chapter_check", key, lambda: chapter.check(step, s))
    if result.problem and not here:
        st.caption(TEXT["not_set_up"])
        return
    lines = "  \n".join(
        f"{'✓' if ok else '✗'} {session_state.plain(text)}" for text, ok in result.facts
    )
    if result.problem:
        st.warning(session_state.plain(result.problem), icon=":material/help:")
    elif result.ok:
        st.success(f"**{TEXT['agrees']}**  \n{lines}", icon=":material/check:")
    elif step.exercise:
        st.info(f"**{TEXT['todo']}**  \n{lines}", icon=":material/edit:")
    else:
        st.warning(f"**{TEXT['differs']}**  \n{lines}", icon=":material/compare_arrows:")
    if not here:
        st.caption(TEXT["not_set_up"])
    st.caption(
        "Random values differ from the printed ones (another seed, another framework); "
        "the check compares names, shapes, constants and ranges."
    )
