"""Export as PyTorch code: the script, run alone in a fresh interpreter, rebuilds the state.

Each case builds a state in the explorer, writes its script, runs the script with a new
Python process (which never imports explorer), and compares what the script built with
the state: the printed structure, the tied groups, every parameter's and buffer's values
bit for bit, the gradients, the batch's loss and the training losses.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from explorer.core.errors import SpecError
from explorer.init.initializers import INITIALIZERS
from explorer.io.script import (
    CUSTOM,
    edit_line,
    grad_line,
    init_lines,
    to_script,
)
from explorer.session.experiment import Experiment
from explorer.session.workspace import Workspace
from explorer.spec.blocks import BLOCKS
from explorer.spec.presets import PRESETS
from tests.models import BATCHNORM_SPEC

pytestmark = pytest.mark.timeout(300)

SAVE = """

import sys as _sys
assert not [m for m in _sys.modules if m == "explorer" or m.startswith("explorer.")]
_root = {root}
_names = {{}}
for _n, _p in _root.named_parameters(remove_duplicate=False):
    _names.setdefault(id(_p), []).append(_n)
torch.save(
    {{
        "structure": str(_root),
        "params": {{n: p.detach().cpu() for n, p in _root.named_parameters()}},
        "buffers": {{n: b.cpu() for n, b in _root.named_buffers()}},
        "grads": {{n: p.grad for n, p in _root.named_parameters() if p.grad is not None}},
        "groups": sorted(sorted(v) for v in _names.values() if len(v) > 1),
        "loss": loss.item() if "loss" in globals() else None,
        "losses": globals().get("losses"),
    }},
    {out!r},
)
"""


def run_script(ws: Workspace, tmp_path: Path) -> dict:
    """Write the state's script, run it alone, and load what it built."""
    script = to_script(ws.experiment, ws.limits)
    assert "import explorer" not in script and "from explorer" not in script
    path, out = tmp_path / "model.py", tmp_path / "model.pt"
    path.write_text(script + SAVE.format(root=ws.experiment.root_name, out=str(out)))
    done = subprocess.run(
        [sys.executable, "-I", str(path)], capture_output=True, text=True, cwd=tmp_path, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out, weights_only=True)


def assert_same(ws: Workspace, got: dict) -> None:
    """The script built what the state holds, bit for bit."""
    s = ws.state
    assert got["structure"] == str(s.module)
    assert got["groups"] == sorted(sorted(g) for g in s.tree.tied_groups)
    params = dict(s.module.named_parameters())
    assert list(got["params"]) == list(params)
    for name, p in params.items():
        assert torch.equal(got["params"][name], p.detach().cpu()), name
    for name, b in s.module.named_buffers():
        assert torch.equal(got["buffers"][name], b.cpu()), name
    grads = {n: p.grad for n, p in params.items() if p.grad is not None}
    assert list(got["grads"]) == list(grads)
    for name, g in grads.items():
        assert torch.equal(got["grads"][name], g), name
    if s.last_run is not None:
        assert got["loss"] == s.last_run.loss
    if s.train_log is not None:
        assert got["losses"][-s.train_log.done :] == s.train_log.loss.tolist()


def test_the_chapters_lazy_mlp_after_forward_and_backward(tmp_path):
    """The MLP preset: lazy layers shaped by the seeded first forward, default init, grads."""
    ws = Workspace.from_preset("mlp")
    ws.backward()
    assert_same(ws, run_script(ws, tmp_path))


def test_the_tied_net_with_rules_an_edit_and_a_forward(tmp_path):
    """normal/zeros rules, an edit through the alias 4.weight, then forward only."""
    ws = Workspace.from_preset("tied")
    ws.change(
        rules=[
            {"init": "normal", "target": "*.weight", "std": 0.01},
            {"init": "zeros", "target": "*.bias"},
        ]
    )
    ws.materialize()
    ws.edit("4.weight", "set", 100.0, (0, 0))
    ws.forward()
    got = run_script(ws, tmp_path)
    assert_same(ws, got)
    assert got["params"]["2.weight"][0, 0] == 100


def test_rgnet_with_xavier_a_constant_every_edit_kind_and_float64(tmp_path):
    """Named children (block 0 …), xavier and 42, add/multiply/divide edits, a move."""
    ws = Workspace.from_preset("rgnet")
    ws.change(
        rules=[
            {"init": "xavier_uniform", "target": "0.*.weight"},
            {"init": "constant", "target": "1.weight", "value": 42},
        ]
    )
    ws.edit("1.weight", "add", 1.0)
    ws.edit("1.bias", "multiply", -3.0)
    ws.edit("1.weight", "divide", 9.0, (0, 2))
    ws.move(dtype="float64")
    ws.backward()
    assert_same(ws, run_script(ws, tmp_path))


def test_a_training_run_on_the_tied_net(tmp_path):
    """SGD with momentum on the tied net, stopped early: the same values and loss curve."""
    ws = Workspace.from_preset("tied")
    count = iter(range(100))
    ws.train(
        {"task": "regression", "steps": 30, "lr": 0.05, "batch_size": 16},
        should_stop=lambda: next(count) >= 12,
    )
    ws.backward()
    got = run_script(ws, tmp_path)
    assert_same(ws, got)
    assert len(got["losses"]) == 12


def test_two_runs_adam_and_next_token_on_the_tied_language_model(tmp_path):
    """The tied LM: next-token training with Adam, then SGD; the head stays the embedding."""
    ws = Workspace.from_preset("tied_lm")
    ws.train({"task": "next_token", "steps": 5, "optimizer": "adam", "lr": 0.01})
    ws.train({"task": "next_token", "steps": 4, "lr": 0.1, "momentum": 0.0})
    ws.backward()
    got = run_script(ws, tmp_path)
    assert_same(ws, got)
    assert got["groups"] == [["0.weight", "3.weight"]]


def test_formulas_defaults_on_weights_only_and_rules_that_keep_earlier_ones(tmp_path):
    """Formula rules (draws, w, i, j, fan_in), default on weights only (biases kept),
    force_reinit false and min_ndim: the same plan and the same draws."""
    ws = Workspace.from_preset("gluon_dense")
    ws.change(
        rules=[
            {"init": "uniform", "target": "*", "a": -1, "b": 1},
            {"init": "default", "target": "*.weight"},
            {"init": "formula", "target": "0.weight", "expr": "u = uniform(-10, 10); "
             "where(abs(u) >= 5, u, 0)"},
            {"init": "formula", "target": "2.*", "min_ndim": 2,
             "expr": "w * 0.5 + trunc_normal(0, 1, -2, 2) / sqrt(fan_in) + i - j"},
            {"init": "formula", "target": "*.bias", "expr": "normal(0, 1) * (i < 3) | (j > 0)"},
            {"init": "zeros", "target": "*", "force_reinit": False},
        ],
        seed=3,
    )  # fmt: skip
    ws.backward()
    assert_same(ws, run_script(ws, tmp_path))


def test_the_chapters_my_init_is_written_as_the_chapter_writes_it(tmp_path):
    """The my_init recipe exports as the chapter's ``def my_init(m)`` and ``net.apply(my_init)``,
    and gives the explorer's values bit for bit."""
    from explorer.init.initializers import RECIPES

    ws = Workspace.from_preset("mlp")
    ws.change(rules=[dict(r) for r in RECIPES["my_init"].rules], seed=4)
    ws.materialize()
    script = to_script(ws.experiment, ws.limits)
    assert "def my_init(m):\n    if type(m) == nn.Linear:" in script
    assert "m.weight.data *= m.weight.data.abs() >= 5" in script
    assert "net.apply(my_init)" in script and "formula" not in script
    assert_same(ws, run_script(ws, tmp_path))


def test_a_formula_is_a_few_lines_of_torch_in_the_script(tmp_path):
    """A user's formula (the chapter's own spelling too) is a short torch function of w and a
    generator, not the explorer's chunked evaluator, with the same values."""
    ws = Workspace.from_preset("gluon_dense")
    ws.change(
        rules=[
            {"init": "formula", "target": "*.weight",
             "expr": "u = uniform(-10, 10); u * (u.abs() >= 5)"},
            {"init": "formula", "target": "*.bias", "expr": "normal(0, 1) * sqrt(2 / fan_in)"},
        ],
        seed=5,
    )  # fmt: skip
    script = to_script(ws.experiment, ws.limits)
    first = script[script.index("def formula_1(w, g):") :]
    function = first[: first.index("\n\n")]
    assert len(function.splitlines()) <= 8, function
    assert "u = -10 + 20 * torch.rand(w.shape, generator=g, device=w.device)" in function
    assert "return u * (u.abs() >= 5).float()" in function
    assert "formula_names" not in script and "step=" not in script
    assert_same(ws, run_script(ws, tmp_path))


def test_a_cnn_in_float64_and_the_models_with_named_parts(tmp_path):
    """The CNN (lazy head) built in float64 after float32 rules; FancyMLP's fixed buffer."""
    ws = Workspace.from_preset("cnn")
    ws.change(rules=[{"init": "kaiming_normal", "target": "*.weight"}], seed=2)
    ws.materialize()
    ws.move(dtype="float64")
    ws.backward()
    assert_same(ws, run_script(ws, tmp_path))
    for key in ("fancy_mlp", "nest_mlp"):
        ws = Workspace.from_preset(key)
        ws.backward()
        (tmp_path / key).mkdir()
        assert_same(ws, run_script(ws, tmp_path / key))


ZOO_TOKENS = {
    "type": "sequential",
    "children": [
        {"type": "embedding", "name": "emb", "num_embeddings": 20, "embedding_dim": 8},
        {"type": "pos_embedding", "max_len": 8, "embedding_dim": 8},
        {
            "type": "repeat",
            "times": 2,
            "key_format": "layer {i}",
            "block": {
                "type": "sequential",
                "children": [
                    {
                        "type": "residual",
                        "block": {
                            "type": "sequential",
                            "children": [
                                {"type": "layernorm", "normalized_shape": 8},
                                {"type": "self_attention", "embed_dim": 8, "num_heads": 2,
                                 "dropout": 0.1},
                            ],
                        },
                    },
                    {
                        "type": "residual",
                        "block": {
                            "type": "sequential",
                            "children": [
                                {"type": "rmsnorm", "normalized_shape": 8},
                                {"type": "swiglu", "embed_dim": 8, "hidden_features": 16},
                            ],
                        },
                    },
                ],
            },
        },
        {"type": "dropout", "p": 0.2, "key": "drop"},
        {"type": "linear", "out_features": 20, "bias": False, "tie": {"weight": "emb.weight"}},
    ],
}  # fmt: skip


def test_a_small_transformer_with_dropout_trained_and_run(tmp_path):
    """Every transformer block type, dropout in training (the step seeds), a tied head."""
    exp = Experiment(
        spec=ZOO_TOKENS, input_shape=(2, 6), input_kind="tokens", vocab=20, loss="cross_entropy"
    )
    ws = Workspace(exp)
    ws.train({"task": "next_token", "steps": 3, "lr": 0.05})
    ws.backward()
    assert_same(ws, run_script(ws, tmp_path))


ZOO = {
    "type": "sequential",
    "children": [
        {"type": "linear", "out_features": 8},
        {"type": "gelu", "approximate": "tanh"},
        {"type": "shared", "ref": "blk"},
        {"type": "relu"},
        {"type": "linear", "name": "blk", "in_features": 8, "out_features": 8},
        {"type": "constant_linear", "in_features": 8, "out_features": 8, "offset": 0.5, "seed": 3},
        {"type": "tanh"},
        {"type": "repeat", "times": 2, "block": {"type": "shared", "ref": "blk"}},
        {"type": "sigmoid"},
        {"type": "linear", "out_features": 2},
    ],
}  # fmt: skip


def test_a_reference_before_its_block_and_a_repeat_of_a_shared_block(tmp_path):
    """'shared' before the named block is built there, as the builder does; the moons task."""
    ws = Workspace(Experiment(spec=ZOO, input_shape=(3, 5)))
    ws.train({"task": "moons", "steps": 4, "lr": 0.1})
    ws.edit("4.weight", "set", 0.25)
    ws.backward()
    assert_same(ws, run_script(ws, tmp_path))


def test_every_block_type_and_initializer_has_its_code():
    """Adding a block type or an initializer without its export code fails here."""
    containers = {k for k, bt in BLOCKS.items() if bt.child_fields or bt.is_alias}
    assert {k for k, bt in BLOCKS.items() if bt.emit is not None} == set(BLOCKS) - containers
    assert set(CUSTOM) <= set(BLOCKS)
    rule = {"init": "normal", "mean": 0.0, "std": 0.01}
    assert init_lines(rule, "net[0].weight") == "nn.init.normal_(net[0].weight, mean=0, std=0.01)"
    assert set(INITIALIZERS) >= {"default", "formula"}


def test_the_lines_of_pytorch_each_action_shows():
    """The chapter's own lines: an edit, a whole-tensor add, a gradient."""
    assert edit_line("net[0].weight", "set", 42.0, (0, 0)) == "net[0].weight.data[0, 0] = 42"
    assert edit_line("net[0].weight", "add", 1.0) == "net[0].weight.data[:] += 1"
    assert edit_line("net[0].weight", "divide", 9.0) == "net[0].weight.data[:] /= 9"
    assert grad_line("net[2].weight") == "net[2].weight.grad"


def test_user_text_never_becomes_code():
    """A preset name, a glob and a key are written as string literals, never as code."""
    spec = {
        "type": "sequential",
        "children": [{"type": "linear", "in_features": 2, "out_features": 2, "key": "a'\"b"}],
    }
    exp = Experiment(spec=spec, input_shape=(1, 2), preset='x"""\nimport os  #')
    exp = exp.replace(rules=({"init": "zeros", "target": "*\nimport os"},))
    script = to_script(exp)
    assert "\nimport os" not in script
    compile(script, "model.py", "exec")


def test_a_model_from_code_cannot_be_exported():
    """Its factory file is its code: the export says so."""
    exp = Experiment(spec=None, source="tests/model_files/fancy_mlp.py:make_model")
    with pytest.raises(SpecError, match="came from code"):
        to_script(exp)


def test_every_preset_exports_a_script_that_compiles():
    """Each preset's script is valid Python; a model on meta is built on meta (no values)."""
    for key in PRESETS:
        script = to_script(Experiment.from_preset(key))
        compile(script, f"{key}.py", "exec")
    assert "DEVICE = 'meta'" in to_script(Experiment.from_preset("llama_7b"))


def test_the_code_tab_shows_the_script_with_a_download_button():
    """AppTest: the Code tab starts with the current state's script and a download."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).parent.parent / "app.py"), default_timeout=120)
    at.run()
    at.button(key="run_button").click().run()
    at.session_state["tabs"] = next(t.label for t in at.tabs if t.label.endswith("Code"))
    at.run()
    assert not at.exception
    script = at.session_state["workspace"].experiment
    assert at.code[0].value == to_script(script).rstrip()
    assert "loss.backward()" in at.code[0].value
    assert at.get("download_button")[0].proto.label == "Download the script"


def test_batchnorm_in_eval_mode_and_backward_twice(tmp_path):
    """Running statistics, net.eval() and two backward passes without zero_grad, bit for bit."""
    ws = Workspace(Experiment(spec=BATCHNORM_SPEC, input_shape=(6, 4), seed=3))
    ws.train({"steps": 3})  # training updates the running statistics
    ws.backward()
    ws.backward(accumulate=True)
    assert_same(ws, run_script(ws, tmp_path))
    ws.change(mode="eval")
    ws.backward()
    ws.backward(accumulate=True)
    script = to_script(ws.experiment, ws.limits)
    assert "net.eval()" in script and "for _ in range(2):" in script
    assert_same(ws, run_script(ws, tmp_path))
