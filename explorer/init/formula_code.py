"""A formula initializer as plain PyTorch code that computes the same values, bit for bit.

``formula_function(expr, name)`` returns the source of a function ``name(w, generator,
step)`` that does what ``explorer.init.formula.Formula.evaluate`` does: rows in chunks of
``step``, each chunk evaluated in the work dtype with 0-d constants, draws from
``generator`` in the same order, the result copied into a fresh tensor. The parsed tree
is translated node by node; nothing is evaluated here, and the expression text only ever
appears in a docstring (as ``repr``).

Example::

    print(formula_function("u = uniform(-10, 10); where(abs(u) >= 5, u, 0)", "my_init"))
"""

from __future__ import annotations

import torch

from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.init.formula_syntax import Binary, Call, Name, Neg, Num, parse_program

__all__ = ["formula_function", "formula_short", "formula_lines", "FORMULA_HELPERS"]

# Shared by every formula function: the names of a shape, as explorer.init.formula defines them.
FORMULA_HELPERS = '''
def formula_names(shape):
    """fan_in, fan_out, numel, ndim, rows, cols, pi, e of a shape (as torch.nn.init counts)."""
    if len(shape) < 2:
        fan_in = fan_out = shape[0] if shape else 1
    else:
        receptive = math.prod(shape[2:])
        fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    return {
        "fan_in": fan_in,
        "fan_out": fan_out,
        "numel": math.prod(shape),
        "ndim": len(shape),
        "rows": shape[0] if shape else 1,
        "cols": shape[1] if len(shape) > 1 else 1,
        "pi": math.pi,
        "e": math.e,
    }
'''

_COMPARE = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}
_LOGIC = {"&": "logical_and", "|": "logical_or"}
_TORCH = {
    "abs": "torch.abs",
    "sqrt": "torch.sqrt",
    "exp": "torch.exp",
    "log": "torch.log",
    "sign": "torch.sign",
    "tanh": "torch.tanh",
    "sin": "torch.sin",
    "cos": "torch.cos",
    "floor": "torch.floor",
    "round": "torch.round",
    "min": "torch.minimum",
    "max": "torch.maximum",
}
_LOCAL = {"uniform", "normal", "trunc_normal", "clip", "where", "not"}

_BODY = '''
def {name}(w, generator, step):
    """The formula {expr}

    evaluated as the explorer does it: rows in chunks of step, in the work dtype.
    """
    shape, device = tuple(w.shape), w.device
    work = torch.float64 if w.dtype == torch.float64 else torch.float32
    names = formula_names(shape)
    out = torch.empty(shape, dtype=w.dtype, device=device)
    rows = shape[0] if shape else 1
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        chunk = (stop - start, *shape[1:]) if shape else ()

        def c(value):  # a constant: a 0-d tensor in the work dtype
            return torch.tensor(float(value), dtype=work, device=device)

        def draw(sample):
            return sample(chunk, generator=generator, dtype=work, device=device)

        def index(dim):
            if dim >= len(shape):
                return c(0)
            view = [1] * len(shape)
            view[dim] = chunk[dim]
            first = start if dim == 0 else 0
            grid = torch.arange(first, first + chunk[dim], dtype=work, device=device)
            return grid.view(view){helpers}

{lines}
        part = out[start:stop] if shape else out
        part.copy_({result})
    return out
'''

_HELPER_CODE = {
    "uniform": """

        def uniform(low, high):
            return low + (high - low) * draw(torch.rand)""",
    "normal": """

        def normal(mean, std):
            return mean + std * draw(torch.randn)""",
    "trunc_normal": """

        def trunc_normal(mean, std, low, high):  # inverse-CDF sampling, as torch.nn.init
            lo_cdf, hi_cdf = (torch.special.ndtr((b - mean) / std) for b in (low, high))
            u = draw(torch.rand)
            sample = mean + std * torch.special.ndtri(lo_cdf + (hi_cdf - lo_cdf) * u)
            return torch.minimum(torch.maximum(sample, low), high)""",
    "clip": """

        def clip(x, lo, hi):
            return torch.minimum(torch.maximum(x, lo), hi)""",
    "where": """

        def where(cond, a, b):
            return torch.where(cond != 0, a, b)""",
    "not": """

        def not_(x):
            return (x == 0).to(x.dtype)""",
    "compare": """

        def mask(test, a, b):  # a comparison as 1.0 / 0.0 in a's dtype
            return test(a, b).to(a.dtype)""",
}


class _Translator:
    """Turns a parsed formula's nodes into Python expressions over torch tensors."""

    def __init__(self):
        self.used: set[str] = set()
        self.bound: dict[str, str] = {}

    def node(self, node) -> str:
        match node:
            case Num(value):
                return f"c({float(value)!r})"
            case Name(name):
                return self.name(name)
            case Neg(operand):
                return f"(-{self.node(operand)})"
            case Binary(op, left, right):
                return self.binary(op, self.node(left), self.node(right))
            case Call(name, args):
                return self.call(name, [self.node(a) for a in args])
        raise TypeError(f"unknown formula node {node!r}")

    def name(self, name: str) -> str:
        if name in self.bound:
            return self.bound[name]
        if name == "w":
            return "(w[start:stop] if shape else w).detach().to(device=device, dtype=work)"
        if name in ("i", "j"):
            return f"index({0 if name == 'i' else 1})"
        return f"c(names[{name!r}])"

    def binary(self, op: str, left: str, right: str) -> str:
        if op in _COMPARE:
            self.used.add("compare")
            return f"mask(torch.{_COMPARE[op]}, {left}, {right})"
        if op in _LOGIC:
            self.used.add("compare")
            return f"mask(torch.{_LOGIC[op]}, {left}, {right})"
        return f"({left} {op} {right})"

    def call(self, name: str, args: list[str]) -> str:
        if name in _LOCAL:
            self.used.add(name)
            return f"{'not_' if name == 'not' else name}({', '.join(args)})"
        return f"{_TORCH[name]}({', '.join(args)})"


def formula_function(expr: str, name: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """The source of ``def name(w, generator, step)`` computing the formula ``expr``."""
    program = parse_program(expr, limits)
    t = _Translator()
    lines = []
    for bound, node in program.bindings:
        code = t.node(node)  # translated before the name is bound: it may not refer to itself
        t.bound[bound] = f"v_{bound}"
        lines.append(f"        v_{bound} = {code}")
    result = t.node(program.body)
    helpers = "".join(_HELPER_CODE[h] for h in sorted(t.used))
    return _BODY.format(
        name=name,
        expr=repr(expr).replace('"""', "'''"),
        helpers=helpers,
        lines="\n".join(lines),
        result=result,
    )


# --- the short form: a few lines of torch, for a tensor the explorer evaluates in one chunk ---

_METHOD = {f: f for f in ("abs", "sqrt", "exp", "log", "sign", "tanh", "sin", "cos", "floor")}
_METHOD["round"] = "round"
_SHAPE_NAMES = {
    "fan_in": "w[0].numel() if w.dim() > 1 else w.numel()",
    "fan_out": "w[:, 0].numel() if w.dim() > 1 else w.numel()",
    "numel": "w.numel()",
    "ndim": "w.dim()",
    "rows": "w.shape[0] if w.dim() else 1",
    "cols": "w.shape[1] if w.dim() > 1 else 1",
    "pi": "math.pi",
    "e": "math.e",
}
_INDEX = {
    "i": "torch.arange(w.shape[0], dtype=torch.float32, device=w.device)"
    ".view(-1, *[1] * (w.dim() - 1)) if w.dim() else torch.tensor(0.0)",
    "j": "torch.arange(w.shape[1], dtype=torch.float32, device=w.device)"
    ".view(1, -1, *[1] * (w.dim() - 2)) if w.dim() > 1 else torch.tensor(0.0)",
}
_SHORT_HEAD = '''
def {name}(w, g):
    """{expr}  (in float32, drawing from g)"""
'''


class _Short:
    """Translates a formula into torch expressions: literals stay Python numbers (torch casts
    them to float32), operations between two literals are folded in float32 here, the names of
    the shape are 0-d float32 tensors, and each statement draws at most once, in order."""

    def __init__(self):
        self.names: list[str] = []  # shape names used, in order of first use
        self.lines: list[str] = []
        self.hoist = False  # this statement draws more than once: each draw on its own line
        self.temps = 0
        self.bound: set[str] = set()  # names of the leading assignments

    def node(self, node) -> tuple[str, float | None]:
        """(Python text, the folded value when the node is a constant)."""
        match node:
            case Num(value):
                return _literal(value), float(torch.tensor(value, dtype=torch.float32))
            case Name(name):
                return self.name(name), None
            case Neg(operand):
                text, value = self.node(operand)
                return (_literal(-value), -value) if value is not None else (f"(-{text})", None)
            case Binary(op, left, right):
                return self.binary(op, self.node(left), self.node(right))
            case Call(name, args):
                return self.call(name, [self.node(a) for a in args])
        raise TypeError(f"unknown formula node {node!r}")

    def name(self, name: str) -> str:
        if name == "w" or name in self.bound:
            return name
        if name not in self.names:
            self.names.append(name)
        return name

    def binary(self, op: str, left, right) -> tuple[str, float | None]:
        (a, va), (b, vb) = left, right
        if va is not None and vb is not None:
            return _fold(op, va, vb)
        if op in _COMPARE:
            return f"({a} {op} {b}).float()", None
        if op in _LOGIC:
            return f"torch.{_LOGIC[op]}({_tensor(a, va)}, {_tensor(b, vb)}).float()", None
        return f"({a} {op} {b})", None

    def call(self, name: str, args: list) -> tuple[str, float | None]:
        texts = [t for t, _ in args]
        if name in ("uniform", "normal"):
            return self.draw(name, args), None
        if name == "trunc_normal":
            return self.trunc_normal(args), None
        if name == "where":
            cond = texts[0]
            cond = cond[1 : -len(").float()")] if cond.endswith(").float()") else f"{cond} != 0"
            return f"torch.where({cond}, {texts[1]}, {texts[2]})", None
        if name == "clip":
            return f"{_tensor(*args[0])}.clamp({texts[1]}, {texts[2]})", None
        if name in ("min", "max"):
            fn = "minimum" if name == "min" else "maximum"
            return f"torch.{fn}({_tensor(*args[0])}, {_tensor(*args[1])})", None
        if name == "not":
            return f"({texts[0]} == 0).float()", None
        return f"{_tensor(*args[0])}.{_METHOD[name]}()", None

    def trunc_normal(self, args: list) -> str:
        """Inverse-CDF sampling, as torch.nn.init.trunc_normal_: its arguments named first."""
        mean, std, low, high = (self.temp(*arg) for arg in args)
        self.temps += 1
        n = self.temps
        self.lines += [
            f"    lo{n} = torch.special.ndtr(({low} - {mean}) / {std})",
            f"    hi{n} = torch.special.ndtr(({high} - {mean}) / {std})",
            f"    r{n} = torch.rand(w.shape, generator=g, device=w.device)",
            f"    t{n} = {mean} + {std} * torch.special.ndtri(lo{n} + (hi{n} - lo{n}) * r{n})",
        ]
        return f"torch.minimum(torch.maximum(t{n}, {low}), {high})"

    def temp(self, text: str, value: float | None) -> str:
        """A value as a name: a constant as a float32 tensor, an expression on a line of its own."""
        if value is not None:
            return _tensor(text, value)
        if text.isidentifier():
            return text
        self.temps += 1
        self.lines.append(f"    v{self.temps} = {text}")
        return f"v{self.temps}"

    def draw(self, name: str, args: list) -> str:
        """A fresh draw, inline when it is its statement's only one, else on a line of its own
        before the statement, so that the draws come in the explorer's order."""
        (a, va), (b, vb) = args
        sample = "torch.rand" if name == "uniform" else "torch.randn"
        fresh = f"{sample}(w.shape, generator=g, device=w.device)"
        if self.hoist:
            self.temps += 1
            self.lines.append(f"    r{self.temps} = {fresh}")
            fresh = f"r{self.temps}"
        if (va, vb) == (0.0, 1.0):
            return fresh  # 0 + 1 * x is x (a -0.0 draw would read +0.0; == holds)
        if name == "uniform":
            span = _fold("-", vb, va)[0] if va is not None and vb is not None else f"({b} - {a})"
            return f"({a} + {span} * {fresh})"
        return f"({a} + {b} * {fresh})"


def _fold(op: str, a: float, b: float) -> tuple[str, float]:
    """An operation between two constants, computed in float32 as the explorer does."""
    x, y = (torch.tensor(v, dtype=torch.float32) for v in (a, b))
    ops = {"+": torch.add, "-": torch.sub, "*": torch.mul, "/": torch.div, "**": torch.pow}
    if op in ops:
        value = ops[op](x, y)
    elif op in _COMPARE:
        value = getattr(torch, _COMPARE[op])(x, y).float()
    else:
        value = getattr(torch, _LOGIC[op])(x, y).float()
    return _literal(float(value)), float(value)


def _literal(value: float) -> str:
    """A number as short as it reads back exactly: ``10``, ``0.5``, ``0.6666666865348816``."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def _tensor(text: str, value: float | None) -> str:
    """A constant as a float32 0-d tensor where a function needs a tensor."""
    return f"torch.tensor({float(value)!r})" if value is not None else text


def _draws(node) -> int:
    match node:
        case Neg(operand):
            return _draws(operand)
        case Binary(_, left, right):
            return _draws(left) + _draws(right)
        case Call(name, args):
            return (name in DRAWN) + sum(_draws(a) for a in args)
    return 0


DRAWN = ("uniform", "normal", "trunc_normal")


def formula_short(expr: str, name: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """The source of ``def name(w, g)``: the formula as a few lines of torch, equal to the
    explorer's values bit for bit when the tensor is evaluated in one chunk."""
    program = parse_program(expr, limits)
    t = _Short()
    body: list[str] = []
    for bound, node in program.bindings:
        t.hoist, t.lines = _draws(node) > 1, []
        text, value = t.node(node)
        body += t.lines + [f"    {bound} = {_tensor(text, value)}"]
        t.bound.add(bound)
    t.hoist, t.lines = _draws(program.body) > 1, []
    text, value = t.node(program.body)
    body += t.lines + [f"    return {_tensor(text, value) if value is not None else text}"]
    head = [
        f"    {n} = {_INDEX[n]}"
        if n in _INDEX
        else f"    {n} = torch.tensor(float({_SHAPE_NAMES[n]}))"
        for n in t.names
    ]
    code = _SHORT_HEAD.format(name=name, expr=repr(expr)[1:-1].replace('"""', "'''"))
    return code + "\n".join(head + [_unparen(line) for line in body]) + "\n"


def _unparen(line: str) -> str:
    """``x = (a + b)`` reads as ``x = a + b``: drop one pair of outer parentheses."""
    head, sep, rest = line.partition(" = ") if " = " in line else line.partition("return ")
    if rest.startswith("(") and rest.endswith(")") and _balanced(rest[1:-1]):
        return head + sep + rest[1:-1]
    return line


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += (char == "(") - (char == ")")
        if depth < 0:
            return False
    return depth == 0


def formula_lines(expr: str, access: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """The formula applied to the tensor at ``access`` (``net[0].weight``), as a few lines of
    torch: a generator seeded from torch's global one (as the explorer seeds each formula),
    the formula's statements, and the copy into the tensor."""
    seed = "g = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))"
    short = formula_short(expr, "formula", limits)
    body = [line.removeprefix("    ") for line in short.split('"""')[-1].strip("\n").splitlines()]
    *steps, last = body
    return "\n".join(
        [seed, f"w = {access}", *steps, f"{access}.data.copy_({last.removeprefix('return ')})"]
    )
