"""Workspace: the app's per-user state, walked through the chapter's steps."""

import pytest
import torch

from explorer.core.errors import ExplorerError, SpecError
from explorer.core.frozen import thaw
from explorer.core.limits import Limits
from explorer.session.workspace import Workspace
from explorer.spec.presets import PRESETS


def test_mlp_preset_opens_lazy_and_forward_gives_the_chapters_shapes():
    """Step 1: the MLP starts with unknown shapes and gets (8,4),(8,),(1,8),(1,) after a run."""
    ws = Workspace.from_preset("mlp")
    assert all(p.shape is None for p in ws.tree().params.values())
    result = ws.forward_backward()
    assert [p.shape for p in ws.tree().params.values()] == [(8, 4), (8,), (1, 8), (1,)]
    assert result.output.shape == (2, 1)
    assert ws.provenance == dict.fromkeys(["0.weight", "0.bias", "2.weight", "2.bias"], 0)


def test_deferred_shapes_are_recorded_at_the_first_forward():
    """Exercise 3: each lazy parameter's shape after the first forward is remembered."""
    ws = Workspace.from_preset("mlp")
    assert dict(ws.state.deferred) == {}
    ws.forward_backward()
    assert dict(ws.state.deferred) == {
        "0.weight": (8, 4),
        "0.bias": (8,),
        "2.weight": (1, 8),
        "2.bias": (1,),
    }


def test_a_new_input_width_rebuilds_lazy_layers():
    """After a run, a wider input re-creates the lazy layers, as a fresh LazyLinear would."""
    ws = Workspace.from_preset("mlp")
    ws.forward_backward()
    ws.change(input_shape=(2, 10))
    ws.forward_backward()
    assert ws.tree().params["0.weight"].shape == (8, 10)


def test_no_gradient_before_the_first_backward():
    """Step 4: before a backward pass the parameter's grad is None."""
    ws = Workspace.from_preset("rgnet")
    assert ws.tree().tensor("1.weight").grad is None


def test_tied_preset_counts_and_summed_gradients():
    """Steps 13 and 15: 6 unique tensors vs 8 names, and the two uses add up to .grad."""
    ws = Workspace.from_preset("tied")
    result = ws.forward_backward()
    counts = ws.tree().counts()
    assert (counts.unique_tensors, counts.state_dict_entries) == (6, 8)
    uses = result.grad_by_use["2.weight"]
    assert len(uses) == 2
    torch.testing.assert_close(uses[0] + uses[1], ws.tree().tensor("2.weight").grad)


def test_editing_one_alias_changes_the_other():
    """Step 14: setting 2.weight[0, 0] = 100 shows at 4.weight[0, 0]."""
    ws = Workspace.from_preset("tied")
    ws.forward_backward()
    ws.edit("2.weight", "set", 100.0, (0, 0))
    assert ws.tree().tensor("4.weight")[0, 0].item() == 100
    assert ws.state.edited == {"2.weight", "4.weight"}


def test_edit_add_then_set_as_in_the_chapter():
    """Step 12: data[:] += 1 then data[0, 0] = 42."""
    ws = Workspace.from_preset("rgnet")
    before = ws.tree().tensor("1.weight").detach().clone()
    ws.edit("1.weight", "add", 1.0)
    ws.edit("1.weight", "set", 42.0, (0, 0))
    after = ws.tree().tensor("1.weight")
    assert after[0, 0].item() == 42
    torch.testing.assert_close(after[0, 1:], before[0, 1:] + 1)


def test_edit_outside_the_shape_is_refused():
    """An index outside the tensor's shape is a SpecError that names the shape."""
    ws = Workspace.from_preset("rgnet")
    with pytest.raises(SpecError, match=r"outside 1.weight's shape \(1, 4\)"):
        ws.edit("1.weight", "set", 1.0, (3, 0))


def test_a_bad_spec_keeps_the_previous_model():
    """A failing change raises and leaves setup, module and version as they were."""
    ws = Workspace.from_preset("rgnet")
    module, setup, version = ws.module, ws.setup, ws.version
    bad = thaw(ws.setup.spec)
    bad["children"][1]["out_features"] = -3
    with pytest.raises(SpecError, match=r"children\[1\].out_features"):
        ws.change(spec=bad)
    assert (ws.module, ws.setup, ws.version) == (module, setup, version)


def test_undo_and_redo_restore_setups():
    """Undo returns to the previous spec and redo re-applies the change."""
    ws = Workspace.from_preset("mlp")
    ws.change(spec=PRESETS["tied"].spec)
    assert ws.undo() and thaw(ws.setup.spec) == PRESETS["mlp"].spec
    assert ws.redo() and thaw(ws.setup.spec) == PRESETS["tied"].spec
    assert not ws.redo()


def test_reinitialize_with_rules_sets_provenance_and_is_reproducible():
    """Steps 8-10: rules apply with the seed; the same seed gives the same values."""
    rules = [
        {"init": "normal", "target": "*.weight", "std": 0.01},
        {"init": "zeros", "target": "*.bias"},
    ]
    a, b = Workspace.from_preset("rgnet"), Workspace.from_preset("rgnet")
    for ws in (a, b):
        ws.change(rules=rules)
        ws.reinitialize()
    assert a.provenance["1.bias"] == 1 and a.provenance["1.weight"] == 0
    assert torch.equal(a.tree().tensor("1.weight"), b.tree().tensor("1.weight"))
    assert a.rule_of("1.bias")["init"] == "zeros"


def test_reinitialize_a_lazy_model_materializes_it_first():
    """Re-initializing lazy layers gives them shapes from a dry forward on the input."""
    ws = Workspace.from_preset("mlp")
    ws.change(rules=[{"init": "constant", "target": "*", "value": 1.0}])
    assert ws.has_lazy()  # the rules wait for the shapes
    ws.reinitialize()
    assert torch.equal(ws.tree().tensor("0.weight"), torch.ones(8, 4))


def test_input_that_does_not_fit_says_so_and_keeps_the_model():
    """A wrong input shape for a non-lazy model fails at run time with the shape named."""
    ws = Workspace.from_preset("rgnet")
    ws.change(input_shape=(2, 5))
    with pytest.raises(ExplorerError, match=r"\(2, 5\)"):
        ws.forward_backward()
    assert ws.last_run is None


def test_input_shape_limits_are_checked_before_allocating():
    """An absurd input shape is refused by counting."""
    ws = Workspace.from_preset("mlp")
    with pytest.raises(SpecError, match="input_shape: the input would have"):
        ws.change(input_shape=(100000, 100000))


def test_a_forward_whose_activations_exceed_the_budget_is_refused_before_running():
    """Issue 10 row 4: a wide conv on a big image is refused with the size it asks for."""
    spec = {
        "type": "conv2d",
        "in_channels": 1,
        "out_channels": 4096,
        "kernel_size": 1,
        "padding": 16,
    }
    ws = Workspace.from_preset("mlp", limits=Limits(max_activation_bytes=2**30))
    ws.change(spec=spec, input_shape=(1, 1, 1000, 1000), preset=None)
    with pytest.raises(SpecError, match=r"would hold 16.3 GiB of activations"):
        ws.backward()
    assert ws.last_run is None


def test_tokens_preset_runs_with_cross_entropy_and_tied_embedding_uses():
    """The language model's tied embedding has two uses whose sum is its gradient."""
    ws = Workspace.from_preset("tied_lm")
    result = ws.forward_backward()
    uses = result.grad_by_use["0.weight"]
    assert len(uses) == 2
    torch.testing.assert_close(sum(uses), ws.tree().tensor("3.weight").grad)


def test_move_to_float64_and_back():
    """Changing dtype converts the parameters and keeps their values."""
    ws = Workspace.from_preset("rgnet")
    before = ws.tree().tensor("1.weight").detach().clone()
    ws.move(dtype="float64")
    assert ws.tree().params["1.weight"].dtype == "float64"
    torch.testing.assert_close(ws.tree().tensor("1.weight").float(), before)


def test_unavailable_device_is_refused_and_nothing_moves():
    """Asking for CUDA without one raises, and the model stays on the CPU."""
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible; this checks the message when there is none")
    ws = Workspace.from_preset("mlp")
    with pytest.raises(ExplorerError, match="CUDA"):
        ws.move(device="cuda")
    assert ws.device == "cpu"


def test_lazy_layers_too_big_for_the_input_are_refused_before_allocating():
    """A lazy conv that a many-channel input would make huge is refused by a meta probe."""
    ws = Workspace.from_preset("mlp", limits=Limits(max_params=1_000_000))
    conv = {"type": "conv2d", "out_channels": 64, "kernel_size": 31}
    ws.change(spec=conv, input_shape=(1, 512, 31, 31))  # in_channels unknown until forward
    with pytest.raises(SpecError, match=r"lazy layers would make 31,490,112 parameters"):
        ws.forward_backward()
    assert ws.has_lazy()


def test_an_input_that_makes_the_first_lazy_layer_too_big_is_refused_early():
    """Changing the input shape re-checks the spec with the input's feature size."""
    ws = Workspace.from_preset("mlp", limits=Limits(max_params=10_000))
    with pytest.raises(SpecError, match="16,401 parameters; the limit is 10,000"):
        ws.change(input_shape=(2, 2048))


def test_a_meta_preset_is_structure_only_and_says_so():
    """Llama-7B's shape on meta: names, counts and ties; running, editing and moving refused."""
    ws = Workspace.from_preset("llama_7b")
    assert ws.device == "meta"
    assert ws.tree().counts().unique_elements == 6_738_415_616
    for action in (ws.backward, lambda: ws.edit("embed_tokens.weight", "set", 1.0)):
        with pytest.raises(SpecError, match="no values on the meta device"):
            action()
    assert ws.version == 0
