"""Which devices PyTorch can run on here, and turning a device name into a checked device."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from explorer.core.errors import DeviceError

__all__ = ["DTYPES", "DeviceOption", "available_devices", "resolve_device"]

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}

_CUDA_NAME = re.compile(r"cuda(?::(\d+))?")


@dataclass(frozen=True)
class DeviceOption:
    """One entry of the device picker; ``reason`` says why an unavailable one is disabled."""

    name: str
    available: bool
    reason: str = ""


def available_devices() -> list[DeviceOption]:
    """List ``cpu``, every CUDA device PyTorch sees (or one disabled ``cuda``), and ``mps``.

    Example: on a CPU-only machine,
    ``[DeviceOption("cpu", True, ""), DeviceOption("cuda", False, "no CUDA device ..."), ...]``.
    """
    options = [DeviceOption("cpu", True)]
    if torch.cuda.is_available():
        options += [DeviceOption(f"cuda:{i}", True) for i in range(torch.cuda.device_count())]
    else:
        options.append(DeviceOption("cuda", False, _cuda_missing_reason()))
    mps_reason = _mps_missing_reason()
    options.append(DeviceOption("mps", not mps_reason, mps_reason))
    return options


def resolve_device(name: str | None) -> torch.device:
    """Turn ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` (or None, meaning cpu) into a device.

    Raises DeviceError when the device is unknown or not usable here, before anything
    is allocated. Example: ``resolve_device("cuda")`` gives ``device("cuda:0")`` on a GPU box.
    """
    text = "cpu" if name is None else str(name).strip().lower()
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        reason = _mps_missing_reason()
        if reason:
            raise DeviceError(f"MPS was requested but is not usable: {reason}")
        return torch.device("mps")
    match = _CUDA_NAME.fullmatch(text)
    if match is None:
        raise DeviceError(f"unknown device {name!r}: use cpu, cuda, cuda:N or mps")
    return _cuda_device(match.group(1))


def module_device(module: nn.Module) -> torch.device:
    """The device of the module's first parameter or buffer; cpu when it has neither."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def _cuda_device(index_text: str | None) -> torch.device:
    """A checked ``cuda:N``; a bare ``cuda`` means the current CUDA device."""
    if not torch.cuda.is_available():
        build = "" if torch.version.cuda else "; this PyTorch build has no CUDA support"
        raise DeviceError(
            "CUDA was requested but no CUDA device is visible to PyTorch "
            f"(torch.cuda.is_available() is False){build}"
        )
    count = torch.cuda.device_count()
    index = torch.cuda.current_device() if index_text is None else int(index_text)
    if index >= count:
        raise DeviceError(
            f"cuda:{index} was requested but PyTorch sees {count} CUDA device(s): "
            f"use cuda:0 to cuda:{count - 1}"
        )
    return torch.device("cuda", index)


def _cuda_missing_reason() -> str:
    """Why CUDA is not usable, in words for the device picker."""
    if torch.version.cuda is None:
        return "no CUDA device visible to PyTorch (this PyTorch build has no CUDA support)"
    return "no CUDA device visible to PyTorch"


def _mps_missing_reason() -> str:
    """Why Apple's MPS backend is not usable; empty when it is."""
    if not torch.backends.mps.is_built():
        return "this PyTorch build has no MPS support (MPS needs macOS on Apple silicon)"
    if not torch.backends.mps.is_available():
        return "MPS is built in but this machine does not offer it (needs macOS 12.3+)"
    return ""
