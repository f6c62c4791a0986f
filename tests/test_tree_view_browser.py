"""The parameter-tree widget (ui/tree_view.py) in real Chromium, plus what AppTest can see of it.

Browser tests drive `tests/apps/tree_view_demo.py` through the shared `streamlit_server` and
`page` fixtures (tests/conftest.py): Debian chromium, skipped when it is missing (failed under
CI). The component renders inside an open shadow root; Playwright's CSS locators pierce it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

DEMO = "tests/apps/tree_view_demo.py"
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


def _runs(page, what: str) -> int:
    """The demo's counter of whole-script runs ("script") or tree-fragment runs ("tree")."""
    text = page.get_by_text(f"{what} runs:").inner_text()
    return int(text.rsplit(":", 1)[1])


@pytest.mark.browser
def test_click_selects_node(page, streamlit_server):
    """Clicking a row sends its id to Python, which reruns and shows it."""
    _open(page, streamlit_server)
    _row(page, "1.0/bias").click()
    _expect()(page.get_by_text("selected: 1.0/bias")).to_be_visible(timeout=10_000)
    _expect()(_row(page, "1.0/bias")).to_have_class("row param selected")
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
    """Open/closed state is kept per model in the browser, through a rerun and a page reload."""
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
def test_open_state_is_kept_per_model(page, streamlit_server):
    """Closing block 2 of one model leaves block 2 of another model open."""
    _open(page, streamlit_server)
    _row(page, "2").locator(".caret").click()
    _expect()(_row(page, "2/weight")).to_be_hidden()
    _open(page, streamlit_server, "?blocks=5")
    _expect()(_row(page, "2/weight")).to_be_visible()


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
    """A parameter named like markup shows as literal text and creates no elements."""
    _open(page, streamlit_server)
    _expect()(_row(page, "/<b>scale</b>")).to_contain_text("<b>scale</b>")
    assert page.locator(".tv b").count() == 0


@pytest.mark.browser
def test_large_model_sends_one_page_and_fetches_children_on_expand(page, streamlit_server):
    """500 blocks: 100 closed blocks and 'show more'; expanding asks Python (tree rerun only)."""
    start = time.monotonic()
    _open(page, streamlit_server, "?blocks=500")
    _row(page, "99").wait_for(state="attached", timeout=30_000)
    print(f"500-block tree shown {time.monotonic() - start:.2f}s after navigation")
    assert page.locator(".tv .row").count() == 1 + 100 + 1
    assert _row(page, "100").count() == 0
    script_runs, tree_runs = _runs(page, "script"), _runs(page, "tree")
    _row(page, "50").locator(".caret").click()
    _expect()(_row(page, "50/weight")).to_be_visible(timeout=10_000)
    assert page.locator(".tv .row").count() == 1 + 100 + 2 + 1
    _expect()(page.get_by_text(f"tree runs: {tree_runs + 1}")).to_be_visible(timeout=10_000)
    assert _runs(page, "script") == script_runs  # a fragment rerun, not the whole page
    _row(page, ".more:").click()
    _expect()(_row(page, "199")).to_be_attached(timeout=10_000)
    assert _row(page, "200").count() == 0
    _expect()(_row(page, ".more:")).to_contain_text("300 hidden")


@pytest.mark.browser
def test_selection_from_elsewhere_opens_and_scrolls_to_it(page, streamlit_server):
    """The ancestors of the caller's `selected` node are opened and the row scrolled into view."""
    _open(page, streamlit_server, "?blocks=500&selected=250/weight")
    row = _row(page, "250/weight")
    _expect()(row).to_have_class("row param selected")
    inside = row.evaluate(
        "el => { const a = el.getBoundingClientRect(), b = el.closest('.tv')"
        ".getBoundingClientRect(); return a.top >= b.top && a.bottom <= b.bottom; }"
    )
    assert inside


@pytest.mark.browser
def test_a_deep_selection_sends_a_page_around_it_and_pages_back(page, streamlit_server):
    """250/weight of 500 blocks: blocks 200 to 299 are sent; 'show earlier' adds 100 to 199."""
    _open(page, streamlit_server, "?blocks=500&selected=250/weight")
    _expect()(_row(page, "250/weight")).to_have_class("row param selected")
    assert page.locator(".tv .row.block").count() == 1 + 100  # the root and one page
    assert _row(page, "199").count() == 0 and _row(page, "300").count() == 0
    _expect()(_row(page, ".earlier:")).to_contain_text("200 hidden")
    _row(page, ".earlier:").click()
    _expect()(_row(page, "100")).to_be_attached(timeout=10_000)
    assert _row(page, "99").count() == 0
    _expect()(_row(page, ".earlier:")).to_contain_text("100 hidden")
    _expect()(_row(page, "250/weight")).to_have_class("row param selected")
    _row(page, ".more:").click()
    _expect()(_row(page, "399")).to_be_attached(timeout=10_000)
    assert _row(page, "99").count() == 0 and _row(page, "400").count() == 0


_INSIDE = """el => { const a = el.getBoundingClientRect(), b = el.closest('.tv')
  .getBoundingClientRect(); return a.top >= b.top && a.bottom <= b.bottom; }"""


@pytest.mark.browser
def test_clearing_a_filter_brings_the_selection_into_view(page, streamlit_server):
    """Select 450/weight in a filtered tree, clear the filter: its page (400 to 499) is sent
    and the tree scrolls to the selected row, 50 rows down."""
    _open(page, streamlit_server, "?blocks=500")
    box = page.get_by_label("filter")
    box.fill(r"450\.weight")
    box.press("Enter")
    _row(page, "450/weight").click()
    _expect()(_row(page, "450/weight")).to_have_class("row param selected")
    assert _row(page, "450/weight").evaluate(_INSIDE)
    box.fill("")
    box.press("Enter")
    _expect()(_row(page, "499")).to_be_attached(timeout=10_000)
    _expect()(_row(page, "450/weight")).to_have_class("row param selected")
    page.wait_for_timeout(300)
    assert _row(page, "450/weight").evaluate(_INSIDE)


_VISIBLE = """el => {
  const tv = el.closest('.tv').getBoundingClientRect();
  const name = el.querySelector('.name').getBoundingClientRect();
  const label = el.querySelector('.label');
  const badge = el.querySelector('.badge');
  const b = badge ? badge.getBoundingClientRect() : null;
  return {
    nameWidth: name.width,
    nameWhole: label.scrollWidth <= label.clientWidth + 1,
    badgeInside: b === null || (b.left >= tv.left && b.right <= tv.right && b.width > 0),
  };
}"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [1024, 1280, 1920])
def test_names_and_tied_badges_stay_visible_in_narrow_windows(browser, streamlit_server, width):
    """In a third of a 1024 to 1920 px page every name shows; tied badges stay inside the tree."""
    context = browser.new_context(viewport={"width": width, "height": 768})
    page = context.new_page()
    try:
        _open(page, streamlit_server, "?narrow=1")
        for node_id in ["", "0", "0/weight", "1.0/bias", "2/weight", "/<b>scale</b>"]:
            seen = _row(page, node_id).evaluate(_VISIBLE)
            assert seen["nameWhole"] or seen["nameWidth"] > 20, (node_id, seen)
            assert seen["badgeInside"], (node_id, seen)
        for node_id in ["0/weight", "2/weight"]:  # short names are shown whole, badge too
            _expect()(_row(page, node_id).locator(".badge")).to_have_text("tied A")
            assert _row(page, node_id).evaluate(_VISIBLE)["nameWhole"]
        assert _row(page, "2/weight").get_attribute("title") == "2.weight\n(10, 4) float32"
        if width == 1024:
            page.screenshot(path="/tmp/tree_view_1024.png")
    finally:
        context.close()


def test_apptest_runs_the_component_without_exception():
    """AppTest runs a script with the v2 component; it appears as an unknown element."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(DEMO_PATH), default_timeout=60).run()
    assert not at.exception
    assert "selected: `None`" in [m.value for m in at.markdown]


def test_apptest_session_state_stands_in_for_a_click():
    """Setting the component's state under its key is what a click does in the browser."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(DEMO_PATH), default_timeout=60).run()
    at.session_state["demo_tree"] = {"selected": "2/bias"}
    at.run()
    assert not at.exception
    assert "selected: 2/bias" in [m.value for m in at.markdown]


def _payload(at) -> dict:
    (tree,) = [e for e in at.main if type(e.proto).__name__ == "BidiComponent"]
    return json.loads(tree.proto.json)


def test_large_model_payload_holds_only_the_visible_rows():
    """5,000 blocks: the payload is the root, 100 blocks and a 'show more' row, under 40 kB."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(DEMO_PATH), default_timeout=60)
    at.query_params["blocks"] = "5000"
    at.run()
    assert not at.exception
    (tree,) = [e for e in at.main if type(e.proto).__name__ == "BidiComponent"]
    payload = json.loads(tree.proto.json)
    assert [r["kind"] for r in payload["rows"]] == ["block"] * 101 + ["more"]
    assert payload["rows"][1] == {
        "id": "0",
        "parent": "",
        "depth": 1,
        "kind": "block",
        "name": "0",
        "type": "Linear",
        "title": "0 · Linear",
        "detail": "72 params",
        "badge": "",
        "highlight": False,
        "children": 2,
        "open": False,
    }
    assert len(tree.proto.json) < 40_000


def test_expanding_in_the_browser_state_sends_that_blocks_children():
    """The view state the browser sends (block 7 open) makes the next payload include 7's rows."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(DEMO_PATH), default_timeout=60)
    at.query_params["blocks"] = "500"
    at.run()
    model = _payload(at)["model"]
    at.session_state["demo_tree"] = {"view": {"model": model, "open": {"7": True}, "shown": {}}}
    at.run()
    assert not at.exception
    ids = [r["id"] for r in _payload(at)["rows"]]
    assert ids[ids.index("7") + 1 : ids.index("7") + 3] == ["7/weight", "7/bias"]
    assert _payload(at)["view"] == {"open": {"7": True}, "shown": {}, "first": {}}
