"""What an initializer should produce, for drawing over a parameter's histogram."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.parameter import UninitializedParameter

__all__ = ["Expected", "expected"]


@dataclass(frozen=True)
class Expected:
    """What an initializer's values should look like, for overlaying on a histogram.

    ``kind`` is one of ``"normal"``, ``"uniform"``, ``"constant"``, ``"mixture"``,
    ``"truncated_normal"``.
    ``bounds`` are drawn as vertical lines (e.g. Xavier's ±sqrt(6/(fan_in+fan_out))),
    ``mean``/``std`` describe a normal density, ``point_masses`` are values that hold
    a share of the elements (the 0 of the chapter's mixture, a constant), each as
    ``(value, probability)``. ``segments`` are uniform pieces ``(lo, hi, probability)``.
    """

    kind: str
    label: str
    bounds: tuple[float, float] | None = None
    mean: float | None = None
    std: float | None = None
    point_masses: tuple[tuple[float, float], ...] = ()
    segments: tuple[tuple[float, float, float], ...] = field(default=())


def expected(
    rule: dict | None, param: torch.Tensor, owner: nn.Module | None = None, local: str = "weight"
) -> Expected | None:
    """The distribution a rule should produce for ``param``, or None when there is no simple one."""
    if rule is None or isinstance(param, UninitializedParameter):
        return None
    name = rule["init"]
    fan_in, fan_out = _fans(param)
    if name == "normal":
        return Expected(
            "normal", f"N({rule['mean']:g}, {rule['std']:g}²)", mean=rule["mean"], std=rule["std"]
        )
    if name == "uniform":
        return Expected(
            "uniform", f"U({rule['a']:g}, {rule['b']:g})", bounds=(rule["a"], rule["b"])
        )
    if name in ("constant", "zeros", "ones"):
        value = {"zeros": 0.0, "ones": 1.0}.get(name, rule.get("value"))
        return Expected("constant", f"constant {value:g}", point_masses=((value, 1.0),))
    if name == "xavier_uniform":
        bound = rule["gain"] * math.sqrt(6 / (fan_in + fan_out))
        return Expected(
            "uniform", f"Xavier U(±{bound:.3g}) = ±√(6/(fan_in+fan_out))", bounds=(-bound, bound)
        )
    if name == "xavier_normal":
        std = rule["gain"] * math.sqrt(2 / (fan_in + fan_out))
        return Expected("normal", f"Xavier N(0, {std:.3g}²)", mean=0.0, std=std)
    if name in ("kaiming_uniform", "kaiming_normal"):
        fan = fan_in if rule["mode"] == "fan_in" else fan_out
        gain = nn.init.calculate_gain(rule["nonlinearity"], rule["a"])
        if name == "kaiming_normal":
            return Expected(
                "normal",
                f"He N(0, {gain / math.sqrt(fan):.3g}²)",
                mean=0.0,
                std=gain / math.sqrt(fan),
            )
        bound = gain * math.sqrt(3 / fan)
        return Expected("uniform", f"He U(±{bound:.3g})", bounds=(-bound, bound))
    if name == "trunc_normal":
        return Expected(
            "truncated_normal",
            f"N({rule['mean']:g}, {rule['std']:g}²) cut to [{rule['a']:g}, {rule['b']:g}]",
            bounds=(rule["a"], rule["b"]),
            mean=rule["mean"],
            std=rule["std"],
        )
    if name == "d2l_mixture":
        return Expected(
            "mixture",
            "U[5,10] ¼ · 0 ½ · U[-10,-5] ¼",
            point_masses=((0.0, 0.5),),
            segments=((5.0, 10.0, 0.25), (-10.0, -5.0, 0.25)),
        )
    if name == "default":
        return _default_expected(owner, local)
    return None


def _default_expected(owner: nn.Module | None, local: str) -> Expected | None:
    """PyTorch's own ``reset_parameters`` for the common layers."""
    if isinstance(owner, nn.Linear | nn.Conv2d) and not isinstance(
        owner.weight, UninitializedParameter
    ):
        bound = 1 / math.sqrt(_fans(owner.weight)[0])
        return Expected(
            "uniform", f"PyTorch default U(±{bound:.3g}) = ±1/√fan_in", bounds=(-bound, bound)
        )
    if isinstance(owner, nn.Embedding):
        return Expected("normal", "PyTorch default N(0, 1)", mean=0.0, std=1.0)
    if isinstance(owner, nn.LayerNorm):
        value = 1.0 if local == "weight" else 0.0
        return Expected("constant", f"PyTorch default {value:g}", point_masses=((value, 1.0),))
    return None


def _fans(param: torch.Tensor) -> tuple[int, int]:
    if param.dim() < 2:
        n = param.shape[0] if param.dim() == 1 else 1
        return n, n
    return nn.init._calculate_fan_in_and_fan_out(param)
