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

from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.init.formula_syntax import Binary, Call, Name, Neg, Num, parse_program

__all__ = ["formula_function", "FORMULA_HELPERS"]

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
