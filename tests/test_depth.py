"""The depth lab: the signal through depth under several rule sets, and a constant init's symmetry.

The reference answers are plain PyTorch: the same net, initialized with ``torch.nn.init``
after ``torch.manual_seed``, run with forward hooks; and a plain training loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from explorer.engine.train import STEP_SEED_HIGH
from explorer.labs.depth import (
    DEPTH_BATCH,
    RULE_SETS,
    compare,
    distinct_rows,
    signal_through_depth,
    symmetry,
)
from explorer.session.experiment import Experiment
from explorer.spec.presets import PRESETS
from tests.models import tied_net


def plain_deep_mlp(init) -> nn.Sequential:
    """The deep_mlp preset in plain PyTorch, built and initialized as explorer does (seed 0)."""
    torch.manual_seed(0)
    net = nn.Sequential(*[m for _ in range(10) for m in (nn.Linear(256, 256), nn.ReLU())])
    torch.manual_seed(0)
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                init(m.weight)
        for m in net:
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)
    return net


def plain_profile(net: nn.Sequential, x: torch.Tensor):
    stds, grads = [], []
    for m in net:
        m.register_forward_hook(lambda m, i, o: stds.append(float(o.detach().std(unbiased=False))))
    net(x).sum().backward()
    for m in net:
        if isinstance(m, nn.Linear):
            g = torch.cat([m.weight.grad.flatten(), m.bias.grad.flatten()]).double()
            grads.append(float(g.norm()))
    return stds, grads


def test_the_deep_mlp_profiles_match_plain_pytorch_and_small_weights_vanish():
    """normal(0, 0.01) vs kaiming on deep_mlp: each layer's std and grad norm as plain PyTorch
    computes them; the small init's signal falls 10^8-fold, kaiming's stays within 4x."""
    exp = Experiment.from_preset("deep_mlp")
    normal, kaiming = compare(exp, {"normal": RULE_SETS["normal"], "kaiming": RULE_SETS["kaiming"]})
    x = torch.rand((DEPTH_BATCH, 256), generator=torch.Generator().manual_seed(0))
    inits = {
        "normal": lambda w: nn.init.normal_(w, 0.0, 0.01),
        "kaiming": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
    }
    for profile, init in zip((normal, kaiming), inits.values(), strict=True):
        stds, grads = plain_profile(plain_deep_mlp(init), x)
        assert [r.act_std for r in profile.layers] == stds
        ours = [r.grad_norm for r in profile.layers if r.grad_norm is not None]
        assert ours == grads
    assert normal.layers[-1].act_std < 1e-8 * normal.layers[0].act_std
    assert kaiming.layers[-1].act_std > kaiming.layers[0].act_std / 4
    first_grad = [r.grad_norm for r in normal.layers if r.grad_norm is not None][0]
    assert first_grad < 1e-3 * [r.grad_norm for r in kaiming.layers if r.grad_norm][0]


def test_a_tied_layer_appears_once_per_call():
    """The tied net's shared layer runs twice: two rows, labelled call 1 and call 2."""
    net = tied_net()
    profile = signal_through_depth(net, torch.rand(8, 4))
    names = [r.name for r in profile.layers]
    assert names[2:5] == ["2 Linear", "3 ReLU", "2 Linear, call 2"]
    assert profile.layers[1].grad_norm is None  # a ReLU has no parameters


def test_distinct_rows_counts_exactly_equal_rows():
    """Rows equal bit for bit count once; a row differing in one element counts apart."""
    w = torch.ones(5, 3)
    assert distinct_rows(w) == 1
    w[4, 2] += 1e-7
    assert distinct_rows(w) == 2
    assert distinct_rows(torch.zeros(4)) == 1


def test_a_constant_init_keeps_every_hidden_unit_identical_through_training():
    """The tied net with constant weights: one distinct row in each hidden weight, in its
    gradient, and after training; a plain PyTorch loop with the same data agrees."""
    exp = Experiment.from_preset("tied")
    rows = symmetry(exp, 0.5, steps=10)
    assert [(r.name, r.values_before, r.grads_before, r.values_after) for r in rows] == [
        ("0.weight", 1, 1, 1),
        ("2.weight", 1, 1, 1),
        ("6.weight", 1, 1, 1),
    ]
    assert rows[-1].output and not rows[0].output
    # plain PyTorch: constant 0.5 weights, zero biases, the same teacher data and order
    from explorer.engine.tasks import make_task

    net = tied_net()
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.fill_(0.5)
                m.bias.zero_()
    data = make_task("teacher", net, (4,), seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    order = torch.Generator().manual_seed(1)
    for _ in range(10):
        index = torch.randint(0, len(data.x), (32,), generator=order)
        torch.randint(0, STEP_SEED_HIGH, (1,), generator=order)
        opt.zero_grad()
        F.mse_loss(net(data.x[index]), data.y[index]).backward()
        opt.step()
    for m in (net[0], net[2]):
        assert len(torch.unique(m.weight, dim=0)) == 1


def test_the_default_init_breaks_the_symmetry():
    """PyTorch's random default gives every row its own values."""
    ws_exp = Experiment.from_preset("rgnet")
    from explorer.session.state import realize

    module = realize(ws_exp).module
    first = next(p for n, p in module.named_parameters() if n.endswith("weight"))
    assert first.shape == (8, 4) and distinct_rows(first) == 8
    assert distinct_rows(module.get_parameter("1.weight")) == 1  # one output row


def test_the_depth_tab_compares_and_shows_symmetry():
    """AppTest: open the 10-layer MLP, run the comparison, then the constant init."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).parent.parent / "app.py"), default_timeout=180)
    at.run()
    at.session_state["tabs"] = next(t.label for t in at.tabs if t.label.endswith("Depth"))
    at.run()
    at.button(key="depth_open_deep").click().run()
    assert not at.exception
    assert at.session_state["workspace"].experiment.preset == "deep_mlp"
    at.button(key="depth_run").click().run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "rule set" in d.value.columns)
    assert list(table["rule set"]) == ["normal(0, 0.01)", "xavier_uniform", "kaiming_normal (ReLU)"]
    assert float(table["last layer std"][0]) < 1e-8
    at.number_input(key="symmetry_steps").set_value(3).run()
    at.button(key="symmetry_run").click().run()
    assert not at.exception
    assert any("Distinct rows: 1 in every hidden layer" in s.value for s in at.success)
    assert PRESETS["deep_mlp"].input_shape == (64, 256)


def test_a_model_on_the_meta_device_is_refused_with_the_reason():
    """No values on meta: no signal to follow, no symmetry to train."""
    import pytest

    from explorer.core.errors import SpecError

    exp = Experiment(spec=PRESETS["deep_mlp"].spec, device="meta", input_shape=(4, 256))
    with pytest.raises(SpecError, match="meta device"):
        compare(exp, {"normal": RULE_SETS["normal"]})
    with pytest.raises(SpecError, match="meta device"):
        symmetry(exp, 0.1)
