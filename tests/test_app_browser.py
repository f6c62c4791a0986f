"""The real app in Debian's Chromium: a student's clicks through the chapter, end to end."""

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def expect():
    from playwright.sync_api import expect as _expect

    return _expect


def open_app(page, streamlit_server):
    page.goto(streamlit_server("app.py"))
    page.locator('.row[data-id=""]').wait_for(timeout=60_000)


def row(page, node_id):
    return page.locator(f'.row[data-id="{node_id}"]')


def pick_preset(page, title):
    page.get_by_label("Model preset").click()
    page.get_by_role("option", name=title).click()
    expect()(page.get_by_text(title).first).to_be_visible(timeout=20_000)


def run_forward(page):
    page.get_by_role("button", name="Forward + backward").click()
    expect()(page.get_by_text("forward + backward done")).to_be_visible(timeout=30_000)


def test_lazy_shapes_then_shapes_after_forward(page, streamlit_server):
    """Step 1: '?' shapes until the first forward, then (8, 4) on layer 0's weight."""
    open_app(page, streamlit_server)
    expect()(row(page, "0/weight")).to_contain_text("?")
    run_forward(page)
    expect()(row(page, "0/weight")).to_contain_text("(8, 4)", timeout=20_000)


def test_clicking_a_tied_weight_highlights_its_alias_and_shows_uses(
    page, streamlit_server, tmp_path
):
    """Steps 13-15: click 2.weight; 4.weight lights up; use 1 + use 2 = total is shown."""
    open_app(page, streamlit_server)
    pick_preset(page, "Tied layers (shared used twice)")
    run_forward(page)
    row(page, "2/weight").click()
    expect()(page.get_by_role("heading", name=re.compile("Parameter 2.weight"))).to_be_visible(
        timeout=20_000
    )
    expect()(row(page, "4/weight")).to_have_class(re.compile(r"\bhl\b"))
    expect()(page.get_by_text(re.compile(r"use 1 \+ use 2 = total ✓"))).to_be_visible()
    page.screenshot(path=str(tmp_path / "tied_uses.png"), full_page=True)


def test_block_click_shows_its_state_dict_table(page, streamlit_server):
    """Step 2: clicking layer 2 shows a table with its weight and bias keys."""
    open_app(page, streamlit_server)
    run_forward(page)
    row(page, "2").click()
    expect()(page.get_by_role("heading", name=re.compile("Block 2"))).to_be_visible(timeout=20_000)
    explore = page.get_by_role("tabpanel", name=re.compile("Explore"))
    table = explore.locator('[data-testid="stDataFrame"]').first
    expect()(table).to_be_visible()
    expect()(table).to_contain_text("2.weight", timeout=20_000)  # the grid's accessible cells
    expect()(explore.get_by_text("per-layer sum", exact=True)).to_be_visible()


def test_no_traceback_for_a_bad_input_shape(page, streamlit_server):
    """A wrong input shape shows an error message and never a traceback."""
    open_app(page, streamlit_server)
    pick_preset(page, "rgnet: nested blocks")
    shape = page.get_by_role("textbox", name="Input shape")
    shape.fill("2, 5")
    shape.press("Enter")
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Forward + backward").click()
    expect()(page.get_by_text(re.compile(r"input of shape \(2, 5\)"))).to_be_visible(timeout=20_000)
    assert page.get_by_text("Traceback").count() == 0


def test_clicking_a_treemap_sector_selects_that_parameter(page, streamlit_server):
    """The overview is clickable: a sector's click selects its parameter."""
    open_app(page, streamlit_server)
    run_forward(page)
    page.locator("g.slice").filter(has_text="2.weight").first.click()
    expect()(page.get_by_role("heading", name=re.compile("Parameter 2.weight"))).to_be_visible(
        timeout=20_000
    )
    expect()(row(page, "2/weight")).to_have_class(re.compile(r"\bselected\b"))
