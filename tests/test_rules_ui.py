"""The Initialize tab under AppTest: a rule is exactly what its row shows (issue 8 item 3)."""

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.core.frozen import thaw
from explorer.init.initializers import RECIPES

APP = str(Path(__file__).resolve().parent.parent / "app.py")
HE = "normal(0, 1) * sqrt(2 / fan_in)"
pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def app():
    """The app with the chapter's MLP run once (shapes known) and the Initialize tab open."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.button(key="run_button").click().run()
    label = next(t.label for t in at.tabs if t.label.endswith("Initialize"))
    at.session_state["tabs"] = label
    at.run()
    assert not at.exception
    return at


def rules(at) -> list[dict]:
    return thaw(at.session_state["workspace"].experiment.rules)


def errors(at) -> list[str]:
    return [re.sub(r"\\(.)", r"\1", e.value) for e in at.error]


def use_formula(at) -> None:
    at.selectbox(key="rule0_init").select("formula").run()
    assert not at.exception
    assert rules(at)[0] == {"init": "formula", "target": "*", "expr": HE}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1/0", "not applied: on 0.weight (8, 4): gives inf/nan"),
        ("exp(1000) * w", "not applied: on 0.weight (8, 4): gives inf/nan"),
        ("w.__class__", "unknown method '__class__'"),
    ],
)
def test_an_invalid_formula_is_not_applied_and_says_so(app, text, message):
    """The box keeps the typed text with its error; the rule and the values stay; no reinit."""
    use_formula(app)
    version = app.session_state["workspace"].version
    app.text_input(key="rule0_expr").input(text).run()
    assert not app.exception
    assert any(message in e for e in errors(app)), errors(app)
    assert app.text_input(key="rule0_expr").value == text
    assert rules(app)[0]["expr"] == HE
    assert app.session_state["workspace"].version == version
    assert app.button(key="reinit").disabled


def test_a_valid_formula_is_applied_as_typed(app):
    """A valid formula becomes the rule at once, and the error of the invalid one is gone."""
    use_formula(app)
    app.text_input(key="rule0_expr").input("1/0").run()
    app.text_input(key="rule0_expr").input("where(i == j, 1, 0)").run()
    assert not app.exception and not errors(app)
    assert rules(app)[0]["expr"] == "where(i == j, 1, 0)"
    weight = app.session_state["workspace"].tree().tensor("2.weight")
    assert weight.tolist() == [[1.0, 0, 0, 0, 0, 0, 0, 0]]
    assert not app.button(key="reinit").disabled


def test_option_widgets_come_from_the_registry(app):
    """Choosing uniform shows a and b with its defaults; a change applies; a > b is refused."""
    app.selectbox(key="rule0_init").select("uniform").run()
    assert app.number_input(key="rule0_a").value == -0.07
    assert app.number_input(key="rule0_b").value == 0.07
    app.number_input(key="rule0_b").set_value(0.5).run()
    assert rules(app)[0] == {"init": "uniform", "a": -0.07, "b": 0.5, "target": "*"}
    app.number_input(key="rule0_a").set_value(1.0).run()
    assert any("a must be less than b" in e for e in errors(app))
    assert rules(app)[0]["a"] == -0.07


def test_overwrite_switch_is_force_reinit(app):
    """Unticking 'overwrite earlier rules' gives the rule force_reinit false."""
    app.checkbox(key="rule0_overwrite").uncheck().run()
    assert not app.exception
    assert rules(app)[0]["force_reinit"] is False


def test_the_recipe_box_forgets_the_recipe_once_the_rules_change(app):
    """After a recipe is used the box names it; after any rule change it shows none."""
    label = RECIPES["mxnet_default"].label
    app.selectbox(key="recipe").select(label).run()
    app.button(key="use_recipe").click().run()
    assert rules(app) == thaw(RECIPES["mxnet_default"].rules)
    assert app.selectbox(key="recipe").value == label
    app.button(key="add_rule").click().run()
    assert not app.exception
    assert app.selectbox(key="recipe").value is None
