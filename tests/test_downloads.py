"""Checkpoints out: each download is written, read back in a fresh process, compared bit for bit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from readback import digest

from explorer.io import downloads
from explorer.session.experiment import Experiment
from explorer.session.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent

READER = ROOT / "tests" / "readback.py"


def fresh_read(path: Path, kind: str, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, str(READER), str(path), kind, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def edited_tied_workspace() -> Workspace:
    """The tied net after a run and an edit: values no seed alone gives."""
    ws = Workspace(Experiment.from_preset("tied").replace(materialized=True))
    ws.edit("2.weight", "set", 42.0, (0, 0))
    ws.backward()
    return ws


def batchnorm_workspace() -> Workspace:
    exp = Experiment(spec=None, source="tests/model_files/batchnorm.py:make_model")
    return Workspace(exp)


@pytest.mark.parametrize("make", [edited_tied_workspace, batchnorm_workspace])
def test_safetensors_round_trip_is_bit_for_bit_and_ties_again(make, tmp_path):
    ws = make()
    path = tmp_path / "model.safetensors"
    path.write_bytes(downloads.safetensors_bytes(ws.module))
    back = json.loads(fresh_read(path, "safetensors"))
    assert back["keys"] == {k: digest(v) for k, v in ws.module.state_dict().items()}
    assert back["ties"] == sorted(sorted(g) for g in ws.tree().tied_groups)
    if ws.tree().tied_groups:  # stored once, as safetensors requires; the alias in metadata
        assert "4.weight" not in back["stored"] and back["meta"]["4.weight"] == "2.weight"


def test_pt_round_trip_is_bit_for_bit_and_keeps_ties(tmp_path):
    ws = edited_tied_workspace()
    path = tmp_path / "model.pt"
    path.write_bytes(downloads.pt_bytes(ws.module))
    back = json.loads(fresh_read(path, "pt"))
    assert back["keys"] == {k: digest(v) for k, v in ws.module.state_dict().items()}
    assert back["ties"] == [["2.bias", "4.bias"], ["2.weight", "4.weight"]]


def test_experiment_json_round_trip_rebuilds_the_same_values(tmp_path):
    ws = edited_tied_workspace()
    path = tmp_path / "tied.experiment.json"
    path.write_bytes(downloads.experiment_json(ws.experiment))
    back = json.loads(fresh_read(path, "experiment"))
    assert Experiment.from_json(back["json"]) == ws.experiment
    assert back["fingerprint"] == ws.state.fingerprint()


def test_parameter_csv_round_trip_is_byte_for_byte(tmp_path):
    ws = edited_tied_workspace()
    data = downloads.parameters_csv(ws.tree())
    path = tmp_path / "params.csv"
    path.write_bytes(data)
    assert fresh_read(path, "csv").encode() == data
    lines = data.decode().splitlines()
    assert len(lines) == 1 + len(ws.tree().params)  # a header, then one row per name


def test_train_log_csv_round_trip_is_bit_for_bit(tmp_path):
    ws = Workspace(Experiment.from_preset("tied").replace(materialized=True))
    log = ws.train({"steps": 5, "batch_size": 8})
    path = tmp_path / "log.csv"
    path.write_bytes(downloads.train_log_csv(log))
    back = json.loads(fresh_read(path, "train_csv"))

    def sha(t: torch.Tensor) -> str:
        return digest(t.float())[2]

    assert back["loss"] == sha(log.loss)
    for i, name in enumerate(log.names):
        assert back[f"{name} grad_norm"] == sha(log.grad_norm[:, i])
        assert back[f"{name} update_ratio"] == sha(log.update_ratio[:, i])


def test_script_round_trip_rebuilds_the_same_values(tmp_path):
    ws = edited_tied_workspace()
    path = tmp_path / "model.py"
    path.write_bytes(downloads.script(ws.experiment))
    out = fresh_read(path, "script", ws.experiment.root_name)  # the script may print too
    back = json.loads(out.strip().splitlines()[-1])
    assert back["keys"] == {k: digest(v) for k, v in ws.module.state_dict().items()}


def test_a_lazy_model_has_no_parameter_file_yet():
    ws = Workspace.from_preset("mlp")
    with pytest.raises(Exception, match="forward pass first"):
        downloads.safetensors_bytes(ws.module)


def test_a_loaded_checkpoint_has_no_script_but_says_why():
    import io

    import models

    from explorer.core.errors import SpecError
    from explorer.io.checkpoints import read_checkpoint

    ws = Workspace(Experiment.from_preset("tied").replace(materialized=True))
    buf = io.BytesIO()
    torch.save(models.tied_net(seed=2).state_dict(), buf)
    ws.load_checkpoint(read_checkpoint(buf.getvalue(), "x.pt"))
    with pytest.raises(SpecError, match="not code"):
        downloads.script(ws.experiment)
