"""No request leaves the machine (issue 10): Debian's Chromium records every request the page makes.

The page is opened on a model whose block keys hold markdown images pointing at hosts of
the local network (absolute URLs, as a browser would fetch them; a key may hold anything
printable but "."), then a student's tour: the tree, a parameter, every tab. Every
request and websocket must go to the app's own address, 127.0.0.1: the page icon and
fonts are served by the app, and user text never becomes an ``<img>``. Requests to
anywhere else are aborted, so the test itself leaks nothing.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from explorer.io.links import encode, url
from explorer.session.experiment import Experiment

# 3232235777 is 192.168.1.1: a host of the local network, written without a "."
TICKS = "a`![i](http://3232235777/x)`b"  # breaks out of a code span that keeps backticks
RAW = "![j](http://3232235778/y)"  # live wherever a name is written without a code span
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

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

TABS = ["Build", "Initialize", "All parameters", "Code", "Files", "Train", "Depth", "Explore"]


def expect():
    from playwright.sync_api import expect as _expect

    return _expect


class Recorder:
    """Every URL the page asked for (requests and websockets); outside ones are aborted."""

    def __init__(self, page):
        self.urls: list[str] = []
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("websocket", lambda ws: self.urls.append(ws.url))
        page.context.route("**/*", self._route)

    @staticmethod
    def _route(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1" or route.request.url.startswith(
            ("data:", "blob:")
        ):
            route.continue_()
        else:
            route.abort()

    def outside(self) -> list[str]:
        """The URLs that went (or tried to go) anywhere but 127.0.0.1."""
        return [
            u
            for u in self.urls
            if not u.startswith(("data:", "blob:", "about:"))
            and urlsplit(u).hostname != "127.0.0.1"
        ]


def open_hostile(page, streamlit_server) -> Recorder:
    """Open the app on the hostile model, through a link, recording from the first request."""
    recorder = Recorder(page)
    token = encode(Experiment(HOSTILE_SPEC).replace(ran="backward"))
    page.goto(url(streamlit_server("app.py"), token))
    page.locator('.row[data-id=""]').wait_for(timeout=90_000)
    expect()(page.get_by_text("forward + backward done")).to_be_visible(timeout=60_000)
    return recorder


def click_row(page, node_id: str) -> None:
    """Click the tree row with this id (ids hold markdown: matched exactly, not as CSS)."""
    rows = page.locator(".row")
    rows.first.wait_for(timeout=30_000)
    for i in range(rows.count()):
        if rows.nth(i).get_attribute("data-id") == node_id:
            rows.nth(i).click()
            return
    raise AssertionError(f"no tree row {node_id!r}")


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=re.compile(f"{name}$")).click()
    page.wait_for_timeout(1500)
    expect()(page.get_by_role("tab", name=re.compile(f"{name}$"))).to_have_attribute(
        "aria-selected", "true", timeout=30_000
    )


def test_every_request_of_a_tour_goes_to_127_0_0_1(page, streamlit_server):
    """The page, its icon and fonts, a hostile parameter, and every tab: local only."""
    recorder = open_hostile(page, streamlit_server)
    click_row(page, f"{TICKS}/weight")
    expect()(page.get_by_role("heading", name=re.compile(r"^Parameter .*weight"))).to_be_visible(
        timeout=30_000
    )
    for tab in TABS:
        open_tab(page, tab)
    page.wait_for_timeout(2000)
    assert any(urlsplit(u).path.endswith("/_stcore/stream") for u in recorder.urls)
    assert len(recorder.urls) > 10  # the page's own files were recorded
    assert recorder.outside() == []


def test_a_parameter_whose_name_holds_an_image_fetches_nothing(page, streamlit_server):
    """Selecting the parameter under the RAW key must not make the browser fetch its image."""
    recorder = open_hostile(page, streamlit_server)
    click_row(page, f"{RAW}/weight")
    expect()(page.get_by_role("heading", name=re.compile(r"^Parameter .*weight"))).to_be_visible(
        timeout=30_000
    )
    page.wait_for_timeout(3000)
    assert recorder.outside() == []
