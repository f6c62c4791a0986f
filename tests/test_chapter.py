"""The guided chapter: every step quotes its seed, sets up in one action, and agrees on screen."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from explorer.editions.chapter import EDITIONS, check, experiment_of, find, link, live, steps
from explorer.editions.chapter_facts import squash
from explorer.editions.chapter_step import SEEDS
from explorer.editions.places import Framework
from explorer.session.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
SEED_DIR = ROOT.parent / "shared" / "seeds"
APP = str(ROOT / "app.py")
ALL = [(fw, s) for fw in EDITIONS for s in steps(fw)]


def seed_text(short: str) -> str:
    """A seed's text without whitespace; a missing seed fails the test (never skips it)."""
    path = SEED_DIR / SEEDS[short]
    assert path.is_file(), f"the seed {path} is missing: the quotes cannot be checked"
    return squash(path.read_text(encoding="utf-8")).replace("``", "")


def test_every_step_quotes_its_seed():
    """Each step's printed fragments, and its code where it is the chapter's, are in its seed."""
    missing = []
    for fw, step in ALL:
        text = seed_text(step.seed)
        missing += [
            (link(fw, step), fragment)
            for fragment in step.printed
            if squash(fragment).replace("``", "") not in text
        ]
        code_seed = seed_text(step.code_seed or step.seed)
        for cell in re.split(r"\n\n(?:#|//) next cell\n", step.code) if step.quoted else ():
            if squash(cell).replace("``", "") not in code_seed:
                missing.append((link(fw, step), cell))
    assert not missing


def test_five_editions_walk_the_whole_chapter_with_exercises_last():
    """Every edition has its steps, unique keys, and ends with its exercises."""
    assert [fw.value for fw in EDITIONS] == ["pytorch", "mxnet", "keras", "flax", "djl"]
    for fw in EDITIONS:
        keys = [s.key for s in steps(fw)]
        assert len(keys) == len(set(keys)) >= 9, fw
        flags = [s.exercise for s in steps(fw)]
        assert flags == sorted(flags) and flags[-1], fw  # exercises come last
        assert find(link(fw, steps(fw)[-1])) == (fw, steps(fw)[-1])


def test_every_step_sets_up_and_agrees_with_the_chapter():
    """One load per step; the app's output and the chapter's agree on every fact (the
    training exercise waits for the student's Train)."""
    ws = Workspace.from_preset("mlp")
    for fw, step in ALL:
        ws.load(experiment_of(step))
        result = check(step, ws.state)
        failed = [text for text, ok in result.facts if not ok]
        if step.key == "ex_train":
            assert failed == ["a training run (press Train in the Train tab)"]
            continue
        assert result.ok and not live(step, ws.state).startswith("# this state"), (
            link(fw, step),
            result.problem,
            failed,
        )


def test_a_printed_output_that_the_app_reproduces_exactly():
    """Where values do not depend on a draw, the app prints the chapter's text itself."""
    ws = Workspace.from_preset("mlp")
    for ref, printed in [
        ("pytorch-all", "('0.weight', torch.Size([8, 4])) ('0.bias', torch.Size([8]))"),
        ("pytorch-init_constant", "(tensor([1., 1., 1., 1.]), tensor(0.))"),
        ("mxnet-params", "dense1_ ( Parameter dense1_weight (shape=(1, 8), dtype=float32)"),
        ("mxnet-nested", "array([0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.,"),
        ("keras-by_position", "array([0., 0., 0., 0.], dtype=float32)"),
        ("djl-params", "01Linear_weight 01Linear_bias 03Linear_weight 03Linear_bias"),
    ]:
        _, step = find(ref)
        ws.load(experiment_of(step))
        assert squash(printed) in squash(live(step, ws.state)), ref


def test_a_check_fails_when_the_state_is_not_the_steps():
    """The check is not a formality: on another model the facts do not hold."""
    _, step = find("pytorch-state_dict")
    ws = Workspace.from_preset("gluon_dense")
    ws.materialize()
    result = check(step, ws.state)
    assert not result.ok and any(not ok for _, ok in result.facts)


# --- on screen ---


def _app(query: dict | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    return at


def _open_chapter(at) -> None:
    at.session_state["tabs"] = "Start here"
    at.run()
    assert not at.exception


def test_start_here_is_the_first_tab_and_opens_on_the_mlp():
    """The first tab is Start here; it shows step 1 of the PyTorch edition with its code."""
    at = _app()
    assert at.tabs[0].label == "Start here"
    _open_chapter(at)
    assert at.selectbox(key="chapter_edition").value == "pytorch"
    assert "1. The MLP and its first forward pass" in [h.value for h in at.subheader]
    code = "\n".join(c.value for c in at.code)
    assert "nn.LazyLinear(8)" in code and "tensor([[0.0731], [0.1613]], grad_fn=)" in code


@pytest.mark.timeout(240)
def test_a_link_opens_a_step_set_up_and_the_app_agrees():
    """?step=pytorch-state_dict opens the chapter tab on that step, set up: net[2].state_dict()
    with its values beside the chapter's, and the check says they agree."""
    at = _app({"step": "pytorch-state_dict"})
    assert "2. One layer's parameters: net[2].state_dict()" in [h.value for h in at.subheader]
    assert at.session_state["selected"] == "2"
    live_text = "\n".join(c.value for c in at.code)
    assert "OrderedDict([('weight', tensor([[" in live_text and "('bias', tensor([" in live_text
    agreed = [s.value.replace("\\", "") for s in at.success]  # shown as plain text
    assert any("The app agrees with the chapter" in v and "weight (1, 8)" in v for v in agreed)


@pytest.mark.timeout(300)
def test_the_guided_path_from_the_first_step_to_the_last_in_the_app():
    """Set up, then Next, through every PyTorch step: each agrees, or says it is your turn."""
    at = _app()
    _open_chapter(at)
    n = len(steps(Framework.PYTORCH))
    for i in range(n):
        at.button(key="chapter_set_up").click()
        _open_chapter(at)  # AppTest keeps a tab's value for one run only
        step = steps(Framework.PYTORCH)[i]
        if step.key == "ex_train":
            assert any("Your turn" in v.value for v in at.info)
        else:
            assert any("The app agrees" in s.value for s in at.success), step.key
        if i < n - 1:
            at.button(key="chapter_next").click()
            _open_chapter(at)
    assert at.button(key="chapter_next").disabled


@pytest.mark.timeout(240)
def test_each_edition_sets_up_its_own_net_with_its_own_names():
    """MXNet: dense1_ printed beside the seed's; DJL: its keys; Keras: summary() with 85."""
    for ref, shown in [
        ("mxnet-params", "Parameter dense1_weight (shape=(1, 8), dtype=float32)"),
        ("djl-params", "01Linear_weight"),
        ("keras-rgnet", "Total params: 85"),
        ("flax-tree_map", "'layers_0': {'bias': (8,), 'kernel': (4, 8)}"),
    ]:
        at = _app({"step": ref})
        code = "\n".join(c.value for c in at.code)
        assert shown in code, ref
        assert any("The app agrees" in s.value for s in at.success), ref


def test_the_guides_depth_lab_ratio_is_what_the_app_computes():
    """docs/chapter-guide.md: with normal(0, 0.01) the first layer gets about 3e-8 of the last
    layer's gradient norm (7e-5 against 3e3) on the 10-layer MLP, as the depth lab shows."""
    from explorer.labs.depth import RULE_SETS, compare
    from explorer.session.experiment import Experiment

    guide = (ROOT / "docs" / "chapter-guide.md").read_text(encoding="utf-8")
    assert "about 3e-8 of the last layer's gradient (7e-5 against 3e3" in guide
    (profile,) = compare(Experiment.from_preset("deep_mlp"), {"n": RULE_SETS["normal"]})
    norms = [r.grad_norm for r in profile.layers if r.grad_norm is not None]
    assert 6e-5 < norms[0] < 9e-5 and 2e3 < norms[-1] < 4e3
    assert 1e-8 < norms[0] / norms[-1] < 1e-7
