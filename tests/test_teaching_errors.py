"""Errors that teach, on the page: a missing ')', every spec problem at once, regex in words."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def at():
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(APP, default_timeout=90)
    app.run()
    assert not app.exception
    return app


def shown(app) -> str:
    """The error boxes as the student reads them (markdown escapes removed)."""
    return "\n".join(re.sub(r"\\(.)", r"\1", e.value) for e in app.error)


def open_tab(app, name: str) -> None:
    app.session_state["tabs"] = name
    app.run()
    assert not app.exception


def test_a_formula_missing_its_parenthesis_says_so(at):
    """The formula box names the missing ')' and where to add it, not "unexpected ';'"."""
    at.button(key="run_button").click().run()
    open_tab(at, "Initialize")
    at.selectbox(key="rule0_init").select("formula").run()
    open_tab(at, "Initialize")
    at.text_input(key="rule0_expr").input("u = uniform(-10, 10; where(abs(u) >= 5, u, 0)").run()
    open_tab(at, "Initialize")
    text = shown(at)
    assert "missing ')': the '(' at position 12 is not closed; add ')' where ';' is" in text
    assert "unexpected ';'" not in text


def test_the_chapters_own_formula_is_taken(at):
    """``u = uniform(-10, 10); u * (u.abs() >= 5)`` applies, and its code is torch lines."""
    at.button(key="run_button").click().run()
    open_tab(at, "Initialize")
    at.selectbox(key="rule0_init").select("formula").run()
    open_tab(at, "Initialize")
    at.text_input(key="rule0_expr").input("u = uniform(-10, 10); u * (u.abs() >= 5)").run()
    open_tab(at, "Initialize")
    assert not shown(at)
    code = "\n".join(c.value for c in at.code)
    assert "u = -10 + 20 * torch.rand(w.shape, generator=g, device=w.device)" in code
    assert "explorer" not in code


def test_every_spec_problem_is_shown_at_once(at):
    """Applying JSON with three problems lists all three, not only the first."""
    open_tab(at, "Build")
    spec = {
        "type": "sequential",
        "children": [
            {"type": "linear", "out_features": -3},
            {"type": "lineer"},
            {"type": "shared", "ref": "b"},
        ],
    }
    key = next(t.key for t in at.text_area if t.key.startswith("builder_json_"))
    at.text_area(key=key).input(json.dumps(spec)).run()
    at.button(key="builder_json_apply").click().run()
    open_tab(at, "Build")
    text = shown(at)
    assert "3 problems" in text
    for problem in (
        "children[0].out_features: must be a whole number from 1 to 65536, got -3",
        "children[1].type: unknown block type 'lineer'",
        "children[2].ref: no block is named 'b'",
    ):
        assert problem in text


def test_a_regex_typo_is_explained_in_plain_words(at):
    """The filter names the unclosed '(' in the student's own text, never RE2's (?s:…)."""
    at.text_input(key="filter").input("(.*weight").run()
    text = shown(at)
    assert "a '(' is not closed: add ')' after what it groups (in '(.*weight')" in text
    assert "(?s:" not in text
    at.text_input(key="filter").input("*.weight").run()
    assert "for any text write '.*'" in shown(at)
