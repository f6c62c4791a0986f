"""What a step of the guided chapter prints and checks, computed from the current state.

A step of ``explorer.editions.chapter`` shows the chapter's code and its printed output beside
the app's own output, written the way the edition's code prints it (``print(net[2].state_dict())``,
MXNet's ``dense1_ ( Parameter … )``, DJL's ``weight: (8, 4) cpu() float32``), and a check of
what must agree: names, shapes, zero biases, a constant, a range. Values drawn at random
differ from the printed ones (another seed, another framework's generator), so checks never
compare random values; they compare what does not depend on the draw.

Example::

    fact = shapes("2", [("weight", (1, 8)), ("bias", (1,))])
    fact(state)   # ("net[2].state_dict(): weight (1, 8), bias (1,)", True)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch
from torch import nn

from explorer.editions.places import Framework, Place, listing, places
from explorer.editions.snippets import init_prints
from explorer.engine.uses import uses_sum_error
from explorer.session.state import State

__all__ = [
    "Fact",
    "Live",
    "squash",
    "module_at",
    "tensor_at",
    "where",
    "shapes",
    "named_shapes",
    "is_zero",
    "not_zero",
    "within",
    "all_equal",
    "text_agrees",
    "grad_is_none",
    "uses_add_up",
    "tied_names",
    "count",
    "edition_name",
    "listed",
    "edited",
    "trained",
    "not_subscriptable",
    "kept_or_zero",
    "np_text",
    "djl_text",
    "mx_params",
    "prints_of",
]

Fact = Callable[[State], tuple[str, bool]]
Live = Callable[[State], str]


def squash(text: str) -> str:
    """Text without whitespace, to compare printed outputs whatever their line breaks."""
    return re.sub(r"\s+", "", text)


def module_at(s: State, path: str) -> nn.Module:
    """The block at a dotted path ("" is the model)."""
    return s.module.get_submodule(path) if path else s.module


def tensor_at(s: State, name: str) -> torch.Tensor:
    """The parameter with this ``state_dict`` name, detached."""
    return s.module.get_parameter(name).detach()


def where(s: State, name: str, fw: Framework, first: dict | None = None) -> Place:
    """Where edition ``fw`` keeps the parameter ``name`` of the current model."""
    return places(s.module, s.experiment.root_name, first)[name][fw]


def _access(s: State, path: str) -> str:
    return s.tree.access_path(path) if path else s.experiment.root_name


def shapes(path: str, expected: Sequence[tuple[str, tuple[int, ...]]]) -> Fact:
    """The block's ``state_dict()`` holds exactly these keys with these shapes."""

    def fact(s: State) -> tuple[str, bool]:
        got = [(k, tuple(v.shape)) for k, v in module_at(s, path).state_dict().items()]
        text = ", ".join(f"{k} {v}" for k, v in expected)
        want = [(k, tuple(v)) for k, v in expected]
        return f"{_access(s, path)}.state_dict(): {text}", got == want

    return fact


def named_shapes(expected: Sequence[tuple[str, tuple[int, ...]]]) -> Fact:
    """``named_parameters()`` lists exactly these names with these shapes, in this order."""

    def fact(s: State) -> tuple[str, bool]:
        got = [(n, tuple(p.shape)) for n, p in s.module.named_parameters()]
        return f"named_parameters(): {len(expected)} names and shapes", got == list(expected)

    return fact


def is_zero(name: str) -> Fact:
    """Every element of the parameter is 0 (a framework's default bias)."""
    return lambda s: (f"{name} is all zeros", not bool(tensor_at(s, name).any()))


def not_zero(name: str) -> Fact:
    """The parameter holds a nonzero element (PyTorch's default bias)."""
    return lambda s: (f"{name} is not zero", bool(tensor_at(s, name).any()))


def within(name: str, bound: float) -> Fact:
    """Every element lies in [-bound, bound]: the initializer's range."""
    return lambda s: (
        f"{name} within ±{bound:.4g}",
        bool(tensor_at(s, name).abs().max() <= bound),
    )


def all_equal(name: str, value: float) -> Fact:
    """Every element equals ``value`` (a constant initializer)."""
    return lambda s: (f"{name} is all {value:g}", bool((tensor_at(s, name) == value).all()))


def text_agrees(live: Live, printed: str, what: str) -> Fact:
    """The app's output is the chapter's printed output, character for character (spaces aside)."""
    return lambda s: (f"{what}: the same text as printed", squash(live(s)) == squash(printed))


def grad_is_none(name: str) -> Fact:
    """``.grad`` is None: no backward pass yet."""
    return lambda s: (f"{name}.grad is None", s.module.get_parameter(name).grad is None)


def uses_add_up(name: str, uses: int) -> Fact:
    """After a backward pass, the tensor has ``uses`` per-use gradients that add up to ``.grad``."""

    def fact(s: State) -> tuple[str, bool]:
        run = s.last_run
        grads = [] if run is None else run.grad_by_use.get(name, [])
        grad = s.module.get_parameter(name).grad
        ok = len(grads) == uses and grad is not None and uses_sum_error(grads, grad) < 1e-5
        terms = " + ".join(f"use {i + 1}" for i in range(uses))
        return f"{terms} = {name}.grad", ok

    return fact


def tied_names(names: Sequence[str]) -> Fact:
    """These names are one tensor: tied."""

    def fact(s: State) -> tuple[str, bool]:
        group = s.tree.group_of(names[0])
        return f"{' and '.join(names)} are one tensor", set(names) <= group

    return fact


def count(unique: int, state_dict: int | None = None) -> Fact:
    """``parameters()`` holds ``unique`` elements (and ``state_dict()`` names ``state_dict``)."""

    def fact(s: State) -> tuple[str, bool]:
        c = s.tree.counts()
        ok = c.unique_elements == unique and state_dict in (None, c.state_dict_elements)
        extra = "" if state_dict is None else f", state_dict() {state_dict:,}"
        return f"parameters() {unique:,} elements{extra}", ok

    return fact


def edition_name(name: str, fw: Framework, expected: str, first: dict | None = None) -> Fact:
    """Edition ``fw`` names the parameter ``name`` as the seed prints it."""
    return lambda s: (f"{expected}", where(s, name, fw, first).name == expected)


def listed(fw: Framework, fragment: str, first: dict | None = None) -> Fact:
    """The edition's list of all parameters holds ``fragment`` (spaces aside)."""

    def fact(s: State) -> tuple[str, bool]:
        text = listing(s.module, fw, s.experiment.root_name, first)
        return f"lists {fragment}", squash(fragment) in squash(text)

    return fact


def edited(name: str, index: tuple[int, ...], value: float) -> Fact:
    """The element at ``index`` holds ``value`` (an edit)."""
    return lambda s: (
        f"{name}{list(index)} = {value:g}",
        float(tensor_at(s, name)[index]) == value,
    )


def trained() -> Fact:
    """A training run is recorded in the state."""
    return lambda s: (
        "a training run (press Train in the Train tab)",
        any(op["op"] == "train" for op in s.experiment.ops),
    )


def not_subscriptable() -> Fact:
    """The model is a class of its own: ``net[0]`` raises TypeError."""

    def fact(s: State) -> tuple[str, bool]:
        name = type(s.module).__name__
        return f"'{name}' object is not subscriptable", not isinstance(
            s.module, nn.Sequential | nn.ModuleList
        )

    return fact


def kept_or_zero(name: str, low: float, high: float, shift: float = 0.0) -> Fact:
    """my_init's values: each is 0 or has |w| in [low, high] (after adding ``shift``)."""

    def fact(s: State) -> tuple[str, bool]:
        w = tensor_at(s, name) - shift
        a = w.abs()
        ok = bool(((w == 0) | ((a >= low) & (a <= high))).all())
        then = f", then +{shift:g}" if shift else ""
        return f"{name}: 0 or |w| in [{low:g}, {high:g}]{then}", ok

    return fact


# --- the app's output, as each edition prints it ---


def np_text(t: torch.Tensor) -> str:
    """A tensor as numpy prints it (MXNet's np and Keras' get_weights() print numpy arrays)."""
    return repr(t.detach().cpu().numpy())


def djl_text(name: str, t: torch.Tensor) -> str:
    """A parameter as DJL prints its NDArray: ``weight: (8, 4) cpu() float32 hasGradient``."""
    shape = ", ".join(map(str, t.shape))
    values = torch.round(t.detach().cpu() * 10_000) / 10_000
    body = repr(values.numpy()).removeprefix("array(").split(", dtype")[0].rstrip(")")
    return f"{name}: ({shape}) cpu() float32 hasGradient\n{body}"


def mx_params(s: State, path: str, first: dict | None = None) -> str:
    """``print(net[i].params)`` of the Dense at ``path``, as Gluon prints a layer's dict."""
    lines, prefix = [], ""
    for local in ("weight", "bias"):
        name = f"{path}.{local}" if path else local
        if name not in s.tree.params:
            continue
        place = where(s, name, Framework.MXNET, first)
        prefix = place.name.removesuffix(local)
        shape = tuple(s.tree.params[name].shape)
        text = f"({shape[0]},)" if len(shape) == 1 else str(shape)
        lines.append(f"  Parameter {place.name} (shape={text}, dtype=float32)")
    return "\n".join([f"{prefix} (", *lines, ")"])


def prints_of(s: State, fw: Framework) -> str:
    """What the edition's ``my_init`` prints on the current model: one line per weight."""
    return init_prints(s.module, places(s.module, s.experiment.root_name))[fw]
