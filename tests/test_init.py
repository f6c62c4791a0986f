"""Initializer rules: the chapter's initializations, provenance, seeds and rule errors."""

import math

import pytest
import torch
from torch import nn

import explorer


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))


def tied_net():
    shared = nn.Linear(8, 8)
    return nn.Sequential(
        nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1)
    )


def test_pytorch_default_bias_is_not_zero():
    """PyTorch's default bias is drawn from U(±1/sqrt(fan_in)), unlike MXNet's zero bias."""
    net = mlp()
    explorer.initialize(net, [{"init": "default"}], seed=0)
    bias = net[0].bias
    assert bias.abs().sum() > 0
    assert bias.abs().max() <= 1 / math.sqrt(4)


def test_init_normal_and_zeros_as_in_init_normal():
    """normal(0, 0.01) on weights and zeros on biases, like the chapter's init_normal."""
    net = mlp()
    explorer.initialize(
        net,
        [
            {"init": "normal", "target": "*.weight", "std": 0.01},
            {"init": "zeros", "target": "*.bias"},
        ],
        seed=0,
    )
    assert torch.equal(net[0].bias, torch.zeros(8))
    assert net[0].weight.std() < 0.05 and net[0].weight.abs().max() > 0


def test_constant_one_everywhere():
    """A constant-1 rule sets every weight to 1, like init_constant."""
    net = mlp()
    explorer.initialize(net, [{"init": "constant", "target": "*.weight", "value": 1}])
    assert torch.equal(net[0].weight, torch.ones(8, 4))
    assert torch.equal(net[2].weight, torch.ones(1, 8))


def test_xavier_on_layer_0_and_42_on_layer_2():
    """Xavier values lie within ±sqrt(6/(fan_in+fan_out)); layer 2 is all 42."""
    net = mlp()
    explorer.initialize(
        net,
        [
            {"init": "xavier_uniform", "target": "0.weight"},
            {"init": "constant", "target": "2.weight", "value": 42},
        ],
        seed=1,
    )
    bound = math.sqrt(6 / (4 + 8))
    assert net[0].weight.abs().max() <= bound
    assert net[0].weight.abs().max() > bound / 2
    assert torch.equal(net[2].weight, torch.full((1, 8), 42.0))


def test_d2l_mixture_is_half_zeros_and_the_rest_between_5_and_10():
    """The chapter's custom distribution: ~50% zeros, the rest in [5,10] ∪ [-10,-5]."""
    w = nn.Linear(100, 200)
    explorer.initialize(w, [{"init": "d2l_mixture", "target": "weight"}], seed=0)
    values = w.weight.detach()
    assert (values == 0).float().mean().item() == pytest.approx(0.5, abs=0.03)
    nonzero = values[values != 0].abs()
    assert nonzero.min() >= 5 and nonzero.max() <= 10


def test_formula_rule_matches_the_chapters_my_init():
    """The custom formula keeps U(-10, 10) draws where |u| >= 5."""
    w = nn.Linear(100, 200)
    rule = {
        "init": "formula",
        "target": "weight",
        "expr": "u = uniform(-10, 10); where(abs(u) >= 5, u, 0)",
    }
    explorer.initialize(w, [rule], seed=0)
    values = w.weight.detach()
    assert (values == 0).float().mean().item() == pytest.approx(0.5, abs=0.03)
    assert values[values != 0].abs().min() >= 5


def test_later_rule_overrides_and_provenance_names_it():
    """Rules apply in order; the result maps every name to the last rule that matched."""
    net = mlp()
    provenance = explorer.initialize(
        net, [{"init": "zeros"}, {"init": "ones", "target": "*.weight"}]
    )
    assert provenance == {"0.weight": 1, "0.bias": 0, "2.weight": 1, "2.bias": 0}
    assert torch.equal(net[0].bias, torch.zeros(8)) and torch.equal(net[2].weight, torch.ones(1, 8))


def test_unmatched_parameters_have_no_provenance():
    """A parameter no rule touches maps to None and keeps its values."""
    net = mlp()
    before = net[2].bias.detach().clone()
    provenance = explorer.initialize(net, [{"init": "zeros", "target": "0.*"}])
    assert provenance["2.bias"] is None and torch.equal(net[2].bias, before)


def test_regex_target_is_a_full_match_like_collect_params():
    """regex '.*weight' selects weights only, as Gluon's collect_params('.*weight')."""
    net = mlp()
    provenance = explorer.initialize(net, [{"init": "zeros", "regex": ".*weight"}])
    assert provenance == {"0.weight": 0, "0.bias": None, "2.weight": 0, "2.bias": None}


def test_every_alias_of_a_tied_tensor_gets_provenance():
    """Targeting 2.weight also sets 4.weight, and both names report the rule."""
    net = tied_net()
    provenance = explorer.initialize(net, [{"init": "constant", "target": "2.weight", "value": 3}])
    assert provenance["2.weight"] == 0 and provenance["4.weight"] == 0
    assert torch.equal(net[4].weight, torch.full((8, 8), 3.0))


def test_same_seed_gives_bit_identical_values():
    """The same rules and seed give the same bits; another seed gives other values."""
    rules = [
        {"init": "kaiming_normal", "target": "*.weight"},
        {"init": "default", "target": "*.bias"},
    ]
    a, b, c = mlp(), mlp(), mlp()
    explorer.initialize(a, rules, seed=7)
    explorer.initialize(b, rules, seed=7)
    explorer.initialize(c, rules, seed=8)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a[0].weight, c[0].weight)


def test_seeded_initialize_leaves_the_global_rng_alone():
    """A seeded initialize does not change what torch.rand draws next."""
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    explorer.initialize(mlp(), [{"init": "normal"}], seed=5)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(3), expected_next)


def test_default_on_weight_only_keeps_the_bias():
    """A default rule on 0.weight resets it but leaves 0.bias as it was."""
    net = mlp()
    explorer.initialize(net, [{"init": "constant", "value": 5}])
    explorer.initialize(net, [{"init": "default", "target": "0.weight"}], seed=0)
    assert torch.equal(net[0].bias, torch.full((8,), 5.0))
    assert net[0].weight.abs().max() <= 1 / math.sqrt(4)


def test_lazy_parameters_need_a_forward_first():
    """Initializing a lazy layer explains that a forward pass must come first."""
    net = nn.Sequential(nn.LazyLinear(8))
    with pytest.raises(explorer.SpecError, match="not materialized yet .* run a forward pass"):
        explorer.initialize(net, [{"init": "zeros"}])


def test_xavier_on_a_bias_says_to_target_weights():
    """A 2-D-only initializer on a 1-D tensor explains which targets fit."""
    with pytest.raises(
        explorer.SpecError, match=r"needs a tensor of 2 or more dimensions.*\*\.weight"
    ):
        explorer.initialize(mlp(), [{"init": "xavier_uniform", "target": "*"}])


@pytest.mark.parametrize(
    "rule,message",
    [
        ({"init": "magic"}, "rules[0].init: unknown initializer 'magic'"),
        ({"init": "normal", "std": -1}, "rules[0].std: must be 0 or more"),
        ({"init": "normal", "sigma": 1}, "rules[0].sigma: unknown option for normal"),
        ({"init": "constant"}, "constant needs the option 'value'"),
        ({"init": "uniform", "a": 2, "b": 1}, "a must be less than b"),
        ({"init": "zeros", "regex": "("}, "rules[0].regex: not a valid regular expression"),
        ({"init": "zeros", "target": "*", "regex": ".*"}, "not both"),
        ({"init": "formula", "expr": "__import__('os')"}, "rules[0].expr:"),
        ({"init": "kaiming_normal", "mode": "fan_mid"}, "must be fan_in or fan_out"),
        ({"init": "constant", "value": float("nan")}, "must be a finite number"),
    ],
)
def test_bad_rules_raise_spec_error(rule, message):
    """Each bad rule names its place and the fix."""
    with pytest.raises(explorer.SpecError) as err:
        explorer.initialize(mlp(), [rule])
    assert message in str(err.value)
