"""A small, safe expression language for custom initializers.

Example: ``u = uniform(-10, 10); where(abs(u) >= 5, u, 0)`` draws ``u`` once and keeps the
values with ``|u| >= 5``. ``formula_syntax`` parses the text into a tree
of frozen dataclasses; this module evaluates that tree over torch tensors. Nothing is ever
handed to ``eval``, and every limit is checked before work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from explorer.errors import SpecError
from explorer.formula_syntax import (
    DRAWS,
    FUNCTIONS,
    MAX_NUMEL,
    NAMES,
    Binary,
    Call,
    Name,
    Neg,
    Num,
    Program,
    parse_program,
)
from explorer.limits import DEFAULT_LIMITS, Limits

__all__ = ["FUNCTIONS", "NAMES", "Formula", "parse_formula", "check_formula"]


def _mask(test):
    return lambda a, b: test(a, b).to(a.dtype)


_BINARY = {
    "+": torch.add,
    "-": torch.sub,
    "*": torch.mul,
    "/": torch.div,
    "**": torch.pow,
    "<": _mask(torch.lt),
    "<=": _mask(torch.le),
    ">": _mask(torch.gt),
    ">=": _mask(torch.ge),
    "==": _mask(torch.eq),
    "!=": _mask(torch.ne),
    "&": _mask(torch.logical_and),
    "|": _mask(torch.logical_or),
}
_PURE = {
    "abs": torch.abs,
    "sqrt": torch.sqrt,
    "exp": torch.exp,
    "log": torch.log,
    "sign": torch.sign,
    "tanh": torch.tanh,
    "sin": torch.sin,
    "cos": torch.cos,
    "floor": torch.floor,
    "round": torch.round,
    "min": torch.minimum,
    "max": torch.maximum,
    "clip": lambda x, lo, hi: torch.minimum(torch.maximum(x, lo), hi),
    "where": lambda cond, a, b: torch.where(cond != 0, a, b),
    "not": lambda x: (x == 0).to(x.dtype),
}


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        return (shape[0], shape[0]) if shape else (1, 1)
    receptive = math.prod(shape[2:])  # (out, in, *kernel) as in torch.nn.init
    return shape[1] * receptive, shape[0] * receptive


class _Evaluator:
    """Evaluates a parsed program over tensors of one shape, dtype and device."""

    def __init__(self, shape, work, device, generator, current):
        self.shape, self.work, self.device = shape, work, device
        self.generator, self.current = generator, current
        self.env: dict[str, torch.Tensor] = {}

    def scalar(self, value: float) -> torch.Tensor:
        return torch.tensor(float(value), dtype=self.work, device=self.device)

    def index(self, dim: int) -> torch.Tensor:
        if dim >= len(self.shape):
            return self.scalar(0)
        view = [1] * len(self.shape)
        view[dim] = self.shape[dim]  # (rows, 1, ...) or (1, cols, 1, ...)
        return torch.arange(self.shape[dim], dtype=self.work, device=self.device).view(view)

    def name(self, name: str) -> torch.Tensor:
        if name in self.env:
            return self.env[name]
        if name == "w":
            if self.current is None:
                raise SpecError("uses w, but this parameter has no current values", "formula")
            return self.current.detach().to(device=self.device, dtype=self.work)
        if name in ("i", "j"):
            return self.index(0 if name == "i" else 1)
        fan_in, fan_out = _fans(self.shape)
        rows = self.shape[0] if self.shape else 1
        cols = self.shape[1] if len(self.shape) > 1 else 1
        values = {
            "fan_in": fan_in,
            "fan_out": fan_out,
            "numel": math.prod(self.shape),
            "ndim": len(self.shape),
            "rows": rows,
            "cols": cols,
            "pi": math.pi,
            "e": math.e,
        }
        return self.scalar(values[name])

    def draw(self, name: str, args: list[torch.Tensor]) -> torch.Tensor:
        def fresh(sample):
            return sample(self.shape, generator=self.generator, dtype=self.work, device=self.device)

        if name == "uniform":
            low, high = args
            return low + (high - low) * fresh(torch.rand)
        mean, std = args[:2]
        if name == "normal":
            return mean + std * fresh(torch.randn)
        low, high = args[2:]  # trunc_normal: inverse-CDF sampling, as torch.nn.init does
        lo_cdf, hi_cdf = (torch.special.ndtr((bound - mean) / std) for bound in (low, high))
        sample = mean + std * torch.special.ndtri(lo_cdf + (hi_cdf - lo_cdf) * fresh(torch.rand))
        return _PURE["clip"](sample, low, high)

    def run(self, node) -> torch.Tensor:
        match node:
            case Num(value):
                return self.scalar(value)
            case Name(name):
                return self.name(name)
            case Neg(operand):
                return -self.run(operand)
            case Binary(op, left, right):
                return _BINARY[op](self.run(left), self.run(right))
            case Call(name, args):
                values = [self.run(arg) for arg in args]
                return self.draw(name, values) if name in DRAWS else _PURE[name](*values)
        raise TypeError(f"unknown formula node {node!r}")


def _check_shape(shape, dtype: torch.dtype, current: torch.Tensor | None) -> tuple[int, ...]:
    shape = tuple(int(size) for size in shape)
    if any(size < 0 for size in shape):
        raise SpecError(f"shape {shape} has a negative size", path="formula")
    if math.prod(shape) > MAX_NUMEL:
        raise SpecError(
            f"shape {shape} has {math.prod(shape):,} elements; the limit is {MAX_NUMEL:,}",
            path="formula",
        )
    if not dtype.is_floating_point:
        raise SpecError(f"dtype must be a floating type, got {dtype}", path="formula")
    if current is not None and tuple(current.shape) != shape:
        raise SpecError(f"w has shape {tuple(current.shape)}, expected {shape}", path="formula")
    return shape


@dataclass(frozen=True)
class Formula:
    """A parsed formula; building one checks the syntax and every limit."""

    expr: str
    limits: Limits = field(default=DEFAULT_LIMITS, repr=False, compare=False)
    _program: Program = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_program", parse_program(self.expr, self.limits))

    def evaluate(
        self,
        shape: tuple[int, ...],
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
        current: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return a new tensor of exactly ``shape`` and ``dtype`` holding the formula's values.

        Example: ``parse_formula("normal(0, 1) * sqrt(2 / fan_in)").evaluate((256, 512))``.
        """
        shape = _check_shape(shape, dtype, current)
        work = torch.float64 if dtype == torch.float64 else torch.float32
        evaluator = _Evaluator(shape, work, device, generator, current)
        for name, node in self._program.bindings:
            evaluator.env[name] = evaluator.run(node)  # drawn once, reused by every mention
        result = evaluator.run(self._program.body)
        out = torch.empty(shape, dtype=dtype, device=device)
        out.copy_(result)  # broadcasts scalars and index grids to the full shape
        if not torch.isfinite(out).all():
            raise SpecError(
                f"produced inf/nan values in {dtype}; "
                "check divisions/powers, sqrt/log of negatives and huge numbers",
                path="formula",
            )
        return out


def parse_formula(expr: str, limits: Limits = DEFAULT_LIMITS) -> Formula:
    """Parse ``expr`` into a Formula, or raise SpecError saying what is allowed and where."""
    return Formula(expr, limits)


def check_formula(expr: str) -> str | None:
    """Return None if ``expr`` parses, else the one-line error message (for live checks)."""
    try:
        parse_program(expr)
    except SpecError as error:
        return str(error)
    return None
