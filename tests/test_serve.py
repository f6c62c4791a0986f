"""``python -m explorer serve file.py:factory``: the app on a model written as code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.core.errors import SpecError
from explorer.core.limits import HOSTED, LOCAL, MIB
from explorer.io import serve
from explorer.session.experiment import Experiment
from explorer.session.workspace import Workspace
from explorer.spec.derive import spec_of
from tests.invariant import assert_live_is_replay

ROOT = Path(__file__).resolve().parent.parent
FILES = ROOT / "tests" / "model_files"
APP = str(ROOT / "app.py")


def source(name: str, factory: str = "make_model") -> str:
    return f"{FILES / name}.py:{factory}"


def code_experiment(name: str, shape=(2, 4), **fields) -> Experiment:
    return Experiment(spec=None, source=source(name), input_shape=shape, **fields)


def args(*argv: str):
    parsed = serve._parser().parse_args(["serve", *argv])
    parsed.streamlit = []
    return parsed


# --- the command ---


def test_serve_passes_the_experiment_and_the_profiles_upload_limit():
    """serve starts streamlit with the experiment in the env and maxUploadSize from Limits."""
    how = serve.launch(args("tests/model_files/fancy_mlp.py:make_model", "--input", "2,20"), {})
    assert how.argv[1:4] == ["-m", "streamlit", "run"]
    size = how.argv[how.argv.index("--server.maxUploadSize") + 1]
    assert int(size) == LOCAL.max_upload_bytes // MIB
    exp = Experiment.from_json(how.env[serve.ENV_EXPERIMENT])
    assert exp.source == f"{FILES / 'fancy_mlp.py'}:make_model"  # absolute: any folder works
    assert exp.spec is None and exp.input_shape == (2, 20)


def test_serve_with_tokens_feeds_token_ids():
    """--tokens VOCAB gives integer inputs and cross-entropy by default."""
    how = serve.launch(args(source("tied_embedding"), "--tokens", "16", "--input", "2,5"), {})
    assert (how.experiment.input_kind, how.experiment.vocab) == ("tokens", 16)
    assert how.experiment.loss == "cross_entropy"


def test_serve_is_refused_in_the_hosted_profile_before_anything_starts(monkeypatch, capsys):
    """In the hosted profile the command says why and never starts streamlit."""
    monkeypatch.setattr(subprocess, "call", lambda *a, **k: pytest.fail("streamlit started"))
    code = serve.main(["serve", source("fancy_mlp"), "--profile", "hosted"])
    assert code == 2
    assert "only in a local session" in capsys.readouterr().err


def test_the_module_command_refuses_hosted_from_the_environment():
    """``EXPLORER_PROFILE=hosted python -m explorer serve`` exits 2 with the reason."""
    done = subprocess.run(
        [sys.executable, "-m", "explorer", "serve", source("fancy_mlp")],
        env={"EXPLORER_PROFILE": "hosted", "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "models from code run only in a local session" in done.stderr


def test_a_bad_input_shape_is_refused_with_the_option_named():
    with pytest.raises(SpecError, match="--input"):
        serve.launch(args(source("fancy_mlp"), "--input", "2,x"), {})


def test_served_experiment_is_read_from_the_environment_and_refused_when_hosted():
    exp = code_experiment("batchnorm")
    env = {serve.ENV_EXPERIMENT: exp.to_json()}
    assert serve.served_experiment(LOCAL, env) == exp
    assert serve.served_experiment(LOCAL, {}) is None
    with pytest.raises(SpecError, match="only in a local session"):
        serve.served_experiment(HOSTED, env)


def test_pyproject_declares_the_console_script():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'param-explorer = "explorer.io.serve:main"' in text


# --- the model files: every view's core works on them ---


def test_tied_embedding_model_shows_its_tie_and_runs_on_tokens():
    exp = code_experiment("tied_embedding", (2, 5), input_kind="tokens", vocab=16)
    exp = exp.replace(loss="cross_entropy")
    ws = Workspace(exp)
    assert ws.tree().tied_groups == [{"embed.weight", "head.weight"}]
    result = ws.backward()
    grads = result.grad_by_use["embed.weight"]
    assert len(grads) == 2  # the embedding lookup and the head
    assert torch.allclose(sum(grads), ws.tree().tensor("embed.weight").grad, atol=1e-6)


def test_reused_module_is_tied_and_its_spec_can_be_derived():
    ws = Workspace(code_experiment("reused_module"))
    assert {"2.weight", "4.weight"} in ws.tree().tied_groups
    spec = spec_of(ws.module)
    assert spec["children"][2]["name"] == spec["children"][4]["ref"]
    ws.change(spec=spec)  # "Edit as blocks": the spec replaces the code model
    assert ws.experiment.source is None
    assert {"2.weight", "4.weight"} in ws.tree().tied_groups
    ws.undo()
    assert ws.experiment.source == source("reused_module")


def test_fancy_mlp_runs_on_the_users_input_shape_with_two_uses_of_its_layer():
    ws = Workspace(code_experiment("fancy_mlp", (2, 20)))
    assert spec_of(ws.module) is None  # custom forward code: no spec
    result = ws.backward()
    assert result.output.shape == ()
    assert len(result.grad_by_use["linear.weight"]) == 2


def test_a_batchnorm_model_from_code_updates_its_statistics_as_pytorch_does():
    """A train-mode run moves the running statistics; the values before it keep theirs."""
    ws = Workspace(code_experiment("batchnorm"))
    before = ws.module[1].running_mean.clone()
    ws.backward()
    assert not torch.equal(ws.module[1].running_mean, before)
    assert torch.equal(ws.state.values[1].running_mean, before)
    assert {n for n, _ in ws.module.named_buffers()} >= {"1.running_mean", "1.running_var"}
    assert_live_is_replay(ws)


def test_a_code_model_rebuilds_bit_for_bit():
    """realize(experiment) twice: the same values, because the factory runs seeded."""
    exp = code_experiment("tied_embedding", (2, 5), input_kind="tokens", vocab=16)
    assert Workspace(exp).state.fingerprint() == Workspace(exp).state.fingerprint()
    assert Workspace(exp).state.fingerprint() != Workspace(exp.replace(seed=1)).state.fingerprint()


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("raises", "raises() raised RuntimeError: the factory failed on purpose"),
        ("not_a_module", "not_a_module() returned int, not a torch.nn.Module"),
        ("slow", "slow() took longer than 0.2 s to build the model"),
        ("missing", "has no function named 'missing'"),
    ],
)
def test_a_failing_factory_gets_a_clear_message(factory, message):
    limits = LOCAL.__class__(**{**LOCAL.__dict__, "factory_seconds": 0.2})
    exp = Experiment(spec=None, source=f"{FILES / 'broken.py'}:{factory}")
    with pytest.raises(SpecError) as err:
        Workspace(exp, limits)
    assert message in str(err.value)


# --- the app on a served model ---


def served_app(monkeypatch, exp: Experiment) -> AppTest:
    monkeypatch.setenv(serve.ENV_EXPERIMENT, exp.to_json())
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception
    return at


def open_tab(at, name: str) -> None:
    label = next(t.label for t in at.tabs if t.label.endswith(name))
    at.session_state["tabs"] = label
    at.run()
    assert not at.exception


@pytest.mark.timeout(180)
def test_app_opens_on_the_served_model_and_runs_it(monkeypatch):
    """The first visit shows the served model; Forward + backward works on the given shape."""
    at = served_app(monkeypatch, code_experiment("fancy_mlp", (2, 20)))
    ws = at.session_state["workspace"]
    assert ws.experiment.source == source("fancy_mlp")
    at.button(key="run_button").click().run()
    assert not at.exception
    assert at.session_state["workspace"].last_run is not None
    open_tab(at, "Build")
    assert any("This model came from code" in i.value for i in at.info)
    assert not any(b.key == "code_model_to_spec" for b in at.button)  # no spec for FancyMLP


@pytest.mark.timeout(180)
def test_the_preset_picker_says_custom_model_on_the_first_visit_to_a_served_model(monkeypatch):
    """The picker names no preset (its placeholder "Custom model") from the very first run,
    not the first preset in its list."""
    at = served_app(monkeypatch, code_experiment("reused_module"))
    assert at.selectbox(key="preset_choice").value is None
    assert at.selectbox(key="preset_choice").placeholder == "Custom model"


@pytest.mark.timeout(180)
def test_build_tab_offers_the_spec_of_a_sequential_code_model(monkeypatch):
    at = served_app(monkeypatch, code_experiment("reused_module"))
    open_tab(at, "Build")
    at.button(key="code_model_to_spec").click().run()
    assert not at.exception
    ws = at.session_state["workspace"]
    assert ws.experiment.source is None and ws.experiment.spec is not None


@pytest.mark.timeout(180)
def test_a_failing_served_factory_shows_its_message_and_the_default_model(monkeypatch):
    exp = Experiment(spec=None, source=f"{FILES / 'broken.py'}:raises")
    at = served_app(monkeypatch, exp)
    text = " ".join(e.value.replace("\\", "") for e in at.error)
    assert "raises() raised RuntimeError: the factory failed on purpose" in text
    assert at.session_state["workspace"].experiment.preset == "mlp"


@pytest.mark.timeout(180)
def test_a_preset_can_replace_the_served_model(monkeypatch):
    at = served_app(monkeypatch, code_experiment("batchnorm"))
    at.selectbox(key="preset_choice").select("tied").run()
    assert not at.exception
    exp = at.session_state["workspace"].experiment
    assert (exp.preset, exp.source) == ("tied", None)


def test_training_runs_on_a_code_model_with_the_users_input_shape_and_replays():
    """A train op on a model from code, with the input shape given: replayed bit for bit."""
    ws = Workspace(code_experiment("reused_module", (3, 4)))
    log = ws.train({"steps": 3, "batch_size": 4})
    assert log.done == 3
    assert Workspace(ws.experiment).state.fingerprint() == ws.state.fingerprint()


@pytest.mark.timeout(300)
def test_every_tab_draws_a_served_model(monkeypatch):
    """Each tab of the app runs on a model from code without an exception."""
    exp = code_experiment("tied_embedding", (2, 5), input_kind="tokens", vocab=16)
    at = served_app(monkeypatch, exp.replace(loss="cross_entropy"))
    at.button(key="run_button").click().run()
    assert not at.exception
    for label in [t.label for t in at.tabs]:
        at.session_state["tabs"] = label
        at.run()
        assert not at.exception, label


@pytest.mark.timeout(120)
def test_the_command_starts_a_healthy_app_server(tmp_path):
    """``python -m explorer serve`` really starts streamlit, on the port it was given."""
    import os
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "explorer", "serve", source("reused_module"), "--port", str(port),
         "--", "--server.headless", "true", "--server.address", "127.0.0.1"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline, healthy = time.monotonic() + 90, False
        while time.monotonic() < deadline and not healthy and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    healthy = True
            except OSError:
                time.sleep(0.5)
        assert healthy, (tmp_path / "serve.log").read_text()[-2000:]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
