"""The session's workspace, actions, errors, selection and per-version caches.

This module owns the app's own entries in ``st.session_state``: the workspace, the selected
tree id, the errors of failed actions and the caches. (Widgets keep their own values there
under their ``key``s; panels read those through the widget calls.)

Every action runs in a widget callback through ``act``, so it is done before any panel is
drawn and the whole screen shows the new state in the same rerun. An error belongs to the
state it was raised on: it is shown next to the control that caused it until the state moves.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from explorer.core.errors import ExplorerError, SpecError
from explorer.core.limits import Limits, profile
from explorer.core.patterns import MatchMode, Pattern, compile_pattern
from explorer.core.slots import notices
from explorer.editions.places import edition_names
from explorer.io import links
from explorer.io.serve import served_experiment
from explorer.session.experiment import Experiment
from explorer.session.state import warm_up
from explorer.session.workspace import Workspace
from explorer.spec.presets import PRESETS

__all__ = [
    "freeze_imports",
    "warm_up_once",
    "start_notes",
    "LIMITS",
    "workspace",
    "act",
    "action",
    "error_for",
    "failure",
    "show_error",
    "show_message",
    "plain",
    "cached",
    "selection",
    "show_value",
    "select",
    "page_drawn",
    "follow_page",
    "name_filter",
    "EditionPattern",
    "filter_problem",
    "filter_regex",
]

_WS, _ERRORS, _CACHE, _SELECTED, _PAGE = "workspace", "errors", "cache", "selected", "page_version"
_NOTES = "start_notes"  # why the link or the served model did not open: (version, lines)
_CACHE_ENTRIES = 48
_log = logging.getLogger(__name__)
_frozen = threading.Lock()


def freeze_imports() -> None:
    """Once per process: move what the imports made out of the garbage collector's sight.

    Streamlit collects garbage after every script run (``runner.postScriptGC``). With
    PyTorch, pandas and Plotly imported that is ~370,000 tracked objects, 0.25–0.5 s of CPU
    holding the interpreter lock per run: the Train tab's progress, polled twice a second,
    starved the training thread (100 steps of the tied net took 11 s instead of 0.3 s).
    Those objects live as long as the process; what sessions leave behind is still
    collected. ``deploy/serve.py`` does the same before the server starts.
    """
    if _frozen.acquire(blocking=False):
        gc.collect()
        gc.freeze()


LIMITS: Limits = profile()  # EXPLORER_PROFILE=hosted on a shared server


@st.cache_resource
def warm_up_once() -> threading.Thread:
    """Once per server process, from the first page: PyTorch's first meta-device pass costs
    seconds of imports. Not a daemon, so a process never exits while it is inside PyTorch."""
    thread = threading.Thread(target=warm_up, name="explorer-warm-up", daemon=False)
    thread.start()
    return thread


@dataclass(frozen=True)
class Failure:
    """A failed action's message, the state version it was raised on, and where in the spec."""

    message: str
    version: int
    path: str = ""  # SpecError.path: the field the message is about
    reason: str = ""  # the message without its path


def workspace() -> Workspace:
    """This session's workspace; a first visit opens a link's model, a served one, or the MLP."""
    if _WS not in st.session_state:
        st.session_state[_WS] = first_workspace(LIMITS)
    return st.session_state[_WS]


def first_workspace(limits: Limits) -> Workspace:
    """The workspace of a session's first visit: the link's model, the served one, or the MLP."""
    notes: list[str] = []
    tried: list[tuple[str, Experiment]] = []
    token = st.query_params.get(links.QUERY_KEY)
    if token is not None:
        try:
            tried.append(("The link", links.decode(token, limits)))
        except ExplorerError as err:
            notes.append(f"The link could not be opened: {err}")
    try:
        served = served_experiment(limits)
    except ExplorerError as err:
        notes.append(f"The served model could not be opened: {err}")
        served = None
    if served is not None:
        tried.append((f"The model from {served.source}", served))
    ws = None
    for what, exp in tried:
        try:
            ws = Workspace(exp, limits)
            break
        except ExplorerError as err:
            notes.append(f"{what} could not be built: {err}")
    if ws is None:
        ws = Workspace.from_preset("mlp", limits)
        if notes:
            notes.append("Showing the chapter's MLP instead.")
    st.session_state[_NOTES] = (ws.version, tuple(notes))
    return ws


def start_notes() -> tuple[int | None, tuple[str, ...]]:
    """Why the link or the served model did not open, and the state version that says so."""
    return st.session_state.get(_NOTES, (None, ()))


def act(where: str, run: Callable[[], object]) -> bool:
    """Run an action; on failure remember its message for the control named ``where``.

    The workspace swaps in a whole new state or nothing, so a failure needs no clean-up.
    """
    ws = workspace()
    errors: dict[str, Failure] = st.session_state.setdefault(_ERRORS, {})
    try:
        with notices(_queued):  # a long job waiting for a heavy-work slot says so
            run()
    except ExplorerError as err:
        path = getattr(err, "path", "")
        errors[where] = Failure(str(err), ws.version, path, getattr(err, "reason", str(err)))
        return False
    except Exception as err:  # a bug: keep the session alive and say so, without a traceback
        _log.exception("unexpected error in %s", where)
        errors[where] = Failure(
            f"Unexpected error ({type(err).__name__}). Nothing was changed; please report this.",
            ws.version,
        )
        return False
    errors.pop(where, None)
    return True


def _queued(ahead: int) -> None:
    """Tell the student their long job waits behind ``ahead`` others (explorer.core.slots)."""
    st.toast(
        f"Queued: {ahead} long job(s) ahead of yours on this server. Yours starts when a "
        "slot frees up.",
        icon=":material/hourglass_top:",
    )


def action(where: str, method: str, *args, **kwargs) -> tuple[Callable, tuple]:
    """``on_click``/``on_change`` and ``args`` for a button that runs ``ws.<method>(*args)``.

    Example: ``st.button("Backward", **dict(zip(("on_click", "args"), action("run", "backward"))))``
    """
    return act, (where, lambda: getattr(workspace(), method)(*args, **kwargs))


def failure(where: str) -> Failure | None:
    """The last failed action at ``where``, while the state it failed on lasts."""
    found = st.session_state.get(_ERRORS, {}).get(where)
    if found is None or found.version != workspace().version:
        return None
    return found


def error_for(where: str) -> str | None:
    """The message of the last failed action at ``where``, while the state it failed on lasts."""
    found = failure(where)
    return None if found is None else found.message


def show_error(where: str) -> None:
    """Show the control's error in a red box, as typed (never as markdown or a traceback)."""
    show_message(error_for(where))


def show_message(message: str | None) -> None:
    """A red box with ``message`` shown as plain text; nothing when it is None."""
    if message is not None:
        st.error(plain(message), icon="⚠️")


def plain(text: str) -> str:
    """Text that markdown shows as typed: every markdown character escaped."""
    return "".join("\\" + c if c in "\\`*_{}[]()<>#+-.!|~$:" else c for c in text)


def cached(kind: str, key: object, make: Callable[[], object]) -> object:
    """A value computed once per state version (figures, stats), kept for this session only.

    The cache holds one version at a time: any action clears it, and within a version it
    keeps the last ``_CACHE_ENTRIES`` values, so memory stays bounded.
    """
    version = workspace().version
    store = st.session_state.get(_CACHE)
    if store is None or store[0] != version:
        store = (version, OrderedDict())
        st.session_state[_CACHE] = store
    entries: OrderedDict = store[1]
    full = (kind, key)
    if full in entries:
        entries.move_to_end(full)
        return entries[full]
    value = make()
    entries[full] = value
    while len(entries) > _CACHE_ENTRIES:
        entries.popitem(last=False)
    return value


def show_value(key: str, value: object) -> None:
    """Make widget ``key`` show ``value`` from the state, before the widget is drawn.

    Callbacks have run by then, so a widget whose action worked already shows ``value``;
    this matters after undo, a preset or a link, and on the first run, where an unset
    widget would show its own default (a selectbox its first option) instead of ``value``.
    A widget whose action failed keeps what the user typed, next to its error.
    """
    if error_for(key) is None and (key not in st.session_state or st.session_state[key] != value):
        st.session_state[key] = value


def selection() -> str:
    """The selected tree id: a block path ("", "0.1") or a parameter ("0.1/bias")."""
    return st.session_state.get(_SELECTED, "")


def select(node_id: str) -> None:
    st.session_state[_SELECTED] = node_id


def page_drawn() -> None:
    """Record which state version the whole page shows (call at the top of the app)."""
    st.session_state[_PAGE] = workspace().version


def follow_page() -> None:
    """In a fragment: if an action inside it changed the state, redraw the whole page."""
    if st.session_state.get(_PAGE, workspace().version) != workspace().version:
        st.rerun(scope="app")


@dataclass(frozen=True)
class EditionPattern:
    """The filter, which also keeps a parameter when another edition's name for it matches
    (``dense0.*`` keeps 0.weight and 0.bias, as Gluon's ``collect_params('dense0.*')``)."""

    pattern: Pattern
    also: frozenset[str]  # PyTorch names that an MXNet, DJL or Flax name matched

    text = property(lambda self: self.pattern.text)
    mode = property(lambda self: self.pattern.mode)

    def matches(self, name: str) -> bool:
        """Whether the filter keeps ``name``: by its own name or by an edition's."""
        return name in self.also or self.pattern.matches(name)


def name_filter() -> Pattern | EditionPattern | None:
    """The sidebar's one filter over parameter names (tree, tables, counts); None when empty.

    A filter that matches no PyTorch name is tried on what MXNet, DJL and Flax call each
    parameter (``dense0.*``, ``01Linear.*``, ``layers_2/.*``)."""
    text = (st.session_state.get("filter") or "").strip()
    if not text:
        return None
    mode = st.session_state.get("filter_mode") or MatchMode.FULL
    try:
        pattern = compile_pattern(text, mode, LIMITS, "filter")
    except SpecError:
        return None
    s = workspace().state
    if pattern.matching(s.tree.params):
        return pattern  # PyTorch's names first: "0" means block 0, not DJL's 01Linear
    key = s.experiment.preset
    first = dict(PRESETS[key].mxnet_first) if key in PRESETS else {}
    names = cached(
        "edition_names", None, lambda: edition_names(s.module, s.experiment.root_name, first)
    )
    gluon = compile_pattern(text, MatchMode.PREFIX, LIMITS, "filter")  # collect_params: re.match
    also = frozenset(
        n
        for n, other in names.items()
        if any((gluon if fw == "mxnet" else pattern).matches(o) for fw, o in other.items())
    )
    return EditionPattern(pattern, also) if also else pattern


def filter_problem() -> str | None:
    """Why the filter text cannot be used, or None."""
    text = (st.session_state.get("filter") or "").strip()
    if not text:
        return None
    try:
        compile_pattern(
            text, st.session_state.get("filter_mode") or MatchMode.FULL, LIMITS, "filter"
        )
    except SpecError as err:
        return str(err)
    return None


def filter_regex() -> str | None:
    """The one filter as a whole-name regex (from-the-start mode becomes ``(?:text).*``); the
    names another edition's name matched are added as literal alternatives."""
    pattern = name_filter()
    if pattern is None:
        return None
    own = pattern.text if pattern.mode == MatchMode.FULL else f"(?:{pattern.text}).*"
    if isinstance(pattern, EditionPattern):
        names = "|".join(_REGEX_SPECIAL.sub(r"\\\g<0>", n) for n in sorted(pattern.also))
        return f"(?:{own})|{names}"
    return own


_REGEX_SPECIAL = re.compile(r"[.^$*+?()\[\]{}|\\]")
