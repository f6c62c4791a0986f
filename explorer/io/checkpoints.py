"""Checkpoints in: read an uploaded ``.safetensors`` or ``torch.save`` state_dict, safely.

Nothing in an upload is trusted. A ``.safetensors`` header is checked here first, as the
format's own reader does (``Metadata::validate`` in huggingface/safetensors): its length,
its JSON, each dtype and shape, sizes computed without overflow, and offsets that tile the
data section exactly, with no gap, overlap or byte past the end; only then does the library
read it. A ``.pt``/``.pth`` file is read ONLY by ``torch.load(..., weights_only=True)``, which
refuses any pickled object that is not plain tensor data: a file that asks to call
``os.system`` is refused, never run. TorchScript archives, legacy tar archives and raw
pickles are refused before ``torch.load`` sees them.

Example::

    ckpt = read_checkpoint(Path("model.safetensors").read_bytes(), "model.safetensors")
    ckpt.tree().tied_groups      # [{"2.weight", "4.weight"}]: the tie recorded in metadata
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

import torch
from torch import nn

from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.spec.fields import numbers
from explorer.view.tree import ParamTree, inspect

__all__ = ["Checkpoint", "read_checkpoint", "SAFETENSORS_DTYPES"]

SAFETENSORS_DTYPES = {
    "BOOL": torch.bool,
    "U8": torch.uint8,
    "I8": torch.int8,
    "I16": torch.int16,
    "U16": torch.uint16,
    "I32": torch.int32,
    "U32": torch.uint32,
    "I64": torch.int64,
    "U64": torch.uint64,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F32": torch.float32,
    "F64": torch.float64,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}
_WRAPPERS = ("state_dict", "model_state_dict", "model")  # {"state_dict": {...}} as saved often


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """An uploaded file's tensors by key, on the CPU; keys that were one tensor share one."""

    name: str  # the uploaded file's name, for display only
    format: str  # "safetensors" or "pytorch"
    tensors: Mapping[str, torch.Tensor]
    digest: str  # sha256 of the file's bytes
    nbytes: int  # the file's size
    aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    note: str = ""  # e.g. "read from the file's 'state_dict' entry"

    def __repr__(self) -> str:
        return f"Checkpoint({self.name!r}, {self.format}, {len(self.tensors)} keys)"

    @cached_property
    def nonfinite(self) -> tuple[str, ...]:
        """Keys whose values hold NaN or Inf (floating tensors only)."""
        return tuple(k for k, t in self.tensors.items() if not _finite(t))

    def module(self) -> nn.Module:
        """The tensors as a module tree: dotted keys become nested blocks, one tensor one
        Parameter (so keys of one tensor are tied); ``SpecError`` when keys cannot nest."""
        root, params = nn.Module(), {}
        for key, tensor in self.tensors.items():
            *path, local = key.split(".")
            holder = root
            try:
                for part in path:
                    if part not in holder._modules:
                        holder.add_module(part, nn.Module())
                    holder = holder._modules[part]
                param = params.setdefault(_view_key(tensor), nn.Parameter(tensor, False))
                holder.register_parameter(local, param)
            except (KeyError, ValueError, TypeError, AttributeError) as err:
                raise SpecError(f"cannot be shown as a block tree: {err}", key) from None
        return root

    def tree(self) -> ParamTree:
        """The checkpoint as a parameter tree of its own (blocks, shapes, tied groups)."""
        return inspect(self.module(), root_name="checkpoint")


def read_checkpoint(data: bytes, name: str = "checkpoint", limits: Limits = DEFAULT_LIMITS):
    """Read and check an uploaded checkpoint; ``SpecError`` says what is wrong with it."""
    size = len(data)
    if size > limits.max_upload_bytes:
        raise SpecError(
            f"the file is {size:,} bytes, over the upload limit of {limits.max_upload_bytes:,}"
        )
    if size == 0:
        raise SpecError("the file is empty")
    digest = hashlib.sha256(data).hexdigest()
    if data[:4] == b"PK\x03\x04":
        tensors, note = _read_torch(data, limits)
        fmt, aliases = "pytorch", {}
    elif size > 262 and data[257:262] == b"ustar":
        raise SpecError(
            "a legacy tar archive (torch.save from PyTorch before 0.4) is not read: load it "
            "in PyTorch and save model.state_dict() again with torch.save"
        )
    elif data[:1] == b"\x80":
        raise SpecError(
            "a raw pickle file is not read (it could run code): save model.state_dict() "
            "with torch.save from PyTorch 1.6 or later, or as .safetensors"
        )
    elif data[8:9] == b"{" or name.lower().endswith(".safetensors"):
        tensors, aliases = _read_safetensors(data, limits)
        fmt, note = "safetensors", ""
    else:
        raise SpecError(
            "not a checkpoint: a .safetensors file or a torch.save state_dict (.pt, .pth) "
            "is expected"
        )
    _check_keys(tensors, limits)
    return Checkpoint(
        name, fmt, MappingProxyType(tensors), digest, size, MappingProxyType(aliases), note
    )


# --- safetensors ---


def _read_safetensors(data: bytes, limits: Limits) -> tuple[dict, dict]:
    header, start = _safetensors_header(data, limits)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise SpecError("__metadata__ must map text to text", "header")
    spans = []
    for key, info in header.items():
        spans.append((*_entry_span(key, info, len(data) - start, limits), key))
    end = 0
    for begin, stop, key in sorted(spans):
        if begin != end:
            what = "overlaps the tensor before it" if begin < end else "leaves a gap before it"
            raise SpecError(f"data_offsets [{begin}, {stop}] {what}", key)
        end = stop
    if start + end != len(data):
        raise SpecError(
            f"the header describes {end:,} bytes of tensor data but the file holds "
            f"{len(data) - start:,}: the file is truncated or padded"
        )
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        loaded = load(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise SpecError(f"the safetensors library refused the file: {err}") from None
    tensors = {key: loaded[key] for key in sorted(loaded, key=_natural)}  # 2.weight < 10.weight
    aliases = {
        alias: kept
        for alias, kept in metadata.items()
        if alias not in tensors and kept in tensors and _looks_like_key(alias, limits)
    }
    for alias, kept in aliases.items():  # save_model's convention: {removed: kept}
        tensors[alias] = tensors[kept]
    return tensors, aliases


def _safetensors_header(data: bytes, limits: Limits) -> tuple[dict, int]:
    if len(data) < 8:
        raise SpecError(f"the file is {len(data)} bytes: too short for a safetensors header")
    n = int.from_bytes(data[:8], "little")
    if n > limits.max_header_bytes:
        raise SpecError(
            f"the safetensors header claims {n:,} bytes, over the limit of "
            f"{limits.max_header_bytes:,}: not a valid file"
        )
    if 8 + n > len(data):
        raise SpecError(
            f"the safetensors header claims {n:,} bytes but the file has only "
            f"{len(data) - 8:,} after its length: the file is truncated"
        )
    try:
        text = data[8 : 8 + n].decode("utf-8")
        header = json.loads(text, object_pairs_hook=_unique, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise SpecError(f"the safetensors header is not valid JSON: {str(err)[:200]}") from None
    if not isinstance(header, dict):
        raise SpecError("the safetensors header must be a JSON object")
    if len(header) > limits.max_param_names + 1:
        raise SpecError(f"the file has {len(header):,} tensors, over {limits.max_param_names:,}")
    return header, 8 + n


def _entry_span(key: str, info: object, data_bytes: int, limits: Limits) -> tuple[int, int]:
    """Check one header entry; its (begin, end) in the data section."""
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise SpecError("must be an object with dtype, shape and data_offsets", key)
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if dtype not in SAFETENSORS_DTYPES:
        raise SpecError(f"dtype {str(dtype)[:20]!r} is not one this explorer reads", key)
    numbers(shape, f"{key}.shape", 0, 0, limits.max_file_ndim, "a list of whole numbers")
    numbers(offsets, f"{key}.data_offsets", 0, 2, 2, "two whole numbers")
    begin, end = offsets
    numel = math.prod(shape)  # Python integers: no overflow, so compare before any use
    nbytes = numel * SAFETENSORS_DTYPES[dtype].itemsize
    if nbytes >= 2**63:
        raise SpecError(f"shape {shape} has a size that overflows 64 bits", key)
    if nbytes > data_bytes:
        raise SpecError(
            f"shape {shape} needs {nbytes:,} bytes but the file holds {data_bytes:,} bytes of "
            "data: the file is truncated or the shape is wrong",
            key,
        )
    if not begin <= end <= data_bytes:
        raise SpecError(f"data_offsets [{begin}, {end}] fall outside the data section", key)
    if end - begin != nbytes:
        raise SpecError(f"data_offsets span {end - begin:,} bytes but shape needs {nbytes:,}", key)
    return begin, end


# --- torch.save (zip) ---


def _read_torch(data: bytes, limits: Limits) -> tuple[dict, str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as err:
        raise SpecError(f"the zip archive is damaged: {err}") from None
    names = [e.filename for e in entries]
    if any(n.endswith(("constants.pkl", ".debug_pkl")) or "/code/" in n for n in names):
        raise SpecError(
            "a TorchScript archive (torch.jit.save) holds code and is not read: save "
            "model.state_dict() with torch.save instead"
        )
    if not any(n.endswith("data.pkl") for n in names):
        raise SpecError("a zip file, but not one written by torch.save")
    if any(e.compress_type != zipfile.ZIP_STORED for e in entries) or sum(
        e.file_size for e in entries
    ) > max(len(data), limits.max_upload_bytes):
        raise SpecError("the archive's entries are compressed or larger than the file")
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as err:
        reason = str(err).split("\n\n")[-1].strip().splitlines()[0][:300]
        raise SpecError(
            "the file holds Python objects other than tensors and was not unpickled "
            f"(torch.load with weights_only=True refused it: {reason})"
        ) from None
    except Exception as err:  # a damaged archive: any error torch raises while reading it
        raise SpecError(f"torch.load could not read the file: {str(err)[:300]}") from None
    return _state_dict(loaded, limits)


def _state_dict(loaded: object, limits: Limits) -> tuple[dict, str]:
    """The flat ``{key: tensor}`` in what torch.load gave, with its tensors checked."""
    note = ""
    if isinstance(loaded, Mapping) and not _all_tensors(loaded):
        inner = [k for k in _WRAPPERS if isinstance(loaded.get(k), Mapping)]
        if inner and _all_tensors(loaded[inner[0]]):
            note, loaded = f"read from the file's {inner[0]!r} entry", loaded[inner[0]]
    if not isinstance(loaded, Mapping) or not _all_tensors(loaded) or not loaded:
        raise SpecError(
            f"the file holds {type(loaded).__name__}, not a state_dict of named tensors: "
            "save model.state_dict()"
        )
    tensors, views, total = {}, set(), 0
    for key, t in loaded.items():
        if not isinstance(key, str):
            raise SpecError(f"keys must be text, got {type(key).__name__}")
        if t.layout != torch.strided or t.is_quantized or t.dtype.is_complex:
            raise SpecError(f"a {t.layout} {t.dtype} tensor is not read", key)
        t = t.detach()
        if t.numel() * t.element_size() > t.untyped_storage().nbytes():
            raise SpecError("the tensor is larger than its stored data (a broadcast view)", key)
        if _view_key(t) not in views:
            views.add(_view_key(t))
            total += t.numel() * t.element_size()
        if total > limits.max_upload_bytes:
            raise SpecError(f"the tensors hold more than {limits.max_upload_bytes:,} bytes")
        tensors[key] = t
    return tensors, note


# --- shared checks ---


def _check_keys(tensors: dict, limits: Limits) -> None:
    if len(tensors) > limits.max_param_names:
        raise SpecError(f"the file has {len(tensors):,} keys, over {limits.max_param_names:,}")
    for key in tensors:
        if not key or len(key) > limits.max_name_chars:
            raise SpecError(f"a key must have 1 to {limits.max_name_chars} characters", key[:50])


def _view_key(t: torch.Tensor) -> tuple:
    """Equal for two tensors that are the very same view of the same memory."""
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)


def _finite(t: torch.Tensor) -> bool:
    if not t.is_floating_point() or t.numel() == 0:
        return True
    if t.element_size() == 1:  # float8: no isfinite kernel
        t = t.float()
    return bool(torch.isfinite(t).all())


def _all_tensors(mapping: Mapping) -> bool:
    return all(isinstance(v, torch.Tensor) for v in mapping.values())


def _looks_like_key(text: str, limits: Limits) -> bool:
    return 0 < len(text) <= limits.max_name_chars and all(part for part in text.split("."))


def _natural(key: str) -> list:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in key.split(".")]


def _unique(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key appears twice")
    return dict(pairs)


def _no_constant(name: str):
    raise ValueError(f"{name} is not allowed")
