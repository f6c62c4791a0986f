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

from explorer import slots
from explorer.limits import HOSTED

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

    import ui.state

    limits = replace(HOSTED, heavy_slots=1, heavy_params=0)  # every forward pass is heavy
    monkeypatch.setattr(ui.state, "LIMITS", limits)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    _release_once_queued(_hold_the_only_slot(limits))
    at.button(key="run_button").click().run()
    assert not at.exception
    toasts = [t.value for t in at.toast]
    assert any(re.search(r"Queued: 1 long job", t) for t in toasts), toasts
    assert at.session_state["workspace"].last_run is not None  # it ran once the slot was free
