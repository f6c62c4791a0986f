"""A small, safe expression language for custom initializers.

Example: ``u = uniform(-10, 10); where(abs(u) >= 5, u, 0)`` draws ``u`` once and keeps the
values with ``|u| >= 5``. A hand-written tokenizer and recursive-descent parser build a tree
of frozen dataclasses; nothing is ever handed to ``eval``. Every limit is checked before work.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from types import MappingProxyType

import torch

from explorer.errors import SpecError

__all__ = ["FUNCTIONS", "NAMES", "Formula", "parse_formula", "check_formula"]

MAX_LENGTH = 1000  # characters
MAX_TOKENS = 200
MAX_DEPTH = 50  # nested parentheses, signs, powers and calls
MAX_DRAWS = 16  # calls to uniform / normal / trunc_normal
MAX_NAME = 32  # characters in one identifier
MAX_NUMEL = 50_000_000

FUNCTIONS = MappingProxyType(
    {
        "uniform": (2, "uniform(a, b): a fresh uniform draw in [a, b) for every element"),
        "normal": (2, "normal(mean, std): a fresh normal draw for every element"),
        "trunc_normal": (4, "trunc_normal(mean, std, a, b): a normal draw kept inside [a, b]"),
        "abs": (1, "abs(x): absolute value"),
        "sqrt": (1, "sqrt(x): square root"),
        "exp": (1, "exp(x): e to the power x"),
        "log": (1, "log(x): natural logarithm"),
        "sign": (1, "sign(x): -1, 0 or 1"),
        "tanh": (1, "tanh(x): hyperbolic tangent"),
        "sin": (1, "sin(x): sine"),
        "cos": (1, "cos(x): cosine"),
        "floor": (1, "floor(x): round down"),
        "round": (1, "round(x): round to the nearest whole number (halves to even)"),
        "clip": (3, "clip(x, lo, hi): x limited to [lo, hi]"),
        "where": (3, "where(cond, a, b): a where cond is non-zero, else b"),
        "min": (2, "min(a, b): the smaller of a and b, element by element"),
        "max": (2, "max(a, b): the larger of a and b, element by element"),
        "not": (1, "not(x): 1 where x is 0, else 0"),
    }
)

NAMES = MappingProxyType(
    {
        "fan_in": "inputs per unit as torch.nn.init counts them (shape[0] for 1-D, 1 for 0-D)",
        "fan_out": "outputs per unit as torch.nn.init counts them (shape[0] for 1-D, 1 for 0-D)",
        "numel": "number of elements",
        "ndim": "number of dimensions",
        "rows": "shape[0] (1 for a 0-D tensor)",
        "cols": "shape[1] (1 below 2-D)",
        "i": "each element's row index (0 for a 0-D tensor)",
        "j": "each element's column index (0 below 2-D)",
        "w": "the parameter's current values",
        "pi": "3.14159...",
        "e": "2.71828...",
    }
)

_DRAWS = frozenset({"uniform", "normal", "trunc_normal"})
_COMPARE = frozenset({"<", "<=", ">", ">=", "==", "!="})
_ALLOWED = (
    "allowed: numbers, ( ), + - * / **, comparisons < <= > >= == !=, & (and), | (or), "
    f"functions {', '.join(sorted(FUNCTIONS))}; names {', '.join(NAMES)}; "
    "and leading assignments such as 'u = uniform(-1, 1); u * 2'"
)
_HINTS = {
    ".": "attribute access is not allowed",
    "[": "subscripts and lists are not allowed",
    "]": "subscripts and lists are not allowed",
    "'": "strings are not allowed",
    '"': "strings are not allowed",
    ":": "lambdas, slices and := are not allowed",
    "<<": "shifts are not allowed",
    ">>": "shifts are not allowed",
    "//": "floor division is not allowed; use floor(a / b)",
    "%": "% is not allowed",
    "@": "matrix products are not allowed",
    "~": "bitwise operators are not allowed; use not(x)",
    "^": "bitwise operators are not allowed; use ** for powers",
    "=": "'=' only names a value at the start, as in 'u = uniform(-1, 1); u * 2'; "
    "use == to compare",
    ";": "';' only ends a leading assignment such as 'u = uniform(-1, 1);'",
    ",": "',' only separates a function's arguments",
}
_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n]+)
  | (?P<num>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<bad><<|>>|//)
  | (?P<op>\*\*|<=|>=|==|!=|[-+*/<>&|(),;=])
""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "name", "op", "bad" or "end"
    text: str
    pos: int  # 0-based; messages count from 1


@dataclass(frozen=True)
class _Num:
    value: float


@dataclass(frozen=True)
class _Name:
    name: str


@dataclass(frozen=True)
class _Neg:
    operand: object


@dataclass(frozen=True)
class _Binary:
    op: str
    left: object
    right: object


@dataclass(frozen=True)
class _Call:
    name: str
    args: tuple


@dataclass(frozen=True)
class _Program:
    bindings: tuple  # ((name, node), ...), evaluated once, in order
    body: object


def _error(reason: str, pos: int, hint: str | None = None) -> SpecError:
    hint = f"; {hint}" if hint else ""
    return SpecError(f"{reason} at position {pos + 1}{hint}; {_ALLOWED}", path="formula")


def _unexpected(token: _Token) -> SpecError:
    if token.kind == "end":
        return _error("unexpected end of formula", token.pos)
    shown = token.text if len(token.text) <= 20 else token.text[:20] + "..."
    return _error(f"unexpected {shown!r}", token.pos, _HINTS.get(token.text))


def _tokenize(expr: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            char = expr[pos]
            shown = repr(char) if char.isascii() and char.isprintable() else f"U+{ord(char):04X}"
            raise _error(f"unexpected character {shown}", pos, _HINTS.get(char))
        kind, text = match.lastgroup, match.group()
        if kind == "bad":
            raise _unexpected(_Token(kind, text, pos))
        if kind == "name" and len(text) > MAX_NAME:
            raise _error("name too long", pos, f"the limit is {MAX_NAME} characters")
        if kind != "space":
            tokens.append(_Token(kind, text, pos))
        if len(tokens) > MAX_TOKENS:
            raise SpecError(
                f"has more than {MAX_TOKENS} tokens; the limit is {MAX_TOKENS}", path="formula"
            )
        pos = match.end()
    return tokens + [_Token("end", "", len(expr))]


class _Parser:
    """Recursive descent; from loosest to tightest: | & comparisons + - * / signs **."""

    def __init__(self, tokens: list[_Token]):
        self.tokens, self.at, self.depth, self.draws = tokens, 0, 0, 0
        self.bound: set[str] = set()

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def take(self, text: str | None = None) -> _Token:
        token = self.peek()
        if text is not None and token.text != text:
            raise _unexpected(token)
        self.at += 1
        return token

    def program(self) -> _Program:
        bindings = []
        while self.peek().kind == "name" and self.peek(1).text == "=":
            name = self.take()
            if name.text in NAMES or name.text in FUNCTIONS or name.text in self.bound:
                raise _error(
                    f"assignment to existing name {name.text!r}", name.pos, "choose a new name"
                )
            self.take("=")
            bindings.append((name.text, self.either()))
            self.take(";")
            self.bound.add(name.text)
        body = self.either()
        if self.peek().kind != "end":
            raise _unexpected(self.peek())
        return _Program(tuple(bindings), body)

    def chain(self, operand, ops: set[str]):
        node = operand()
        while self.peek().text in ops:
            node = _Binary(self.take().text, node, operand())
        return node

    def either(self):
        return self.chain(self.both, {"|"})

    def both(self):
        return self.chain(self.compare, {"&"})

    def compare(self):
        node = self.sum()
        if self.peek().text in _COMPARE:
            node = _Binary(self.take().text, node, self.sum())
            if self.peek().text in _COMPARE:
                raise _error("chained comparison", self.peek().pos, "write (a < b) & (b < c)")
        return node

    def sum(self):
        return self.chain(self.term, {"+", "-"})

    def term(self):
        return self.chain(self.signed, {"*", "/"})

    def signed(self):
        """Every nesting route passes here, so the depth limit holds before recursion grows."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error("nesting too deep", self.peek().pos, f"the limit is {MAX_DEPTH} levels")
        if self.peek().text in ("-", "+"):
            node = self.signed() if self.take().text == "+" else _Neg(self.signed())
        else:
            node = self.atom()
            if self.peek().text == "**":  # binds tighter than a leading sign: -2 ** 2 == -4
                node = _Binary(self.take().text, node, self.signed())
        self.depth -= 1
        return node

    def atom(self):
        token = self.take()
        if token.kind == "num":
            return _Num(float(token.text))
        if token.text == "(":
            node = self.either()
            self.take(")")
            return node
        if token.kind != "name":
            raise _unexpected(token)
        if self.peek().text == "(":
            return self.call(token)
        if token.text in NAMES or token.text in self.bound:
            return _Name(token.text)
        if token.text in FUNCTIONS:
            raise _error(
                f"function {token.text!r} without arguments",
                token.pos,
                f"call it as {token.text}(...)",
            )
        raise _error(f"unknown name {token.text!r}", token.pos)

    def call(self, name: _Token) -> _Call:
        if name.text not in FUNCTIONS:
            if name.text in NAMES or name.text in self.bound:
                raise _error(f"call of {name.text!r}", name.pos, "it is a name, not a function")
            raise _error(f"unknown function {name.text!r}", name.pos)
        self.take("(")
        args = []
        while self.peek().text != ")":
            if args:
                self.take(",")
            if self.peek().kind == "name" and self.peek(1).text == "=":
                raise _error(
                    "keyword argument",
                    self.peek().pos,
                    "keyword arguments are not allowed; pass values in order",
                )
            args.append(self.either())
        self.take(")")
        arity = FUNCTIONS[name.text][0]
        if len(args) != arity:
            raise _error(
                f"wrong number of arguments to {name.text}()",
                name.pos,
                f"it takes {arity}, got {len(args)}",
            )
        if name.text in _DRAWS:
            self.draws += 1
            if self.draws > MAX_DRAWS:
                raise _error("too many random draws", name.pos, f"the limit is {MAX_DRAWS}")
        return _Call(name.text, tuple(args))


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
            case _Num(value):
                return self.scalar(value)
            case _Name(name):
                return self.name(name)
            case _Neg(operand):
                return -self.run(operand)
            case _Binary(op, left, right):
                return _BINARY[op](self.run(left), self.run(right))
            case _Call(name, args):
                values = [self.run(arg) for arg in args]
                return self.draw(name, values) if name in _DRAWS else _PURE[name](*values)
        raise TypeError(f"unknown formula node {node!r}")


def _parse(expr: str) -> _Program:
    if not isinstance(expr, str):
        raise SpecError(f"must be text, got {type(expr).__name__}", path="formula")
    if len(expr) > MAX_LENGTH:
        raise SpecError(
            f"is {len(expr)} characters long; the limit is {MAX_LENGTH}", path="formula"
        )
    tokens = _tokenize(expr)
    if len(tokens) == 1:
        raise SpecError(f"is empty; {_ALLOWED}", path="formula")
    return _Parser(tokens).program()


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
    _program: _Program = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_program", _parse(self.expr))

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


def parse_formula(expr: str) -> Formula:
    """Parse ``expr`` into a Formula, or raise SpecError saying what is allowed and where."""
    return Formula(expr)


def check_formula(expr: str) -> str | None:
    """Return None if ``expr`` parses, else the one-line error message (for live checks)."""
    try:
        _parse(expr)
    except SpecError as error:
        return str(error)
    return None
