"""Checkpoints out: the state's parameters, experiment, tables and script as file bytes.

Every function returns the bytes of one download; each has a round-trip test that reads
the file back in a fresh process and compares bit for bit (tests/test_checkpoints_out.py).

- ``safetensors_bytes``: parameters and persistent buffers. safetensors stores no shared
  memory, so a tied tensor is stored once under its first name and every other name is
  recorded in the metadata as ``{alias: kept}`` (the convention of safetensors' own
  ``save_model``); ``explorer.io.checkpoints.read_checkpoint`` ties them again.
- ``pt_bytes``: ``torch.save(state_dict)``, which keeps ties as shared storage.
- ``experiment_json``, ``parameters_csv``, ``train_log_csv``, ``script``.

Example::

    Path("net.safetensors").write_bytes(safetensors_bytes(state.module))
"""

from __future__ import annotations

import io

import pandas as pd
import torch
from torch import nn
from torch.nn.parameter import is_lazy

from explorer.core.errors import SpecError
from explorer.io.script import to_script
from explorer.session.experiment import Experiment
from explorer.view.tree import ParamTree

__all__ = [
    "safetensors_bytes",
    "pt_bytes",
    "experiment_json",
    "parameters_csv",
    "train_log_csv",
    "script",
]


def cpu_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module.state_dict()`` copied to the CPU; names of one tensor share one copy."""
    copies: dict[int, torch.Tensor] = {}
    result = {}
    for name, t in module.state_dict(keep_vars=True).items():
        if t is None:
            continue
        if is_lazy(t):
            raise SpecError(f"{name} has no values yet: run a forward pass first", name)
        if id(t) not in copies:
            copies[id(t)] = t.detach().to("cpu", copy=True).contiguous()
        result[name] = copies[id(t)]
    return result


def safetensors_bytes(module: nn.Module) -> bytes:
    """The parameters and buffers as a ``.safetensors`` file; ties kept in its metadata."""
    from safetensors.torch import save

    kept: dict[int, str] = {}
    tensors, metadata = {}, {"format": "pt"}
    for name, t in cpu_state_dict(module).items():
        if id(t) in kept:
            metadata[name] = kept[id(t)]  # {alias: kept}, as safetensors' save_model writes
        else:
            kept[id(t)] = name
            tensors[name] = t
    return save(tensors, metadata)


def pt_bytes(module: nn.Module) -> bytes:
    """``torch.save(module.state_dict())`` on the CPU: tied names share storage in the file."""
    buf = io.BytesIO()
    torch.save(cpu_state_dict(module), buf)
    return buf.getvalue()


def experiment_json(exp: Experiment) -> bytes:
    """The experiment, as ``Experiment.from_json`` reads it back equal."""
    return (exp.to_json(indent=2) + "\n").encode()


def parameters_csv(tree: ParamTree) -> bytes:
    """The parameter table (``tree.to_frame()``): one row per name, aliases marked."""
    frame = tree.to_frame()
    for column in frame.columns:  # tuples and lists as plain text: "(8, 4)"
        if frame[column].dtype == object:
            frame[column] = frame[column].map(lambda v: v if v is None else str(v))
    return frame.to_csv(index=False, lineterminator="\n").encode()


def train_log_csv(log) -> bytes:
    """A training log (``explorer.engine.train.TrainLog``): one row per step, the loss and each
    tensor's value norm, gradient norm and update ratio."""
    columns = {"step": list(range(1, log.done + 1)), "loss": log.loss.tolist()}
    for i, name in enumerate(log.names):
        columns[f"{name} value_norm"] = log.value_norm[:, i].tolist()
        columns[f"{name} grad_norm"] = log.grad_norm[:, i].tolist()
        columns[f"{name} update_ratio"] = log.update_ratio[:, i].tolist()
    frame = pd.DataFrame(columns)
    return frame.to_csv(index=False, lineterminator="\n", float_format="%.9g").encode()


def script(exp: Experiment) -> bytes:
    """The PyTorch script that rebuilds this experiment (``explorer.io.script.to_script``)."""
    if any(op["op"] == "load" for op in exp.ops):
        raise SpecError(
            "values loaded from a checkpoint are not code: download the experiment, the "
            "parameters (.safetensors) and load them with safetensors.torch.load_model"
        )
    return to_script(exp).encode()
