"""Undo in the sidebar, and an action during a training run, in Debian's Chromium."""

from __future__ import annotations

import re

import pytest

from tests.browser_steps import expect, open_app, pick_preset

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def undo_button(page):
    return page.get_by_test_id("stSidebar").get_by_role("button", name=re.compile("^Undo"))


def test_undo_names_the_run_and_ctrl_z_takes_it_back(page, streamlit_server):
    """After Forward + backward the sidebar says "Undo: forward + backward"; Ctrl+Z undoes it."""
    open_app(page, streamlit_server)
    pick_preset(page, "Tied layers (shared used twice)")
    page.get_by_role("button", name="Forward + backward").click()
    expect()(undo_button(page)).to_have_text(
        re.compile("Undo: forward \\+ backward"), timeout=30_000
    )
    status = page.get_by_text(re.compile("forward \\+ backward done"))
    expect()(status.first).to_be_visible()
    status.first.click()  # the page, not a widget, has the keyboard
    page.keyboard.press("Control+z")
    expect()(page.get_by_text(re.compile("not run on these values yet")).first).to_be_visible(
        timeout=30_000
    )
    redo = page.get_by_test_id("stSidebar").get_by_role("button", name=re.compile("^Redo"))
    expect()(redo).to_have_text(re.compile("Redo: forward \\+ backward"))


def test_a_change_while_training_runs_wins_and_the_run_says_so(page, streamlit_server):
    """Start a long run, change the seed meanwhile: the seed holds, the run says why it went."""
    open_app(page, streamlit_server)
    pick_preset(page, "Tied layers (shared used twice)")
    page.get_by_role("tab", name=re.compile("Train")).click()
    steps = page.get_by_label("Steps", exact=True)
    steps.fill("5000")
    steps.press("Enter")
    page.wait_for_timeout(800)
    page.get_by_role("button", name="Train", exact=True).click()
    expect()(page.get_by_text(re.compile(r"step \d+ of 5000")).first).to_be_visible(timeout=60_000)
    seed = page.get_by_label("Seed", exact=True)
    seed.fill("7")
    seed.press("Enter")
    expect()(page.get_by_text("seed 7").first).to_be_visible(timeout=30_000)
    expect()(page.get_by_text(re.compile("changed while training ran")).first).to_be_visible(
        timeout=180_000
    )
    expect()(undo_button(page)).to_have_text(re.compile("Undo: change the seed"))
