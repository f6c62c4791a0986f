"""The initializer registry: one entry per initializer a rule may name.

Each entry holds its options (type, range, default, help), the function that fills a
tensor, the density or bounds its values should follow (for the histogram overlay),
whether it needs a tensor of 2 or more dimensions, and the PyTorch code that does the same.
Rule checking (``explorer.init.rules``), overlays, the rules panel and the code view all read it;
adding an initializer is one entry in ``INITIALIZERS``.

Example::

    from explorer.init.initializers import INITIALIZERS, pytorch_code
    [o.name for o in INITIALIZERS["normal"].options]      # ['mean', 'std']
    pytorch_code({"init": "xavier_uniform", "gain": 1.0}, "net[0].weight")
    # 'nn.init.xavier_uniform_(net[0].weight, gain=1)'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from explorer.core.errors import SpecError
from explorer.core.frozen import freeze
from explorer.core.limits import MAX_MAGNITUDE
from explorer.init.formula_code import formula_lines

__all__ = [
    "Initializer",
    "OptionKind",
    "Option",
    "Expected",
    "InitializerInfo",
    "INITIALIZERS",
    "NONLINEARITIES",
    "Recipe",
    "RECIPES",
    "MY_INIT",
    "DJL_XAVIER_GAIN",
    "check_options",
    "expected",
    "pytorch_code",
    "fans",
]


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


class OptionKind(StrEnum):
    """How an option is typed: a number, one of a few words, or a formula's text."""

    NUMBER = "number"
    CHOICE = "choice"
    TEXT = "text"


NONLINEARITIES = ("relu", "leaky_relu", "linear", "tanh", "sigmoid", "selu")
MODES = ("fan_in", "fan_out")


@dataclass(frozen=True)
class Option:
    """One option of an initializer; ``default=None`` means the rule must give it."""

    name: str
    kind: OptionKind
    default: float | str | None
    help: str
    low: float = -MAX_MAGNITUDE  # inclusive range of a NUMBER
    high: float = MAX_MAGNITUDE
    choices: tuple[str, ...] = ()

    def check(self, value: object, path: str) -> float | str:
        """The value as the rule will use it, or ``SpecError`` naming the range or the choices."""
        if self.kind is OptionKind.NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SpecError(f"must be a finite number, got {value!r}", path)
            if not math.isfinite(value):
                raise SpecError(f"must be a finite number, got {value!r}", path)
            if not self.low <= value <= self.high:
                need = f"from {self.low:g} to {self.high:g}"
                if self.low > -MAX_MAGNITUDE and self.high == MAX_MAGNITUDE:
                    need = f"{self.low:g} or more"
                raise SpecError(f"must be {need}, got {value!r}", path)
            return float(value)
        if self.kind is OptionKind.CHOICE:
            if value not in self.choices:
                shown = value if isinstance(value, str) and len(value) <= 40 else type(value)
                *first, last = self.choices
                need = (
                    f"{', '.join(first)} or {last}"
                    if len(first) == 1
                    else "one of " + ", ".join(self.choices)
                )
                raise SpecError(f"must be {need}, got {shown!r}", path)
            return str(value)
        if not isinstance(value, str):
            raise SpecError(f"must be a formula as text, got {type(value).__name__}", path)
        return value


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


Fill = Callable[[torch.Tensor, Mapping], object]
Overlay = Callable[[Mapping, int, int], "Expected | None"]
Code = Callable[[Mapping, str], str]


@dataclass(frozen=True)
class InitializerInfo:
    """One initializer: its options, how it fills a tensor, its overlay and its PyTorch code.

    ``fill(out, rule)`` writes into ``out`` in place, drawing from the default generator
    of ``out``'s device, exactly as the ``torch.nn.init`` call in ``code`` would. ``default``
    and ``formula`` have no ``fill``: ``explorer.init.rules`` runs the owning layer's
    ``reset_parameters`` or evaluates the formula.
    """

    name: str
    doc: str
    options: tuple[Option, ...]
    fill: Fill | None
    overlay: Overlay
    code: Code
    needs_2d: bool = False
    check: Callable[[Mapping, str], None] | None = None  # constraints between options

    def defaults(self) -> dict[str, float | str | None]:
        """Each option's default (None where the rule must give it)."""
        return {o.name: o.default for o in self.options}

    def __repr__(self) -> str:
        return f"InitializerInfo({self.name}: {', '.join(o.name for o in self.options)})"


def fans(param: torch.Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` as ``torch.nn.init`` counts them; 1-D uses its length."""
    if param.dim() < 2:
        n = param.shape[0] if param.dim() == 1 else 1
        return n, n
    return nn.init._calculate_fan_in_and_fan_out(param)


def _num(x: float) -> str:
    """A number as short as it can be written without losing bits (``0.01``, ``1.4142…``)."""
    short = f"{x:g}"
    return short if float(short) == x else repr(float(x))


def _needs_a_below_b(rule: Mapping, path: str) -> None:
    if not rule["a"] < rule["b"]:
        raise SpecError(f"a must be less than b, got a={rule['a']}, b={rule['b']}", path)


# The chapter's custom initializer, as its PyTorch edition writes it (the d2l_mixture's code).
MY_INIT = """def my_init(m):
    if type(m) == nn.Linear:
        print("Init", *[(name, param.shape)
                        for name, param in m.named_parameters()][0])
        nn.init.uniform_(m.weight, -10, 10)
        m.weight.data *= m.weight.data.abs() >= 5"""


def _mixture_fill(out: torch.Tensor, rule: Mapping) -> None:
    nn.init.uniform_(out, -10, 10)
    out.mul_(out.abs() >= 5)  # the chapter: m.weight.data *= m.weight.data.abs() >= 5


def _formula_code(rule: Mapping, w: str) -> str:
    """The formula as a few lines of plain torch (no explorer needed)."""
    return formula_lines(rule["expr"], w)


def _xavier_uniform_overlay(rule: Mapping, fan_in: int, fan_out: int) -> Expected:
    bound = rule["gain"] * math.sqrt(6 / (fan_in + fan_out))
    gain = "" if rule["gain"] == 1 else f"{rule['gain']:.4g}·"
    label = f"Xavier U(±{bound:.3g}) = ±{gain}√(6/(fan_in+fan_out))"
    return Expected("uniform", label, bounds=(-bound, bound))


def _xavier_normal_overlay(rule: Mapping, fan_in: int, fan_out: int) -> Expected:
    std = rule["gain"] * math.sqrt(2 / (fan_in + fan_out))
    return Expected("normal", f"Xavier N(0, {std:.3g}²)", mean=0.0, std=std)


def _kaiming_overlay(rule: Mapping, fan_in: int, fan_out: int, normal: bool) -> Expected:
    fan = fan_in if rule["mode"] == "fan_in" else fan_out
    gain = nn.init.calculate_gain(rule["nonlinearity"], rule["a"])
    if normal:
        std = gain / math.sqrt(fan)
        return Expected("normal", f"He N(0, {std:.3g}²) = gain/√{rule['mode']}", mean=0.0, std=std)
    bound = gain * math.sqrt(3 / fan)
    return Expected(
        "uniform", f"He U(±{bound:.3g}) = gain·√(3/{rule['mode']})", bounds=(-bound, bound)
    )


def _constant(value: float) -> Expected:
    return Expected("constant", f"constant {value:g}", point_masses=((value, 1.0),))


_MEAN = Option("mean", OptionKind.NUMBER, 0.0, "the mean of the normal distribution")
_STD = Option("std", OptionKind.NUMBER, 0.01, "the standard deviation (0 or more)", low=0.0)
_GAIN = Option("gain", OptionKind.NUMBER, 1.0, "scales the bound or std (0 or more)", low=0.0)
_MODE = Option(
    "mode",
    OptionKind.CHOICE,
    "fan_in",
    "keep the variance of the forward (fan_in) or backward (fan_out) pass",
    choices=MODES,
)
_NONLIN = Option(
    "nonlinearity",
    OptionKind.CHOICE,
    "relu",
    "the activation after the layer; sets the gain",
    choices=NONLINEARITIES,
)
_SLOPE = Option(
    "a", OptionKind.NUMBER, 0.0, "the negative slope of leaky_relu (0 or more)", low=0.0
)
_KAIMING = (_MODE, _NONLIN, _SLOPE)


def _kaiming_code(fn: str) -> Code:
    return lambda r, w: (
        f"nn.init.{fn}_({w}, a={_num(r['a'])}, mode={r['mode']!r}, "
        f"nonlinearity={r['nonlinearity']!r})"
    )


_ENTRIES = (
    InitializerInfo(
        "default",
        "PyTorch's own reset_parameters of the layer that owns the tensor",
        (),
        None,
        lambda r, fi, fo: None,  # depends on the layer: see expected()
        lambda r, w: f"{w.rpartition('.')[0] or w}.reset_parameters()",
    ),
    InitializerInfo(
        "normal",
        "N(mean, std²), a fresh draw for every element",
        (_MEAN, _STD),
        lambda out, r: nn.init.normal_(out, r["mean"], r["std"]),
        lambda r, fi, fo: Expected(
            "normal", f"N({r['mean']:g}, {r['std']:g}²)", mean=r["mean"], std=r["std"]
        ),
        lambda r, w: f"nn.init.normal_({w}, mean={_num(r['mean'])}, std={_num(r['std'])})",
    ),
    InitializerInfo(
        "uniform",
        "U(a, b), a fresh draw for every element",
        (
            Option("a", OptionKind.NUMBER, -0.07, "the lower bound (less than b)"),
            Option("b", OptionKind.NUMBER, 0.07, "the upper bound"),
        ),
        lambda out, r: nn.init.uniform_(out, r["a"], r["b"]),
        lambda r, fi, fo: Expected(
            "uniform", f"U({r['a']:g}, {r['b']:g})", bounds=(r["a"], r["b"])
        ),
        lambda r, w: f"nn.init.uniform_({w}, a={_num(r['a'])}, b={_num(r['b'])})",
        check=_needs_a_below_b,
    ),
    InitializerInfo(
        "constant",
        "every element set to one value",
        (Option("value", OptionKind.NUMBER, None, "the value of every element"),),
        lambda out, r: nn.init.constant_(out, r["value"]),
        lambda r, fi, fo: _constant(r["value"]),
        lambda r, w: f"nn.init.constant_({w}, {_num(r['value'])})",
    ),
    InitializerInfo(
        "zeros",
        "every element 0",
        (),
        lambda out, r: nn.init.zeros_(out),
        lambda r, fi, fo: _constant(0.0),
        lambda r, w: f"nn.init.zeros_({w})",
    ),
    InitializerInfo(
        "ones",
        "every element 1",
        (),
        lambda out, r: nn.init.ones_(out),
        lambda r, fi, fo: _constant(1.0),
        lambda r, w: f"nn.init.ones_({w})",
    ),
    InitializerInfo(
        "xavier_uniform",
        "Glorot: U(±gain·√(6/(fan_in+fan_out)))",
        (_GAIN,),
        lambda out, r: nn.init.xavier_uniform_(out, gain=r["gain"]),
        _xavier_uniform_overlay,
        lambda r, w: f"nn.init.xavier_uniform_({w}, gain={_num(r['gain'])})",
        needs_2d=True,
    ),
    InitializerInfo(
        "xavier_normal",
        "Glorot: N(0, gain²·2/(fan_in+fan_out))",
        (_GAIN,),
        lambda out, r: nn.init.xavier_normal_(out, gain=r["gain"]),
        _xavier_normal_overlay,
        lambda r, w: f"nn.init.xavier_normal_({w}, gain={_num(r['gain'])})",
        needs_2d=True,
    ),
    InitializerInfo(
        "kaiming_uniform",
        "He: U(±gain·√(3/fan)), gain from the nonlinearity",
        _KAIMING,
        lambda out, r: nn.init.kaiming_uniform_(
            out, a=r["a"], mode=r["mode"], nonlinearity=r["nonlinearity"]
        ),
        lambda r, fi, fo: _kaiming_overlay(r, fi, fo, normal=False),
        _kaiming_code("kaiming_uniform"),
        needs_2d=True,
    ),
    InitializerInfo(
        "kaiming_normal",
        "He: N(0, gain²/fan), gain from the nonlinearity",
        _KAIMING,
        lambda out, r: nn.init.kaiming_normal_(
            out, a=r["a"], mode=r["mode"], nonlinearity=r["nonlinearity"]
        ),
        lambda r, fi, fo: _kaiming_overlay(r, fi, fo, normal=True),
        _kaiming_code("kaiming_normal"),
        needs_2d=True,
    ),
    InitializerInfo(
        "orthogonal",
        "a (semi-)orthogonal matrix, scaled by gain",
        (_GAIN,),
        lambda out, r: nn.init.orthogonal_(out, gain=r["gain"]),
        lambda r, fi, fo: None,
        lambda r, w: f"nn.init.orthogonal_({w}, gain={_num(r['gain'])})",
        needs_2d=True,
    ),
    InitializerInfo(
        "trunc_normal",
        "N(mean, std²) redrawn until inside [a, b]",
        (
            _MEAN,
            Option("std", OptionKind.NUMBER, 1.0, "the standard deviation (0 or more)", low=0.0),
            Option("a", OptionKind.NUMBER, -2.0, "the lower cut (less than b)"),
            Option("b", OptionKind.NUMBER, 2.0, "the upper cut"),
        ),
        lambda out, r: nn.init.trunc_normal_(out, r["mean"], r["std"], r["a"], r["b"]),
        lambda r, fi, fo: Expected(
            "truncated_normal",
            f"N({r['mean']:g}, {r['std']:g}²) cut to [{r['a']:g}, {r['b']:g}]",
            bounds=(r["a"], r["b"]),
            mean=r["mean"],
            std=r["std"],
        ),
        lambda r, w: (
            f"nn.init.trunc_normal_({w}, mean={_num(r['mean'])}, std={_num(r['std'])}, "
            f"a={_num(r['a'])}, b={_num(r['b'])})"
        ),
        check=_needs_a_below_b,
    ),
    InitializerInfo(
        "d2l_mixture",
        "the chapter's my_init: U[5,10] w.p. ¼, 0 w.p. ½, U[-10,-5] w.p. ¼",
        (),
        _mixture_fill,
        lambda r, fi, fo: Expected(
            "mixture",
            "U[5,10] ¼ · 0 ½ · U[-10,-5] ¼",
            point_masses=((0.0, 0.5),),
            segments=((5.0, 10.0, 0.25), (-10.0, -5.0, 0.25)),
        ),
        lambda r, w: f"nn.init.uniform_({w}, -10, 10)\n{w}.data *= {w}.data.abs() >= 5",
    ),
    InitializerInfo(
        "formula",
        "your own expression, e.g. normal(0, 1) * sqrt(2 / fan_in)",
        (Option("expr", OptionKind.TEXT, None, "the formula, checked as you type"),),
        None,
        lambda r, fi, fo: None,
        _formula_code,
    ),
)

INITIALIZERS: Mapping[str, InitializerInfo] = {entry.name: entry for entry in _ENTRIES}


def check_options(name: str, rule: Mapping, path: str) -> dict:
    """The initializer's options from ``rule``, defaults filled in and each value checked."""
    info = INITIALIZERS[name]
    checked = {}
    for option in info.options:
        value = rule.get(option.name, option.default)
        if value is None:
            raise SpecError(f"{name} needs the option {option.name!r}", path)
        checked[option.name] = option.check(value, f"{path}.{option.name}")
    if info.check is not None:
        info.check(checked, path)
    return checked


def expected(
    rule: Mapping | None,
    param: torch.Tensor,
    owner: nn.Module | None = None,
    local: str = "weight",
) -> Expected | None:
    """The distribution a rule should produce for ``param``, or None when there is no simple one."""
    if rule is None or is_lazy(param):
        return None
    if rule["init"] == "default":
        return _default_expected(owner, local)
    return INITIALIZERS[rule["init"]].overlay(rule, *fans(param))


def _default_expected(owner: nn.Module | None, local: str) -> Expected | None:
    """PyTorch's own ``reset_parameters`` for the common layers."""
    if isinstance(owner, nn.Linear | nn.Conv2d) and not is_lazy(owner.weight):
        bound = 1 / math.sqrt(fans(owner.weight)[0])
        return Expected(
            "uniform", f"PyTorch default U(±{bound:.3g}) = ±1/√fan_in", bounds=(-bound, bound)
        )
    if isinstance(owner, nn.Embedding):
        return Expected("normal", "PyTorch default N(0, 1)", mean=0.0, std=1.0)
    if isinstance(owner, nn.LayerNorm):
        value = 1.0 if local == "weight" else 0.0
        return Expected("constant", f"PyTorch default {value:g}", point_masses=((value, 1.0),))
    return None


def pytorch_code(rule: Mapping, access: str) -> str:
    """The PyTorch code that initializes the tensor at ``access`` (e.g. ``net[0].weight``)."""
    return INITIALIZERS[rule["init"]].code(rule, access)


# DJL's ``XavierInitializer()`` is (UNIFORM, AVG, magnitude 6): U(±√(6 / ((fan_in+fan_out)/2)))
# = U(±√2·√(6/(fan_in+fan_out))), i.e. PyTorch's xavier_uniform_ with gain √2. On the
# chapter's (8, 4) weight that is U(±1.0), which explains the DJL edition's printed values
# up to ±0.966, beyond xavier_uniform's ±0.707. (MXNet's Xavier() uses magnitude 3: gain 1.)
DJL_XAVIER_GAIN = math.sqrt(2)


@dataclass(frozen=True)
class Recipe:
    """A one-click list of rules: one of the chapter's examples or a framework's default."""

    label: str
    rules: tuple
    doc: str
    edition: str  # the edition of the chapter that teaches it

    def __post_init__(self):
        object.__setattr__(self, "rules", freeze(self.rules))

    def __repr__(self) -> str:
        return f"Recipe({self.label!r}, {len(self.rules)} rules)"


_PYTORCH = {"init": "default", "target": "*"}
_KERNELS = {"target": "*.weight", "min_ndim": 2}
_ZERO_BIAS = {"init": "zeros", "target": "*.bias"}
_MY_INIT = "u = uniform(-10, 10); where(abs(u) >= 5, u, 0)"

RECIPES: Mapping[str, Recipe] = {
    "init_normal": Recipe(
        "init_normal: N(0, 0.01) weights, zero biases",
        ({"init": "normal", "target": "*.weight", "mean": 0.0, "std": 0.01}, _ZERO_BIAS),
        "the chapter's init_normal",
        "PyTorch",
    ),
    "init_constant": Recipe(
        "init_constant: weights 1, biases 0",
        ({"init": "constant", "target": "*.weight", "value": 1.0}, _ZERO_BIAS),
        "the chapter's init_constant",
        "PyTorch",
    ),
    "xavier_42": Recipe(
        "xavier on layer 0, 42 on layer 2",
        (
            _PYTORCH,
            {"init": "xavier_uniform", "target": "0.weight"},
            {"init": "constant", "target": "2.weight", "value": 42.0},
        ),
        "different initializers for different layers",
        "PyTorch",
    ),
    "my_init": Recipe(
        "my_init: U(-10, 10) kept where |w| ≥ 5",
        (_PYTORCH, {"init": "d2l_mixture", "target": "*.weight"}),
        "the chapter's custom initializer, net.apply(my_init): its very torch calls",
        "PyTorch",
    ),
    "pytorch_default": Recipe(
        "PyTorch default",
        (_PYTORCH,),
        "each layer's reset_parameters: Linear weights and biases U(±1/√fan_in)",
        "PyTorch",
    ),
    "mxnet_default": Recipe(
        "MXNet default: weights U(−0.07, 0.07), biases 0",
        (_PYTORCH, {"init": "uniform", "a": -0.07, "b": 0.07, **_KERNELS}, _ZERO_BIAS),
        "net.initialize(): weights of 2+ dimensions U(−0.07, 0.07), biases 0 (norms 1 and 0)",
        "MXNet",
    ),
    "keras_default": Recipe(
        "Keras default: Glorot uniform, biases 0",
        (_PYTORCH, {"init": "xavier_uniform", "gain": 1.0, **_KERNELS}, _ZERO_BIAS),
        "Dense's glorot_uniform kernels U(±√(6/(fan_in+fan_out))), zero biases",
        "TensorFlow",
    ),
    "flax_default": Recipe(
        "Flax default: lecun_normal kernels, biases 0",
        (
            _PYTORCH,
            {
                "init": "formula",
                "expr": "s = sqrt(1 / fan_in) / 0.87962566103423978; "
                "trunc_normal(0, s, -2 * s, 2 * s)",
                **_KERNELS,
            },
            _ZERO_BIAS,
        ),
        "Dense's kernel_init lecun_normal(): a normal truncated at ±2 std whose kept values "
        "have std √(1/fan_in); bias_init zeros (flax/linen/linear.py)",
        "JAX",
    ),
    "djl_default": Recipe(
        "DJL default: weights N(0, √(2/fan_in)), biases 0",
        (
            _PYTORCH,
            {
                "init": "kaiming_normal",
                "mode": "fan_in",
                "nonlinearity": "relu",
                "a": 0.0,
                **_KERNELS,
            },
            _ZERO_BIAS,
        ),
        "Parameter.Type.WEIGHT's default XavierInitializer(GAUSSIAN, IN, 2) = N(0, √(2/fan_in)) "
        "(kaiming_normal_), BIAS's Initializer.ZEROS",
        "DJL",
    ),
    "djl_xavier": Recipe(
        "DJL new XavierInitializer(): U(±√2·Glorot), biases 0",
        (_PYTORCH, {"init": "xavier_uniform", "gain": DJL_XAVIER_GAIN, **_KERNELS}, _ZERO_BIAS),
        "XavierInitializer() is (UNIFORM, AVG, 6): U(±√(6/((fan_in+fan_out)/2))) = xavier gain "
        "√2, as the seed's linear1 prints (up to ±0.966 on (8, 4))",
        "DJL",
    ),
    "djl_set_initializer": Recipe(
        "DJL setInitializer: Normal, then Constant(1) is ignored",
        (
            {"init": "normal", "target": "*.weight", "mean": 0.0, "std": 0.01},
            _ZERO_BIAS,
            {"init": "constant", "target": "*.weight", "value": 1.0, "force_reinit": False},
        ),
        "initialized parameters are kept: a second setInitializer does not change them "
        "(Gluon: force_reinit=False); biases keep DJL's default 0",
        "DJL",
    ),
    "djl_fresh_7777": Recipe(
        "DJL setInitializer on a fresh net: Constant(7777)",
        (
            _ZERO_BIAS,
            {"init": "constant", "target": "*.weight", "value": 7777.0, "force_reinit": False},
        ),
        "on a net nothing initialized yet, setInitializer applies (42 in the Chinese edition); "
        "biases keep DJL's default 0",
        "DJL",
    ),
}
