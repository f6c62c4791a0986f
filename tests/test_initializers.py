"""The initializer registry: one entry per initializer, checked against torch.nn.init itself."""

import math

import pytest
import torch
from torch import nn

from explorer.core.errors import SpecError
from explorer.init.initializers import (
    INITIALIZERS,
    RECIPES,
    Initializer,
    OptionKind,
    check_options,
    expected,
    pytorch_code,
)
from explorer.init.rules import OPTIONS, check_rules, initialize
from tests.models import chapter_mlp

FILLED = [name for name, info in INITIALIZERS.items() if info.fill is not None]


def sample_rule(name: str) -> dict:
    """A rule with every option at its default, and 0.5 where the rule must give a value."""
    info = INITIALIZERS[name]
    rule = {"init": name}
    for option in info.options:
        if option.default is None:
            rule[option.name] = "w * 2" if option.kind is OptionKind.TEXT else 0.5
    return {**rule, **check_options(name, rule, "rule")}


def test_every_initializer_name_has_one_entry():
    """The StrEnum of names and the registry list the same initializers, in the same order."""
    assert list(INITIALIZERS) == [i.value for i in Initializer]


def test_options_table_is_read_from_the_registry():
    """init.OPTIONS holds each entry's options and defaults, nothing else."""
    assert OPTIONS["normal"] == {"mean": 0.0, "std": 0.01}
    assert OPTIONS["kaiming_normal"] == {"mode": "fan_in", "nonlinearity": "relu", "a": 0.0}
    assert OPTIONS["constant"] == {"value": None}
    assert set(OPTIONS) == set(INITIALIZERS)


@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_every_default_passes_its_own_check(name):
    """Each option's default value is inside the option's own range or choices."""
    for option in INITIALIZERS[name].options:
        if option.default is not None:
            assert option.check(option.default, "x") == option.default


@pytest.mark.parametrize("name", FILLED)
def test_fill_is_bit_identical_to_the_pytorch_code_it_shows(name):
    """Running the entry's PyTorch snippet after the same seed gives the same bits as fill."""
    rule = sample_rule(name)
    net = nn.Sequential(nn.Linear(6, 5))
    namespace = {"nn": nn, "net": net}
    torch.manual_seed(3)
    with torch.no_grad():
        exec(pytorch_code(rule, "net[0].weight"), namespace)  # noqa: S102 - our own snippet
    ours = torch.empty(5, 6)
    torch.manual_seed(3)
    with torch.no_grad():
        INITIALIZERS[name].fill(ours, rule)
    assert torch.equal(ours, net[0].weight)


@pytest.mark.parametrize("name", FILLED)
def test_needs_2d_matches_what_torch_nn_init_accepts(name):
    """An entry says it needs 2-D exactly when torch.nn.init refuses a 1-D tensor."""
    rule = sample_rule(name)
    try:
        INITIALIZERS[name].fill(torch.empty(5), rule)
        refused = False
    except ValueError:
        refused = True
    assert INITIALIZERS[name].needs_2d == refused


def test_default_code_resets_the_owning_layer():
    """The default initializer's code calls the layer's reset_parameters."""
    assert pytorch_code({"init": "default"}, "net[0].weight") == "net[0].reset_parameters()"


def test_code_keeps_every_bit_of_the_options():
    """Numbers in the code are written in full when a short form would round them."""
    code = pytorch_code({"init": "xavier_uniform", "gain": math.sqrt(2)}, "w")
    assert code == f"nn.init.xavier_uniform_(w, gain={math.sqrt(2)!r})"
    assert pytorch_code({"init": "normal", "mean": 0.0, "std": 0.01}, "w") == (
        "nn.init.normal_(w, mean=0, std=0.01)"
    )


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"init": "normal", "std": -1}, "rules[0].std: must be 0 or more, got -1"),
        ({"init": "xavier_uniform", "gain": -2}, "rules[0].gain: must be 0 or more"),
        ({"init": "constant", "value": 1e39}, "rules[0].value: must be from -1e+38 to 1e+38"),
        ({"init": "kaiming_uniform", "nonlinearity": "gelu"}, "must be one of relu, leaky_relu"),
        ({"init": "kaiming_uniform", "mode": 3}, "rules[0].mode: must be fan_in or fan_out"),
        ({"init": "normal", "mean": True}, "rules[0].mean: must be a finite number"),
        ({"init": "trunc_normal", "a": 3}, "rules[0]: a must be less than b"),
        ({"init": "formula", "expr": 3}, "rules[0].expr: must be a formula as text"),
    ],
)
def test_option_ranges_come_from_the_registry(rule, message):
    """check_rules refuses a value outside the option's range or choices, naming it."""
    with pytest.raises(SpecError) as err:
        check_rules([rule])
    assert message in str(err.value)


def test_check_rules_fills_defaults_and_accepts_frozen_rules():
    """Rules given as a tuple of read-only mappings come back as plain dicts with defaults."""
    from explorer.core.frozen import freeze

    rules = freeze([{"init": "normal", "target": "*.weight"}, {"init": "zeros"}])
    assert check_rules(rules) == [
        {"init": "normal", "mean": 0.0, "std": 0.01, "target": "*.weight"},
        {"init": "zeros", "target": "*"},
    ]


def test_expected_xavier_bounds_match_the_formula():
    """The histogram overlay for Xavier uses ±sqrt(6/(fan_in+fan_out))."""
    exp = expected({"init": "xavier_uniform", "gain": 1.0}, torch.empty(8, 4))
    assert exp.bounds == pytest.approx((-math.sqrt(0.5), math.sqrt(0.5)))


def test_expected_kaiming_normal_std_matches_torch():
    """He normal's overlay std is the std torch's kaiming_normal_ draws with (fan_in, relu)."""
    rule = sample_rule("kaiming_normal")
    exp = expected(rule, torch.empty(64, 32))
    assert exp.std == pytest.approx(math.sqrt(2) / math.sqrt(32))


def test_expected_default_for_linear_is_one_over_sqrt_fan_in():
    """PyTorch's default for a Linear is U(±1/sqrt(fan_in)) for weight and bias."""
    layer = nn.Linear(16, 3)
    exp = expected({"init": "default"}, layer.bias, owner=layer, local="bias")
    assert exp.bounds == pytest.approx((-0.25, 0.25))


@pytest.mark.parametrize("name", [n for n in FILLED if n != "orthogonal"])
def test_overlay_bounds_hold_the_values_drawn(name):
    """Values an initializer draws lie inside the bounds its overlay draws."""
    rule = sample_rule(name)
    net = chapter_mlp()
    initialize(net, [{**rule, "target": "0.weight"}], seed=0)
    exp = expected(rule, net[0].weight)
    values = net[0].weight.detach()
    if exp.bounds is not None and exp.kind != "normal":
        assert exp.bounds[0] <= values.min() and values.max() <= exp.bounds[1]
    if exp.point_masses == ((values.flatten()[0].item(), 1.0),):
        assert torch.equal(values, torch.full_like(values, values.flatten()[0].item()))


# d2l-djl-parameters.txt, after linear1.setInitializer(new XavierInitializer(), WEIGHT):
# "weight: (8, 4) gpu(0) float32 hasGradient [[ 0.0278, -0.6041, 0.4178, 0.353 ], ..."
DJL_XAVIER_8x4 = [
    [0.0278, -0.6041, 0.4178, 0.353],
    [-0.3376, -0.6848, 0.9613, 0.4915],
    [0.0134, 0.7977, -0.7357, 0.3095],
    [-0.2741, 0.9281, -0.7897, 0.6313],
    [0.6626, -0.855, 0.8329, -0.8253],
    [-0.0768, -0.2861, -0.5441, -0.3841],
    [0.7445, -0.1896, 0.9236, -0.9658],
    [-0.8702, -0.7979, -0.647, 0.4605],
]


def _rule_of(recipe: str, init: str) -> dict:
    (rule,) = [r for r in RECIPES[recipe].rules if r["init"] == init]
    return dict(rule)


def test_djl_xavier_values_need_gain_sqrt2():
    """DJL's printed Xavier values reach 0.966: past gain 1's bound 0.707, inside gain √2's 1.0."""
    values = torch.tensor(DJL_XAVIER_8x4)
    weight = torch.empty(8, 4)  # DJL's Linear weight is (units, inputs), as PyTorch's
    glorot = expected({"init": "xavier_uniform", "gain": 1.0}, weight).bounds[1]
    djl = expected(_rule_of("djl_xavier", "xavier_uniform"), weight).bounds[1]
    assert glorot == pytest.approx(math.sqrt(0.5)) and values.abs().max() > glorot
    assert (values.abs() > glorot).sum() == 13  # 13 of 32 printed values: not gain 1
    # XavierInitializer(UNIFORM, AVG, 6): √(6 / ((fan_in + fan_out) / 2)) = √(12 / 12) = 1
    assert djl == pytest.approx(math.sqrt(6 / ((4 + 8) / 2))) == pytest.approx(1.0)
    assert values.abs().max() <= djl


def test_djl_xavier_recipe_draws_inside_its_overlay():
    """DJL's new XavierInitializer() on the chapter's MLP: (8, 4) values within ±1, some beyond
    ±0.707, zero biases."""
    net = chapter_mlp()
    initialize(net, RECIPES["djl_xavier"].rules, seed=0)
    weight = net[0].weight.detach()
    assert weight.abs().max() <= 1.0 and weight.abs().max() > math.sqrt(0.5)
    assert torch.equal(net[0].bias, torch.zeros(8))


def test_djl_default_recipe_is_parameter_type_weights_gaussian_xavier():
    """DJL's Parameter.Type.WEIGHT default, XavierInitializer(GAUSSIAN, IN, 2), is
    N(0, √(2/fan_in)): torch's kaiming_normal_(fan_in, relu), drawn bit for bit; biases 0."""
    net = chapter_mlp()
    initialize(net, RECIPES["djl_default"].rules, seed=0)
    reference = chapter_mlp()
    torch.manual_seed(0)
    with torch.no_grad():
        for layer in (reference[0], reference[2]):
            layer.reset_parameters()
        for layer in (reference[0], reference[2]):
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
    assert torch.equal(net[0].weight, reference[0].weight)
    assert torch.equal(net[2].weight, reference[2].weight)
    assert torch.equal(net[0].bias, torch.zeros(8)) and torch.equal(net[2].bias, torch.zeros(1))
    rule = _rule_of("djl_default", "kaiming_normal")
    assert expected(rule, net[0].weight).std == pytest.approx(math.sqrt(2 / 4))


def test_mxnet_default_recipe_is_uniform_007_with_zero_biases():
    """MXNet seed: 'By default, MXNet initializes weight parameters by randomly drawing
    from a uniform distribution U(-0.07, 0.07), clearing bias parameters to zero.'"""
    net = chapter_mlp()
    initialize(net, RECIPES["mxnet_default"].rules, seed=0)
    rule = _rule_of("mxnet_default", "uniform")
    assert expected(rule, net[0].weight).bounds == (-0.07, 0.07)
    assert net[0].weight.abs().max() <= 0.07 and net[2].weight.abs().max() <= 0.07
    assert torch.equal(net[0].bias, torch.zeros(8)) and torch.equal(net[2].bias, torch.zeros(1))


def test_keras_default_recipe_is_glorot_uniform_with_zero_biases():
    """TensorFlow seed: 'By default, Keras initializes weight matrices uniformly by drawing
    from a range that is computed according to the input and output dimension, and the bias
    parameters are all set to zero.' (Dense's default kernel_initializer is glorot_uniform.)"""
    net = chapter_mlp()
    initialize(net, RECIPES["keras_default"].rules, seed=3)
    assert expected(_rule_of("keras_default", "xavier_uniform"), net[0].weight).bounds == (
        pytest.approx((-math.sqrt(0.5), math.sqrt(0.5)))
    )
    assert net[0].weight.abs().max() <= math.sqrt(0.5)
    assert torch.equal(net[2].bias, torch.zeros(1))


def test_pytorch_default_recipe_keeps_a_nonzero_bias():
    """PyTorch seed: 'By default, PyTorch initializes weight and bias matrices uniformly by
    drawing from a range that is computed according to the input and output dimension.'"""
    net = chapter_mlp()
    initialize(net, RECIPES["pytorch_default"].rules, seed=0)
    layer = net[0]
    assert expected({"init": "default"}, layer.bias, layer, "bias").bounds == (-0.5, 0.5)
    assert 0 < layer.bias.abs().max() <= 0.5


def test_framework_recipes_leave_layer_norms_at_one_and_zero():
    """Kernels only (min_ndim 2): a LayerNorm keeps weight 1 and bias 0, as in every framework."""
    net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    for name in ("mxnet_default", "keras_default", "djl_default"):
        initialize(net, RECIPES[name].rules, seed=0)
        assert torch.equal(net[1].weight, torch.ones(8)), name
        assert torch.equal(net[1].bias, torch.zeros(8)), name


def test_every_recipe_passes_the_rule_check():
    """Each recipe's rules are valid rules; its label is unique."""
    for recipe in RECIPES.values():
        assert check_rules(recipe.rules)
    assert len({r.label for r in RECIPES.values()}) == len(RECIPES)


def test_formula_code_runs_and_gives_the_formula():
    """The formula's snippet is runnable Python that writes the formula's values."""
    net = nn.Sequential(nn.Linear(3, 3))
    code = pytorch_code({"init": "formula", "expr": "where(i == j, 1, 0) + w * 0"}, "net[0].weight")
    exec(code, {"net": net, "torch": torch})  # noqa: S102 - our own snippet: plain torch lines
    assert torch.equal(net[0].weight, torch.eye(3))
