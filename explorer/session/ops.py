"""The value changes an experiment records after initialization: one entry per kind.

An experiment's ``ops`` are edits, moves, training runs and checkpoint loads, replayed in
order by ``explorer.session.state.realize``. Each kind is one ``OpKind`` in ``OPS``: its
fields (checked by the field table, ``explorer.spec.fields``), how it is applied to a
module (aside: the module given is not changed), the line of PyTorch it stands for, and
the words the undo button uses for it. The editions' own lines for an edit are in
``explorer.editions.snippets``; the full script's replay of each kind is in
``explorer.io.script``.

Example::

    op = {"op": "edit", "name": "0.weight", "how": "set", "value": 42.0, "index": [0, 0]}
    check_op(op, "ops[0]")
    OPS["edit"].code(op, "net[0].weight")   # 'net[0].weight.data[0, 0] = 42'
    OPS["edit"].label(op)                   # 'edit 0.weight[0, 0] = 42'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from explorer.core.devices import DTYPES, resolve_device
from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS, MAX_MAGNITUDE, Limits
from explorer.core.pycode import number_text
from explorer.core.rebind import distinct_parameters, with_tensors
from explorer.engine.train import TRAIN_FIELDS, optimizer_line, train_op
from explorer.session.blobs import BlobStore
from explorer.session.checkpoint_load import compare, loaded_module
from explorer.spec.fields import Field, Kind, check_fields, show

__all__ = [
    "EditHow",
    "EDIT_OPERATORS",
    "OpKind",
    "OPS",
    "Replay",
    "check_op",
    "apply_op",
    "edited_values",
    "edit_in_place",
]


class EditHow(StrEnum):
    """A value edit, as ``net[0].weight.data[0, 0] = 42``, ``+= 1``, ``*= 2`` or ``/= 9``.

    ``divide`` is a true division, as DJL's ``divi(9)`` (not a multiply by 1/9).
    """

    SET = "set"
    ADD = "add"
    MULTIPLY = "multiply"
    DIVIDE = "divide"


EDIT_OPERATORS = {"set": "=", "add": "+=", "multiply": "*=", "divide": "/="}


@dataclass(frozen=True)
class Replay:
    """What applying an op may need besides the module: the limits and the session's uploads."""

    limits: Limits = DEFAULT_LIMITS
    blobs: BlobStore | None = None


@dataclass(frozen=True)
class OpKind:
    """One kind of recorded value change and everything the explorer knows about it."""

    name: str
    doc: str
    fields: tuple[Field, ...]
    apply: Callable[[nn.Module, Mapping, Replay], nn.Module]
    code: Callable[[Mapping, str], str]  # its PyTorch, given the edited tensor's access or the root
    label: Callable[[Mapping], str]  # what "Undo: ..." says


def _where(index) -> str:
    where = ", ".join(str(int(i)) for i in index) if index is not None else ":"
    return where or "..."  # a 0-d tensor


# --- edit ---


def edited_values(module: nn.Module, op: Mapping) -> torch.Tensor:
    """A new tensor holding a parameter's values after one edit, as ``.data[i, j] = v``."""
    name = op["name"]
    try:
        param = module.get_parameter(name)
    except AttributeError:
        raise SpecError(f"no parameter is named {name!r}", "name") from None
    if is_lazy(param):
        raise SpecError(f"{name} has no values yet: run a forward pass first", "name")
    return edit_in_place(param.detach().clone(), op)


def edit_in_place(new: torch.Tensor, op: Mapping) -> torch.Tensor:
    """Apply one checked edit to ``new`` (a private copy of the parameter's values)."""
    name, how, value, index = op["name"], op["how"], op["value"], op.get("index")
    if param_too_small(new, value):
        raise SpecError(f"{value:g} does not fit in {new.dtype}", "value")
    if how == "divide" and value == 0:
        raise SpecError("cannot divide by 0: it would make inf or nan; use another value", "value")
    target = new if index is None else new[_checked_index(index, new, name)]
    if how == "set":
        target.fill_(value)
        return new  # a finite value that fits the dtype (checked above)
    if how == "add":
        target.add_(value)
    elif how == "divide":
        target.div_(value)  # a true division, as DJL's divi(9): not a multiply by 1/9
    else:
        target.mul_(value)
    if not bool(torch.isfinite(target).all()):
        raise SpecError(f"the edit would make {name} hold inf or nan in {new.dtype}", "value")
    return new


def param_too_small(t: torch.Tensor, value: float) -> bool:
    """Whether ``value`` is beyond what the tensor's floating dtype can hold."""
    return t.dtype.is_floating_point and abs(value) > torch.finfo(t.dtype).max


def _checked_index(index, new: torch.Tensor, name: str) -> tuple[int, ...]:
    index = tuple(index)
    if len(index) != new.dim() or any(
        not 0 <= i < n for i, n in zip(index, new.shape, strict=True)
    ):
        raise SpecError(f"index {list(index)} is outside {name}'s shape {tuple(new.shape)}")
    return index


def _edit(module: nn.Module, op: Mapping, replay: Replay) -> nn.Module:
    return with_tensors(module, {op["name"]: edited_values(module, op)})


def _edit_code(op: Mapping, access: str) -> str:
    operator = EDIT_OPERATORS[op["how"]]
    return f"{access}.data[{_where(op.get('index'))}] {operator} {number_text(op['value'])}"


def _edit_label(op: Mapping) -> str:
    index = op.get("index")
    cell = "" if index is None else f"[{', '.join(map(str, index))}]"
    return f"edit {op['name']}{cell} {EDIT_OPERATORS[op['how']]} {number_text(op['value'])}"


# --- move ---


def _move(module: nn.Module, op: Mapping, replay: Replay) -> nn.Module:
    device, dtype = resolve_device(op["device"]), DTYPES[op["dtype"]]
    moved = {
        name: p.detach().to(device=device, dtype=dtype, copy=True)
        for name, p in distinct_parameters(module)
    }
    new = with_tensors(module, moved)
    for name, buffer in list(new.named_buffers()):
        owner, _, local = name.rpartition(".")
        holder = new.get_submodule(owner) if owner else new
        cast = dtype if buffer.is_floating_point() else buffer.dtype
        holder._buffers[local] = buffer.to(device=device, dtype=cast, copy=True)
    return new


def _move_code(op: Mapping, root: str) -> str:
    return f"{root}.to(device={op['device']!r}, dtype=torch.{op['dtype']})"


# --- train ---


def _train(module: nn.Module, op: Mapping, replay: Replay) -> nn.Module:
    return train_op(module, op, replay.limits)[0]


def _train_code(op: Mapping, root: str) -> str:
    return f"{optimizer_line(op, root)}  # then {op['steps']} steps of {op['task']}"


# --- load ---


def _load(module: nn.Module, op: Mapping, replay: Replay) -> nn.Module:
    """Replay a checkpoint load from the tensors the session kept under its digest."""
    if replay.blobs is None:
        raise SpecError("a checkpoint load is replayed only in the session that made it", "ops")
    tensors = replay.blobs.get(op["digest"])
    if compare(module, tensors).keys != op["keys"]:
        raise SpecError(f"the checkpoint {op['name']} no longer matches this model", "ops")
    return loaded_module(module, tensors)


def _load_code(op: Mapping, root: str) -> str:
    return f"{root}.load_state_dict(safetensors.torch.load_file({op['name']!r}))"


_NAME = Field(
    "name", Kind.TEXT, "the parameter's name", True, hi="max_name_chars", noun="a parameter name"
)

OPS: dict[str, OpKind] = {
    kind.name: kind
    for kind in [
        OpKind(
            "edit",
            "a value edit of one element or a whole tensor: `net[0].weight.data[0, 0] = 42`",
            (
                _NAME,
                Field("how", Kind.CHOICE, "=, +=, *= or /=", True, choices=tuple(EditHow)),
                Field(
                    "value",
                    Kind.NUMBER,
                    "the number written, added, multiplied or divided by",
                    True,
                    lo=-MAX_MAGNITUDE,
                    hi=MAX_MAGNITUDE,
                    noun="a finite number",
                    range_words="of at most 1e38 in size",
                ),
                Field(
                    "index",
                    Kind.INDEX,
                    "one element's index; null for the whole tensor",
                    hi="max_ndim",
                    nullable=True,
                    noun="a list of whole numbers, or null",
                ),
            ),
            _edit,
            _edit_code,
            _edit_label,
        ),
        OpKind(
            "move",
            "the values cast to another device or dtype: `net.to(device, dtype)`",
            (
                Field(
                    "device",
                    Kind.TEXT,
                    "a device",
                    True,
                    hi="max_device_chars",
                    noun="a device name",
                ),
                Field("dtype", Kind.CHOICE, "a dtype", True, choices=tuple(DTYPES)),
            ),
            _move,
            _move_code,
            lambda op: f"move to {op['device']}, {op['dtype']}",
        ),
        OpKind(
            "train",
            "a training run, replayed exactly: task, optimizer, steps, seeds",
            TRAIN_FIELDS,
            _train,
            _train_code,
            lambda op: f"train {op['steps']} steps",
        ),
        OpKind(
            "load",
            "a checkpoint's values, kept in the session by digest",
            (
                Field(
                    "digest",
                    Kind.TEXT,
                    "the file's sha256",
                    True,
                    hi=64,
                    pattern="[0-9a-f]{64}",
                    noun="a sha256 digest in hex",
                ),
                Field(
                    "name",
                    Kind.TEXT,
                    "the file's name",
                    True,
                    hi="max_file_name_chars",
                    noun="the checkpoint's file name",
                ),
                Field("keys", Kind.WHOLE, "keys loaded", True, hi="max_param_names"),
            ),
            _load,
            _load_code,
            lambda op: f"load {op['name']}",
        ),
    ]
}


_OP = Field("op", Kind.CHOICE, "the kind of change", True, choices=tuple(OPS))


def check_op(op: object, where: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Check one recorded value change against its kind's fields; ``SpecError`` names it."""
    kind = OPS.get(op.get("op")) if isinstance(op, dict) and isinstance(op.get("op"), str) else None
    if kind is None:
        got = show(op.get("op")) if isinstance(op, dict) else show(op)
        raise SpecError(f"must be an object with op one of {', '.join(OPS)}, got {got}", where)
    check_fields(op, (_OP, *kind.fields), where, limits)


def apply_op(module: nn.Module, op: Mapping, replay: Replay) -> nn.Module:
    """The module after one recorded value change; the given module is left as it was."""
    return OPS[op["op"]].apply(module, op, replay)
