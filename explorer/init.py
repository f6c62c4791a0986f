"""Initializer rules: which rule sets which parameter, applied in order with a seed."""

from __future__ import annotations

import math
import re
from enum import StrEnum
from fnmatch import fnmatchcase

import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter

from explorer.errors import SpecError
from explorer.formula import parse_formula

__all__ = ["Initializer", "OPTIONS", "check_rules", "matches", "initialize"]


class Initializer(StrEnum):
    """Initializer names a rule may use; plain strings such as ``"xavier_uniform"`` work too."""

    DEFAULT = "default"
    NORMAL = "normal"
    UNIFORM = "uniform"
    CONSTANT = "constant"
    ZEROS = "zeros"
    ONES = "ones"
    XAVIER_UNIFORM = "xavier_uniform"
    XAVIER_NORMAL = "xavier_normal"
    KAIMING_UNIFORM = "kaiming_uniform"
    KAIMING_NORMAL = "kaiming_normal"
    ORTHOGONAL = "orthogonal"
    TRUNC_NORMAL = "trunc_normal"
    D2L_MIXTURE = "d2l_mixture"
    FORMULA = "formula"


_NONLINEARITIES = ("linear", "relu", "leaky_relu", "tanh", "sigmoid", "selu")

# Each initializer's options with their defaults; None means required.
OPTIONS: dict[str, dict[str, object]] = {
    "default": {},
    "zeros": {},
    "ones": {},
    "d2l_mixture": {},
    "normal": {"mean": 0.0, "std": 0.01},
    "uniform": {"a": -0.07, "b": 0.07},
    "constant": {"value": None},
    "xavier_uniform": {"gain": 1.0},
    "xavier_normal": {"gain": 1.0},
    "kaiming_uniform": {"mode": "fan_in", "nonlinearity": "relu", "a": 0.0},
    "kaiming_normal": {"mode": "fan_in", "nonlinearity": "relu", "a": 0.0},
    "orthogonal": {"gain": 1.0},
    "trunc_normal": {"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0},
    "formula": {"expr": None},
}
_NEEDS_2D = {"xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal"}


def check_rules(rules: object) -> list[dict]:
    """Validate rules and return them with every option filled in; raise ``SpecError``."""
    if not isinstance(rules, list):
        raise SpecError("must be a list of rules", "rules")
    if len(rules) > 200:
        raise SpecError("at most 200 rules", "rules")
    return [_check_rule(rule, f"rules[{i}]") for i, rule in enumerate(rules)]


def _check_rule(rule: object, path: str) -> dict:
    if not isinstance(rule, dict):
        raise SpecError(f"must be a rule object, got {type(rule).__name__}", path)
    name = rule.get("init")
    if name not in OPTIONS:
        raise SpecError(
            f"unknown initializer {name!r}; use one of {', '.join(OPTIONS)}", f"{path}.init"
        )
    if "target" in rule and "regex" in rule:
        raise SpecError('give either "target" (a glob) or "regex", not both', path)
    allowed = {"init", "target", "regex", *OPTIONS[name]}
    for key in rule:
        if key not in allowed:
            raise SpecError(
                f"unknown option for {name}; allowed: {', '.join(sorted(allowed))}", f"{path}.{key}"
            )
    checked = {"init": name, **{k: rule.get(k, v) for k, v in OPTIONS[name].items()}}
    for key, value in checked.items():
        if value is None:
            raise SpecError(f"{name} needs the option {key!r}", path)
        if key in ("mode", "nonlinearity", "expr", "init"):
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise SpecError(f"must be a finite number, got {value!r}", f"{path}.{key}")
    _check_ranges(checked, path)
    if "regex" in rule:
        checked["regex"] = _compile_regex(rule["regex"], f"{path}.regex").pattern
    else:
        target = rule.get("target", "*")
        if not isinstance(target, str) or not target or len(target) > 500:
            raise SpecError(
                'must be a glob over parameter names, e.g. "*.weight"', f"{path}.target"
            )
        checked["target"] = target
    return checked


def _check_ranges(rule: dict, path: str) -> None:
    name = rule["init"]
    if name in ("normal", "trunc_normal") and rule["std"] < 0:
        raise SpecError(f"must be 0 or more, got {rule['std']}", f"{path}.std")
    if name in ("uniform", "trunc_normal") and not rule["a"] < rule["b"]:
        raise SpecError(f"a must be less than b, got a={rule['a']}, b={rule['b']}", path)
    if "mode" in rule and rule["mode"] not in ("fan_in", "fan_out"):
        raise SpecError(f"must be fan_in or fan_out, got {rule['mode']!r}", f"{path}.mode")
    if "nonlinearity" in rule and rule["nonlinearity"] not in _NONLINEARITIES:
        raise SpecError(
            f"must be one of {', '.join(_NONLINEARITIES)}, got {rule['nonlinearity']!r}",
            f"{path}.nonlinearity",
        )
    if name == "formula":
        if not isinstance(rule["expr"], str):
            raise SpecError("must be a formula as text", f"{path}.expr")
        try:
            parse_formula(rule["expr"])
        except SpecError as err:
            raise SpecError(err.reason, f"{path}.expr") from None


def _compile_regex(pattern: object, path: str) -> re.Pattern:
    if not isinstance(pattern, str) or len(pattern) > 500:
        raise SpecError("must be a regular expression of at most 500 characters", path)
    try:
        return re.compile(pattern)
    except re.error as err:
        raise SpecError(f"not a valid regular expression: {err}", path) from None


def matches(rule: dict, name: str) -> bool:
    """Whether a rule's glob ``target`` or full-match ``regex`` selects a parameter name."""
    if "regex" in rule:
        return re.fullmatch(rule["regex"], name) is not None
    return fnmatchcase(name, rule.get("target", "*"))


def initialize(
    module: nn.Module, rules: list[dict], seed: int | None = None, log: list[str] | None = None
) -> dict[str, int | None]:
    """Apply rules in order (a later match overrides an earlier one); return each name's rule index.

    Every alias of a tied tensor is in the result. With a seed the values are
    bit-identical from run to run on the same device, and the global RNG is untouched.

    Example::

        initialize(net, [{"init": "normal", "target": "*.weight", "std": 0.01},
                         {"init": "zeros", "target": "*.bias"}], seed=0)
        # {"0.weight": 0, "0.bias": 1, "2.weight": 0, "2.bias": 1}
    """
    rules = check_rules(rules)
    tensors = _tensors_with_aliases(module)
    provenance: dict[str, int | None] = {n: None for names in tensors.values() for n in names[1]}
    plan = [
        [key for key, (_, names) in tensors.items() if any(matches(rule, n) for n in names)]
        for rule in rules
    ]
    for i, keys in enumerate(plan):
        for key in keys:
            param, names = tensors[key]
            if isinstance(param, UninitializedParameter):
                raise SpecError(
                    f"{names[0]} is not materialized yet (a lazy layer gets its shape "
                    "from its first input): run a forward pass first",
                    f"rules[{i}]",
                )
            if rules[i]["init"] in _NEEDS_2D and param.dim() < 2:
                raise SpecError(
                    f"{rules[i]['init']} needs a tensor of 2 or more dimensions, but "
                    f"{names[0]} has shape {tuple(param.shape)}; target weights only, "
                    'e.g. "*.weight"',
                    f"rules[{i}]",
                )
    devices = sorted({p.device.index or 0 for p, _ in tensors.values() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices, enabled=seed is not None), torch.no_grad():
        if seed is not None:
            torch.manual_seed(seed)
        for i, (rule, keys) in enumerate(zip(rules, plan, strict=True)):
            _apply(module, rule, [tensors[k] for k in keys], log)
            for key in keys:
                provenance.update(dict.fromkeys(tensors[key][1], i))
    return provenance


def _tensors_with_aliases(module: nn.Module) -> dict[int, tuple[torch.Tensor, list[str]]]:
    tensors: dict[int, tuple[torch.Tensor, list[str]]] = {}
    for name, param in module.named_parameters(remove_duplicate=False):
        tensors.setdefault(id(param), (param, []))[1].append(name)
    return tensors


def _apply(module: nn.Module, rule: dict, targets: list, log: list[str] | None) -> None:
    if rule["init"] == "default":
        _reset_to_default(module, targets)
    for param, names in targets:
        if rule["init"] != "default":
            param.copy_(_values(rule, param))
        if log is not None:
            log.append(f"Init {names[0]} {tuple(param.shape)} with {rule['init']}")


def _values(rule: dict, param: torch.Tensor) -> torch.Tensor:
    """Fresh values for one tensor, drawn from the (seeded) RNG of its device."""
    name, out = rule["init"], torch.empty_like(param)
    init = nn.init
    if name == "normal":
        return init.normal_(out, rule["mean"], rule["std"])
    if name == "uniform":
        return init.uniform_(out, rule["a"], rule["b"])
    if name in ("constant", "zeros", "ones"):
        return init.constant_(out, {"zeros": 0.0, "ones": 1.0}.get(name, rule.get("value")))
    if name in ("xavier_uniform", "xavier_normal", "orthogonal"):
        return getattr(init, name + "_")(out, gain=rule["gain"])
    if name in ("kaiming_uniform", "kaiming_normal"):
        return getattr(init, name + "_")(
            out, a=rule["a"], mode=rule["mode"], nonlinearity=rule["nonlinearity"]
        )
    if name == "trunc_normal":
        return init.trunc_normal_(out, rule["mean"], rule["std"], rule["a"], rule["b"])
    if name == "d2l_mixture":
        init.uniform_(out, -10, 10)
        return out * (out.abs() >= 5)
    generator = torch.Generator(param.device).manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
    formula = parse_formula(rule["expr"])
    return formula.evaluate(
        tuple(param.shape),
        dtype=param.dtype,
        device=param.device,
        generator=generator,
        current=param.detach(),
    )


def _reset_to_default(module: nn.Module, targets: list) -> None:
    """Run each owning module's ``reset_parameters``, keeping its untargeted parameters."""
    chosen = {id(p) for p, _ in targets}
    done: set[int] = set()
    for _, owner in module.named_modules(remove_duplicate=False):
        own = [p for p in owner._parameters.values() if p is not None]
        if id(owner) in done or not any(id(p) in chosen for p in own):
            continue
        done.add(id(owner))
        if not hasattr(owner, "reset_parameters"):
            continue
        keep = {id(p): p.detach().clone() for p in own if id(p) not in chosen}
        owner.reset_parameters()
        for p in own:
            if id(p) in keep:
                p.copy_(keep[id(p)])
