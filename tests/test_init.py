"""Initializer rules: the chapter's initializations, provenance, seeds and rule errors."""

import math
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import explorer
from explorer.core.frozen import freeze
from explorer.core.limits import DEFAULT_LIMITS
from explorer.init.rules import OPTIONS, check_rules, formula_problem, initial_values
from tests.models import batchnorm_net, chapter_mlp


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


def tied_lm_stack(seed: int = 0) -> nn.Sequential:
    """Embedding, LayerNorm, two Linears, and a head tied to the embedding (0.weight = 5.weight)."""
    torch.manual_seed(seed)
    emb, head = nn.Embedding(10, 4), nn.Linear(4, 10, bias=False)
    head.weight = emb.weight
    return nn.Sequential(emb, nn.LayerNorm(4), nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 4), head)


def _mixture(p):
    nn.init.uniform_(p, -10, 10)
    p.data *= p.data.abs() >= 5


KERNELS = {"target": "*.weight", "min_ndim": 2}
# (rule, the plain torch.nn.init call, which parameters the plain loop visits)
BUILT_IN = {
    "normal": ({"mean": 0.5, "std": 0.2}, lambda p: nn.init.normal_(p, 0.5, 0.2), None),
    "uniform": ({"a": -0.3, "b": 0.1}, lambda p: nn.init.uniform_(p, -0.3, 0.1), None),
    "constant": ({"value": 42}, lambda p: nn.init.constant_(p, 42), None),
    "zeros": ({}, nn.init.zeros_, None),
    "ones": ({}, nn.init.ones_, None),
    "xavier_uniform": ({"gain": 1.5}, lambda p: nn.init.xavier_uniform_(p, gain=1.5), 2),
    "xavier_normal": ({"gain": 0.5}, lambda p: nn.init.xavier_normal_(p, gain=0.5), 2),
    "kaiming_uniform": (
        {"a": 0.1, "mode": "fan_out", "nonlinearity": "leaky_relu"},
        lambda p: nn.init.kaiming_uniform_(p, a=0.1, mode="fan_out", nonlinearity="leaky_relu"),
        2,
    ),
    "kaiming_normal": ({}, lambda p: nn.init.kaiming_normal_(p, nonlinearity="relu"), 2),
    "orthogonal": ({"gain": 2.0}, lambda p: nn.init.orthogonal_(p, gain=2.0), 2),
    "trunc_normal": (
        {"mean": 0.1, "std": 0.5, "a": -0.4, "b": 0.6},
        lambda p: nn.init.trunc_normal_(p, 0.1, 0.5, -0.4, 0.6),
        None,
    ),
    "d2l_mixture": ({}, _mixture, None),
}


def _rule(name):
    options, _, min_ndim = BUILT_IN[name]
    return {"init": name, **options, **(KERNELS if min_ndim else {"target": "*"})}


def _plain_loop(net, name, seed):
    """torch.manual_seed, then the nn.init call on each unique parameter, in order."""
    _, call, min_ndim = BUILT_IN[name]
    torch.manual_seed(seed)
    with torch.no_grad():
        for pname, p in net.named_parameters():
            if not min_ndim or (pname.endswith(".weight") and p.dim() >= min_ndim):
                call(p)


def _same_values(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("name", list(BUILT_IN))
def test_initialize_is_bit_identical_to_the_plain_nn_init_loop(name):
    """Each built-in initializer equals manual_seed + a torch.nn.init loop (tied head once)."""
    ours, plain = tied_lm_stack(), tied_lm_stack()
    explorer.initialize(ours, [_rule(name)], seed=11)
    _plain_loop(plain, name, 11)
    assert _same_values(ours, plain)


def test_default_is_bit_identical_to_reset_parameters_over_modules():
    """The default rule on '*' equals manual_seed + reset_parameters on each module in order."""
    ours, plain = tied_lm_stack(), tied_lm_stack()
    explorer.initialize(ours, [{"init": "default", "target": "*"}], seed=4)
    torch.manual_seed(4)
    for module in plain.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    assert _same_values(ours, plain)


@pytest.mark.parametrize("name", [*BUILT_IN, "default", "formula"])
def test_initial_values_equal_initialize_and_leave_the_module_alone(name):
    """initial_values gives exactly initialize's values, and the module keeps its own."""
    rule = {"init": "formula", "target": "*", "expr": "u = normal(0, 1); u * w + i"}
    rule = {"init": "default", "target": "*"} if name == "default" else rule
    rule = _rule(name) if name in BUILT_IN else rule
    net, reference = tied_lm_stack(), tied_lm_stack()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    result = initial_values(net, [rule], seed=2)
    explorer.initialize(reference, [rule], seed=2)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    ref = dict(reference.named_parameters())
    assert result.values and all(torch.equal(v, ref[k]) for k, v in result.values.items())


def test_initial_values_has_one_fresh_tensor_per_distinct_target():
    """A tied tensor appears once, under its first name; provenance names every alias."""
    net = tied_lm_stack().double()
    result = initial_values(net, [{"init": "normal", "target": "*.weight"}], seed=0)
    assert list(result.values) == ["0.weight", "1.weight", "2.weight", "4.weight"]
    assert result.provenance["5.weight"] == 0 and result.provenance["2.bias"] is None
    for name, value in result.values.items():
        param = net.get_parameter(name)
        assert value.dtype == torch.float64 and value.device == param.device
        assert value.untyped_storage().data_ptr() != param.untyped_storage().data_ptr()
        assert not value.requires_grad


def test_a_formula_reads_the_values_an_earlier_rule_gave():
    """w in a later formula rule is the earlier rule's result, also when computed aside."""
    rules = [{"init": "constant", "value": 3}, {"init": "formula", "expr": "w * 2"}]
    net = chapter_mlp()
    result = initial_values(net, rules)
    assert torch.equal(result.values["0.weight"], torch.full((8, 4), 6.0))
    assert not torch.equal(net[0].weight, torch.full((8, 4), 6.0))


def test_default_aside_leaves_buffers_and_other_parameters_alone():
    """default on a BatchNorm net, computed aside, changes no buffer or untargeted parameter."""
    net = batchnorm_net()
    net[1].running_mean.fill_(5.0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    result = initial_values(net, [{"init": "default", "target": "1.*"}], seed=0)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert torch.equal(result.values["1.weight"], torch.ones(8))
    assert set(result.values) == {"1.weight", "1.bias"}


def test_default_in_place_keeps_buffers():
    """initialize with default on a weight resets it but keeps BatchNorm's running stats."""
    net = batchnorm_net()
    net[1].running_mean.fill_(5.0)
    explorer.initialize(net, [{"init": "default", "target": "1.weight"}], seed=0)
    assert torch.equal(net[1].running_mean, torch.full((8,), 5.0))


def test_every_check_runs_before_any_draw():
    """A bad second rule leaves the module and the global RNG exactly as they were."""
    net = chapter_mlp()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(9)
    state = torch.get_rng_state()
    rules = [{"init": "normal"}, {"init": "xavier_uniform", "target": "*"}]
    with pytest.raises(explorer.SpecError, match="rules\\[1\\]: xavier_uniform needs"):
        explorer.initialize(net, rules)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_seeded_results_are_bit_identical_run_to_run():
    """Two seeded initial_values calls give the same bits for every initializer at once."""
    rules = [_rule(name) for name in BUILT_IN]
    a = initial_values(tied_lm_stack(), rules, seed=3).values
    b = initial_values(tied_lm_stack(), rules, seed=3).values
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_rules_may_arrive_frozen():
    """A tuple of FrozenDicts is accepted like a list of dicts."""
    rules = [{"init": "zeros", "target": "*.bias"}]
    a, b = chapter_mlp(), chapter_mlp()
    assert explorer.initialize(a, freeze(rules)) == explorer.initialize(b, rules)
    assert _same_values(a, b)


def test_the_log_names_each_tensor_once():
    """The init log has one line per tensor a rule set, as the chapter's my_init prints."""
    log = []
    initial_values(tied_lm_stack(), [{"init": "d2l_mixture", "target": "*.weight"}], log=log)
    assert log == [
        "Init 0.weight (10, 4) with d2l_mixture",
        "Init 1.weight (4,) with d2l_mixture",
        "Init 2.weight (6, 4) with d2l_mixture",
        "Init 4.weight (4, 6) with d2l_mixture",
    ]


def test_a_formula_over_the_memory_cap_is_refused_before_any_draw():
    """A formula needing more than the cap for one row names the parameter; nothing changes."""
    net = nn.Sequential(nn.Linear(2048, 8))
    before = net[0].weight.detach().clone()
    limits = replace(DEFAULT_LIMITS, max_formula_bytes=4096)
    rules = [{"init": "zeros", "target": "0.bias"}, {"init": "formula", "expr": "w * (w + 1)"}]
    with pytest.raises(explorer.SpecError, match=r"rules\[1\].expr: 0.weight: needs \d+ temp"):
        explorer.initialize(net, rules, limits=limits)
    assert torch.equal(net[0].weight, before) and net[0].bias.abs().sum() > 0


# d2l-djl-parameters.txt: "net.setInitializer(new ConstantInitializer(1), Parameter.Type.WEIGHT);
# ... Note that this will not do anything currently since we have already set our initializer
# in the previous code block." d2l-zh-djl-parameters.txt: "注意:如果参数已经被初始化,
# setInitializer() 函数并不会对参数有任何影响, 下面的代码不会把权重重置为 42。"
DJL_NORMAL = {"init": "normal", "target": "*.weight", "mean": 0.0, "std": 0.01}


def test_a_rule_without_force_reinit_keeps_what_an_earlier_rule_set():
    """DJL's setInitializer: Constant(1) after Normal changes nothing; provenance says Normal."""
    net, reference = chapter_mlp(), chapter_mlp()
    keep = {"init": "constant", "target": "*.weight", "value": 1, "force_reinit": False}
    provenance = explorer.initialize(net, [DJL_NORMAL, keep], seed=0)
    explorer.initialize(reference, [DJL_NORMAL], seed=0)
    assert _same_values(net, reference)
    assert provenance["0.weight"] == 0 and provenance["2.weight"] == 0


@pytest.mark.parametrize("value", [7777, 42])  # English edition: 7777; Chinese edition: 42
def test_without_force_reinit_a_fresh_net_takes_the_constant(value):
    """DJL: 'we'll see that everything is initialized properly! (to 7777!)' on a fresh net."""
    net = chapter_mlp()
    rule = {"init": "constant", "target": "*.weight", "value": value, "force_reinit": False}
    provenance = explorer.initialize(net, [rule])
    assert torch.equal(net[0].weight, torch.full((8, 4), float(value)))
    assert provenance["0.weight"] == 0 and provenance["0.bias"] is None


def test_force_reinit_overwrites_as_gluon_does():
    """Gluon: 'force_reinit ensures that parameters are freshly initialized even if they were
    already initialized previously': the explorer's default, so Constant(1) wins."""
    net = chapter_mlp()
    again = {"init": "constant", "target": "*.weight", "value": 1, "force_reinit": True}
    provenance = explorer.initialize(net, [DJL_NORMAL, again], seed=0)
    assert torch.equal(net[0].weight, torch.ones(8, 4)) and provenance["0.weight"] == 1
    assert check_rules([again])[0].get("force_reinit", True) is True


def test_force_reinit_false_skips_only_what_was_set():
    """A rule without force_reinit still sets the parameters no earlier rule touched."""
    net = chapter_mlp()
    keep = {"init": "constant", "target": "*", "value": 3, "force_reinit": False}
    provenance = explorer.initialize(net, [{"init": "zeros", "target": "0.*"}, keep])
    assert torch.equal(net[0].weight, torch.zeros(8, 4))
    assert torch.equal(net[2].bias, torch.full((1,), 3.0))
    assert provenance == {"0.weight": 0, "0.bias": 0, "2.weight": 1, "2.bias": 1}


def test_min_ndim_keeps_kernels_only():
    """min_ndim 2 lets a 2-D initializer target every weight and skip 1-D norms."""
    net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8))
    rule = {"init": "xavier_uniform", "target": "*.weight", "min_ndim": 2}
    assert explorer.initialize(net, [rule], seed=0) == {
        "0.weight": 0,
        "0.bias": None,
        "1.weight": None,
        "1.bias": None,
    }
    assert torch.equal(net[1].weight, torch.ones(8))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"force_reinit": "no"}, "rules[0].force_reinit: must be true or false"),
        ({"min_ndim": 9}, "rules[0].min_ndim: must be a whole number from 0 to 8"),
        ({"regex": ".*", "match": "middle"}, 'rules[0].match: must be "full" or "prefix"'),
        ({"match": "prefix"}, '"match" goes with "regex"'),
    ],
)
def test_rule_fields_are_checked(extra, message):
    """force_reinit, min_ndim and match are checked like options, naming the field."""
    with pytest.raises(explorer.SpecError) as err:
        check_rules([{"init": "zeros", **extra}])
    assert message in str(err.value)


def test_formula_problem_flags_inf_on_the_targeted_shapes():
    """Issue 8: 1/0 and exp(1000) are flagged before they are applied, naming the tensor."""
    net = chapter_mlp()
    assert "0.weight (8, 4): gives inf/nan" in formula_problem(
        net, {"init": "formula", "target": "*.weight", "expr": "exp(1000)"}
    )
    assert "inf/nan" in formula_problem(net, {"init": "formula", "expr": "1 / 0"})
    assert formula_problem(net, {"init": "formula", "expr": "normal(0, 1) * 0.1"}) is None


def test_formula_problem_reads_each_targets_own_values():
    """1 / w is fine on nonzero weights and flagged on the zero bias, by name."""
    net = chapter_mlp()
    explorer.initialize(
        net, [{"init": "ones", "target": "*.weight"}, {"init": "zeros", "target": "*.bias"}]
    )
    rule = {"init": "formula", "target": "*", "expr": "1 / w"}
    assert formula_problem(net, rule).startswith("on 0.bias (8,): gives inf/nan")
    assert formula_problem(net, {**rule, "target": "*.weight"}) is None


def test_formula_problem_reports_syntax_first():
    """A formula that does not parse says so, as check_rules would."""
    message = formula_problem(chapter_mlp(), {"init": "formula", "expr": "w.__class__"})
    assert "unknown method '__class__'" in message


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
RULE_KEYS = st.sampled_from(
    [
        "init",
        "target",
        "regex",
        "match",
        "force_reinit",
        "min_ndim",
        "mean",
        "std",
        "a",
        "b",
        "gain",
        "mode",
        "nonlinearity",
        "value",
        "expr",
    ]
)
RULES = st.lists(
    st.dictionaries(RULE_KEYS, JSON | st.sampled_from(list(OPTIONS)), max_size=5) | JSON,
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(RULES)
def test_any_json_as_rules_gives_rules_or_a_spec_error(rules):
    """Random JSON as rules: checking and applying them succeeds or raises SpecError only."""
    try:
        explorer.initialize(chapter_mlp(), check_rules(rules), seed=0)
    except explorer.SpecError as err:
        assert "\n" not in str(err)


def test_rules_on_the_meta_device():
    """On meta, nn.init rules and default run (structure only); a formula is refused clearly."""
    with torch.device("meta"):
        net = tied_lm_stack()
    assert explorer.initialize(net, [{"init": "default"}, {"init": "normal"}])["5.weight"] == 1
    assert initial_values(net, [{"init": "zeros"}]).values["0.weight"].is_meta
    with pytest.raises(explorer.SpecError, match="0.weight is on the meta device"):
        explorer.initialize(net, [{"init": "formula", "expr": "w * 2"}])
    assert formula_problem(net, {"init": "formula", "expr": "1 / 0"}) is None
