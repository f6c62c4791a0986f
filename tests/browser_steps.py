"""Steps the browser tests share: open the app, pick a preset, Playwright's expect."""

from __future__ import annotations

__all__ = ["expect", "open_app", "pick_preset"]


def expect():
    """Playwright's ``expect``, imported when a browser test runs."""
    from playwright.sync_api import expect as _expect

    return _expect


def open_app(page, streamlit_server) -> None:
    """The app, with its tree drawn."""
    page.goto(streamlit_server("app.py"))
    page.locator('.row[data-id=""]').wait_for(timeout=90_000)


def pick_preset(page, title: str) -> None:
    """Choose a preset in the sidebar and wait for its title."""
    page.get_by_label("Model preset").click()
    page.get_by_role("option", name=title).click()
    expect()(page.get_by_text(title).first).to_be_visible(timeout=30_000)
