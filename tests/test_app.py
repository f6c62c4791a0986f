"""The whole app under Streamlit's AppTest, walking the chapter's steps (WALKTHROUGH.md)."""

import re
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def app():
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def ws(at):
    return at.session_state["workspace"]


def select(at, node_id):
    at.session_state["selected"] = node_id
    at.run()
    assert not at.exception


def run_forward(at):
    at.button(key="run_button").click().run()
    assert not at.exception


def load_preset(at, key):
    at.selectbox(key="preset_choice").select(key).run()
    assert not at.exception


def markdown_text(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def errors(at) -> list[str]:
    """The error boxes' texts as the user reads them (markdown escapes removed)."""
    return [re.sub(r"\\(.)", r"\1", e.value) for e in at.error]


def open_tab(at, name: str) -> None:
    """Open a tab by its name; only the open tab's panel runs."""
    label = next(t.label for t in at.tabs if t.label.endswith(name))
    at.session_state["tabs"] = label
    at.run()
    assert not at.exception


def test_opens_on_the_mlp_with_lazy_shapes_and_the_status_line(app):
    """Step 1: the MLP preset is there, shapes unknown, device/dtype/seed on screen."""
    assert ws(app).setup.preset == "mlp" and ws(app).has_lazy()
    text = markdown_text(app)
    assert "device cpu" in text and "float32" in text and "seed 0" in text


def test_forward_materializes_and_shows_the_output(app):
    """Step 1: one forward gives (8, 4), (8,), (1, 8), (1,) and a loss."""
    run_forward(app)
    assert [p.shape for p in ws(app).tree().params.values()] == [(8, 4), (8,), (1, 8), (1,)]
    assert any(m.label == "Loss" for m in app.metric)


def test_selecting_a_block_shows_its_parameter_table(app):
    """Step 2: clicking layer 2 shows weight and bias with their state_dict keys."""
    run_forward(app)
    select(app, "2")
    frame = app.dataframe[0].value
    assert list(frame["local key"]) == ["weight", "bias"]
    assert any("Block `2`" in s.value for s in app.subheader)


def test_selecting_a_weight_before_backward_says_no_gradient(app):
    """Step 4: a parameter's gradient panel says there is none before a backward pass."""
    load_preset(app, "rgnet")
    select(app, "1/weight")
    assert any("No gradient yet" in i.value for i in app.info)
    assert any(c.value == "rgnet[1].weight" for c in app.code)


def test_rgnet_access_expression(app):
    """Step 7: rgnet's nested bias is reached as rgnet[0][1][0].bias, as in the chapter."""
    load_preset(app, "rgnet")
    select(app, "0.block 1.0/bias")
    assert any(c.value == "rgnet[0][1][0].bias" for c in app.code)


def test_tied_net_gradient_uses_add_up(app):
    """Step 15: for the tied layer, use 1 + use 2 = total is checked and shown."""
    load_preset(app, "tied")
    run_forward(app)
    select(app, "2/weight")
    assert any("use 1 + use 2 = total ✓" in s.value for s in app.success)
    assert "tied" in markdown_text(app)


def test_editing_a_tied_weight_changes_its_alias(app):
    """Step 14: setting 2.weight[0, 0] = 100 through the edit form shows at 4.weight."""
    load_preset(app, "tied")
    run_forward(app)
    select(app, "2/weight")
    app.number_input(key="edit_2.weight_value").set_value(100.0)
    app.text_input(key="edit_2.weight_index").input("0, 0")
    app.button(key="edit_2.weight_apply").click().run()
    assert not app.exception
    assert ws(app).tree().tensor("4.weight")[0, 0].item() == 100
    assert any("net[2].weight.data[0, 0] = 100" in c.value for c in app.code)


def test_recipe_xavier_and_42(app):
    """Step 10: the xavier/42 recipe leaves layer 2 all 42 and records provenance."""
    run_forward(app)
    open_tab(app, "Initialize")
    app.selectbox(key="recipe").select("xavier on layer 0, 42 on layer 2").run()
    app.button(key="use_recipe").click().run()
    assert not app.exception
    w = ws(app)
    assert torch.equal(w.tree().tensor("2.weight"), torch.full((1, 8), 42.0))
    assert w.provenance["0.weight"] == 1 and w.provenance["2.weight"] == 2


def test_bad_filter_regex_shows_an_error_not_a_traceback(app):
    """An invalid regex in the filter is an st.error message."""
    app.text_input(key="filter").input("(").run()
    assert not app.exception
    assert any("not a valid regular expression" in e for e in errors(app))


def test_weight_filter_keeps_only_weights(app):
    """Step 5g: '.*weight' in the table filter leaves only weights."""
    run_forward(app)
    app.text_input(key="filter").input(".*weight").run()
    open_tab(app, "All parameters")
    indexes = [list(d.value.index) for d in app.dataframe if "access" in d.value.columns]
    assert indexes == [["0.weight", "2.weight"]]
    assert any("keeps 2 of 4 parameter names" in c.value for c in app.caption)


def test_prefix_filter_is_glu_on_collect_params(app):
    """Gluon's collect_params('dense0') matches from the start: '0' keeps block 0's names."""
    run_forward(app)
    app.text_input(key="filter").input("0").run()
    app.segmented_control(key="filter_mode").set_value("prefix").run()
    open_tab(app, "All parameters")
    indexes = [list(d.value.index) for d in app.dataframe if "access" in d.value.columns]
    assert indexes == [["0.weight", "0.bias"]]


def test_cuda_is_listed_as_unavailable_with_the_reason(app):
    """The device picker explains why CUDA is not offered on a CPU-only machine."""
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible here")
    assert any("no CUDA device visible" in c.value for c in app.caption)


def test_bad_input_shape_keeps_the_model(app):
    """A shape that does not fit rgnet gives an error on run and keeps the model."""
    load_preset(app, "rgnet")
    before = ws(app).module
    app.text_input(key="input_shape").input("2, 5").run()
    run_forward(app)
    assert any("(2, 5)" in e for e in errors(app))
    assert ws(app).module is before


def test_two_sessions_do_not_share_a_model():
    """Each session has its own workspace object."""
    a, b = AppTest.from_file(APP), AppTest.from_file(APP)
    a.run(timeout=60)
    b.run(timeout=60)
    assert a.session_state["workspace"] is not b.session_state["workspace"]


def test_every_action_shows_its_new_state_in_the_same_rerun(app):
    """Each action's click: the status line, figures and sidebar show the new version at once."""
    load_preset(app, "tied")
    select(app, "2/weight")
    clicks = [
        lambda: app.button(key="forward_button").click().run(),
        lambda: app.button(key="backward_button").click().run(),
        lambda: app.button(key="run_button").click().run(),
        lambda: app.selectbox(key="dtype_choice").select("float64").run(),
        lambda: app.number_input(key="seed").set_value(3).run(),
    ]
    for click in clicks:
        before = ws(app).version
        click()
        assert not app.exception
        now = ws(app)
        assert now.version > before
        assert f"state {now.version}" in markdown_text(app)
        cache_version, entries = app.session_state["cache"]
        assert cache_version == now.version and entries, "figures of an older state on screen"
        loss = [m.value for m in app.metric if m.label == "Loss"]
        assert loss == ([] if now.last_run is None else [f"{now.last_run.loss:.6g}"])


def test_an_error_disappears_after_the_next_successful_action(app):
    """An error belongs to the state it was raised on: the next good action clears it."""
    app.text_input(key="input_shape").input("2, a").run()
    assert any("whole numbers" in e for e in errors(app))
    app.button(key="run_button").click().run()
    assert not app.exception
    assert not any("whole numbers" in e for e in errors(app))
