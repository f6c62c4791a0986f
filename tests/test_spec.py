"""Specs: building the chapter's models, JSON round trips, and one SpecError per bad-input class."""

import json

import pytest
import torch
from torch import nn

import explorer
from explorer.frozen import freeze
from explorer.presets import PRESETS
from explorer.spec import Limits, from_json, to_json, validate


def seq(*children, **extra):
    return {"type": "sequential", "children": list(children), **extra}


def linear(out, **extra):
    return {"type": "linear", "out_features": out, **extra}


def test_mlp_spec_builds_the_chapters_lazy_net():
    """A linear without in_features is an nn.LazyLinear, as in the newest edition."""
    net = explorer.build(seq(linear(8), {"type": "relu"}, linear(1)))
    assert [type(m).__name__ for m in net] == ["LazyLinear", "ReLU", "LazyLinear"]
    assert net(torch.rand(2, 4)).shape == (2, 1)
    assert [tuple(p.shape) for p in net.parameters()] == [(8, 4), (8,), (1, 8), (1,)]


def test_bias_false_drops_the_bias():
    """ "bias": false builds a layer without a bias parameter."""
    net = explorer.build(linear(3, in_features=2, bias=False))
    assert net.bias is None and [n for n, _ in net.named_parameters()] == ["weight"]


def test_repeat_copies_have_their_own_parameters():
    """Each copy of a repeat is a distinct module with distinct tensors, like block2()."""
    net = explorer.build({"type": "repeat", "times": 4, "block": linear(4, in_features=4)})
    assert len(net) == 4
    assert len({id(m.weight) for m in net}) == 4


def test_shared_is_the_same_module_object():
    """A shared ref reuses the named module, so net[2] is net[4] as in the chapter."""
    net = explorer.build(PRESETS["tied"].spec)
    assert net[2] is net[4]


def test_tie_shares_one_parameter_between_two_layers():
    """ "tie" makes the output layer's weight the embedding's weight tensor."""
    net = explorer.build(PRESETS["tied_lm"].spec)
    assert net[3].weight is net[0].weight


def test_every_preset_builds_and_runs_on_its_input():
    """Each preset builds, and a forward pass on its input gives an output."""
    for p in PRESETS.values():
        net = explorer.build(p.spec)
        x = (
            torch.randint(0, p.vocab, p.input_shape)
            if p.input_kind == "tokens"
            else torch.rand(p.input_shape)
        )
        assert net(x).shape[0] == p.input_shape[0], p.key


def test_spec_round_trips_through_json():
    """from_json(to_json(s)) == s for every preset."""
    for p in PRESETS.values():
        assert from_json(to_json(p.spec)) == p.spec


def test_param_count_is_known_before_building():
    """Validation counts parameters of layers with known shapes, once per shared block."""
    info = validate(seq(linear(8, in_features=4, name="a"), {"type": "shared", "ref": "a"}))
    assert info.param_count == 40


BAD_SPECS = [
    (
        "unknown type",
        seq(linear(8), {"type": "dense"}),
        "children[1].type: unknown block type 'dense'",
    ),
    (
        "negative units",
        seq(linear(8), {"type": "relu"}, linear(-3)),
        "children[2].out_features: must be a whole number from 1 to 65536, got -3",
    ),
    ("wrong type", linear("8"), "out_features: must be a whole number from 1 to 65536, got '8'"),
    ("bool is not a number", linear(True), "out_features: must be a whole number"),
    ("missing field", {"type": "linear"}, "linear needs the field 'out_features'"),
    ("unknown field", linear(8, units=3), "units: unknown field for linear"),
    (
        "children not a list",
        {"type": "sequential", "children": {}},
        "children: must be a list of blocks",
    ),
    ("block not an object", seq(3), "children[0]: must be a block object"),
    ("missing ref", seq({"type": "shared"}), "children[0]: shared needs the field 'ref'"),
    (
        "dangling ref",
        seq(linear(8, name="a"), {"type": "shared", "ref": "b"}),
        "children[1].ref: no block is named 'b'; named blocks: a",
    ),
    (
        "cycle",
        seq(linear(8), {"type": "shared", "ref": "top"}, name="top"),
        "children[1].ref: reusing 'top' here would put a block inside itself (top -> top)",
    ),
    (
        "indirect cycle",
        seq(
            seq({"type": "shared", "ref": "b"}, name="a"),
            seq({"type": "shared", "ref": "a"}, name="b"),
        ),
        "would put a block inside itself",
    ),
    (
        "duplicate name",
        seq(linear(8, name="x"), linear(8, name="x")),
        "children[1].name: duplicate name 'x': it is already used at children[0]",
    ),
    ("bad name", linear(8, name="1st"), "name: must be letters, digits or _"),
    (
        "name inside repeat",
        {"type": "repeat", "times": 2, "block": linear(8, name="x")},
        "block.name: a block inside a repeat is copied",
    ),
    (
        "repeat too many",
        {"type": "repeat", "times": 100000, "block": linear(8)},
        "times: must be a whole number from 1 to 256",
    ),
    (
        "tie shapes differ",
        seq(
            linear(8, in_features=4, name="a"), linear(8, in_features=8, tie={"weight": "a.weight"})
        ),
        "children[1].tie.weight: shapes differ: weight is (8, 8) but a.weight is (8, 4)",
    ),
    (
        "tie to nothing",
        seq(linear(8, in_features=4, tie={"weight": "zz.weight"})),
        "children[0].tie.weight: no block is named 'zz'",
    ),
    (
        "tie bad target",
        seq(
            linear(8, in_features=4, name="a"), linear(8, in_features=4, tie={"weight": "a.gamma"})
        ),
        "block 'a' has no parameter 'gamma'",
    ),
    ("dropout probability", {"type": "dropout", "p": 1.5}, "p: must be a probability"),
    (
        "too deep",
        json.loads('{"type": "sequential", "children": [' * 40 + "]}" * 40),
        "nested more than 32 deep",
    ),
]


@pytest.mark.parametrize("label,spec,message", BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_bad_spec_raises_spec_error_naming_place_and_fix(label, spec, message):
    """Each class of bad input raises SpecError whose message names the place and the fix."""
    with pytest.raises(explorer.SpecError) as err:
        explorer.build(spec)
    assert message in str(err.value)


def test_bad_spec_fails_before_any_layer_is_allocated(monkeypatch):
    """A spec whose error is in its last block constructs no layer at all."""
    made = []
    original = nn.Linear.__init__
    monkeypatch.setattr(
        nn.Linear, "__init__", lambda self, *a, **k: made.append(a) or original(self, *a, **k)
    )
    with pytest.raises(explorer.SpecError):
        explorer.build(seq(linear(8, in_features=4), linear(8, in_features=8), {"type": "nope"}))
    assert made == []


def test_too_many_parameters_is_refused_before_allocation():
    """A spec over the parameter budget is refused by counting, not by allocating."""
    huge = seq(*[linear(65536, in_features=65536) for _ in range(2)])
    with pytest.raises(explorer.SpecError) as err:
        explorer.build(huge)
    assert str(err.value) == (
        "children[0]: the model would have 8,590,065,664 parameters; "
        "the limit is 200,000,000: make the layers smaller"
    )
    with pytest.raises(explorer.SpecError, match="420 parameters; the limit is 100"):
        explorer.build(linear(20, in_features=20), Limits(max_params=100))


def test_from_json_reports_json_syntax_errors():
    """Malformed JSON gives a SpecError with the line and column."""
    with pytest.raises(explorer.SpecError, match="not valid JSON: .* line 1, column"):
        from_json('{"type": "linear",')


@pytest.mark.parametrize("key", PRESETS)
def test_a_frozen_spec_validates_and_builds_like_the_plain_one(key):
    """FrozenDicts and tuples are read like dicts and lists: same counts, same model."""
    plain, frozen = PRESETS[key].spec, freeze(PRESETS[key].spec)
    a, b = validate(plain), validate(frozen)
    assert (b.param_count, b.modules, b.param_names, b.shapes) == (
        a.param_count,
        a.modules,
        a.param_names,
        a.shapes,
    )
    net_a, net_b = explorer.build(plain, device="meta"), explorer.build(frozen, device="meta")
    assert str(net_b) == str(net_a)
    assert list(net_b.state_dict()) == list(net_a.state_dict())
