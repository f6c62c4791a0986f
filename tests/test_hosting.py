"""Hosting a class (issue 10, "What must hold" 5): queued work says so, user text stays text.

- A student whose long job waits for a heavy-work slot is told so (``slots.heavy``'s
  ``on_wait``), also when the action deep inside does not pass a callback itself: the app
  sets one for the whole action with ``slots.notices``.
- Text a student types (block keys, which become parameter names) is never rendered as
  markdown: every markdown element of every panel shows it inside a code span, or
  escaped, so ``![i](http://host/x)`` cannot make the browser fetch anything. The browser
  side of this (no request leaves 127.0.0.1) is tests/test_hosting_browser.py.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from explorer.core import slots
from explorer.core.limits import HOSTED
from ui.table_tabs import literal

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def _hold_the_only_slot(limits):
    """Take the one heavy slot in a thread until the returned event is set."""
    started, release = threading.Event(), threading.Event()

    def hold():
        with slots.heavy(limits):
            started.set()
            release.wait(60)

    threading.Thread(target=hold, daemon=True).start()
    assert started.wait(10)
    return release


def _release_once_queued(release: threading.Event) -> None:
    """Free the slot as soon as a job waits for it (or after 60 s)."""

    def watch():
        for _ in range(600):
            if slots.busy()[1]:
                break
            threading.Event().wait(0.1)
        release.set()

    threading.Thread(target=watch, daemon=True).start()


def test_heavy_work_without_its_own_callback_tells_the_notice_set_for_the_action():
    """Inside ``notices(tell)``, a ``heavy()`` that waits calls ``tell(jobs ahead)``."""
    limits = replace(HOSTED, heavy_slots=1)
    _release_once_queued(_hold_the_only_slot(limits))
    told: list[int] = []
    with slots.notices(told.append), slots.heavy(limits):
        pass
    assert told == [1]


def test_a_free_slot_and_no_notice_tell_nobody():
    """A job that does not wait is not announced; outside ``notices`` nothing is called."""
    limits = replace(HOSTED, heavy_slots=1)
    told: list[int] = []
    with slots.notices(told.append), slots.heavy(limits):
        pass
    assert told == []
    _release_once_queued(_hold_the_only_slot(limits))
    with slots.heavy(limits):  # waits, with nobody to tell
        pass
    assert told == []


def test_an_explicit_on_wait_wins_over_the_notice():
    """A caller's own ``on_wait`` (the training lab's) is called instead of the notice."""
    limits = replace(HOSTED, heavy_slots=1)
    _release_once_queued(_hold_the_only_slot(limits))
    notice, own = [], []
    with slots.notices(notice.append), slots.heavy(limits, on_wait=own.append):
        pass
    assert (notice, own) == ([], [1])


@pytest.mark.timeout(180)
def test_a_student_whose_forward_pass_waits_for_a_slot_is_told_it_is_queued(monkeypatch):
    """The app's action runs inside ``notices``: a queued forward pass shows a toast."""
    from streamlit.testing.v1 import AppTest

    import ui.session_state

    limits = replace(HOSTED, heavy_slots=1, heavy_params=0)  # every forward pass is heavy
    monkeypatch.setattr(ui.session_state, "LIMITS", limits)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    _release_once_queued(_hold_the_only_slot(limits))
    at.button(key="run_button").click().run()
    assert not at.exception
    toasts = [t.value for t in at.toast]
    assert any(re.search(r"Queued: 1 long job", t) for t in toasts), toasts
    assert at.session_state["workspace"].last_run is not None  # it ran once the slot was free


# --- user text is never markdown ------------------------------------------------------

# A key may hold any printable text but "."; as part of parameter names it reaches every
# panel. Rendered as markdown, either image makes each student's browser fetch a host of
# the local network (3232235777 is 192.168.1.1). TICKS breaks out of a code span that does
# not replace backticks; RAW is live wherever the name is written without one.
TICKS = "a`![i](http:3232235777)`b"
RAW = "![j](http:3232235778)"
HOSTILE_SPEC = {
    "type": "sequential",
    "children": [
        {"type": "linear", "in_features": 4, "out_features": 3, "key": TICKS},
        {"type": "relu"},
        {"type": "linear", "out_features": 2, "key": RAW},
        {"type": "relu"},
        {"type": "linear", "out_features": 1},
    ],
}


def live_markdown(text: str) -> list[str]:
    """Links and images markdown would render in ``text``: outside code spans, unescaped."""
    text = re.sub(r"\\.", "", text)  # escaped characters are shown as typed
    text = re.sub(r"(`+)(.+?)\1", "", text, flags=re.S)  # code spans are shown as typed
    return re.findall(r"!?\[[^\]]*\]\([^)]*\)", text)


def test_live_markdown_finds_what_markdown_would_render():
    """The checker itself: a raw image is found; in a code span or escaped it is not."""
    assert live_markdown("x ![i](http://h/x) y") == ["![i](http://h/x)"]
    assert live_markdown("`x![i](http://h/x)`") == []
    assert live_markdown(r"\!\[i\]\(http://h/x\)") == []
    assert live_markdown(f"`{TICKS}`") == ["![i](http:3232235777)"]  # breaks out
    assert live_markdown(literal(TICKS)) == []


def _texts(at) -> list[str]:
    """Every text on the page that Streamlit renders as markdown."""
    texts = [e.value for kind in ("markdown", "caption", "title", "header", "subheader")
             for e in getattr(at, kind)]  # fmt: skip
    texts += [e.value for kind in ("info", "warning", "error", "success") for e in at.get(kind)]
    texts += [e.label for e in at.expander]
    texts += [e.value for e in at.toast]
    return texts


def _hostile_app(monkeypatch):
    from streamlit.testing.v1 import AppTest

    import ui.session_state

    monkeypatch.setattr(ui.session_state, "LIMITS", HOSTED)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.session_state["workspace"].change(spec=HOSTILE_SPEC, preset=None)
    at.session_state["workspace"].backward()
    at.run()
    assert not at.exception
    return at


def _open(at, tab: str) -> None:
    label = next(t.label for t in at.tabs if t.label.endswith(tab))
    at.session_state["tabs"] = label
    at.run()
    assert not at.exception


@pytest.mark.timeout(240)
@pytest.mark.parametrize("tab", ["Build", "Initialize", "All parameters", "Code"])
def test_a_hostile_key_is_never_rendered_as_markdown(monkeypatch, tab):
    """A block key holding markdown stays text in the sidebar and in each tab."""
    at = _hostile_app(monkeypatch)
    _open(at, tab)
    texts = _texts(at)
    if tab == "Build":
        assert any("3232235777" in t for t in texts), "the key is not shown"
    assert [m for t in texts for m in live_markdown(t)] == []


def test_a_key_with_a_slash_still_selects_its_parameter():
    """Keys may hold "/", the tree id's separator: the id still maps back to the name."""
    from ui.tree_rows import name_of, param_id

    for name in ["a`![i](http://h/x)`b.weight", "a/b.c/d.bias", "x/.weight", "/.weight"]:
        assert name_of(param_id(name)) == name
    assert name_of("a/b") == "a.b"  # a parameter "b" of block "a"


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    "node",
    [
        TICKS,
        RAW,
        f"{TICKS}/weight",
        f"{RAW}/weight",
    ],
)
def test_a_hostile_key_in_the_explore_tab_stays_text(monkeypatch, node):
    """The selected block or parameter shows the hostile name as text."""
    at = _hostile_app(monkeypatch)
    at.session_state["selected"] = node
    at.run()
    assert not at.exception
    texts = _texts(at)
    assert any("323223577" in t for t in texts), "the selection is not shown"
    assert [m for t in texts for m in live_markdown(t)] == []
