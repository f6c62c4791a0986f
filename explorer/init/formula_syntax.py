"""The formula language's syntax: limits, allowed names, tokenizer and parser.

A hand-written tokenizer and recursive-descent parser turn text into a tree of frozen
dataclasses; depth, length and token limits are checked while reading, so no input can
exhaust the stack or the CPU. Nothing here evaluates anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "FUNCTIONS",
    "NAMES",
    "METHODS",
    "DRAWS",
    "Num",
    "Name",
    "Neg",
    "Binary",
    "Call",
    "Program",
    "parse_program",
]

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

DRAWS = frozenset({"uniform", "normal", "trunc_normal"})

# The chapter's own spelling, read as the functions above: ``w.abs()``, ``torch.where(…)``,
# ``x.clamp(lo, hi)``, ``torch.rand_like(w)``. A method takes its object as first argument.
METHODS = MappingProxyType(
    {
        **{f: f for f in ("abs", "sqrt", "exp", "log", "sign", "tanh", "sin", "cos", "floor")},
        "round": "round",
        "clamp": "clip",
        "clip": "clip",
    }
)
MODULE_FUNCTIONS = MappingProxyType(
    {
        **{f"torch.{m}": f for m, f in METHODS.items()},
        "torch.where": "where",
        "torch.minimum": "min",
        "torch.maximum": "max",
        "torch.logical_not": "not",
        **{f"math.{f}": f for f in ("sqrt", "exp", "log", "sin", "cos", "tanh", "floor")},
    }
)
LIKE = MappingProxyType({"torch.rand_like": "uniform", "torch.randn_like": "normal"})
MODULE_NAMES = MappingProxyType({"math.pi": "pi", "math.e": "e", "torch.pi": "pi", "torch.e": "e"})
_COMPARE = frozenset({"<", "<=", ">", ">=", "==", "!="})
ALLOWED = (
    "allowed: numbers, ( ), + - * / **, comparisons < <= > >= == !=, & (and), | (or), "
    f"functions {', '.join(sorted(FUNCTIONS))}; names {', '.join(NAMES)}; "
    "PyTorch's spelling of them (w.abs(), w.data, x.clamp(lo, hi), torch.where(c, a, b), "
    "torch.rand_like(w)); and leading assignments such as 'u = uniform(-1, 1); u * 2'"
)
_HINTS = {
    ".": "only PyTorch's methods w.abs(), .sqrt(), .exp(), .log(), .sign(), .tanh(), .sin(), "
    ".cos(), .floor(), .round(), .clamp(lo, hi), w.data and torch.… functions are allowed",
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
  | (?P<op>\*\*|<=|>=|==|!=|[-+*/<>&|(),;=.])
""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # "num", "name", "op", "bad" or "end"
    text: str
    pos: int  # 0-based; messages count from 1


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Neg:
    operand: object


@dataclass(frozen=True)
class Binary:
    op: str
    left: object
    right: object


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple


@dataclass(frozen=True)
class Program:
    bindings: tuple  # ((name, node), ...), evaluated once, in order
    body: object


def _error(reason: str, pos: int, hint: str | None = None) -> SpecError:
    hint = f"; {hint}" if hint else ""
    return SpecError(f"{reason} at position {pos + 1}{hint}; {ALLOWED}", path="formula")


def _unexpected(token: Token) -> SpecError:
    if token.kind == "end":
        return _error("unexpected end of formula", token.pos)
    shown = token.text if len(token.text) <= 20 else token.text[:20] + "..."
    return _error(f"unexpected {shown!r}", token.pos, _HINTS.get(token.text))


def _tokenize(expr: str, limits: Limits) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            char = expr[pos]
            shown = repr(char) if char.isascii() and char.isprintable() else f"U+{ord(char):04X}"
            raise _error(f"unexpected character {shown}", pos, _HINTS.get(char))
        kind, text = match.lastgroup, match.group()
        if kind == "bad":
            raise _unexpected(Token(kind, text, pos))
        if kind == "name" and len(text) > limits.max_formula_name_chars:
            raise _error(
                "name too long", pos, f"the limit is {limits.max_formula_name_chars} characters"
            )
        if kind != "space":
            tokens.append(Token(kind, text, pos))
        if len(tokens) > limits.max_formula_tokens:
            most = limits.max_formula_tokens
            raise SpecError(f"has more than {most} tokens; the limit is {most}", path="formula")
        pos = match.end()
    return tokens + [Token("end", "", len(expr))]


class _Parser:
    """Recursive descent; from loosest to tightest: | & comparisons + - * / signs **."""

    def __init__(self, tokens: list[Token], limits: Limits):
        self.tokens, self.at, self.depth, self.draws = tokens, 0, 0, 0
        self.limits = limits
        self.bound: set[str] = set()

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def take(self, text: str | None = None) -> Token:
        token = self.peek()
        if text is not None and token.text != text:
            raise _unexpected(token)
        self.at += 1
        return token

    def program(self) -> Program:
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
        return Program(tuple(bindings), body)

    def chain(self, operand, ops: set[str]):
        node = operand()
        while self.peek().text in ops:
            node = Binary(self.take().text, node, operand())
        return node

    def either(self):
        return self.chain(self.both, {"|"})

    def both(self):
        return self.chain(self.compare, {"&"})

    def compare(self):
        node = self.sum()
        if self.peek().text in _COMPARE:
            node = Binary(self.take().text, node, self.sum())
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
        if self.depth > self.limits.max_formula_depth:
            most = self.limits.max_formula_depth
            raise _error("nesting too deep", self.peek().pos, f"the limit is {most} levels")
        if self.peek().text in ("-", "+"):
            node = self.signed() if self.take().text == "+" else Neg(self.signed())
        else:
            node = self.atom()
            if self.peek().text == "**":  # binds tighter than a leading sign: -2 ** 2 == -4
                node = Binary(self.take().text, node, self.signed())
        self.depth -= 1
        return node

    def atom(self):
        token = self.take()
        if token.kind == "num":
            return self.postfix(Num(float(token.text)))
        if token.text == "(":
            node = self.either()
            self.close(token)
            return self.postfix(node)
        if token.kind != "name":
            raise _unexpected(token)
        if token.text in ("torch", "math") and self.peek().text == ".":
            return self.postfix(self.qualified(token))
        if self.peek().text == "(":
            return self.postfix(self.call(token))
        if token.text in NAMES or token.text in self.bound:
            return self.postfix(Name(token.text))
        if token.text in FUNCTIONS:
            raise _error(
                f"function {token.text!r} without arguments",
                token.pos,
                f"call it as {token.text}(...)",
            )
        raise _error(f"unknown name {token.text!r}", token.pos)

    def close(self, opening: Token) -> None:
        """The ``)`` that closes ``opening``; anything else is named as a missing ``)``."""
        found = self.peek()
        if found.text != ")":
            where = "at the end" if found.kind == "end" else f"where {found.text!r} is"
            raise SpecError(
                f"missing ')': the '(' at position {opening.pos + 1} is not closed; add ')' "
                f"{where}, at position {found.pos + 1}; {ALLOWED}",
                path="formula",
            )
        self.take()

    def qualified(self, module: Token):
        """``torch.where(…)``, ``math.sqrt(…)``, ``torch.rand_like(w)``, ``math.pi``."""
        self.take(".")
        name = self.take()
        dotted = f"{module.text}.{name.text}"
        if dotted in MODULE_NAMES and self.peek().text != "(":
            return Name(MODULE_NAMES[dotted])
        if dotted in LIKE and self.peek().text == "(":
            opening = self.take("(")
            arg = self.either()
            self.close(opening)
            if arg != Name("w"):
                raise _error(f"{dotted}() takes w", name.pos, f"write {dotted}(w)")
            return self.draw(Call(LIKE[dotted], (Num(0.0), Num(1.0))), name)
        if dotted in MODULE_FUNCTIONS and self.peek().text == "(":
            return self.call(Token("name", MODULE_FUNCTIONS[dotted], name.pos), shown=dotted)
        raise _error(f"unknown name {dotted!r}", module.pos, "see what a formula can use")

    def postfix(self, node):
        """``.abs()``, ``.clamp(lo, hi)`` and ``.data`` after a value, as PyTorch writes them."""
        while self.peek().text == ".":
            self.take(".")
            name = self.take()
            if name.text == "data" and self.peek().text != "(":
                continue  # w.data is w's values
            if name.text not in METHODS or self.peek().text != "(":
                raise _error(f"unknown method {name.text!r}", name.pos, _HINTS["."])
            node = self.call(Token("name", METHODS[name.text], name.pos), first=node)
        return node

    def call(self, name: Token, first=None, shown: str | None = None) -> Call:
        shown = shown or name.text
        if name.text not in FUNCTIONS:
            if name.text in NAMES or name.text in self.bound:
                raise _error(f"call of {name.text!r}", name.pos, "it is a name, not a function")
            raise _error(f"unknown function {name.text!r}", name.pos)
        opening = self.take("(")
        args = [] if first is None else [first]
        while self.peek().text != ")":
            if len(args) > (first is not None):
                if self.peek().text != ",":
                    self.close(opening)
                self.take(",")
            if self.peek().kind == "name" and self.peek(1).text == "=":
                raise _error(
                    "keyword argument",
                    self.peek().pos,
                    "keyword arguments are not allowed; pass values in order",
                )
            if self.peek().kind == "end":
                self.close(opening)
            args.append(self.either())
        self.take(")")
        arity = FUNCTIONS[name.text][0]
        if len(args) != arity:
            given = len(args) - (first is not None)
            raise _error(
                f"wrong number of arguments to {shown}()",
                name.pos,
                f"it takes {arity - (first is not None)}, got {given}",
            )
        return self.draw(Call(name.text, tuple(args)), name)

    def draw(self, call: Call, name: Token) -> Call:
        """Count the random draws, whose number is limited."""
        if call.name in DRAWS:
            self.draws += 1
            if self.draws > self.limits.max_formula_draws:
                most = self.limits.max_formula_draws
                raise _error("too many random draws", name.pos, f"the limit is {most}")
        return call


def parse_program(expr: str, limits: Limits = DEFAULT_LIMITS) -> Program:
    """Parse a formula into a ``Program``; ``limits.max_formula_chars`` caps its length."""
    if not isinstance(expr, str):
        raise SpecError(f"must be text, got {type(expr).__name__}", path="formula")
    if len(expr) > limits.max_formula_chars:
        raise SpecError(
            f"is {len(expr)} characters long; the limit is {limits.max_formula_chars}",
            path="formula",
        )
    tokens = _tokenize(expr, limits)
    if len(tokens) == 1:
        raise SpecError(f"is empty; {ALLOWED}", path="formula")
    return _Parser(tokens, limits).program()
