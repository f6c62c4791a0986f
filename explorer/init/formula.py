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

from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.init.formula_syntax import (
    DRAWS,
    FUNCTIONS,
    NAMES,
    Binary,
    Call,
    Name,
    Neg,
    Num,
    Program,
    parse_program,
)

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


# Rows are evaluated in chunks of about this many bytes of live temporaries, so a formula's
# peak memory does not grow with the parameter. It is fixed (not a session limit) because
# the chunking decides which draws land where: the same formula and seed must give the
# same values in every session.
CHUNK_BYTES = 64 * 2**20
_SAMPLE_ELEMENTS = 1 << 16  # elements a live check evaluates while the user types
_DRAW_TEMPS = {"uniform": 3, "normal": 3, "trunc_normal": 6}
_PURE_TEMPS = {"clip": 2, "where": 2, "not": 2}


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        return (shape[0], shape[0]) if shape else (1, 1)
    receptive = math.prod(shape[2:])  # (out, in, *kernel) as in torch.nn.init
    return shape[1] * receptive, shape[0] * receptive


def temporaries(program: Program) -> int:
    """How many tensors of one chunk's size can be alive at once while ``program`` runs.

    An upper bound read from the parsed tree: a binary operation holds its left value
    while the right one is computed, a call holds each argument, a name bound by ``=``
    stays alive to the end, and a draw needs a few tensors of its own. One more is
    counted for the finiteness check of the result.
    """
    alive, peak = 0, 0
    for _, node in program.bindings:
        need, full = _need(node)
        peak, alive = max(peak, alive + need), alive + full
    need, _ = _need(program.body)
    return max(peak, alive + need) + 1


def _need(node) -> tuple[int, int]:
    """(peak live temporaries, 1 if the result is a full tensor else 0) for one node."""
    match node:
        case Num():
            return 0, 0
        case Name(name):
            full = int(name in ("w", "i", "j"))  # bound names are counted where bound
            return full, full
        case Neg(operand):
            peak, full = _need(operand)
            return max(peak, 2 * full), full
        case Binary(_, left, right):
            (lp, lf), (rp, rf) = _need(left), _need(right)
            full = max(lf, rf)
            return max(lp, lf + rp, lf + rf + full), full
    held, peak = 0, 0
    for arg in node.args:
        need, full = _need(arg)
        peak, held = max(peak, held + need), held + full
    if node.name in DRAWS:
        return max(peak, held + _DRAW_TEMPS[node.name]), 1
    full = int(held > 0)
    return max(peak, held + _PURE_TEMPS.get(node.name, 1) * full), full


class _Evaluator:
    """Evaluates a parsed program over rows ``start:stop`` of a tensor of shape ``shape``."""

    def __init__(self, shape, rows, work, device, generator, current):
        self.shape, self.work, self.device = shape, work, device
        self.start, self.stop = rows
        self.chunk = (self.stop - self.start, *shape[1:]) if shape else ()
        self.generator, self.current = generator, current
        self.env: dict[str, torch.Tensor] = {}

    def scalar(self, value: float) -> torch.Tensor:
        return torch.tensor(float(value), dtype=self.work, device=self.device)

    def index(self, dim: int) -> torch.Tensor:
        if dim >= len(self.shape):
            return self.scalar(0)
        view = [1] * len(self.shape)
        view[dim] = self.chunk[dim]  # (rows, 1, ...) or (1, cols, 1, ...)
        first = self.start if dim == 0 else 0
        grid = torch.arange(first, first + self.chunk[dim], dtype=self.work, device=self.device)
        return grid.view(view)

    def name(self, name: str) -> torch.Tensor:
        if name in self.env:
            return self.env[name]
        if name == "w":
            if self.current is None:
                raise SpecError("uses w, but this parameter has no current values", "formula")
            rows = self.current[self.start : self.stop] if self.shape else self.current
            return rows.detach().to(device=self.device, dtype=self.work)
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
            return sample(self.chunk, generator=self.generator, dtype=self.work, device=self.device)

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

    def program(self, program: Program) -> torch.Tensor:
        for name, node in program.bindings:
            self.env[name] = self.run(node)  # drawn once, reused by every mention
        return self.run(program.body)


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


@dataclass(frozen=True)
class Formula:
    """A parsed formula; building one checks the syntax and every limit."""

    expr: str
    limits: Limits = field(default=DEFAULT_LIMITS, repr=False, compare=False)
    _program: Program = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_program", parse_program(self.expr, self.limits))

    @property
    def temporaries(self) -> int:
        """At most how many chunk-sized tensors are alive at once while it evaluates."""
        return temporaries(self._program)

    @property
    def uses_w(self) -> bool:
        """Whether the formula reads the parameter's current values."""
        nodes = [node for _, node in self._program.bindings] + [self._program.body]
        while nodes:
            match nodes.pop():
                case Name("w"):
                    return True
                case Neg(operand):
                    nodes.append(operand)
                case Binary(_, left, right):
                    nodes += [left, right]
                case Call(_, args):
                    nodes += args
        return False

    def chunk_rows(self, shape: tuple[int, ...], dtype: torch.dtype) -> int:
        """How many rows (``shape[0]``) are evaluated at a time; fixed by the formula alone."""
        row_bytes = math.prod(shape[1:]) * _work_dtype(dtype).itemsize * self.temporaries
        return max(1, CHUNK_BYTES // max(row_bytes, 1))

    def check(self, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> None:
        """Refuse, before any work, a shape, dtype or memory need over the limits."""
        shape = tuple(int(size) for size in shape)
        if any(size < 0 for size in shape):
            raise SpecError(f"shape {shape} has a negative size", path="formula")
        if not dtype.is_floating_point:
            raise SpecError(f"dtype must be a floating type, got {dtype}", path="formula")
        size = math.prod(shape) * dtype.itemsize
        if size > self.limits.max_value_bytes:
            raise SpecError(
                f"shape {shape} needs {size:,} bytes in {dtype}; "
                f"the limit is {self.limits.max_value_bytes:,}",
                path="formula",
            )
        rows = min(shape[0], self.chunk_rows(shape, dtype)) if shape else 1
        peak = rows * math.prod(shape[1:]) * _work_dtype(dtype).itemsize * self.temporaries
        if peak > self.limits.max_formula_bytes:
            raise SpecError(
                f"needs {self.temporaries} temporaries of {rows * math.prod(shape[1:]):,} "
                f"elements ({peak:,} bytes) for shape {shape}; the limit is "
                f"{self.limits.max_formula_bytes:,} bytes: use fewer nested terms",
                path="formula",
            )

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

        Rows are computed in chunks (``chunk_rows``), so the memory it needs beyond the
        result is bounded by ``limits.max_formula_bytes`` at any size.

        Example: ``parse_formula("normal(0, 1) * sqrt(2 / fan_in)").evaluate((256, 512))``.
        """
        shape = tuple(int(size) for size in shape)
        self.check(shape, dtype)
        if current is not None and tuple(current.shape) != shape:
            raise SpecError(f"w has shape {tuple(current.shape)}, expected {shape}", path="formula")
        out = torch.empty(shape, dtype=dtype, device=device)
        rows, step = (shape[0], self.chunk_rows(shape, dtype)) if shape else (1, 1)
        for start in range(0, rows, step):
            stop = min(rows, start + step)
            part = out[start:stop] if shape else out
            evaluator = _Evaluator(
                shape, (start, stop), _work_dtype(dtype), device, generator, current
            )
            part.copy_(evaluator.program(self._program))  # broadcasts scalars and grids
            if not torch.isfinite(part).all():
                raise SpecError(
                    f"produced inf/nan values in {dtype}; "
                    "check divisions/powers, sqrt/log of negatives and huge numbers",
                    path="formula",
                )
        return out

    def sample(
        self,
        shape: tuple[int, ...],
        dtype: torch.dtype = torch.float32,
        current: torch.Tensor | None = None,
    ) -> None:
        """Evaluate a few rows at each end of ``shape`` on the CPU; raise if one is inf/nan.

        Names such as ``fan_in``, ``i`` and ``numel`` take their values for the full
        shape, so ``1 / (rows - 1 - i)`` is caught in the last row. Nothing is returned.
        """
        shape = tuple(int(size) for size in shape)
        self.check(shape, dtype)
        row = math.prod(shape[1:]) if shape else 1
        rows = shape[0] if shape else 1
        take = max(1, min(rows, _SAMPLE_ELEMENTS // (2 * max(row, 1))))
        if row > 16 * _SAMPLE_ELEMENTS or (current is None and self.uses_w):
            return  # one row is too large to sample while typing; or w has no values yet
        if math.prod(shape) == 0:
            return
        generator = torch.Generator().manual_seed(0)
        spans = sorted({(0, take), (rows - take, rows)}) if shape else [(0, 1)]
        for start, stop in spans:
            evaluator = _Evaluator(
                shape, (start, stop), _work_dtype(dtype), "cpu", generator, current
            )
            values = evaluator.program(self._program).to(dtype)
            if not torch.isfinite(values).all():
                raise SpecError(
                    f"gives inf/nan values in {dtype} for shape {shape} (rows {start} to "
                    f"{stop - 1}); check divisions/powers, sqrt/log of negatives and huge numbers",
                    path="formula",
                )


def parse_formula(expr: str, limits: Limits = DEFAULT_LIMITS) -> Formula:
    """Parse ``expr`` into a Formula, or raise SpecError saying what is allowed and where."""
    return Formula(expr, limits)


def check_formula(
    expr: str,
    shape: tuple[int, ...] | None = None,
    dtype: torch.dtype = torch.float32,
    *,
    current: torch.Tensor | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> str | None:
    """None if ``expr`` is a usable formula, else the one-line message (for live checks).

    With a ``shape`` it also checks the memory the formula needs for that shape and
    evaluates it on a few rows, so ``1/0`` or ``exp(1000)`` is flagged while typing.
    """
    try:
        formula = parse_formula(expr, limits)
        if shape is not None:
            formula.sample(tuple(shape), dtype, current)
    except SpecError as error:
        return str(error)
    return None
