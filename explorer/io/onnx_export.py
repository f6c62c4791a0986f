"""ONNX: "save the model so it may be executed in other software", and check that it runs.

``to_onnx`` exports with ``torch.onnx.export`` (the TorchScript-based exporter, which needs
no package beyond torch); ``check_onnx`` runs the file in ONNX Runtime on the same input and
compares its output with PyTorch's. Both run a twin of the model (same memory) in eval mode
(dropout off, BatchNorm on its running statistics), as an exported model runs.
``onnx`` and ``onnxruntime`` are optional (``pip install param-explorer[onnx]``);
``missing()`` says what to install when they are absent.

Example::

    data = to_onnx(net, torch.rand(2, 4))
    check_onnx(data, net, torch.rand(2, 4)).ok     # True: the outputs agree
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.core.rebind import with_tensors
from explorer.core.slots import heavy

__all__ = ["OnnxCheck", "missing", "to_onnx", "check_onnx", "ONNX_MAX_BYTES"]

ONNX_MAX_BYTES = 2**31 - 1  # one protobuf file; larger models need external data files
OPSET = 17


@dataclass(frozen=True)
class OnnxCheck:
    """ONNX Runtime's output against PyTorch's on the same input."""

    output_shape: tuple[int, ...]
    max_abs_diff: float
    tolerance: float
    ok: bool


def missing() -> str | None:
    """What to install for ONNX export and its check, or None when both are there."""
    absent = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if not absent:
        return None
    return (
        f"ONNX export needs {' and '.join(absent)}: pip install 'param-explorer[onnx]' "
        "(or pip install onnx onnxruntime)"
    )


def to_onnx(module: nn.Module, x: torch.Tensor, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The module as an ONNX file's bytes, traced on input ``x`` (its batch size fixed)."""
    reason = missing()
    if reason is not None:
        raise SpecError(reason)
    if any(is_lazy(p) for p in module.parameters()):
        raise SpecError("lazy layers have no shapes yet: run a forward pass first")
    size = sum(p.numel() * p.element_size() for p in module.parameters())
    if size > ONNX_MAX_BYTES:
        raise SpecError(f"the parameters take {size:,} bytes, over ONNX's 2 GB for one file")
    buf = io.BytesIO()
    busy = heavy(limits) if size > limits.heavy_params * 4 else nullcontext()
    try:
        with busy, warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                with_tensors(module, {}),  # a twin on the same memory: the state is not touched
                (x,),
                buf,
                dynamo=False,
                input_names=["input"],
                output_names=["output"],
                opset_version=OPSET,
            )
    except SpecError:
        raise
    except Exception as err:  # the exporter's errors name the operator it could not convert
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise SpecError(f"torch.onnx.export could not export this model: {first}") from None
    return buf.getvalue()


def check_onnx(
    data: bytes, module: nn.Module, x: torch.Tensor, tolerance: float = 1e-4
) -> OnnxCheck:
    """Run the ONNX file in ONNX Runtime (CPU) and compare with PyTorch's eval-mode output."""
    reason = missing()
    if reason is not None:
        raise SpecError(reason)
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    (got,) = session.run(["output"], {"input": x.detach().cpu().numpy()})
    twin = with_tensors(module, {}).eval()  # the same values; the state's module keeps its mode
    with torch.no_grad():
        want = twin(x).detach().cpu().float()
    got = torch.from_numpy(got).float()
    if got.shape != want.shape:
        return OnnxCheck(tuple(got.shape), float("inf"), tolerance, False)
    diff = float((got - want).abs().max()) if want.numel() else 0.0
    scale = max(1.0, float(want.abs().max())) if want.numel() else 1.0
    return OnnxCheck(tuple(got.shape), diff, tolerance, diff <= tolerance * scale)
