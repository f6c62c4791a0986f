"""Specs: building the chapter's models, JSON round trips, and one SpecError per bad-input class."""

import json
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.parameter import is_lazy

import explorer
from explorer.core.frozen import freeze
from explorer.spec.presets import PRESETS
from explorer.spec.validate import Limits, from_json, to_json, validate


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
    """Each preset builds on its device; those with values run a forward pass on their input."""
    for p in PRESETS.values():
        net = explorer.build(p.spec, device=p.device)
        if p.device == "meta" or p.key == "gpt2_small":  # 124 M: run in test_presets.py
            continue
        x = (
            torch.randint(0, p.vocab, p.input_shape)
            if p.input_kind == "tokens"
            else torch.rand(p.input_shape)
        )
        out = net(x)
        if p.key == "fancy_mlp":  # the chapter's FixedHiddenMLP returns X.sum(), a scalar
            assert out.dim() == 0
            continue
        assert out.shape[0] == p.input_shape[0], p.key


def test_spec_round_trips_through_json():
    """from_json(to_json(s)) == s for every preset that holds values; JSON keeps the rest."""
    for p in PRESETS.values():
        if p.device == "meta":
            assert json.loads(to_json(p.spec)) == p.spec
        else:
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
    a, b = validate(plain, device="meta"), validate(frozen, device="meta")
    assert (b.param_count, b.modules, b.param_names, b.shapes) == (
        a.param_count,
        a.modules,
        a.param_names,
        a.shapes,
    )
    net_a, net_b = explorer.build(plain, device="meta"), explorer.build(frozen, device="meta")
    assert str(net_b) == str(net_a)
    assert list(net_b.state_dict()) == list(net_a.state_dict())


# --- the expanded model is budgeted arithmetically, before anything is built ---


def doubling_chain(depth: int, base: dict | None = None) -> dict:
    """b0 = base; b_i = sequential[shared b_{i-1}, shared b_{i-1}]: 2^depth copies of b0."""
    base = base or linear(8, in_features=8)
    blocks = [{**base, "name": "b0"}]
    for i in range(1, depth + 1):
        ref = {"type": "shared", "ref": f"b{i - 1}"}
        blocks.append(seq(ref, ref, name=f"b{i}"))
    return seq(*blocks)


NESTED_REPEATS = {
    "type": "repeat",
    "times": 256,
    "block": {
        "type": "repeat",
        "times": 256,
        "block": {"type": "repeat", "times": 256, "block": {"type": "relu"}},
    },
}

_REFUSE_IN_A_BOX = """
import resource, sys, json
from explorer.core.errors import SpecError
from explorer.spec.validate import validate
from explorer.spec.build import build
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize:"))
cap = vm * 1024 + 256 * 2**20  # what the interpreter has now, plus 256 MiB
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
spec = json.loads(sys.argv[1])
for step in (validate, build):
    try:
        step(spec)
    except SpecError as err:
        print(err)
    else:
        print("accepted")
"""


def refused_in_a_box(spec: dict) -> list[str]:
    """Validate and build ``spec`` in a child process with 256 MiB to spare and 30 s at most."""
    out = subprocess.run(
        [sys.executable, "-c", _REFUSE_IN_A_BOX, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.splitlines()


def test_doubling_shared_chain_is_refused_by_arithmetic():
    """A 4 KB spec that expands 2^30 times is refused without expanding, in a memory box."""
    spec = doubling_chain(30)
    assert len(json.dumps(spec)) < 4_000
    message = (
        "children[14]: the model would have 4,294,967,264 modules once repeat and "
        "shared blocks are expanded; the limit is 20,000; this block alone makes 32,767"
    )
    assert refused_in_a_box(spec) == [message, message]


def test_nested_repeats_are_refused_by_arithmetic():
    """repeat(256, repeat(256, repeat(256, relu))) would make 16.8 M modules: refused."""
    message = (
        "block: the model would have 16,843,009 modules once repeat and shared blocks are "
        "expanded; the limit is 20,000; this block alone makes 65,793"
    )
    assert refused_in_a_box(NESTED_REPEATS) == [message, message]


def test_budget_counts_equal_pytorchs_on_a_small_chain():
    """Modules, names and elements of a depth-5 doubling chain are what PyTorch counts."""
    spec = doubling_chain(5, base=seq(linear(3, in_features=3), {"type": "relu"}))
    info = validate(spec)
    net = explorer.build(spec)
    assert info.modules == len(list(net.named_modules(remove_duplicate=False)))
    assert info.param_names == len(list(net.named_parameters(remove_duplicate=False)))
    assert info.param_count == sum(p.numel() for p in net.parameters()) == 12
    assert info.depth == 7  # root, b5 … b1, b0, its linear


@pytest.mark.parametrize("key", PRESETS)
def test_budget_counts_equal_pytorchs_on_every_preset(key):
    """For each preset, the counts validation predicts are those of the built model."""
    p = PRESETS[key]
    features = p.input_shape if p.input_kind == "uniform" else None
    info = validate(p.spec, input_shape=features, device=p.device)
    net = explorer.build(p.spec, device="meta")
    assert info.modules == len(list(net.named_modules(remove_duplicate=False)))
    assert info.param_names == len(list(net.named_parameters(remove_duplicate=False)))
    if not any(is_lazy(q) for q in net.parameters()):
        assert info.param_count == sum(q.numel() for q in net.parameters())


@pytest.mark.parametrize(
    "limits,spec,message",
    [
        (
            Limits(max_modules=10),
            seq(*[{"type": "relu"}] * 10),
            "the model would have 11 modules once repeat and shared blocks are expanded; "
            "the limit is 10",
        ),
        (
            Limits(max_param_names=3),
            {"type": "repeat", "times": 2, "block": linear(4)},
            "the model would have 4 parameter names once repeat and shared blocks are expanded; "
            "the limit is 3",
        ),
        (
            Limits(max_depth=3),
            seq(
                seq(seq({"type": "relu"}), name="deep"), seq(seq({"type": "shared", "ref": "deep"}))
            ),
            "children[1]: blocks are nested 5 deep once shared blocks are expanded; the limit is 3",
        ),
    ],
    ids=["modules", "names", "depth"],
)
def test_each_budget_names_the_place_and_the_size(limits, spec, message):
    """Over-budget modules, names and expanded nesting each name the size asked for."""
    with pytest.raises(explorer.SpecError) as err:
        validate(spec, limits)
    assert str(err.value) == message


def test_meta_device_allows_a_7b_model_that_cpu_refuses():
    """7 B parameters are refused for real memory but allowed on meta (structure only)."""
    huge = seq(*[linear(65536, in_features=65536) for _ in range(2)])
    with pytest.raises(explorer.SpecError, match="8,590,065,664 parameters"):
        validate(huge)
    assert validate(huge, device="meta").param_count == 8_590_065_664


# --- every malformed input is a SpecError that names the place ---


def nested(depth: int, leaf: object) -> object:
    """``leaf`` inside ``depth`` sequentials."""
    for _ in range(depth):
        leaf = {"type": "sequential", "children": [leaf]}
    return leaf


MALFORMED = [
    ("type is a list", {"type": ["linear"]}, "type: unknown block type ['linear']; use one of"),
    ("no type", {"out_features": 8}, 'needs a "type": one of linear'),
    ("non-text field name", {"type": "linear", "out_features": 8, 3: 4}, "field names must be"),
    (
        "5,000-digit integer",
        linear(10**5000),
        "out_features: must be a whole number from 1 to 65536, got a whole number of about 5,001",
    ),
    ("NaN", {"type": "dropout", "p": float("nan")}, "p: must be a probability from 0 to below 1"),
    ("infinity", {"type": "layernorm", "normalized_shape": 4, "eps": float("inf")}, "eps: must"),
    ("null required field", linear(None), "linear needs the field 'out_features'"),
    (
        "huge text as a type",
        {"type": "x" * 1_000_000},
        "type: unknown block type '" + "x" * 40 + "'… (1,000,000 characters)",
    ),
    ("huge text as a ref", seq({"type": "shared", "ref": "r" * 10**6}), "(1,000,000 characters)"),
    (
        "deep list as a value",
        linear(json.loads("[" * 500 + "]" * 500)),
        "out_features: must be a whole number from 1 to 65536, got a list of 1 items",
    ),
    ("Python dict 10,000 deep", nested(10_000, {"type": "relu"}), "nested more than 32 deep"),
    ("tie own not text", linear(4, in_features=4, tie={1: "a.weight"}), "tie.1: only weight"),
    ("key at the root", {"type": "relu", "key": "x"}, "key: only a child of a sequential"),
]


@pytest.mark.parametrize("label,spec,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_spec_is_a_spec_error(label, spec, message):
    """Wrong types, huge numbers and text, NaN and deep nesting are each a clear SpecError."""
    with pytest.raises(explorer.SpecError) as err:
        explorer.build(spec)
    assert message in str(err.value)
    assert len(str(err.value)) < 500


MALFORMED_JSON = [
    ("10,000 deep", '{"type": "sequential", "children": [' * 10_000, "not valid JSON"),
    ("10,000 deep arrays", "[" * 10_000 + "]" * 10_000, "not valid JSON: nested too deeply"),
    (
        "5,000-digit integer",
        '{"type": "linear", "out_features": ' + "9" * 5000 + "}",
        "not valid JSON: a number has too many digits",
    ),
    ("NaN", '{"type": "dropout", "p": NaN}', "not valid JSON: NaN is not a number JSON allows"),
    ("Infinity", '{"type": "dropout", "p": -Infinity}', "-Infinity is not a number JSON allows"),
    ("repeated field", '{"type": "relu", "type": "tanh"}', "the field 'type' appears twice"),
    ("huge text", '"' + "x" * 1_000_001 + '"', "the JSON is longer than 1,000,000 characters"),
    ("not text", b'{"type": "relu"}', "must be JSON text, got bytes"),
]


@pytest.mark.parametrize("label,text,message", MALFORMED_JSON, ids=[m[0] for m in MALFORMED_JSON])
def test_malformed_json_is_a_spec_error(label, text, message):
    """from_json turns every parse failure into a SpecError with a short reason."""
    with pytest.raises(explorer.SpecError) as err:
        from_json(text)
    assert message in str(err.value)


# --- named children: a child's key in its parent, and the keys of a repeat's copies ---


def test_child_keys_name_the_modules_like_add_module():
    """Keyed children are built as nn.Sequential(OrderedDict): print and state_dict use the keys."""
    spec = seq(linear(8, in_features=4, key="hidden"), {"type": "relu"}, linear(1, key="out"))
    plain = nn.Sequential(
        OrderedDict([("hidden", nn.Linear(4, 8)), ("1", nn.ReLU()), ("out", nn.LazyLinear(1))])
    )
    net = explorer.build(spec)
    assert str(net) == str(plain)
    assert list(net.state_dict()) == list(plain.state_dict())
    assert net[0] is net.hidden and net[2] is net.out


def test_key_format_names_a_repeats_copies():
    """A repeat's key_format gives its copies the keys block 0, block 1, …"""
    spec = {"type": "repeat", "times": 3, "key_format": "block {i}", "block": {"type": "relu"}}
    assert list(explorer.build(spec)._modules) == ["block 0", "block 1", "block 2"]


BAD_KEYS = [
    (
        "duplicate",
        seq(linear(2, key="a"), linear(2, key="a")),
        "children[1].key: the key 'a' is already used by children[0]; "
        "the children of a sequential need different keys",
    ),
    (
        "same as a sibling's index",
        seq(linear(2), linear(2, key="0")),
        "children[1].key: the key '0' is already used by children[0]",
    ),
    (
        "an index a later sibling gets",
        seq(linear(2, key="1"), linear(2)),
        "children[0].key: the key '1' is already used by children[1]",
    ),
    ("a dot", seq(linear(2, key="a.b")), "children[0].key: must be printable text without '.'"),
    ("empty", seq(linear(2, key="")), "children[0].key: must be non-empty text, got ''"),
    ("not text", seq(linear(2, key=3)), "children[0].key: must be non-empty text, got 3"),
    ("a newline", seq(linear(2, key="a\nb")), "must be printable text without '.', got 'a\\nb'"),
    ("too long", seq(linear(2, key="k" * 65)), "must be at most 64 characters, got 65"),
    (
        "an attribute of nn.Sequential",
        seq(linear(2, key="forward")),
        "children[0].key: 'forward' is already an attribute of nn.Sequential",
    ),
    (
        "inside a repeat",
        {"type": "repeat", "times": 2, "block": linear(2, key="x")},
        "block.key: only a child of a sequential has a key",
    ),
    (
        "key_format without {i}",
        {"type": "repeat", "times": 2, "block": linear(2), "key_format": "block"},
        "key_format: must be text with {i} once",
    ),
    (
        "key_format with other braces",
        {"type": "repeat", "times": 2, "block": linear(2), "key_format": "{i}{0.__class__}"},
        "key_format: must be text with {i} once",
    ),
    (
        "key_format with a dot",
        {"type": "repeat", "times": 2, "block": linear(2), "key_format": "b.{i}"},
        "key_format: must be printable text without '.'",
    ),
]


@pytest.mark.parametrize("label,spec,message", BAD_KEYS, ids=[b[0] for b in BAD_KEYS])
def test_bad_key_is_refused_before_building(label, spec, message):
    """Keys PyTorch would refuse, or that clash among siblings, are SpecErrors at the key."""
    with pytest.raises(explorer.SpecError) as err:
        explorer.build(spec)
    assert message in str(err.value)
