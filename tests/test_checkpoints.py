"""Checkpoints in: reading uploads safely, inspecting them as a tree, loading them with undo."""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import struct
import subprocess
import sys
import tarfile
from dataclasses import replace

import models
import pytest
import torch
from safetensors.torch import save, save_model
from torch import nn

from explorer.core.errors import SpecError
from explorer.core.limits import LOCAL
from explorer.io.checkpoints import read_checkpoint
from explorer.io.links import linkable
from explorer.session.blobs import BlobStore
from explorer.session.checkpoint_load import compare
from explorer.session.experiment import Experiment
from explorer.session.state import realize
from explorer.session.workspace import Workspace


def pt_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def st_model_bytes(module: nn.Module, tmp_path) -> bytes:
    path = tmp_path / "model.safetensors"
    save_model(module, str(path))
    return path.read_bytes()


def safetensors_file(header: dict, data: bytes = b"") -> bytes:
    """A hand-made safetensors file: 8-byte length, JSON header, data."""
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def tied_workspace() -> Workspace:
    return Workspace(Experiment.from_preset("tied").replace(materialized=True))


def assert_refused(data: bytes, name: str, match: str, limits=LOCAL) -> None:
    """The file is refused with a message, and loading it leaves a model exactly as it was."""
    ws = tied_workspace()
    before, version = ws.state.fingerprint(), ws.version
    with pytest.raises(SpecError, match=match):
        ws.load_checkpoint(read_checkpoint(data, name, limits))
    assert (ws.state.fingerprint(), ws.version) == (before, version)


# --- reading and inspecting ---


def test_a_torch_save_state_dict_reads_with_its_ties():
    """torch.save keeps one storage for a tie; the checkpoint's tree shows it tied."""
    net = models.tied_net()
    ckpt = read_checkpoint(pt_bytes(net.state_dict()), "tied.pt")
    assert ckpt.format == "pytorch" and len(ckpt.tensors) == 8
    assert all(torch.equal(ckpt.tensors[k], v) for k, v in net.state_dict().items())
    assert ckpt.tree().tied_groups == [{"2.bias", "4.bias"}, {"2.weight", "4.weight"}]


def test_a_safetensors_file_from_save_model_ties_again_from_its_metadata(tmp_path):
    """save_model keeps one name of a tie and records the other in metadata; it ties again."""
    ckpt = read_checkpoint(st_model_bytes(models.tied_net(), tmp_path), "tied.safetensors")
    assert dict(ckpt.aliases) == {"4.weight": "2.weight", "4.bias": "2.bias"}
    assert ckpt.tree().tied_groups == [{"2.bias", "4.bias"}, {"2.weight", "4.weight"}]


def test_dotted_keys_become_nested_blocks():
    ckpt = read_checkpoint(pt_bytes(models.rgnet().state_dict()), "rgnet.pt")
    tree = ckpt.tree()
    assert "0.block 2.0" in tree.blocks
    assert tree.params["0.block 2.0.weight"].shape == (8, 4)
    assert tree.tied_groups == []


def test_a_state_dict_wrapped_in_a_dict_is_read_from_its_entry():
    data = pt_bytes({"state_dict": models.chapter_mlp().state_dict(), "epoch": 3})
    ckpt = read_checkpoint(data, "wrapped.pt")
    assert set(ckpt.tensors) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert "'state_dict'" in ckpt.note


# --- refusals: one test each; the model stays exactly as it was ---


class _Payload:
    """Unpickling this runs ``touch <path>``: proof of execution if the file appears."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_the_payload_used_below_really_runs_when_unpickled(tmp_path):
    """Control: a plain pickle.loads of the payload creates its file, so the tests can fail."""
    marker = tmp_path / "ran"
    raw = pickle.dumps(_Payload(marker))
    code = "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"
    subprocess.run([sys.executable, "-c", code], input=raw, check=True)
    assert marker.exists()


def test_a_torch_save_holding_os_system_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    data = pt_bytes({"weight": torch.zeros(2), "payload": _Payload(marker)})
    assert_refused(data, "evil.pt", "not unpickled")
    assert not marker.exists()


def test_a_raw_pickle_holding_os_system_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    assert_refused(pickle.dumps(_Payload(marker)), "evil.pth", "raw pickle")
    assert not marker.exists()


def test_a_torchscript_archive_is_refused():
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), buf)
    assert_refused(buf.getvalue(), "scripted.pt", "TorchScript")


def test_a_legacy_tar_archive_is_refused():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("sys_info", "pickle", "storages", "tensors"):
            info = tarfile.TarInfo(name)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"\x80\x02N."))
    assert_refused(buf.getvalue(), "old.pt", "legacy tar")


def test_an_empty_file_is_refused():
    assert_refused(b"", "empty.safetensors", "empty")


def test_a_truncated_safetensors_file_is_refused(tmp_path):
    data = st_model_bytes(models.tied_net(), tmp_path)
    assert_refused(data[: len(data) // 2], "cut.safetensors", "truncated")


def test_a_truncated_torch_file_is_refused():
    data = pt_bytes(models.tied_net().state_dict())
    assert_refused(data[: len(data) // 2], "cut.pt", "damaged|could not read")


def test_random_bytes_are_refused():
    data = random.Random(0).randbytes(4096)
    assert_refused(data, "noise.bin", "not a checkpoint")
    assert_refused(data, "noise.safetensors", "header")


def test_a_safetensors_header_of_absurd_length_is_refused():
    data = struct.pack("<Q", 2**62) + b"{}"
    assert_refused(data, "absurd.safetensors", "claims 4,611,686,018,427,387,904 bytes")


def test_overlapping_offsets_are_refused():
    header = {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
    }
    assert_refused(safetensors_file(header, bytes(12)), "overlap.safetensors", "overlaps")


def test_out_of_range_offsets_are_refused():
    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}
    assert_refused(safetensors_file(header, bytes(8)), "out.safetensors", "outside the data")


def test_a_shape_whose_size_overflows_is_refused():
    header = {"a": {"dtype": "F32", "shape": [2**40, 2**40, 2**40], "data_offsets": [0, 16]}}
    assert_refused(safetensors_file(header, bytes(16)), "huge.safetensors", "overflows")


def test_a_broadcast_view_larger_than_its_data_is_refused():
    data = pt_bytes({"w": torch.zeros(1).expand(10**6)})
    assert_refused(data, "broadcast.pt", "larger than its stored data")


def test_an_over_size_file_is_refused_before_it_is_read(tmp_path):
    data = st_model_bytes(models.tied_net(), tmp_path)
    small = replace(LOCAL, max_upload_bytes=len(data) - 1)
    assert_refused(data, "big.safetensors", "over the upload limit", small)


def test_nan_and_inf_are_warned_and_load_only_when_confirmed():
    sd = {k: v.clone() for k, v in models.tied_net(seed=1).state_dict().items()}
    sd["0.weight"][0, 0] = float("nan")
    sd["6.bias"] = torch.full_like(sd["6.bias"], float("inf"))
    ckpt = read_checkpoint(save(sd), "bad.safetensors")
    assert ckpt.nonfinite == ("0.weight", "6.bias")
    assert_refused(save(sd), "bad.safetensors", "NaN or Inf in 0.weight, 6.bias")
    ws = tied_workspace()
    ws.load_checkpoint(ckpt, allow_nonfinite=True)
    assert torch.isnan(ws.module[0].weight[0, 0]) and torch.isinf(ws.module[6].bias).all()


# --- loading ---


def test_a_full_load_matches_load_state_dict_and_keeps_the_tie():
    """The values are PyTorch's own load_state_dict result, bit for bit; the tie stays."""
    ws = tied_workspace()
    source = models.tied_net(seed=7).state_dict()
    reference = models.tied_net(seed=0)
    reference.load_state_dict(source)
    ws.load_checkpoint(read_checkpoint(pt_bytes(source), "seed7.pt"))
    for name, value in reference.state_dict().items():
        assert torch.equal(ws.module.state_dict()[name], value), name
    assert ws.module[2].weight is ws.module[4].weight
    op = ws.experiment.ops[-1]
    assert (op["op"], op["name"], op["keys"]) == ("load", "seed7.pt", 8)


def test_a_dtype_cast_matches_load_state_dict():
    ws = tied_workspace()
    source = {k: v.double() * 3 for k, v in models.tied_net(seed=2).state_dict().items()}
    reference = models.tied_net()
    reference.load_state_dict(source)
    ws.load_checkpoint(read_checkpoint(pt_bytes(source), "f64.pt"))
    assert all(torch.equal(ws.module.state_dict()[k], v) for k, v in reference.state_dict().items())


def test_load_undo_and_redo_replay_bit_for_bit():
    """live values == realize(experiment) with the session's blobs; undo/redo go back and forth."""
    ws = tied_workspace()
    before = ws.state.fingerprint()
    ws.load_checkpoint(read_checkpoint(pt_bytes(models.tied_net(seed=3).state_dict()), "s3.pt"))
    after = ws.state.fingerprint()
    assert realize(ws.experiment, ws.limits, blobs=ws.blobs).fingerprint() == after
    ws.edit("2.weight", "set", 5.0, (0, 0))
    edited = ws.state.fingerprint()
    assert realize(ws.experiment, ws.limits, blobs=ws.blobs).fingerprint() == edited
    ws.undo()
    ws.undo()
    assert ws.state.fingerprint() == before
    ws.redo()
    assert ws.state.fingerprint() == after
    ws.redo()
    assert ws.state.fingerprint() == edited


def test_the_loaded_state_does_not_change_the_previous_one():
    ws = tied_workspace()
    old = ws.state
    before = old.fingerprint()
    ws.load_checkpoint(read_checkpoint(pt_bytes(models.tied_net(seed=4).state_dict()), "s4.pt"))
    assert old.fingerprint() == before


def test_a_partial_load_reports_the_differences_and_needs_confirmation():
    ws = tied_workspace()
    before = ws.state.fingerprint()
    sd = models.tied_net(seed=5).state_dict()
    del sd["6.bias"]
    sd["0.weight"] = torch.zeros(3, 3)
    sd["extra.weight"] = torch.zeros(1)
    ckpt = read_checkpoint(pt_bytes(sd), "partial.pt")
    report = compare(ws.module, ckpt.tensors)
    assert report.missing == ("6.bias",)
    assert report.unexpected == ("extra.weight",)
    assert report.mismatched == (("0.weight", (3, 3), (8, 4)),)
    with pytest.raises(SpecError, match="partial load"):
        ws.load_checkpoint(ckpt)
    assert ws.state.fingerprint() == before
    old = ws.state
    ws.load_checkpoint(ckpt, allow_partial=True)
    assert torch.equal(ws.module[2].weight, sd["2.weight"])
    assert torch.equal(ws.module[0].weight, old.module[0].weight)  # its shape differed: kept


def test_one_name_of_a_tie_loads_the_whole_tie(tmp_path):
    """A save_model file (one name per tie) is complete for the tied model it came from."""
    ws = tied_workspace()
    kept = read_checkpoint(st_model_bytes(models.tied_net(seed=6), tmp_path), "t.safetensors")
    only_kept = {k: v for k, v in kept.tensors.items() if k not in kept.aliases}
    assert compare(ws.module, only_kept).complete
    ws.load_checkpoint(kept)
    assert torch.equal(ws.module[4].weight, models.tied_net(seed=6)[2].weight)


def test_different_values_for_one_tied_tensor_are_a_conflict():
    ws = tied_workspace()
    untied = models.untied_copy(models.tied_net(seed=1))
    with torch.no_grad():
        untied[4].weight.add_(1)
    report = compare(ws.module, read_checkpoint(pt_bytes(untied.state_dict()), "u.pt").tensors)
    assert ("2.weight", "4.weight") in report.conflicts
    assert not report.complete


def test_buffers_load_too():
    exp = Experiment(spec=None, source="tests/model_files/batchnorm.py:make_model")
    ws = Workspace(exp)
    sd = models.batchnorm_net(seed=3).state_dict()
    sd["1.running_mean"] = torch.arange(8.0)
    ws.load_checkpoint(read_checkpoint(pt_bytes(sd), "bn.pt"))
    assert torch.equal(ws.module[1].running_mean, torch.arange(8.0))


def test_a_lazy_model_asks_for_a_forward_pass_first():
    ws = Workspace.from_preset("mlp")
    ckpt = read_checkpoint(pt_bytes(models.chapter_mlp().state_dict()), "mlp.pt")
    with pytest.raises(SpecError, match="forward pass first"):
        ws.load_checkpoint(ckpt)


def test_an_experiment_with_a_load_cannot_be_put_in_a_link():
    ws = tied_workspace()
    ws.load_checkpoint(read_checkpoint(pt_bytes(models.tied_net(seed=2).state_dict()), "x.pt"))
    assert "loaded checkpoint cannot be put in a link" in linkable(ws.experiment)


def test_a_load_op_without_its_blob_says_to_upload_again():
    ws = tied_workspace()
    ws.load_checkpoint(read_checkpoint(pt_bytes(models.tied_net(seed=2).state_dict()), "x.pt"))
    with pytest.raises(SpecError, match="upload it again"):
        realize(ws.experiment, ws.limits, blobs=BlobStore(1000))
    with pytest.raises(SpecError, match="only in the session"):
        realize(ws.experiment, ws.limits)


def test_the_blob_store_is_bounded_and_drops_unreferenced_blobs_first():
    """Unreferenced uploads go first, then the least needed; the current state's never."""
    store = BlobStore(100)
    a, b = {"x": torch.zeros(10)}, {"y": torch.ones(10)}  # 40 bytes each
    assert store.put("a" * 64, a) == []
    assert store.put("b" * 64, b, needed=["a" * 64]) == []
    assert store.put("c" * 64, {"z": torch.ones(10)}, needed=["b" * 64]) == []  # "a" unneeded
    assert "a" * 64 not in store and "b" * 64 in store and "c" * 64 in store
    dropped = store.put("d" * 64, {"w": torch.ones(10)}, ["b" * 64, "c" * 64])
    assert dropped == ["b" * 64] and "c" * 64 in store and "d" * 64 in store
    with pytest.raises(SpecError, match="leave"):
        store.put("e" * 64, {"v": torch.ones(20)}, protected=["c" * 64, "d" * 64])
    assert "c" * 64 in store and "d" * 64 in store  # a refused upload drops nothing
    with pytest.raises(SpecError, match="over 100"):
        store.put("f" * 64, {"w": torch.zeros(30)})
