"""The labs in Debian's Chromium: train the tied net, the depth lab, deferred initialization.

Set ``EXPLORER_SCREENSHOTS=docs`` to write the README's screenshots of both labs
(1920 px wide) into docs/; otherwise they go to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

WIDE = {"width": 1920, "height": 1080}


def expect():
    from playwright.sync_api import expect as _expect

    return _expect


def screenshot(page, path: Path) -> None:
    """The whole page at 1920 px wide: the viewport grows to the app's full height."""
    page.wait_for_timeout(1500)  # let the charts finish drawing
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": WIDE["width"], "height": min(max(height, 1080), 6000)})
    page.wait_for_timeout(1500)
    page.screenshot(path=str(path))


def shots(tmp_path: Path) -> Path:
    """Where screenshots go: docs/ when asked for, else the test's own folder."""
    where = os.environ.get("EXPLORER_SCREENSHOTS")
    return Path(__file__).resolve().parent.parent / where if where else tmp_path


@pytest.fixture
def wide_page(browser):
    context = browser.new_context(viewport=WIDE)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def open_app(page, streamlit_server):
    page.goto(streamlit_server("app.py"))
    page.locator('.row[data-id=""]').wait_for(timeout=90_000)


def pick_preset(page, title):
    page.get_by_label("Model preset").click()
    page.get_by_role("option", name=title).click()
    expect()(page.get_by_text(title).first).to_be_visible(timeout=30_000)


def open_tab(page, name):
    page.get_by_role("tab", name=re.compile(name)).click()


def set_number(page, label, value):
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_timeout(800)


def test_training_the_tied_net_for_100_steps_shows_the_loss_fall_and_both_uses(
    wide_page, streamlit_server, tmp_path
):
    """Issue 11: train the tied net 100 steps; the loss falls; the two uses and their sum."""
    page = wide_page
    open_app(page, streamlit_server)
    pick_preset(page, "Tied layers (shared used twice)")
    open_tab(page, "Train")
    set_number(page, "Steps", 100)
    page.get_by_role("button", name="Train", exact=True).click()
    panel = page.get_by_role("tabpanel", name=re.compile("Train"))
    steps = panel.get_by_test_id("stMetric").filter(has_text="Steps")
    expect()(steps).to_contain_text("100", timeout=300_000)
    loss = panel.get_by_test_id("stMetric").filter(has_text="Loss")
    expect()(loss).to_contain_text(re.compile(r"-[0-9.e+-]+ since step 1"))  # it fell
    for name in ("use 1: call 1 of module 2", "use 2: call 2 of module 2", "sum of the uses"):
        expect()(panel.get_by_text(re.compile(name)).first).to_be_visible()
    expect()(
        panel.get_by_text("2.weight = 4.weight: ‖∇‖ of each use and of their sum")
    ).to_be_visible()
    screenshot(page, shots(tmp_path) / "training-lab.png")


def test_the_depth_lab_shows_the_vanishing_signal_and_one_distinct_row(
    wide_page, streamlit_server, tmp_path
):
    """The 10-layer MLP under three rule sets; a constant init keeps one distinct row."""
    page = wide_page
    open_app(page, streamlit_server)
    open_tab(page, "Depth")
    page.get_by_role("button", name="Open the 10-layer MLP").click()
    expect()(page.get_by_text("A 10-layer MLP (why initialization matters)").first).to_be_visible(
        timeout=60_000
    )
    page.get_by_role("button", name="Run the batch through each").click()
    panel = page.get_by_role("tabpanel", name=re.compile("Depth"))
    expect()(panel.get_by_text("Activation std per layer")).to_be_visible(timeout=180_000)
    expect()(panel.get_by_text("Gradient norm per layer")).to_be_visible()
    set_number(page, "Training steps", 5)
    page.get_by_role("button", name="Initialize with the constant and train").click()
    expect()(panel.get_by_text(re.compile("Distinct rows: 1 in every hidden layer"))).to_be_visible(
        timeout=180_000
    )
    screenshot(page, shots(tmp_path) / "depth-lab.png")


def test_the_deferred_table_shows_right_after_the_first_forward(page, streamlit_server):
    """Gluon and DJL exercise 3: after Forward the root block shows the shapes before and
    after, open on the page (no expander to click)."""
    open_app(page, streamlit_server)
    page.get_by_role("button", name="Forward", exact=True).click()
    heading = page.get_by_text("Deferred initialization: shapes before and after the first forward")
    expect()(heading).to_be_visible(timeout=60_000)
    table = page.get_by_test_id("stDataFrame").first
    expect()(table).to_be_visible()
