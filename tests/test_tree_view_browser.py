"""The parameter-tree widget (ui/tree_view.py) in real Chromium, plus what AppTest can see of it.

Browser tests drive `ui/tree_view_demo.py` through the shared `streamlit_server` and `page`
fixtures (tests/conftest.py): Debian chromium, skipped when it is missing (failed under CI).
The component renders inside an open shadow root; Playwright's CSS locators pierce it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

DEMO = "ui/tree_view_demo.py"
DEMO_PATH = Path(__file__).resolve().parent.parent / DEMO
SCREENSHOT = Path("/tmp/tree_view.png")


def _row(page, node_id: str):
    return page.locator(f'.row[data-id="{node_id}"]')


def _open(page, streamlit_server, query: str = "") -> None:
    page.goto(streamlit_server(DEMO) + query)
    page.locator(".tv .row").first.wait_for(timeout=30_000)


def _expect():
    from playwright.sync_api import expect

    return expect


@pytest.mark.browser
def test_click_selects_node(page, streamlit_server):
    """Clicking a row sends its id to Python, which reruns and shows it."""
    _open(page, streamlit_server)
    _row(page, "1.0/bias").click()
    _expect()(page.get_by_text("selected: 1.0/bias")).to_be_visible(timeout=10_000)
    _expect()(_row(page, "1.0/bias")).to_have_class("row selected")
    _expect()(page.get_by_text("clicked this run: 1.0/bias")).to_be_visible()
    _row(page, "1.2/weight").hover()
    page.screenshot(path=str(SCREENSHOT))


@pytest.mark.browser
def test_caret_collapses_and_expands_block(page, streamlit_server):
    """The caret hides a block's children and shows them again."""
    _open(page, streamlit_server)
    caret = _row(page, "1").locator(".caret")
    _expect()(_row(page, "1.0/weight")).to_be_visible()
    caret.click()
    _expect()(_row(page, "1.0/weight")).to_be_hidden()
    _expect()(_row(page, "1.2")).to_be_hidden()
    _expect()(_row(page, "2")).to_be_visible()
    caret.click()
    _expect()(_row(page, "1.0/weight")).to_be_visible()


@pytest.mark.browser
def test_collapsed_blocks_stay_collapsed_across_reruns_and_reloads(page, streamlit_server):
    """Open/closed state is kept per key in the browser, through a rerun and a page reload."""
    _open(page, streamlit_server)
    _row(page, "2").locator(".caret").click()
    _row(page, "1.0/bias").click()
    _expect()(page.get_by_text("selected: 1.0/bias")).to_be_visible(timeout=10_000)
    _expect()(_row(page, "2/weight")).to_be_hidden()
    page.reload()
    _row(page, "2").wait_for(timeout=30_000)
    _expect()(_row(page, "2/weight")).to_be_hidden()
    _expect()(_row(page, "1.0/bias")).to_be_visible()


@pytest.mark.browser
def test_enter_selects_focused_row(page, streamlit_server):
    """Rows take focus; Enter selects the focused one and focus survives the rerun."""
    _open(page, streamlit_server)
    _row(page, "1.2/weight").focus()
    page.keyboard.press("Enter")
    _expect()(page.get_by_text("selected: 1.2/weight")).to_be_visible(timeout=10_000)
    _expect()(_row(page, "1.2/weight")).to_be_focused()


@pytest.mark.browser
def test_arrow_keys_move_between_visible_rows(page, streamlit_server):
    """ArrowDown moves focus to the next visible row; ArrowLeft collapses an open block."""
    _open(page, streamlit_server)
    _row(page, "1.0/weight").focus()
    page.keyboard.press("ArrowDown")
    _expect()(_row(page, "1.0/bias")).to_be_focused()
    _row(page, "1.0").focus()
    page.keyboard.press("ArrowLeft")
    _expect()(_row(page, "1.0/bias")).to_be_hidden()


@pytest.mark.browser
def test_labels_are_text_not_html(page, streamlit_server):
    """A module named like markup shows as literal text and creates no elements."""
    _open(page, streamlit_server)
    _expect()(_row(page, "/<b>scale</b>")).to_contain_text("<b>scale</b>")
    assert page.locator(".tv b").count() == 0


@pytest.mark.browser
def test_large_model_builds_only_visible_rows(page, streamlit_server):
    """A 500-block model starts with only the root open and builds children on first expand."""
    start = time.monotonic()
    _open(page, streamlit_server, "?blocks=500")
    _row(page, "499").wait_for(state="attached", timeout=30_000)
    print(f"500-block tree shown {time.monotonic() - start:.2f}s after navigation")
    assert page.locator(".tv .row").count() == 501  # root + 500 blocks, no parameter rows
    _row(page, "250").locator(".caret").click()
    _expect()(_row(page, "250/weight")).to_be_visible()
    assert page.locator(".tv .row").count() == 503


@pytest.mark.browser
def test_selection_from_elsewhere_opens_and_scrolls_to_it(page, streamlit_server):
    """The ancestors of the caller's `selected` node are opened and the row scrolled into view."""
    _open(page, streamlit_server, "?blocks=500&selected=250/weight")
    row = _row(page, "250/weight")
    _expect()(row).to_have_class("row selected")
    inside = row.evaluate(
        "el => { const a = el.getBoundingClientRect(), b = el.closest('.tv')"
        ".getBoundingClientRect(); return a.top >= b.top && a.bottom <= b.bottom; }"
    )
    assert inside


def test_apptest_runs_the_component_without_exception():
    """AppTest runs a script with the v2 component; it appears as an unknown element."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(DEMO_PATH)).run()
    assert not at.exception
    assert at.markdown[-1].value == "selected: `None`"


def test_apptest_session_state_stands_in_for_a_click():
    """Setting the component's state under its key is what a click does in the browser."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(DEMO_PATH)).run()
    at.session_state["demo_tree"] = {"selected": "2/bias"}
    at.run()
    assert not at.exception
    assert at.markdown[-1].value == "selected: 2/bias"


def test_large_model_payload_opens_only_the_root():
    """Above 200 nodes only the root is sent as open, as one compact row per node."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(DEMO_PATH))
    at.query_params["blocks"] = "500"
    at.run()
    assert not at.exception
    (tree,) = [e for e in at.main if type(e.proto).__name__ == "BidiComponent"]
    payload = json.loads(tree.proto.json)
    rows = payload["rows"]
    assert len(rows) == 1501
    assert [r[0] for r in rows if r[6] & 2] == [""]
    assert rows[2] == ["0/weight", 1, 0, "weight", "(8, 8) float32", "", 0]
