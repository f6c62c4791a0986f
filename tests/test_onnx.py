"""ONNX: export with torch.onnx.export, run in ONNX Runtime, compare with PyTorch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from explorer.core.errors import SpecError
from explorer.io import onnx_export
from explorer.session.experiment import Experiment
from explorer.session.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
onnxruntime = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")


def run_onnx(data: bytes, x: torch.Tensor) -> torch.Tensor:
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])


def exported(ws: Workspace) -> tuple[bytes, torch.Tensor]:
    x = ws.state.input()
    return onnx_export.to_onnx(ws.module, x), x


def test_the_tied_net_runs_in_onnx_runtime_with_pytorchs_output():
    ws = Workspace(Experiment.from_preset("tied").replace(materialized=True))
    data, x = exported(ws)
    onnx.checker.check_model(onnx.load_from_string(data))
    with torch.no_grad():
        want = ws.module(x)
    torch.testing.assert_close(run_onnx(data, x), want, rtol=1e-5, atol=1e-6)
    check = onnx_export.check_onnx(data, ws.module, x)
    assert check.ok and check.output_shape == (2, 1)


def test_token_models_export_with_integer_inputs():
    exp = Experiment(
        spec=None,
        source="tests/model_files/tied_embedding.py:make_model",
        input_shape=(2, 5),
        input_kind="tokens",
        vocab=16,
    )
    ws = Workspace(exp)
    data, x = exported(ws)
    assert x.dtype == torch.int64
    assert onnx_export.check_onnx(data, ws.module, x).ok


def test_batchnorm_exports_in_eval_mode_and_the_state_keeps_its_mode():
    ws = Workspace(Experiment(spec=None, source="tests/model_files/batchnorm.py:make_model"))
    before, mode = ws.state.fingerprint(), ws.module.training
    data, x = exported(ws)
    ws.module.eval()
    with torch.no_grad():
        want = ws.module(x)
    ws.module.train(mode)
    torch.testing.assert_close(run_onnx(data, x), want, rtol=1e-5, atol=1e-6)
    assert onnx_export.check_onnx(data, ws.module, x).ok
    assert (ws.state.fingerprint(), ws.module.training) == (before, mode)


def test_a_wrong_file_is_reported_as_different():
    ws = Workspace(Experiment.from_preset("tied").replace(materialized=True))
    data, x = exported(ws)
    other = Workspace(Experiment.from_preset("tied").replace(materialized=True, seed=9))
    check = onnx_export.check_onnx(data, other.module, x)
    assert not check.ok and check.max_abs_diff > check.tolerance


def test_lazy_layers_ask_for_a_forward_pass():
    ws = Workspace.from_preset("mlp")
    with pytest.raises(SpecError, match="forward pass first"):
        exported(ws)


def test_missing_packages_get_a_clear_message(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name)
    )
    assert "pip install 'param-explorer[onnx]'" in onnx_export.missing()
    ws = Workspace(Experiment.from_preset("tied").replace(materialized=True))
    with pytest.raises(SpecError, match="needs onnxruntime"):
        exported(ws)


def test_the_onnx_extra_is_declared_and_installed_for_tests():
    assert 'onnx = ["onnx>=1.17", "onnxruntime>=1.20"]' in (ROOT / "pyproject.toml").read_text()
    test_requirements = (ROOT / "requirements-test.txt").read_text()
    assert "onnx>=1.17" in test_requirements and "onnxruntime>=1.20" in test_requirements
