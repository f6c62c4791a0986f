"""The chapter in Debian's Chromium: the guided path from the first step to the last, the
tied gradients' picture measured as drawn, and the page at 1,024 px.

Set ``EXPLORER_SCREENSHOTS=<folder>`` to keep the screenshots (1,024 and 1,920 px) there;
otherwise they go to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from explorer.editions.chapter import steps
from explorer.editions.places import Framework
from explorer.session.experiment import Experiment

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

NARROW, WIDE = {"width": 1024, "height": 900}, {"width": 1920, "height": 1080}


def expect():
    from playwright.sync_api import expect as _expect

    return _expect


def shots(tmp_path: Path) -> Path:
    where = os.environ.get("EXPLORER_SCREENSHOTS")
    folder = Path(where) if where else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page, path: Path) -> None:
    """The whole page: the viewport grows to the main area's height, then shrinks back."""
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(height, 900), 6000)})
    page.wait_for_timeout(1000)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


@pytest.fixture
def narrow(browser):
    context = browser.new_context(viewport=NARROW)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def open_step(page, base: str, ref: str) -> None:
    page.goto(f"{base}/?step={ref}")
    expect()(page.get_by_text("This step is set up.")).to_be_visible(timeout=90_000)


def plot_boxes(page, title: str) -> list[tuple[float, float]]:
    """(width, height) of each drawn plot area of the figure whose text holds ``title``."""
    figure = page.locator(".js-plotly-plot").filter(has_text=title).first
    figure.scroll_into_view_if_needed()
    return [
        (b["width"], b["height"])
        for b in (r.bounding_box() for r in figure.locator("rect.nsewdrag").all())
        if b is not None
    ]


def test_the_guided_path_from_the_first_step_to_the_last(narrow, streamlit_server, tmp_path):
    """Start here, PyTorch: Set up and Next through every step at 1,024 px; each step's app
    output agrees with the chapter's (the training exercise waits for the student)."""
    page, base = narrow, streamlit_server("app.py")
    open_step(page, base, "pytorch-mlp")
    expect()(page.get_by_role("tab", name="Start here")).to_have_attribute("aria-selected", "true")
    path = steps(Framework.PYTORCH)
    for i, step in enumerate(path):
        expect()(page.locator("h3").first).to_contain_text(f"{i + 1}. {step.title[:20]}")
        page.get_by_role("button", name="Set up this step").click()
        expect()(page.get_by_text("This step is set up.")).to_be_visible(timeout=20_000)
        verdict = "Your turn" if step.key == "ex_train" else "The app agrees with the chapter"
        expect()(page.get_by_text(verdict)).to_be_visible(timeout=20_000)
        if i == 1:
            screenshot(page, shots(tmp_path) / "chapter-1024.png")
        if i < len(path) - 1:
            page.get_by_role("button", name="Next").click()
    expect()(page.get_by_role("button", name="Next")).to_be_disabled()


def test_the_tied_gradients_are_one_readable_picture(browser, streamlit_server, tmp_path):
    """Use 1, use 2 and their sum: one figure, three plot areas of at least 200 px on their
    short side at 1,024 px and at 1,920 px, one shared colour bar."""
    base = streamlit_server("app.py")
    for viewport, name in ((NARROW, "tied-gradients-1024.png"), (WIDE, "tied-gradients-1920.png")):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        try:
            open_step(page, base, "pytorch-tied_grad")
            page.get_by_role("button", name="Look in Explore").click()
            expect()(page.get_by_text(re.compile(r"use 1 \+ use 2 = total ✓"))).to_be_visible(
                timeout=30_000
            )
            boxes = plot_boxes(page, "Gradient of each use, and their sum")
            assert len(boxes) == 3 and all(min(b) >= 200 for b in boxes), (viewport, boxes)
            figure = page.locator(".js-plotly-plot").filter(has_text="Gradient of each use")
            assert figure.locator(".colorbar").count() == 1
            screenshot(page, shots(tmp_path) / name)
        finally:
            context.close()


def _nothing_cut(page, selector: str) -> list[str]:
    """Texts of ``selector`` elements whose content is wider than their box (cut)."""
    return page.evaluate(
        """(sel) => [...document.querySelectorAll(sel)]
            .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)""",
        selector,
    )


def test_the_page_at_1024_px(narrow, streamlit_server, tmp_path):
    """At 1,024 px: the tab bar fits, metric labels and values are whole, the training lab's
    per-tensor charts are full height, and the depth charts' legends clear their titles."""
    page, base = narrow, streamlit_server("app.py")
    open_step(page, base, "pytorch-ex_train")
    tabs = page.get_by_role("tablist").first
    assert tabs.evaluate("t => t.scrollWidth <= t.clientWidth")
    page.get_by_role("button", name="Look in Train").click()
    page.get_by_role("button", name=re.compile("^Train$")).click()
    expect()(page.get_by_text("Value norm ‖w‖ per tensor")).to_be_visible(timeout=60_000)
    page.wait_for_timeout(1500)
    for title in ("Value norm ‖w‖ per tensor", "Gradient norm ‖∇w‖ per tensor"):
        (box,) = plot_boxes(page, title)
        assert box[1] >= 200 and box[0] >= 400, (title, box)
    assert not _nothing_cut(page, '[data-testid="stMetricLabel"], [data-testid="stMetricValue"]')
    screenshot(page, shots(tmp_path) / "train-1024.png")
    page.get_by_role("tab", name="Depth").click()
    page.get_by_role("button", name="Open the 10-layer MLP").click()
    page.get_by_role("button", name="Run the batch through each").click()
    expect()(page.get_by_text("Gradient norm per layer")).to_be_visible(timeout=60_000)
    page.wait_for_timeout(1500)
    for title in ("Activation std per layer", "Gradient norm per layer"):
        figure = page.locator(".js-plotly-plot").filter(has_text=title).first
        legend, heading = (figure.locator(s).first.bounding_box() for s in (".legend", ".gtitle"))
        assert legend["y"] > heading["y"] + heading["height"], title  # below the title
    screenshot(page, shots(tmp_path) / "depth-1024.png")
    page.get_by_role("tab", name="Explore").click()
    page.locator('.row[data-id=""]').click()
    expect()(page.get_by_text("per-layer sum", exact=True)).to_be_visible(timeout=20_000)
    assert not _nothing_cut(page, '[data-testid="stMetricLabel"], [data-testid="stMetricValue"]')
    screenshot(page, shots(tmp_path) / "explore-1024.png")


def test_the_experiment_json_opens_from_the_files_tab(narrow, streamlit_server, tmp_path):
    """The experiment the app tells you to share opens again from the Files tab's uploader."""
    page, base = narrow, streamlit_server("app.py")
    open_step(page, base, "pytorch-mlp")
    path = tmp_path / "tied.json"
    path.write_text(Experiment.from_preset("tied").to_json())
    page.get_by_role("tab", name="Files").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    page.get_by_role("button", name="Open this experiment").click()
    expect()(page.get_by_text("Tied layers (shared used twice) ·")).to_be_visible(timeout=30_000)
