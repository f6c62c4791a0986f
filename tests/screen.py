"""What the app's page shows, as text: for tests that check the screen, not the core behind it.

``page_text(ref, tab)`` opens the app in AppTest on a guided-chapter step (``?step=ref``, set
up by the link), optionally switches to ``tab``, and returns every text element of the page
(code, markdown, captions, alerts, headings, tables, metrics, select options) with markdown's
escapes removed.
"""

from __future__ import annotations

import re
from pathlib import Path

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_step(ref: str, tab: str | None = None):
    """An AppTest session opened by the link ``?step=ref``, on ``tab`` if given."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["step"] = ref
    at.run()
    assert not at.exception, ref
    if tab:
        at.session_state["tabs"] = tab
        at.run()
        assert not at.exception, (ref, tab)
    return at


def text_of(at) -> str:
    """Every text the page shows, one element per line, as the reader sees it."""
    parts: list[str] = []
    for kind in ("code", "markdown", "caption", "success", "info", "warning", "error",
                 "subheader", "header", "title", "text", "exception"):  # fmt: skip
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [e.label for e in at.expander]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [d.value.to_string() for d in at.dataframe]
    for box in at.selectbox:
        parts += [str(o) for o in box.options]
    return re.sub(r"\\(.)", r"\1", "\n".join(parts))


def squash(text: str) -> str:
    """Text without whitespace, to find a fragment whatever the line breaks."""
    return re.sub(r"\s+", "", text)
