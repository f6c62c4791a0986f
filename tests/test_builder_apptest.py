"""The Build tab, driven through Streamlit's AppTest: every click is a spec edit that rebuilds."""

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from explorer.core.frozen import thaw
from explorer.session.workspace import Workspace
from explorer.spec.blocks import BLOCKS
from explorer.spec.edit import KINDS
from explorer.spec.presets import PRESETS
from explorer.spec.validate import to_json
from ui.build_tab import HINT, row_key, widget_key

APP = Path(__file__).parent / "apps" / "builder_app.py"
MLP = PRESETS["mlp"].spec
LAST = ("children", 2)


def start(preset: str = "mlp") -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    if preset != "mlp":
        at.session_state["workspace"] = Workspace.from_preset(preset)
    return at.run(timeout=30)


def spec(at: AppTest) -> dict:
    return thaw(at.session_state["workspace"].experiment.spec)


def texts(errors) -> list[str]:
    """Error boxes as the user reads them: the markdown escapes of plain text removed."""
    return [re.sub(r"\\(.)", r"\1", e.value) for e in errors]


def key(at: AppTest, path: tuple, what: str) -> str:
    return widget_key(at.session_state["workspace"], path, what)


def click(at: AppTest, path: tuple, what: str) -> AppTest:
    return at.button(key=key(at, path, what)).click().run(timeout=30)


def row(at: AppTest, path: tuple):
    """The container of one outline row: the row, its editor and its error."""
    wanted = row_key(path)
    return next(node for node in at.main if getattr(node, "key", None) == wanted)


def types(at: AppTest) -> list[str]:
    return [c["type"] for c in spec(at)["children"]]


def test_panel_shows_the_hint_and_one_row_per_block():
    """The MLP preset shows the hint and four rows: the sequential and its three layers."""
    at = start()
    assert at.caption[0].value == HINT
    assert [m.value for m in at.markdown][-3:] == [
        "&emsp;&emsp;:material/linear_scale: `0` **linear** ? → 8, bias",
        "&emsp;&emsp;:material/show_chart: `1` **relu**",
        "&emsp;&emsp;:material/linear_scale: `2` **linear** ? → 1, bias",
    ]
    assert not at.exception


def add(at: AppTest, kind: str, to: str = "") -> AppTest:
    """Use the outline's one add bar: pick the sequential and the kind, then press Add."""
    at.selectbox(key="builder_add_to").select(to)
    at.selectbox(key="builder_add_kind").select(kind)
    return at.button(key="builder_add").click().run(timeout=30)


def test_add_a_linear_child_grows_the_spec():
    """Add with the default kind appends a linear of 8 and opens its editor."""
    at = start()
    assert at.selectbox(key="builder_add_kind").value == "linear"
    at = at.button(key="builder_add").click().run(timeout=30)
    assert spec(at)["children"][3] == {"type": "linear", "out_features": 8}
    assert at.session_state["builder_open"] == ("children", 3)
    assert at.number_input(key=key(at, ("children", 3), "out_features")).value == 8
    assert not at.exception


def test_add_reuse_block_ties_the_named_block():
    """ "reuse block shared" appends a shared ref to it, as in the chapter's tied net."""
    at = start("tied")
    at = add(at, "shared:shared")
    assert spec(at)["children"][-1] == {"type": "shared", "ref": "shared"}
    assert at.session_state["workspace"].module[7] is at.session_state["workspace"].module[2]
    assert not at.exception


def test_remove_drops_the_block():
    """✕ on the ReLU removes it from the spec and the model."""
    at = start()
    at = click(at, ("children", 1), "remove")
    assert types(at) == ["linear", "linear"]
    assert len(at.session_state["workspace"].module) == 2
    assert not at.exception


def test_move_down_reorders():
    """↓ on the first layer swaps it with the ReLU."""
    at = start()
    at = click(at, ("children", 0), "down")
    assert types(at) == ["relu", "linear", "linear"]
    assert not at.exception


def test_open_editor_follows_a_moved_block():
    """After ↑ the editor stays on the moved layer, with its own values, not its old place's."""
    at = start()
    at = click(at, LAST, "edit")
    at = click(at, LAST, "up")
    assert at.session_state["builder_open"] == ("children", 1)
    assert at.number_input(key=key(at, ("children", 1), "out_features")).value == 1
    assert not at.exception


def test_edit_a_field_rebuilds_the_model():
    """Setting out_features of the last layer to 3 changes the spec and the output size."""
    at = start()
    at = click(at, LAST, "edit")
    at.number_input(key=key(at, LAST, "out_features")).set_value(3).run(timeout=30)
    assert spec(at)["children"][2] == {"type": "linear", "out_features": 3}
    assert at.session_state["workspace"].module[2].out_features == 3
    assert not at.exception


def test_zero_is_not_accepted_by_a_whole_number_input():
    """out_features has min 1: a 0 snaps back to the current value and the spec is unchanged."""
    at = start()
    at = click(at, LAST, "edit")
    at.number_input(key=key(at, LAST, "out_features")).set_value(0).run(timeout=30)
    assert spec(at) == MLP
    assert not at.error
    assert not at.exception


def test_too_large_a_number_shows_the_error_under_its_row():
    """70000 units is refused; the message is under that row and the previous model is kept."""
    at = start()
    at = click(at, LAST, "edit")
    at.number_input(key=key(at, LAST, "out_features")).set_value(70000).run(timeout=30)
    assert spec(at) == MLP
    assert texts(row(at, LAST).error) == [
        "out_features: must be a whole number from 1 to 65536, got 70000"
    ]
    assert len(at.error) == 1
    assert not at.exception


def test_zero_eps_shows_the_error_under_the_layernorm_row():
    """A layernorm eps of 0 is refused under the layernorm's row; the model keeps eps 1e-5."""
    at = start()
    at = add(at, "layernorm")
    before = spec(at)
    new = ("children", 3)
    at.number_input(key=key(at, new, "eps")).set_value(0.0).run(timeout=30)
    assert spec(at) == before
    assert texts(row(at, new).error) == ["eps: must be a number between 0 and 1, got 0.0"]
    assert not at.exception


def test_removing_a_reused_block_is_refused_under_its_row():
    """✕ on the block a shared ref reuses shows why under that row and keeps the model."""
    at = start("tied")
    at = click(at, LAST, "remove")
    assert spec(at) == PRESETS["tied"].spec
    assert texts(row(at, LAST).error) == [
        "name: block 'shared' is reused at children[4]; remove that reuse first"
    ]
    assert not at.exception


def test_repeat_wraps_the_block_and_opens_it():
    """× N makes the last layer the block of a repeat of 2 and opens the repeat's editor."""
    at = start()
    at = click(at, LAST, "repeat")
    assert spec(at)["children"][2] == {
        "type": "repeat",
        "times": 2,
        "block": {"type": "linear", "out_features": 1},
    }
    at.number_input(key=key(at, LAST, "times")).set_value(4).run(timeout=30)
    assert spec(at)["children"][2]["times"] == 4
    assert not at.exception


def test_nest_then_unwrap_gives_the_spec_back():
    """ "nest" puts the ReLU in a new sequential; "unwrap" on that sequential undoes it."""
    at = start()
    at = click(at, ("children", 1), "nest")
    assert spec(at)["children"][1] == {"type": "sequential", "children": [{"type": "relu"}]}
    at = click(at, ("children", 1), "unwrap")
    assert spec(at) == MLP
    assert not at.exception


def test_rename_keeps_the_reuse_working():
    """Renaming the shared block renames the ref that reuses it."""
    at = start("tied")
    at = click(at, LAST, "edit")
    at.text_input(key=key(at, LAST, "name")).input("hidden").run(timeout=30)
    assert (spec(at)["children"][2]["name"], spec(at)["children"][4]["ref"]) == ("hidden", "hidden")
    assert not at.exception


def test_undo_restores_and_redo_reapplies():
    """Undo brings back the removed ReLU; Redo removes it again."""
    at = start()
    assert at.button(key="undo_button").disabled
    at = click(at, ("children", 1), "remove")
    at.button(key="undo_button").click().run(timeout=30)
    assert spec(at) == MLP
    at.button(key="redo_button").click().run(timeout=30)
    assert types(at) == ["linear", "linear"]
    assert not at.exception


def test_apply_json_of_rgnet_builds_it():
    """Pasting rgnet's spec and applying it builds the nested net: eight outline rows."""
    at = start()
    at.text_area(key=f"builder_json_{at.session_state['workspace'].version}").input(
        to_json(PRESETS["rgnet"].spec)
    )
    at.button(key="builder_json_apply").click().run(timeout=30)
    assert spec(at) == PRESETS["rgnet"].spec
    assert len(at.session_state["workspace"].module[0]) == 4
    assert (
        sum(1 for node in at.main if str(getattr(node, "key", "")).startswith("builder_row_")) == 8
    )
    assert not at.exception


def test_invalid_json_shows_an_error_and_keeps_the_text():
    """Bad JSON is refused with its position; the typed text stays and the model is kept."""
    at = start()
    text_key = f"builder_json_{at.session_state['workspace'].version}"
    typed = '{"type": "sequential", "children": [oops]}'
    at.text_area(key=text_key).input(typed)
    at.button(key="builder_json_apply").click().run(timeout=30)
    assert spec(at) == MLP
    assert at.text_area(key=text_key).value == typed
    assert texts(at.error) == ["not valid JSON: Expecting value at line 1, column 37"]
    assert not at.exception


def test_add_menu_offers_every_registered_type_and_each_named_block():
    """The one add bar lists every block type of the table, then a reuse per named block."""
    at = start("tied")
    options = at.selectbox(key="builder_add_kind").options
    assert options == [*KINDS, "reuse block shared (same module, tied)"]
    assert set(KINDS) == set(BLOCKS) - {"shared"}
    assert not at.exception


def test_add_into_a_nested_sequential():
    """Adding to rgnet's block1 (inside the repeat) appends there, not at the root."""
    at = start("rgnet")
    at = add(at, "tanh", to="children[0].block")
    inner = spec(at)["children"][0]["block"]["children"]
    assert [c["type"] for c in inner] == ["linear", "relu", "linear", "relu", "tanh"]
    assert at.session_state["builder_open"] == ("children", 0, "block", "children", 4)
    assert not at.exception


def test_editor_draws_the_fields_of_the_table():
    """A new self_attention's editor has one widget per field of its entry, with its defaults."""
    at = start()
    at = add(at, "self_attention")
    new = ("children", 3)
    assert at.number_input(key=key(at, new, "embed_dim")).value == 16
    assert at.number_input(key=key(at, new, "num_heads")).value == 2
    assert at.checkbox(key=key(at, new, "bias")).value is True
    assert at.number_input(key=key(at, new, "dropout")).value == 0.0
    at.number_input(key=key(at, new, "num_heads")).set_value(3).run(timeout=30)
    assert texts(row(at, new).error) == ["num_heads: must divide embed_dim (16) evenly, got 3"]
    assert not at.exception


def test_a_child_key_renames_it_in_the_model():
    """Typing a key for a child makes it the child's attribute name, as add_module does."""
    at = start()
    at = click(at, LAST, "edit")
    at.text_input(key=key(at, LAST, "key")).input("head").run(timeout=30)
    assert spec(at)["children"][2]["key"] == "head"
    assert list(at.session_state["workspace"].module._modules) == ["0", "1", "head"]
    assert not at.exception
