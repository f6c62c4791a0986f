"""The chapter's five editions, item by item: each test quotes the seed its behaviour comes from.

``quote(seed, text)`` checks that the quoted text is in the seed (whitespace and ``code``
marks aside); the seeds must be next to the repository (``../shared/seeds``), and a missing
seed fails the test instead of skipping the check.
docs/editions.md lists every item with its seed, quote and test (checked at the end).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from explorer.core.errors import SpecError
from explorer.editions.places import Framework, lengths, listing, places
from explorer.editions.snippets import (
    MY_INIT,
    MY_INIT_FORMULA,
    MY_INIT_PARTS,
    SAFE_EDITS,
    edit_lines,
    gradient_before_backward,
    init_prints,
    sharing_evidence,
)
from explorer.session.experiment import Experiment
from explorer.session.state import realize
from explorer.session.workspace import Workspace
from tests.models import chapter_mlp, rgnet, tied_net

F = Framework
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
DJL = "d2l-djl-parameters.txt"
DJL_ZH = "d2l-zh-djl-parameters.txt"
GLUON = "d2l-gluon-parameters.txt"
MXNET_PT_TF = "d2l-mxnet-pytorch-tf-parameters.txt"
NEWEST = "d2l-pytorch-mxnet-jax-tf-parameters.txt"


def _squash(text: str) -> str:
    """The text without whitespace and reStructuredText's code marks (``)."""
    return re.sub(r"\s+", "", text).replace("``", "")


def quote(seed: str, text: str) -> str:
    """``text``, checked to be in the seed (all whitespace ignored). The seeds must be next to
    the repository (``../shared/seeds``): without them the check fails, it never skips."""
    path = SEEDS / seed
    assert path.is_file(), f"the seed {path} is missing: the quotes cannot be checked"
    assert _squash(text) in _squash(path.read_text(encoding="utf-8")), (seed, text)
    return text


def keras_mlp() -> nn.Sequential:
    """The Keras edition's net: Flatten, Dense(4, relu), Dense(1) on a (2, 4) input."""
    return nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1))


def block_net(units: tuple[int, int], n_in: int, out: int) -> nn.Sequential:
    """rgnet as MXNet and DJL build it: four block1 (Dense units[0], Dense units[1]), Dense out."""

    def block1(n: int) -> nn.Sequential:
        a, b = units
        return nn.Sequential(nn.Linear(n, a), nn.ReLU(), nn.Linear(a, b), nn.ReLU())

    return nn.Sequential(
        nn.Sequential(*(block1(n_in if i == 0 else units[1]) for i in range(4))),
        nn.Linear(units[1], out),
    )


def djl_tied() -> nn.Sequential:
    """DJL's tied net: a SequentialBlock sharedRelu (Linear 8, ReLU) added twice."""
    shared_relu = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
    return nn.Sequential(nn.Linear(20, 8), nn.ReLU(), shared_relu, shared_relu, nn.Linear(8, 10))


def keras_tied() -> nn.Sequential:
    """Keras's tied net: Flatten, shared Dense(4, relu) twice, Dense(1)."""
    shared = nn.Linear(4, 4)
    return nn.Sequential(shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(4, 1))


# --- 1. the framework view: names and access, computed from the model ---


def test_e05_mxnet_names_the_second_layer_dense1_at_index_1():
    """MXNet fuses the ReLU into Dense, so PyTorch's net[2] is Gluon's net[1], dense1_weight."""
    quote(MXNET_PT_TF, "print(net[1].params)")
    quote(MXNET_PT_TF, "Parameter dense1_weight (shape=(1, 8), dtype=float32)")
    where = places(chapter_mlp())
    assert where["2.weight"][F.MXNET].name == "dense1_weight"
    assert where["2.bias"][F.MXNET].name == "dense1_bias"
    assert where["2.weight"][F.MXNET].access[0] == "net[1].weight"
    assert where["2.weight"][F.MXNET].shape == (1, 8)


def test_e19_mxnet_collect_params_prints_as_the_seed():
    """``print(net.collect_params())`` of the MLP, exactly as the MXNet edition prints it."""
    seed = quote(
        MXNET_PT_TF,
        "sequential0_ ( Parameter dense0_weight (shape=(8, 4), dtype=float32) "
        "Parameter dense0_bias (shape=(8,), dtype=float32) "
        "Parameter dense1_weight (shape=(1, 8), dtype=float32) "
        "Parameter dense1_bias (shape=(1,), dtype=float32) )",
    )
    assert _squash(listing(chapter_mlp(), F.MXNET)) == _squash(seed)


def test_e02_gluon_dense256_net_names_dense0_and_dense1():
    """The oldest edition's Dense(256) net: dense0_weight (256, 20) … dense1_bias (10,)."""
    seed = quote(
        GLUON,
        "sequential0_ ( Parameter dense0_weight (shape=(256, 20), dtype=float32) "
        "Parameter dense0_bias (shape=(256,), dtype=float32) "
        "Parameter dense1_weight (shape=(10, 256), dtype=float32) "
        "Parameter dense1_bias (shape=(10,), dtype=float32)",
    )
    from explorer import PRESETS, build

    net = build(PRESETS["gluon_dense"].spec)
    assert _squash(listing(net, F.MXNET)).removesuffix(")") == _squash(seed)
    assert places(net)["2.bias"][F.MXNET].access[1] == "net.collect_params()['dense1_bias']"


def test_e29_mxnet_name_counters_are_global():
    """rgnet built after the MLP continues the counters: sequential1_, dense2 … dense10."""
    quote(GLUON, "sequential1_ ( Parameter dense2_weight (shape=(32, 20), dtype=float32)")
    seed = quote(
        MXNET_PT_TF,
        "sequential1_ ( "
        + " ".join(
            f"Parameter dense{2 + 2 * i}_weight (shape={w}, dtype=float32) "
            f"Parameter dense{2 + 2 * i}_bias (shape={b}, dtype=float32) "
            f"Parameter dense{3 + 2 * i}_weight (shape=(16, 32), dtype=float32) "
            f"Parameter dense{3 + 2 * i}_bias (shape=(16,), dtype=float32)"
            for i, (w, b) in enumerate([("(32, 4)", "(32,)")] + [("(32, 16)", "(32,)")] * 3)
        )
        + " Parameter dense10_weight (shape=(10, 16), dtype=float32) "
        "Parameter dense10_bias (shape=(10,), dtype=float32) )",
    )
    net = block_net((32, 16), 4, 10)
    text = listing(net, F.MXNET, "rgnet", first={"dense": 2, "sequential": 1})
    assert _squash(text) == _squash(seed)


def test_e08_djl_keys_are_numbered_children_with_their_class():
    """DJL prints the MLP's keys 01Linear_weight … 03Linear_bias (the ReLU is 02)."""
    seed = quote(DJL, "01Linear_weight 01Linear_bias 03Linear_weight 03Linear_bias")
    assert listing(chapter_mlp(), F.DJL).split() == seed.split()
    quote(DJL_ZH, 'NDArray dense0Weight = params.get("01Linear_weight").getArray();')
    assert places(chapter_mlp())["0.weight"][F.DJL].access[0] == (
        'net.getParameters().get("01Linear_weight")'
    )


def test_e09_djl_value_at_2_is_the_second_layers_weight():
    """``params.valueAt(2)`` is 03Linear_weight: getParameters() counts weight, bias per layer."""
    quote(DJL, "NDArray dense1Weight = params.valueAt(2).getArray();")
    where = places(chapter_mlp())
    assert "net.getParameters().valueAt(2)" in where["2.weight"][F.DJL].access
    assert "net.getParameters().valueAt(3)" in where["2.bias"][F.DJL].access
    assert where["2.weight"][F.DJL].name == "03Linear_weight"


def test_e06_keras_layer_2_is_the_second_dense_after_flatten():
    """The Keras net starts with Flatten(), so the second Dense is net.layers[2]."""
    quote(
        MXNET_PT_TF, "tf.keras.layers.Flatten(), tf.keras.layers.Dense(4, activation=tf.nn.relu),"
    )
    quote(MXNET_PT_TF, "print(net.layers[2].weights)")
    where = places(keras_mlp())
    assert where["2.weight"][F.KERAS].access[0] == "net.layers[2].weights[0]"
    assert where["2.bias"][F.KERAS].access[0] == "net.layers[2].weights[1]"
    assert where["0.weight"][F.KERAS].access[0] == "net.layers[1].weights[0]"


def test_e22_each_edition_reaches_a_parameter_in_its_flat_list():
    """By name or position: ``state_dict()['2.bias']``, ``collect_params()['dense1_bias']``,
    and ``net.get_weights()[1]``, the first Dense's bias (zeros of shape (4,))."""
    quote(MXNET_PT_TF, "net.state_dict()['2.bias'].data")
    quote(MXNET_PT_TF, "net.collect_params()['dense1_bias'].data()")
    quote(MXNET_PT_TF, "net.get_weights()[1]")
    quote(MXNET_PT_TF, "array([0., 0., 0., 0.], dtype=float32)")
    mlp = places(chapter_mlp())["2.bias"]
    assert mlp[F.PYTORCH].access[1] == "net.state_dict()['2.bias']"
    assert mlp[F.MXNET].access[1] == "net.collect_params()['dense1_bias']"
    where = places(keras_mlp())
    assert "net.get_weights()[1]" in where["0.bias"][F.KERAS].access
    assert where["0.bias"][F.KERAS].shape == (4,)


def test_e24_keras_kernel_is_the_pytorch_weight_transposed():
    """Keras prints Dense(1)'s kernel as a (4, 1) array: PyTorch's (1, 4) weight transposed."""
    quote(
        MXNET_PT_TF,
        "array([[ 0.6852075 ], [-0.81062627], [ 0.14000857], [ 0.5764358 ]], dtype=float32)",
    )
    where = places(keras_mlp())
    assert where["2.weight"][F.PYTORCH].shape == (1, 4)
    assert where["2.weight"][F.KERAS].shape == (4, 1)
    assert where["2.weight"][F.KERAS].transposed
    assert listing(keras_mlp(), F.KERAS) == "[(4, 4), (4,), (4, 1), (1,)]"


def test_e07_flax_layers_2_is_the_second_dense():
    """Flax keeps nn.relu's position: the second Dense is params['params']['layers_2']."""
    quote(NEWEST, "params['params']['layers_2']")
    quote(NEWEST, "bias = params['params']['layers_2']['bias']")
    where = places(chapter_mlp())
    assert where["2.bias"][F.FLAX].access[0] == "params['params']['layers_2']['bias']"
    assert where["2.weight"][F.FLAX].access[0] == "params['params']['layers_2']['kernel']"
    assert where["2.weight"][F.FLAX].shape == (8, 1)  # kernel (in, out): weight (1, 8) transposed


def test_e21_flax_tree_map_lists_the_shapes_by_layer():
    """``jax.tree_util.tree_map(lambda x: x.shape, params)``: layers_0 and layers_2 only."""
    quote(NEWEST, "jax.tree_util.tree_map(lambda x: x.shape, params)")
    text = listing(chapter_mlp(), F.FLAX)
    assert text == (  # jax gives a dict back with sorted keys: bias before kernel
        "{'params': {'layers_0': {'bias': (8,), 'kernel': (4, 8)}, "
        "'layers_2': {'bias': (1,), 'kernel': (8, 1)}}}"
    )


def test_e17_pytorch_named_parameters_as_the_seed_prints_them():
    """``[(name, param.shape) for name, param in net.named_parameters()]`` on the MLP."""
    seed = quote(
        MXNET_PT_TF,
        "('0.weight', torch.Size([8, 4])) ('0.bias', torch.Size([8])) "
        "('2.weight', torch.Size([1, 8])) ('2.bias', torch.Size([1]))",
    )
    assert _squash(listing(chapter_mlp(), F.PYTORCH)) == _squash(seed)
    expected = [(n, p.shape) for n, p in chapter_mlp().named_parameters()]
    assert [(n, torch.Size(s)) for n, s in [("0.weight", (8, 4)), ("0.bias", (8,)),
            ("2.weight", (1, 8)), ("2.bias", (1,))]] == expected  # fmt: skip


def test_e31_nested_access_rgnet_0_1_0_bias_in_pytorch_and_mxnet():
    """``rgnet[0][1][0].bias`` reaches the same bias in PyTorch and in MXNet."""
    quote(MXNET_PT_TF, "rgnet[0][1][0].bias.data()")
    quote(MXNET_PT_TF, "rgnet[0][1][0].bias.data")
    where = places(rgnet(), "rgnet")["0.block 1.0.bias"]
    assert where[F.PYTORCH].access[0] == "rgnet[0][1][0].bias"
    assert where[F.MXNET].access[0] == "rgnet[0][1][0].bias"


def test_e32_keras_nested_access_counts_each_blocks_flatten():
    """Keras reaches that bias as rgnet.layers[0].layers[1].layers[1].weights[1]."""
    quote(MXNET_PT_TF, "rgnet.layers[0].layers[1].layers[1].weights[1]")
    where = places(rgnet(), "rgnet")["0.block 1.0.bias"]
    assert where[F.KERAS].access[0] == "rgnet.layers[0].layers[1].layers[1].weights[1]"


def test_e33_djl_nested_access_through_get_children():
    """DJL walks getChildren() to the same bias: get(0).getValue(), valueAt(1), valueAt(0)."""
    steps = [
        quote(DJL, "Block majorBlock1 = rgnet.getChildren().get(0).getValue();"),
        quote(DJL, "Block subBlock2 = majorBlock1.getChildren().valueAt(1);"),
        quote(DJL, "Block linearLayer1 = subBlock2.getChildren().valueAt(0);"),
        quote(DJL, "NDArray bias = linearLayer1.getParameters().valueAt(1).getArray();"),
    ]
    seed_chain = "rgnet" + "".join(s[s.index(".") : s.rindex(";")] for s in steps)
    seed_chain = re.sub(r"\.get\((\d+)\)\.getValue\(\)", r".valueAt(\1)", seed_chain)
    where = places(block_net((32, 16), 4, 10), "rgnet")["0.1.0.bias"][F.DJL]
    assert where.values == seed_chain
    assert (
        "rgnet.getChildren().get(0).getValue().getChildren().get(1).getValue()" in where.access[-1]
    )


def test_e30_djl_rgnet_parameters_come_in_the_seeds_order():
    """DJL lists rgnet's parameters weight (32, 4), bias (32), weight (16, 32), … bias (10)."""
    printed = quote(
        DJL,
        "weight: (32, 4) gpu(0) float32 hasGradient [ Exceed max print size ] "
        "bias: (32) gpu(0) float32 hasGradient",
    )
    quote(DJL, "weight: (10, 16) gpu(0) float32 hasGradient [ Exceed max print size ]")
    net = block_net((32, 16), 4, 10)
    where = places(net, "rgnet")
    by_index = sorted((p[F.DJL].index, p[F.DJL].shape) for p in where.values())
    shapes = [shape for _, shape in by_index]
    assert shapes[:2] == [(32, 4), (32,)] and "(32, 4)" in printed
    assert shapes[2:4] == [(16, 32), (16,)]
    assert shapes[-2:] == [(10, 16), (10,)]
    assert len(shapes) == 18


def test_e61_keras_and_flax_keep_a_layer_used_twice_once():
    """Keras: ``len(net.layers) == 3``; Flax: ``len(params['params']) == 3``."""
    quote(NEWEST, "print(len(net.layers) == 3)")
    quote(NEWEST, "print(len(params['params']) == 3)")
    quote(NEWEST, "tf.keras behaves a bit differently. It removes the duplicate layer")
    assert lengths(keras_tied())[F.KERAS] == 3
    assert lengths(tied_net())[F.FLAX] == 3
    assert lengths(tied_net())[F.PYTORCH] == 7
    where = places(tied_net())
    assert where["4.weight"][F.FLAX].access == where["2.weight"][F.FLAX].access
    assert where["2.weight"][F.FLAX].access[0] == "params['params']['layers_2']['kernel']"


def test_e59_mxnet_tied_layers_are_net_1_and_net_2():
    """Gluon's tied net compares net[1] and net[2]: PyTorch's net[2] and net[4], ReLUs fused."""
    quote(MXNET_PT_TF, "print(net[1].weight.data()[0] == net[2].weight.data()[0])")
    quote(MXNET_PT_TF, "print(net[2].weight.data[0] == net[4].weight.data[0])")
    where = places(tied_net())
    assert where["2.weight"][F.MXNET].access[0] == "net[1].weight"
    assert where["4.weight"][F.MXNET].access[0] == "net[2].weight"
    assert where["2.weight"][F.MXNET].name == where["4.weight"][F.MXNET].name
    assert where["2.weight"][F.PYTORCH].access[0] == "net[2].weight"
    assert where["4.weight"][F.PYTORCH].access[0] == "net[4].weight"


def test_e60_djl_tied_block_is_children_2_and_3():
    """DJL adds sharedRelu twice: getChildren().valueAt(2) and valueAt(3), one NDArray."""
    quote(
        DJL,
        "NDArray shared1 = net.getChildren().valueAt(2) .getParameters().valueAt(0).getArray();",
    )
    quote(
        DJL,
        "NDArray shared2 = net.getChildren().valueAt(3) .getParameters().valueAt(0).getArray();",
    )
    net = djl_tied()
    where = places(net)
    assert (
        "net.getChildren().valueAt(2).getParameters().valueAt(0)"
        in where["2.0.weight"][F.DJL].access
    )
    assert (
        "net.getChildren().valueAt(3).getParameters().valueAt(0)"
        in where["3.0.weight"][F.DJL].access
    )
    assert net[2][0].weight is net[3][0].weight


def test_framework_view_of_the_built_presets():
    """The explorer's own modules (lazy MLP, tied, rgnet with named blocks) map the same way."""
    from explorer import PRESETS, build

    lazy = places(build(PRESETS["mlp"].spec))
    assert lazy["2.weight"][F.MXNET].name == "dense1_weight"
    assert lazy["2.weight"][F.KERAS].shape == (None, 1)  # (in, out), the input size not known yet
    tied = places(build(PRESETS["tied"].spec))
    assert tied["4.weight"][F.DJL].name == "05Linear_weight"
    net = build(PRESETS["rgnet"].spec)
    names = [n for n, _ in net.named_parameters()]
    assert places(net, "rgnet")[names[4]][F.MXNET].name == "dense2_weight"


def test_layers_outside_the_chapter_say_why():
    """An embedding, or a layer inside a custom block, has no counterpart, with the reason."""
    from explorer import PRESETS, build

    where = places(build(PRESETS["tied_lm"].spec))
    assert "Embedding is not in the chapter" in where["0.weight"][F.MXNET].missing
    assert "tie whole layers" in where["3.weight"][F.KERAS].missing
    assert where["1.weight"][F.KERAS].access[0] == "net.layers[1].weights[0]"


# --- 3. edits in every edition ---


def test_e56_divide_is_a_true_division_as_djls_divi():
    """``divi(9)`` divides: the result equals ``w / 9`` bit for bit (not ``w * (1/9)``)."""
    quote(DJL, "weightLayer.divi(9);")
    ws = Workspace.from_preset("gluon_dense")
    before = ws.state.tree.tensor("0.weight").detach().clone()
    ws.edit("0.weight", "divide", 9.0)
    assert torch.equal(ws.state.tree.tensor("0.weight"), before / 9)
    assert not torch.equal(before / 9, before * (1 / 9))  # the two differ on this tensor
    live = ws.state.fingerprint()
    assert realize(ws.experiment).fingerprint() == live


def test_e56_divide_by_zero_is_refused():
    """Dividing by 0 would make inf: refused, naming the value."""
    ws = Workspace.from_preset("rgnet")
    with pytest.raises(SpecError, match="divide by 0"):
        ws.edit("1.weight", "divide", 0.0)


def test_e56_djl_addi_divi_set_reproduce_the_seeds_numbers():
    """addi(7), divi(9), set(NDIndex(0, 0), 2020): a 0 becomes 7/9 = 0.777…, (0, 0) is 2020."""
    quote(
        DJL, "weightLayer.addi(7); weightLayer.divi(9); weightLayer.set(new NDIndex(0, 0), 2020);"
    )
    quote(DJL, "[[ 2.02000000e+03, 9.33975633e-03, 7.77777791e-01, -1.63584173e-01],")
    ws = Workspace.from_preset("mlp")
    ws.materialize()
    ws.change(rules=({"init": "zeros", "target": "*"},))
    ws.edit("0.weight", "add", 7.0)
    ws.edit("0.weight", "divide", 9.0)
    ws.edit("0.weight", "set", 2020.0, (0, 0))
    w = ws.state.tree.tensor("0.weight")
    assert w[0, 0].item() == 2020
    assert f"{w[0, 1].item():.8e}" == "7.77777791e-01"  # the seed's float32 7/9
    where = places(ws.state.module)["0.weight"]
    lines = [edit_lines(where, how, v, i)[F.DJL] for how, v, i in
             [("add", 7, None), ("divide", 9, None), ("set", 2020, (0, 0))]]  # fmt: skip
    array = "net.getChildren().valueAt(0).getParameters().valueAt(0).getArray()"
    assert lines == [
        f"{array}.addi(7)",
        f"{array}.divi(9)",
        f"{array}.set(new NDIndex(0, 0), 2020)",
    ]


def test_e54_pytorch_and_mxnet_edit_lines_match_the_seeds():
    """``net[0].weight.data[:] += 1`` and ``net[0].weight.data()[0, 0] = 42``."""
    quote(MXNET_PT_TF, "net[0].weight.data[:] += 1 net[0].weight.data[0, 0] = 42")
    quote(MXNET_PT_TF, "net[0].weight.data()[:] += 1 net[0].weight.data()[0, 0] = 42")
    where = places(chapter_mlp())["0.weight"]
    assert edit_lines(where, "add", 1, None)[F.PYTORCH] == "net[0].weight.data[:] += 1"
    assert edit_lines(where, "set", 42, (0, 0))[F.PYTORCH] == "net[0].weight.data[0, 0] = 42"
    assert edit_lines(where, "add", 1, None)[F.MXNET] == "net[0].weight.data()[:] += 1"
    assert edit_lines(where, "set", 42, (0, 0))[F.MXNET] == "net[0].weight.data()[0, 0] = 42"


def test_e55_keras_edits_with_assign_on_the_transposed_kernel():
    """TF's ``.assign``: ``[:].assign(w + 1)``, ``[0, 0].assign(42)``; (i, j) becomes [j, i]."""
    quote(
        MXNET_PT_TF,
        "net.layers[1].weights[0][:].assign(net.layers[1].weights[0] + 1) "
        "net.layers[1].weights[0][0, 0].assign(42)",
    )
    where = places(keras_mlp())["0.weight"]
    assert edit_lines(where, "add", 1, None)[F.KERAS] == (
        "net.layers[1].weights[0][:].assign(net.layers[1].weights[0] + 1)"
    )
    assert (
        edit_lines(where, "set", 42, (0, 0))[F.KERAS] == "net.layers[1].weights[0][0, 0].assign(42)"
    )
    assert (
        edit_lines(where, "set", 42, (2, 1))[F.KERAS] == "net.layers[1].weights[0][1, 2].assign(42)"
    )


def test_e57_safe_edit_notes_are_the_seeds_words():
    """MXNet's set_data and DJL's GarbageCollector notes, English and Chinese, as written."""
    quote(GLUON, *SAFE_EDITS[F.MXNET])
    english, chinese, inplace = SAFE_EDITS[F.DJL]
    quote(DJL, english)
    quote(DJL_ZH, chinese)
    quote(DJL, inplace)
    quote(MXNET_PT_TF, "net.layers[1].weights[0][0, 0].assign(42)")
    assert ".assign" in SAFE_EDITS[F.KERAS][0]


# --- 6. the comparison notes ---


def _notes() -> str:
    from ui.table_tabs import FRAMEWORK_NOTES

    return " ".join(FRAMEWORK_NOTES.split())


def test_e61_keras_note_says_where_pytorch_drops_the_duplicate_too():
    """PyTorch also lists a layer used twice once, except by indexing, state_dict, remove_dup."""
    quote(NEWEST, "tf.keras behaves a bit differently. It removes the duplicate layer")
    net = tied_net()
    assert [k for k, _ in net.named_children()] == ["0", "1", "2", "3", "5", "6"]
    assert len(list(net.modules())) == 7 and len(list(net.parameters())) == 6
    assert [n for n, _ in net.named_parameters()] == [
        "0.weight", "0.bias", "2.weight", "2.bias", "6.weight", "6.bias"
    ]  # fmt: skip
    assert net[4] is net[2] and "4.weight" in net.state_dict()
    assert "4.weight" in dict(net.named_parameters(remove_duplicate=False))
    notes = _notes()
    assert "PyTorch keeps both" not in notes
    for call in ("children()", "modules()", "parameters()", "named_parameters()"):
        assert call in notes
    assert "state_dict()" in notes and "remove_duplicate=False" in notes


def test_e46_djl_note_states_the_chinese_editions_rule():
    """The Chinese DJL edition: setInitializer has no effect on an initialized parameter."""
    rule = quote(DJL_ZH, "注意:如果参数已经被初始化,setInitializer() 函数并不会对参数有任何影响")
    quote(DJL, "the second ``setInitializer()`` will NOT overwrite your first one")
    notes = _notes()
    assert _squash(rule) in _squash(notes)
    assert "7777" in notes and "42" in notes


def test_e36_mxnet_note_states_the_default_weight_range():
    """MXNet's default: weights U(-0.07, 0.07), biases 0."""
    quote(MXNET_PT_TF, "By default, MXNet initializes weight parameters by randomly drawing from")
    quote(GLUON, "MXNet initializes weight matrices uniformly by drawing from \\(U[-0.07, 0.07]\\)")
    assert "U(−0.07, 0.07)" in _notes()


def test_e16_readme_lists_djl_among_the_zero_bias_defaults():
    """DJL's default bias is 0 too: "the bias parameters are all set to 0"."""
    quote(DJL, "the bias parameters are all set to :math:`0`")
    quote(DJL_ZH, "权重参数默认使用 XavierInitializer 初始化,而将偏置参数设置为0")
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert "MXNet's, Keras's and DJL's default bias is 0" in readme


# --- the app: the editions view, the gradient box, the edit lines, the code and table tabs ---


@pytest.mark.timeout(300)
def test_e25_app_shows_every_edition_for_a_tied_parameter():
    """Selecting the tied 2.weight shows MXNet's net[1], the gradient box per edition, the
    last edit in DJL's words, my_init as classes, why sharing pays, and the split table."""
    from streamlit.testing.v1 import AppTest

    app = Path(__file__).resolve().parents[1] / "app.py"
    at = AppTest.from_file(str(app), default_timeout=120)
    at.run()
    ws = at.session_state["workspace"]
    ws.load(Experiment.from_preset("tied"))
    ws.materialize()
    ws.edit("2.weight", "divide", 9.0)
    at.session_state["selected"] = "2/weight"
    at.run()
    assert not at.exception
    assert any(e.label.startswith("In the chapter's five editions") for e in at.expander)
    table = next(d.value for d in at.dataframe if "edition" in d.value.columns)
    row = table.set_index("edition").loc["MXNet (Gluon)"]
    assert (row["name"], row["reach it"]) == ("dense1_weight", "net[1].weight")
    box = next(i.value for i in at.info if "No gradient yet" in i.value)
    assert "`net[1].weight.grad()` is all zeros" in box and "jax.grad(loss)(params)" in box
    code = "\n".join(c.value for c in at.code)
    assert "getArray().divi(9)" in code and "net[2].weight.data[:] /= 9" in code

    at.session_state["tabs"] = next(t.label for t in at.tabs if t.label.endswith("Code"))
    at.run()
    assert not at.exception
    code = "\n".join(c.value for c in at.code)
    assert "def _init_weight(self, name, data):" in code and "def __call__(self, shape" in code
    assert "Init dense0_weight (8, 4)" in code
    text = "\n".join(m.value for m in at.markdown)
    assert "tying saves 72" in text

    at.session_state["tabs"] = next(t.label for t in at.tabs if t.label.endswith("parameters"))
    at.run()
    assert not at.exception
    frames = [d.value for d in at.dataframe if "access" in d.value.columns]
    assert list(frames[0].index) == [n for n, _ in ws.state.module.named_parameters()]
    assert list(frames[1].index) == ["4.weight", "4.bias"]
    text = "\n".join(m.value for m in at.markdown)
    assert "[(name, param.shape) for name, param in net.named_parameters()]" in text


# --- 2. the gradient before backward, per edition ---


def _materialized(key: str) -> Workspace:
    ws = Workspace.from_preset(key)
    ws.materialize()
    return ws


def test_e12_pytorch_grad_is_none_before_backward():
    """``net[2].weight.grad == None`` is True before any backward pass."""
    quote(NEWEST, "net[2].weight.grad == None")
    ws = _materialized("mlp")
    assert ws.state.tree.tensor("2.weight").grad is None
    text = gradient_before_backward(places(ws.state.module)["2.weight"])
    assert text[F.PYTORCH] == ("net[2].weight.grad", "is None")


def test_e13_mxnet_grad_is_zeros_before_backward():
    """MXNet's ``net[1].weight.grad()`` is all zeros before a backward pass."""
    quote(MXNET_PT_TF, "net[1].weight.grad() .. raw:: latex \\diilbookstyleoutputcell")
    quote(MXNET_PT_TF, "array([[0., 0., 0., 0., 0., 0., 0., 0.]])")
    code, text = gradient_before_backward(places(chapter_mlp())["2.weight"])[F.MXNET]
    assert code == "net[1].weight.grad()" and "all zeros" in text


def test_e13_djl_gradient_is_zeros_before_backward():
    """DJL's ``getGradient()`` is all zeros: "its values are all 0"."""
    quote(DJL, "dense0Weight.getGradient();")
    quote(
        DJL,
        "Because we have not invoked backpropagation for this network yet, its values are all 0.",
    )
    code, text = gradient_before_backward(places(chapter_mlp())["0.weight"])[F.DJL]
    assert (
        code == "net.getChildren().valueAt(0).getParameters().valueAt(0).getArray().getGradient()"
    )
    assert "all zeros" in text


def test_e14_jax_keeps_no_gradients_grad_returns_them():
    """JAX keeps no gradient with the parameters; the grad transformation gives them."""
    quote(NEWEST, "Unlike the other frameworks, JAX does not keep a track of the gradients")
    quote(NEWEST, "use the ``grad`` transformation for the same purpose.")
    code, text = gradient_before_backward(places(chapter_mlp())["2.weight"])[F.FLAX]
    assert code == "jax.grad(loss)(params)['params']['layers_2']['kernel']"
    assert "keeps no gradient" in text


def test_e15_the_gradient_has_the_weights_shape():
    """ "It has the same shape as the weight": after backward every grad matches its tensor."""
    quote(GLUON, "It has the same shape as the weight.")
    ws = Workspace.from_preset("mlp")
    ws.backward()
    for name, p in ws.state.module.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name


# --- 4. custom initializers as classes ---


@pytest.mark.parametrize(
    ("framework", "seeds"),
    [
        (F.PYTORCH, [MXNET_PT_TF]),
        (F.MXNET, [MXNET_PT_TF, GLUON]),
        (F.KERAS, [MXNET_PT_TF]),
        (F.DJL, [DJL]),
    ],
)
def test_e51_my_init_classes_are_quoted_line_by_line(framework, seeds):
    """Gluon's ``_init_weight``, TF's ``__call__``, DJL's ``initialize``: each line quoted."""
    for line in MY_INIT[framework].splitlines():
        if line.strip():
            for seed in seeds:
                quote(seed, line)
    assert MY_INIT_PARTS[0][1][framework] in MY_INIT[framework]
    assert MY_INIT_PARTS[1][1][framework] in MY_INIT[framework]


def test_e50_the_formula_is_the_chapters_my_init():
    """The formula keeps U(-10, 10) where |w| >= 5: about half zeros, the rest in [5, 10]."""
    quote(MXNET_PT_TF, "U(5, 10) & \\text{ with probability } \\frac{1}{4}")
    from explorer.init.rules import initialize

    net = nn.Sequential(nn.Linear(256, 256))
    initialize(net, [{"init": "formula", "target": "*.weight", "expr": MY_INIT_FORMULA}], seed=0)
    w = net[0].weight.detach()
    kept = w[w != 0].abs()
    assert bool(((kept >= 5) & (kept <= 10)).all())
    assert abs((w == 0).float().mean().item() - 0.5) < 0.02


def test_e53_what_my_init_prints_in_each_edition():
    """MXNet prints ``Init dense0_weight (8, 4)``, PyTorch ``Init weight torch.Size([8, 4])``,
    DJL ``Init (8, 4)``: one line per weight, biases untouched."""
    mxnet = quote(MXNET_PT_TF, "Init dense0_weight (8, 4) Init dense1_weight (1, 8)")
    pytorch = quote(MXNET_PT_TF, "Init weight torch.Size([8, 4]) Init weight torch.Size([1, 8])")
    djl = quote(DJL, "Init (8, 4) Init (1, 8)")
    net = chapter_mlp()
    prints = init_prints(net, places(net))
    assert prints[F.MXNET].split() == mxnet.split()
    assert prints[F.PYTORCH].split() == pytorch.split()
    assert prints[F.DJL].split() == djl.split()


# --- 5. why share parameters ---


def test_e67_why_share_parameters_with_the_tied_lms_evidence():
    """The exercise in every edition, answered with numbers: the tied LM saves its 800-element
    head, and the gradient of the one tensor is the sum of its two uses."""
    for seed in (DJL, GLUON, MXNET_PT_TF, NEWEST):
        quote(seed, "Why is sharing parameters a good idea?")
    quote(DJL_ZH, "为什么共享参数是个好主意?")
    quote(
        DJL, "it might be sensible to use the same parameters both for encoding and decoding words"
    )
    ws = Workspace.from_preset("tied_lm")
    ws.backward()
    evidence = sharing_evidence(ws.state.tree, ws.state.last_run)
    assert evidence.groups == (("0.weight", "3.weight"),)
    assert evidence.saved == 50 * 16
    assert evidence.state_dict_elements - evidence.unique_elements == 800
    assert evidence.uses == (2,)
    assert evidence.sum_error[0] < 1e-5
    assert sharing_evidence(Workspace.from_preset("mlp").state.tree) is None


def test_e25_readme_presents_all_parameters_as_named_parameters_and_aliases():
    """README's All-parameters row: named_parameters() (6 rows on the tied net), aliases apart."""
    quote(NEWEST, "[(name, param.shape) for name, param in net.named_parameters()]")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| **All parameters**"))
    assert "[(name, param.shape) for name, param in net.named_parameters()]" in row
    assert "remove_duplicate=False" in row and "6 rows, then 2 aliases" in row
    net = tied_net()
    assert len(list(net.named_parameters())) == 6
    assert len(net.state_dict()) - len(list(net.named_parameters())) == 2


# --- the remaining items, in the order of docs/editions.md ---


def test_e01_the_chapters_mlp_in_every_edition():
    """One hidden layer of 8 units, a ReLU, one output, on X of shape (2, 4)."""
    quote(NEWEST, "net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))")
    quote(NEWEST, "net = nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(1)])")
    quote(NEWEST, "X = torch.rand(size=(2, 4))")
    quote(DJL, "net.add(Linear.builder().setUnits(8).build()); net.add(Activation.reluBlock());")
    ws = Workspace.from_preset("mlp")
    result = ws.forward()
    assert tuple(result.output.shape) == (2, 1)
    assert [type(m).__name__ for m in ws.state.module] == ["Linear", "ReLU", "Linear"]


def test_e03_lazy_layers_get_their_shapes_at_the_first_forward():
    """LazyLinear (and Flax's net.init on X): no shapes until the input is seen."""
    quote(NEWEST, "Here we need to run the forward propagation ``net(X)`` before accessing")
    quote(NEWEST, "params = net.init(d2l.get_key(), X)")
    ws = Workspace.from_preset("mlp")
    assert all(p.shape is None for p in ws.state.tree.params.values())
    assert places(ws.state.module)["0.weight"][F.FLAX].shape == (None, 8)
    ws.materialize()
    assert ws.state.tree.params["0.weight"].shape == (8, 4)
    assert places(ws.state.module)["0.weight"][F.FLAX].shape == (4, 8)


def test_e04_a_layers_state_dict_holds_its_weight_and_bias():
    """``net[2].state_dict()``: the second fully connected layer's weight and bias."""
    quote(NEWEST, "net[2].state_dict()")
    quote(MXNET_PT_TF, "OrderedDict([('weight', tensor([[-0.2665, 0.1665,")
    ws = _materialized("mlp")
    block = ws.state.tree.block("2")
    assert [p.local for p in block.params] == list(ws.state.module[2].state_dict())
    assert [p.shape for p in block.params] == [(1, 8), (1,)]


def test_e10_parameters_are_single_precision_floats():
    """ "Both are stored as single precision floats (float32)"."""
    quote(MXNET_PT_TF, "Both are stored as single precision floats (float32).")
    quote(DJL_ZH, "两者都存储为单精度浮点数(float32)")
    ws = _materialized("mlp")
    assert {p.dtype for p in ws.state.module.parameters()} == {torch.float32}
    assert "dtype=float32" in listing(ws.state.module, F.MXNET)


def test_e11_a_parameter_object_and_its_values_in_each_edition():
    """``type(net[2].bias), net[2].bias.data``; ``.data()``; ``getArray()``; TF and JAX."""
    quote(NEWEST, "type(net[2].bias), net[2].bias.data")
    quote(NEWEST, "type(net[1].bias), net[1].bias.data()")
    quote(NEWEST, "tf.convert_to_tensor(net.layers[2].weights[1])")
    quote(DJL, 'NDArray dense0Bias = params.get("01Linear_bias").getArray();')
    net = chapter_mlp()
    assert isinstance(net[2].bias, nn.Parameter)
    where = places(net)["2.bias"]
    assert where[F.PYTORCH].values == "net[2].bias.data"
    assert where[F.MXNET].values == "net[1].bias.data()"
    assert where[F.DJL].values.endswith(".getParameters().valueAt(1).getArray()")
    assert where[F.KERAS].values == "net.layers[2].weights[1]"
    assert where[F.FLAX].values == "params['params']['layers_2']['bias']"


def test_e16_pytorchs_default_bias_is_not_zero_mxnets_and_djls_are():
    """PyTorch prints a bias of 0.0211; MXNet and DJL: "the bias vector consists of zeroes"."""
    quote(MXNET_PT_TF, "('bias', tensor([0.0211]))")
    quote(GLUON, "Note that the bias vector consists of zeroes")
    quote(DJL, "Note that the bias vector consists of zeroes")
    from explorer.init.initializers import RECIPES
    from explorer.init.rules import initialize

    net = chapter_mlp()
    assert bool((net[0].bias != 0).any())
    for key in ("mxnet_default", "djl_default", "keras_default"):
        initialize(net, RECIPES[key].rules, seed=0)
        assert not net[0].bias.any() and not net[2].bias.any(), key


def test_e18_a_blocks_named_parameters_use_local_names():
    """``net[0].named_parameters()`` lists ('weight', (8, 4)) and ('bias', (8,))."""
    quote(MXNET_PT_TF, "('weight', torch.Size([8, 4])) ('bias', torch.Size([8]))")
    ws = _materialized("mlp")
    block = ws.state.tree.block("0")
    expected = [(n, tuple(p.shape)) for n, p in ws.state.module[0].named_parameters()]
    assert (
        [(p.local, p.shape) for p in block.params]
        == expected
        == [("weight", (8, 4)), ("bias", (8,))]
    )


def test_e20_keras_get_weights_lists_every_array_in_layer_order():
    """``net.get_weights()``: kernel (4, 4), bias (4,), kernel (4, 1), bias (1,)."""
    quote(MXNET_PT_TF, "print(net.layers[1].weights) print(net.get_weights())")
    quote(MXNET_PT_TF, "array([0., 0., 0., 0.], dtype=float32), array([[ 0.6852075 ],")
    assert listing(keras_mlp(), F.KERAS) == "[(4, 4), (4,), (4, 1), (1,)]"


def test_e23_gluon_collect_params_filters_with_a_regex_from_the_start():
    """``collect_params('.*weight')`` keeps dense0_weight and dense1_weight (re.match)."""
    quote(GLUON, "it allows us to filter the parameters returned by using regular expressions.")
    quote(
        GLUON,
        "sequential0_ ( Parameter dense0_weight (shape=(256, 20), dtype=float32) "
        "Parameter dense1_weight (shape=(10, 256), dtype=float32) sequential0_ ( "
        "Parameter dense0_weight (shape=(256, 20), dtype=float32) "
        "Parameter dense0_bias (shape=(256,), dtype=float32)",
    )
    from explorer import PRESETS, build
    from explorer.core.patterns import select

    where = places(build(PRESETS["gluon_dense"].spec))
    names = [w[F.MXNET].name for w in where.values()]
    assert select(names, ".*weight", "prefix") == ["dense0_weight", "dense1_weight"]
    assert select(names, "dense0", "prefix") == ["dense0_weight", "dense0_bias"]
    assert select(list(where), ".*weight", "full") == ["0.weight", "2.weight"]


def test_e26_rgnet_nests_four_block1_in_block2():
    """block2 adds block1 four times; rgnet = block2 then a linear output layer."""
    quote(MXNET_PT_TF, "def block2(): net = nn.Sequential() for i in range(4): # Nested here")
    quote(DJL, "for (int i = 0; i < 4; i++) { net.add(block1()); }")
    ws = Workspace.from_preset("rgnet")
    net = ws.state.module
    assert len(net[0]) == 4 and all(isinstance(b, nn.Sequential) for b in net[0])
    assert len(list(net.parameters())) == 4 * 4 + 2  # no two blocks share a tensor


def test_e27_rgnet_children_are_named_block_0_to_block_3():
    """``net.add_module(f'block {i}', block1())``: print shows ``(block 0): Sequential(``."""
    quote(MXNET_PT_TF, "net.add_module(f'block {i}', block1())")
    quote(
        MXNET_PT_TF, "(block 0): Sequential( (0): Linear(in_features=4, out_features=8, bias=True)"
    )
    net = Workspace.from_preset("rgnet").state.module
    assert "(block 0): Sequential(" in str(net)
    assert "0.block 0.0.weight" in net.state_dict()


def test_e28_keras_summary_counts_85_parameters():
    """Keras rgnet: ``Total params: 85``, 80 in block2 and 5 in the output layer."""
    quote(MXNET_PT_TF, "sequential_2 (Sequential) (2, 4) 80 dense_6 (Dense) (2, 1) 5")
    quote(MXNET_PT_TF, "Total params: 85")
    import explorer

    def block1() -> nn.Sequential:
        return nn.Sequential(nn.Flatten(), nn.Linear(4, 4), nn.ReLU())

    net = nn.Sequential(nn.Sequential(*(block1() for _ in range(4))), nn.Linear(4, 1))
    tree = explorer.inspect(net)
    assert tree.counts().unique_elements == 85
    assert tree.counts("0").unique_elements == 80 and tree.counts("1").unique_elements == 5


def test_e34_djl_prints_each_blocks_output_shape():
    """DJL's ``rgnet`` prints ``Linear(2, 4) -> (2, 32)``: the explorer records output shapes."""
    quote(DJL, "SequentialBlock(2, 4) { Linear(2, 4) -> (2, 32) ReLU(2, 32) -> (2, 32)")
    import explorer

    result = explorer.run(block_net((32, 16), 4, 10), torch.rand(2, 4))
    assert result.output_shapes["0.0.0"] == (2, 32)
    assert result.output_shapes["0.0.2"] == (2, 16)
    assert result.output_shapes["1"] == (2, 10)


def test_e35_parameters_before_and_after_the_first_forward():
    """Exercise: access the parameters after initialize and before the forward. What changes?"""
    quote(GLUON, "Try accessing the model parameters after net.initialize() and before net(x)")
    quote(DJL, "Try accessing the model parameters after ``net.initialize()`` and before")
    ws = Workspace.from_preset("mlp")
    assert dict(ws.state.deferred) == {}
    ws.materialize()
    assert dict(ws.state.deferred) == {
        "0.weight": (8, 4),
        "0.bias": (8,),
        "2.weight": (1, 8),
        "2.bias": (1,),
    }


def _init(key: str, net: nn.Module | None = None) -> nn.Module:
    from explorer.init.initializers import RECIPES
    from explorer.init.rules import initialize

    net = net if net is not None else nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 8))
    initialize(net, RECIPES[key].rules, seed=0)
    return net


def test_e36_mxnet_default_is_uniform_007_with_zero_biases():
    """ "By default, MXNet initializes weight parameters by … U(-0.07, 0.07)", biases zero."""
    quote(
        MXNET_PT_TF, "uniform distribution :math:`U(-0.07, 0.07)`, clearing bias parameters to zero"
    )
    net = _init("mxnet_default")
    assert 0.06 < net[0].weight.abs().max().item() <= 0.07
    assert not net[0].bias.any()


def test_e37_pytorch_default_range_comes_from_the_layers_sizes():
    """PyTorch draws weights and biases from a range computed from the dimensions."""
    quote(MXNET_PT_TF, "By default, PyTorch initializes weight and bias matrices uniformly by")
    net = _init("pytorch_default")
    bound = 1 / 64**0.5
    assert net[0].weight.abs().max().item() <= bound and net[0].bias.abs().max().item() <= bound
    assert bool((net[0].bias != 0).all())


def test_e38_keras_default_is_glorot_uniform_with_zero_biases():
    """Keras: a range from the input and output dimension (Glorot), biases zero."""
    quote(MXNET_PT_TF, "By default, Keras initializes weight matrices uniformly by drawing from")
    net = _init("keras_default")
    assert net[0].weight.abs().max().item() <= (6 / (64 + 32)) ** 0.5
    assert not net[0].bias.any()


def test_e39_djl_default_is_xavier_with_zero_biases():
    """The Chinese DJL edition: weights XavierInitializer, biases 0. DJL's Parameter.java makes
    the WEIGHT default XavierInitializer(GAUSSIAN, IN, 2) = N(0, √(2/fan_in)) and BIAS's
    Initializer.ZEROS: the recipe draws kaiming_normal_ (fan_in, relu) weights and zero biases."""
    quote(DJL_ZH, "权重参数默认使用 XavierInitializer 初始化,而将偏置参数设置为0")
    quote(DJL, "the bias parameters are all set to :math:`0`")
    net = _init("djl_default")
    weight = net[0].weight.detach()
    assert weight.std().item() == pytest.approx((2 / 64) ** 0.5, rel=0.05)
    assert not net[0].bias.any() and not net[2].bias.any()


def test_e40_djls_printed_xavier_values_need_gain_sqrt_2():
    """DJL's Xavier (8, 4) weight holds -0.9658, beyond Glorot's 0.707 but inside gain √2's 1.0."""
    quote(DJL, "[ 0.7445, -0.1896, 0.9236, -0.9658]")
    from explorer.init.initializers import DJL_XAVIER_GAIN

    glorot = (6 / (4 + 8)) ** 0.5
    assert glorot < 0.9658 <= DJL_XAVIER_GAIN * glorot
    assert DJL_XAVIER_GAIN * glorot == pytest.approx(1.0)


def test_e41_init_normal_draws_n_0_001_weights_and_zero_biases():
    """``nn.init.normal_(m.weight, mean=0, std=0.01); nn.init.zeros_(m.bias)``, as torch does."""
    quote(MXNET_PT_TF, "nn.init.normal_(m.weight, mean=0, std=0.01) nn.init.zeros_(m.bias)")
    quote(DJL, "We can also initialize all parameters as Gaussian random variables with standard")
    net = _init("init_normal", chapter_mlp())
    ref = chapter_mlp()
    torch.manual_seed(0)
    nn.init.normal_(ref[0].weight, 0, 0.01)
    nn.init.normal_(ref[2].weight, 0, 0.01)
    assert torch.equal(net[0].weight, ref[0].weight) and torch.equal(net[2].weight, ref[2].weight)
    assert not net[0].bias.any() and not net[2].bias.any()


def test_e42_init_constant_sets_every_weight_to_1():
    """``nn.init.constant_(m.weight, 1)``: ``tensor([1., 1., 1., 1.]), tensor(0.)``."""
    quote(MXNET_PT_TF, "nn.init.constant_(m.weight, 1) nn.init.zeros_(m.bias)")
    net = _init("init_constant", chapter_mlp())
    assert bool((net[0].weight == 1).all()) and not net[0].bias.any()


def test_e43_xavier_on_the_first_layer_42_on_the_second():
    """``net[0].apply(xavier); net[2].apply(init_42)``: layer 2 is all 42."""
    quote(MXNET_PT_TF, "net[0].apply(xavier) net[2].apply(init_42)")
    quote(MXNET_PT_TF, "tensor([[42., 42., 42., 42., 42., 42., 42., 42.]])")
    net = _init("xavier_42", chapter_mlp())
    assert bool((net[2].weight == 42).all())
    assert net[0].weight.abs().max().item() <= (6 / (4 + 8)) ** 0.5


def test_e44_djl_xavier_first_layer_zeros_second():
    """DJL: linear1 XavierInitializer, linear2 ``Initializer.ZEROS``."""
    quote(DJL, "linear2.setInitializer(Initializer.ZEROS, Parameter.Type.WEIGHT);")
    from explorer.init.initializers import DJL_XAVIER_GAIN
    from explorer.init.rules import initialize

    net = chapter_mlp()
    rules = [
        {"init": "xavier_uniform", "target": "0.weight", "gain": DJL_XAVIER_GAIN},
        {"init": "zeros", "target": "2.weight"},
    ]
    initialize(net, rules, seed=0)
    assert not net[2].weight.any()
    assert net[0].weight.abs().max().item() <= DJL_XAVIER_GAIN * (6 / 12) ** 0.5


def test_e45_force_reinit_initializes_again():
    """``net.initialize(init=init.Constant(1), force_reinit=True)``: every weight 1."""
    quote(GLUON, "net.initialize(init=init.Constant(1), force_reinit=True)")
    from explorer.init.rules import initialize

    net = chapter_mlp()
    normal = {"init": "normal", "target": "*.weight", "std": 0.01}
    initialize(net, [normal, {"init": "constant", "target": "*.weight", "value": 1.0}], seed=0)
    assert bool((net[0].weight == 1).all())


def test_e46_djl_set_initializer_keeps_an_earlier_one_a_fresh_net_takes_it():
    """Constant(1) after Normal is ignored; a fresh net gets 7777 (42 in the Chinese edition)."""
    quote(DJL, "the second ``setInitializer()`` will NOT overwrite your first one")
    quote(DJL, "everything is initialized properly! (to 7777!)")
    quote(DJL_ZH, "我们创建一个新的块,使用同样的代码,这次所有的权重都被初始化为 42")
    ignored = _init("djl_set_initializer", chapter_mlp())
    assert ignored[0].weight.abs().max().item() < 0.1
    fresh = _init("djl_fresh_7777", chapter_mlp())
    assert bool((fresh[0].weight == 7777).all())


def test_e47_an_initializer_set_on_a_block_reaches_its_inner_blocks():
    """DJL: "all internal blocks will also call setInitializer()": a block-subtree target."""
    quote(DJL, "when you call ``setInitializer()`` on a block, all internal blocks will also call")
    from explorer.init.rules import initialize

    net = block_net((8, 4), 4, 1)
    initialize(net, [{"init": "constant", "target": "0.*", "value": 3.0}], seed=0)
    assert all(bool((p == 3).all()) for p in net[0].parameters())
    assert not bool((net[1].weight == 3).all())


def test_e48_parameter_type_weight_leaves_the_biases():
    """``setInitializer(…, Parameter.Type.WEIGHT)`` sets weights only: a ``*.weight`` target."""
    quote(DJL, "net.setInitializer(new ConstantInitializer(7777), Parameter.Type.WEIGHT);")
    from explorer.init.rules import initialize

    net = chapter_mlp()
    bias = net[0].bias.detach().clone()
    initialize(net, [{"init": "constant", "target": "*.weight", "value": 7777.0}], seed=0)
    assert bool((net[0].weight == 7777).all()) and torch.equal(net[0].bias, bias)


def test_e49_djl_sets_one_parameters_initializer_by_its_key():
    """``params.get("03Linear_weight").setInitializer(Initializer.ONES)``: a rule on 2.weight."""
    quote(DJL, 'params.get("03Linear_weight").setInitializer(Initializer.ONES);')
    quote(DJL, "weight: (1, 8) gpu(0) float32 hasGradient [[1., 1., 1., 1., 1., 1., 1., 1.], ]")
    from explorer.init.rules import initialize

    net = chapter_mlp()
    name_of = {w[F.DJL].name: name for name, w in places(net).items()}
    assert name_of["01Linear_weight"] == "0.weight" and name_of["03Linear_weight"] == "2.weight"
    rules = [
        {"init": "normal", "target": name_of["01Linear_weight"], "std": 0.01},
        {"init": "ones", "target": name_of["03Linear_weight"]},
    ]
    initialize(net, rules, seed=0)
    assert bool((net[2].weight == 1).all()) and net[0].weight.abs().max().item() < 0.1


def test_e52_pytorch_applies_my_init_to_each_linear_weight():
    """``net.apply(my_init)``: the recipe is the chapter's own calls, bit for bit."""
    quote(MXNET_PT_TF, "net.apply(my_init) net[0].weight[:2]")
    from explorer.init.initializers import RECIPES

    rule = RECIPES["my_init"].rules[-1]
    assert (rule["init"], rule["target"]) == ("d2l_mixture", "*.weight")
    net = _init("my_init", chapter_mlp())
    reference = chapter_mlp()

    def my_init(m):  # the chapter's, without its print
        if type(m) == nn.Linear:  # noqa: E721 - the chapter's test
            nn.init.uniform_(m.weight, -10, 10)
            m.weight.data *= m.weight.data.abs() >= 5

    torch.manual_seed(0)
    with torch.no_grad():
        reference[0].reset_parameters(), reference[2].reset_parameters()
    reference.apply(my_init)
    assert torch.equal(net[0].weight, reference[0].weight)
    assert torch.equal(net[2].weight, reference[2].weight)


def test_e58_a_shared_layer_is_one_tensor():
    """``net[2].weight.data[0, 0] = 100`` shows at ``net[4]``: "the same exact tensor"."""
    quote(NEWEST, "net[2].weight.data[0, 0] = 100")
    quote(NEWEST, "They are not just equal, they are represented by the same exact tensor.")
    ws = _materialized("tied")
    ws.edit("2.weight", "set", 100.0, (0, 0))
    assert ws.state.tree.tensor("4.weight")[0, 0].item() == 100
    assert ws.state.module[2].weight is ws.state.module[4].weight


def test_e62_the_gradients_of_a_tied_layer_are_added_together():
    """ "the gradients of the second hidden layer and the third hidden layer are added together"."""
    quote(NEWEST, "the gradients of the second hidden layer and the third hidden layer are added")
    quote(DJL_ZH, "第二个隐藏层和第三个隐藏层的梯度会加在一起")
    ws = Workspace.from_preset("tied")
    result = ws.backward()
    uses = result.grad_by_use["2.weight"]
    assert len(uses) == 2
    torch.testing.assert_close(uses[0] + uses[1], ws.state.tree.tensor("2.weight").grad)


def test_e63_word_embeddings_encode_and_decode_with_one_table():
    """ "use the same parameters both for encoding and decoding words": the tied LM preset."""
    quote(GLUON, "it might be sensible to use the same parameters both for encoding and decoding")
    tree = Workspace.from_preset("tied_lm").state.tree
    assert tree.tied_groups == [{"0.weight", "3.weight"}]


def test_e64_fancy_mlp_and_nest_mlp_parameters_in_every_edition():
    """Exercise: use FancyMLP (NestMLP in the newest edition) and access its layers' parameters:
    the chapter's classes, not subscriptable, reached by attribute in every edition."""
    quote(GLUON, "Use the FancyMLP defined in Section 5.1 and access the parameters of the various")
    quote(NEWEST, "Use the ``NestMLP`` model defined in")
    nest = _materialized("nest_mlp").state.module
    fixed = _materialized("fancy_mlp").state.module
    for net in (nest, fixed):
        with pytest.raises(TypeError, match="object is not subscriptable"):
            net[0]
    assert [(n, tuple(p.shape)) for n, p in fixed.state_dict().items()] == [
        ("linear.weight", (20, 20)),
        ("linear.bias", (20,)),
    ]
    assert sum(p.numel() for p in fixed.parameters()) == 420 and not list(fixed.buffers())
    where = places(nest)
    assert where["net.0.weight"][F.PYTORCH].access[0] == "net.net[0].weight"
    assert where["linear.weight"][F.PYTORCH].access[0] == "net.linear.weight"
    assert where["linear.weight"][F.MXNET].access[0] == "net.dense.weight"
    assert where["net.0.weight"][F.DJL].name == "01net_01Linear_weight"
    assert where["linear.weight"][F.DJL].name == "02dense_weight"
    assert where["net.0.weight"][F.KERAS].access[0] == "net.net.layers[0].weights[0]"
    assert where["linear.weight"][F.FLAX].name == "dense/kernel"
    assert listing(nest, F.FLAX) == (
        "{'params': {'dense': {'bias': (16,), 'kernel': (32, 16)}, 'net': {'layers_0': "
        "{'bias': (64,), 'kernel': (20, 64)}, 'layers_2': {'bias': (32,), 'kernel': (64, 32)}}}}"
    )
    fixed_where = places(fixed)
    assert fixed_where["linear.weight"][F.PYTORCH].access[0] == "net.linear.weight"
    assert fixed_where["linear.weight"][F.DJL].name == "01denseLayer_weight"
    assert "Constant fixedhiddenmlp0_rand_weight (shape=(20, 20)" in listing(fixed, F.MXNET)


def test_e65_explore_different_initializers():
    """Exercise: "explore different initializers": the registry lists the built-in ones."""
    quote(GLUON, "Look at the MXNet documentation and explore different initializers.")
    quote(
        MXNET_PT_TF, "Look at the initialization module document to explore different initializers."
    )
    from explorer.init.initializers import INITIALIZERS

    for name in ("normal", "uniform", "constant", "xavier_uniform", "kaiming_normal", "orthogonal"):
        assert name in INITIALIZERS


def test_e66_train_a_net_with_a_shared_layer_and_watch_each_use():
    """Exercise: train an MLP with a shared layer; observe parameters and gradients per layer."""
    quote(NEWEST, "Construct an MLP containing a shared parameter layer and train it.")
    from explorer.engine.train import TrainSettings

    ws = _materialized("tied")
    log = ws.train(TrainSettings(steps=20, batch_size=8))
    assert tuple(log.use_norm["2.weight"].shape) == (20, 2)  # one gradient norm per use
    assert float(log.loss[-1]) < float(log.loss[0])


# --- 7b. more from the seeds (added after the editions audit) ---


def test_e68_djl_gradient_api_is_named_with_its_versions():
    """DJL's gradient API as its seed names it, with the names DJL 0.11 gave them."""
    quote(DJL, "each ``Parameter`` also provides a ``requireGradient()`` method")
    quote(DJL, "creating a ``GradientCollector`` instance")
    from explorer.editions.snippets import DJL_GRADIENTS

    where = places(chapter_mlp())["0.weight"]
    code, text = gradient_before_backward(where)[F.DJL]
    assert code.endswith(".getArray().getGradient()")
    for name in ("requireGradient()", "requiresGradient()", "attachGradient()",
                 "setRequiresGradient(true)", "GradientCollector"):  # fmt: skip
        assert name in DJL_GRADIENTS and name in text


def test_e69_gluon_prints_the_structure_through_the_bound_method():
    """``print(rgnet.collect_params)`` (no call): Dense(4 -> 32, Activation(relu)) … linear."""
    seed = quote(
        MXNET_PT_TF,
        "(0): Dense(16 -> 32, Activation(relu)) (1): Dense(32 -> 16, Activation(relu)) ) ) "
        "(1): Dense(16 -> 10, linear) )>",
    )
    from explorer.editions.listings import gluon_structure

    text = gluon_structure(block_net((32, 16), 4, 10))
    assert text.startswith("<bound method Block.collect_params of Sequential(")
    assert "(0): Dense(4 -> 32, Activation(relu))" in text
    assert _squash(seed) in _squash(text)


def test_e70_mxnet_reaches_a_parameter_by_name_inside_its_layer():
    """Each layer holds a parameter dictionary: net[0].params['dense0_weight']."""
    quote(GLUON, "We can also access each parameter by name, e.g., dense0_weight as follows.")
    quote(GLUON, "each layer contains a parameter dictionary")
    where = places(chapter_mlp())
    assert "net[0].params['dense0_weight']" in where["0.weight"][F.MXNET].access
    assert "net[1].params['dense1_bias']" in where["2.bias"][F.MXNET].access


def test_e71_keras_nets_are_their_own():
    """Keras's MLP has 4 hidden units (25 parameters); its rgnet has 85, printed by summary()."""
    quote(MXNET_PT_TF, "tf.keras.layers.Dense(4, activation=tf.nn.relu)")
    quote(MXNET_PT_TF, "Total params: 85 Trainable params: 85 Non-trainable params: 0")
    from explorer.editions.listings import keras_first, keras_summary

    mlp = _materialized("keras_mlp").state.module
    assert sum(p.numel() for p in mlp.parameters()) == 25
    assert listing(mlp, F.KERAS) == "[(4, 4), (4,), (4, 1), (1,)]"
    rgnet = _materialized("keras_rgnet").state.module
    text = keras_summary(rgnet, (2, 4), keras_first({"dense": 2, "sequential": 1}))
    lines = ['Model: "sequential_1"', "sequential_2 (Sequential)", "dense_6 (Dense)"]
    lines += ["Total params: 85", "Trainable params: 85", "Non-trainable params: 0"]
    assert all(line in text for line in lines)


def test_e72_mxnet_and_djl_rgnet_are_32_16_10():
    """Their rgnet: Dense(32), Dense(16) four times, then Dense(10): 4,074 on (2, 4), 4,586 on
    Gluon's (2, 20), named dense2 … dense10 after net's."""
    quote(DJL, "net.add(Linear.builder().setUnits(32).build());")
    quote(GLUON, "Parameter dense10_weight (shape=(10, 16), dtype=float32)")
    djl = _materialized("djl_rgnet").state.module
    assert sum(p.numel() for p in djl.parameters()) == 4074
    gluon = _materialized("gluon_rgnet").state.module
    assert sum(p.numel() for p in gluon.parameters()) == 4586
    first = {"dense": 2, "sequential": 1}
    assert places(gluon, "rgnet", first)["0.1.0.bias"][F.MXNET].name == "dense4_bias"
    assert "Parameter dense10_weight (shape=(10, 16), dtype=float32)" in listing(
        gluon, F.MXNET, "rgnet", first
    )


def test_e73_djl_linear2_was_initialized_on_xs_shape():
    """The seed's zeros weight prints as (1, 4): linear2.initialize(…, x.getShape())."""
    quote(DJL, "linear2.initialize(manager, DataType.FLOAT32, x.getShape());")
    quote(DJL, "weight: (1, 4) gpu(0) float32 hasGradient")
    from explorer.editions.chapter import find

    _, step = find("djl-xavier_zeros")
    assert "(1, 4)" in step.look and "linear2 was initialized on x's shape" in step.look


def test_e74_each_edition_keeps_the_summed_gradient_in_one_place():
    """The sum of a tied layer's uses lives in one place per edition; the seeds' names for it
    (shared.params.grad(), shared.getGradient()) are replaced by the calls that exist."""
    quote(DJL, "added together in ``shared.getGradient()`` during backpropagation")
    quote(GLUON, "are added together in shared.params.grad( ) during backpropagation")
    from explorer.editions.snippets import summed_gradient

    where = places(tied_net())["2.weight"]
    sums = summed_gradient(where)
    assert sums[F.PYTORCH][0] == "net[2].weight.grad"
    assert sums[F.MXNET][0] == "net[1].weight.grad()" and "does not exist" in sums[F.MXNET][1]
    assert sums[F.DJL][0].endswith(".getArray().getGradient()")
    assert "shared.getParameters().valueAt(0).getArray().getGradient()" in sums[F.DJL][1]
    assert sums[F.FLAX][0] == "jax.grad(loss)(params)['params']['layers_2']['kernel']"


@pytest.mark.timeout(240)
def test_e75_presets_open_with_their_editions_default_and_the_filter_takes_its_names():
    """Gluon's preset opens with MXNet's default (zero biases, U(±0.07)); typing Gluon's
    dense0.* (or dense0, matched from the start as collect_params does) in the filter keeps
    0.weight and 0.bias on the page."""
    quote(GLUON, "Note that the bias vector consists of zeroes")
    from streamlit.testing.v1 import AppTest

    ws = _materialized("gluon_dense")
    assert not ws.state.module[0].bias.any() and ws.state.module[0].weight.abs().max() <= 0.07
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=90)
    at.run()
    at.selectbox(key="preset_choice").select("gluon_dense").run()
    at.text_input(key="filter").input("dense0.*").run()
    at.session_state["tabs"] = "All parameters"
    at.run()
    assert not at.exception
    tables = [d.value for d in at.dataframe if "access" in d.value.columns]
    assert list(tables[0].index) == ["0.weight", "0.bias"]
    assert any("another edition's names keep 2" in c.value for c in at.caption)
    at.text_input(key="filter").input("dense0").run()  # collect_params('dense0'): re.match
    at.session_state["tabs"] = "All parameters"
    at.run()
    tables = [d.value for d in at.dataframe if "access" in d.value.columns]
    assert list(tables[0].index) == ["0.weight", "0.bias"]


def test_e76_flax_default_is_lecun_normal_with_zero_biases():
    """Flax's Dense: kernel_init lecun_normal (truncated at ±2 std, kept values of std
    √(1/fan_in)), bias_init zeros; the recipe draws that in PyTorch."""
    quote(NEWEST, "net = nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(1)])")
    net = _init("flax_default")
    w = net[0].weight.detach()
    assert w.std().item() == pytest.approx((1 / 64) ** 0.5, rel=0.06)
    bound = 2 * (1 / 64) ** 0.5 / 0.87962566103423978
    assert w.abs().max().item() <= bound + 1e-6 and not net[0].bias.any()


# --- 8. the table of items ---


def _item_rows() -> list[list[str]]:
    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "editions.md").read_text(encoding="utf-8")
    rows = [line for line in doc.splitlines() if re.match(r"\| E\d\d \|", line)]
    return [[c.strip() for c in row.strip()[1:-1].split(" | ")] for row in rows]


def test_editions_table_is_checked():
    """docs/editions.md lists E01–E76; each quote is in its seed; each cited test exists."""
    root = Path(__file__).resolve().parents[1]
    rows = _item_rows()
    assert [row[0] for row in rows] == [f"E{i:02d}" for i in range(1, 77)]
    seeds = {
        "DJL": DJL,
        "DJL-zh": DJL_ZH,
        "Gluon": GLUON,
        "MX-PT-TF": MXNET_PT_TF,
        "newest": NEWEST,
    }
    for item, _, seed, quoted, _, screen, tests in rows:
        quote(seeds[seed], quoted.strip("`"))
        cited = [t.split("::") for t in tests.split(", ")]
        if screen.startswith("browser: "):
            cited.append(screen.removeprefix("browser: ").split("::"))
        else:
            assert re.findall(r"`([^`]+)`", screen), item  # every item says what the page shows
        assert any(f == "test_editions.py" and n.startswith(f"test_e{item[1:]}_") for f, n in cited)
        for file, name in cited:
            assert f"def {name}(" in (root / "tests" / file).read_text(encoding="utf-8"), name


@pytest.mark.timeout(600)
def test_every_item_is_on_the_page():
    """Each item's *on screen* text is on the page the link ?step=… opens (AppTest)."""
    from tests.screen import open_step, squash, text_of

    checks: dict[tuple[str, str | None], list[tuple[str, str]]] = {}
    for row in _item_rows():
        for spec in re.findall(r"`([^`]+)`", row[5]):
            where, _, expected = spec.partition(" → ")
            ref, _, tab = where.partition("@")
            checks.setdefault((ref, tab or None), []).append((row[0], expected))
    missing = []
    for (ref, tab), wanted in checks.items():
        page = squash(text_of(open_step(ref, tab)).replace("`", "").replace("**", ""))
        missing += [(item, ref, tab, text) for item, text in wanted if squash(text) not in page]
    assert not missing


def test_chapter_guide_has_one_column_per_edition():
    """The guide's side-by-side table: PyTorch, MXNet, TensorFlow, JAX and DJL columns."""
    root = Path(__file__).resolve().parents[1]
    guide = (root / "docs" / "chapter-guide.md").read_text(encoding="utf-8")
    head = next(
        line for line in guide.splitlines() if line.startswith("| the chapter does | PyTorch")
    )
    columns = [c.strip() for c in head.strip()[1:-1].split("|")]
    assert columns[1:6] == ["PyTorch", "MXNet (Gluon)", "TensorFlow (Keras)", "JAX (Flax)", "DJL"]
    after = guide[guide.index(head) :].splitlines()[2:]
    rows = after[: next((i for i, r in enumerate(after) if not r.startswith("| ")), len(after))]
    assert len(rows) >= 15 and all(len(r.strip()[1:-1].split(" | ")) == 7 for r in rows)
    quote(NEWEST, "jax.tree_util.tree_map(lambda x: x.shape, params)")
    quote(DJL, "weightLayer.set(new NDIndex(0, 0), 2020)")
