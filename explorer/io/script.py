"""The PyTorch code behind the current state: one runnable script, and one line per action.

``to_script(experiment)`` writes a plain PyTorch script (no ``import explorer``) that does
what ``explorer.session.state.realize`` does, step by step and in the same order, so that on the
CPU it rebuilds the same model with bit-identical values:

1. build the model under ``torch.manual_seed(seed)``, constructing the layers in the
   builder's order (a named block where it first appears, a ``shared`` block as the same
   object, ``tie`` as an attribute assignment afterwards);
2. run the seeded first forward pass that gives lazy layers their shapes;
3. apply the rules under ``torch.manual_seed(seed)``: for each rule, each tensor it sets,
   in ``named_parameters`` order, with the ``torch.nn.init`` call of the initializer
   registry; ``default`` as each owning layer's ``reset_parameters`` (keeping the
   parameters the rule does not target); a formula as a generated function;
4. cast to the dtype; replay the value edits (``net[0].weight.data[0, 0] = 42``), moves and
   training runs; and run the batch forward (and backward).

The small ``*_line`` functions give the line of PyTorch that one action of the app does.

Example::

    Path("tied.py").write_text(to_script(Experiment.from_preset("tied")))
    # then, in a shell: python tied.py   (the same values as realize() gives)
"""

from __future__ import annotations

import builtins
import inspect
import keyword
import re
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from explorer.core.devices import DTYPES
from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.core.pycode import number_text
from explorer.engine import tasks
from explorer.engine.run import InputKind
from explorer.engine.train import STEP_SEED_HIGH, draws_random, optimizer_line
from explorer.init.formula import parse_formula
from explorer.init.formula_code import FORMULA_HELPERS, formula_function, formula_short
from explorer.init.initializers import MY_INIT, pytorch_code
from explorer.init.rules import check_rules, matches
from explorer.session.experiment import Experiment, Ran, check_experiment
from explorer.session.ops import OPS
from explorer.spec.blocks import BLOCKS, Get
from explorer.spec.build import build
from explorer.spec.presets import PRESETS
from explorer.spec.validate import SpecInfo, validate
from explorer.view.tree import inspect as inspect_tree

__all__ = [
    "to_script",
    "CUSTOM",
    "edit_line",
    "init_lines",
    "grad_line",
    "forward_lines",
    "move_line",
    "optimizer_line",
    "train_lines",
]

_DTYPE_CODE = {name: f"torch.{name}" for name in DTYPES}


# --- one line per action ---


def edit_line(access: str, how: str, value: float, index=None) -> str:
    """``net[0].weight.data[0, 0] = 42``, ``+= 1``, ``*= 2`` or ``/= 9`` (``[:]`` for all)."""
    return OPS["edit"].code({"how": how, "value": value, "index": index}, access)


def init_lines(rule: Mapping, access: str) -> str:
    """The ``torch.nn.init`` call(s) a checked rule makes on the tensor at ``access``."""
    return pytorch_code(rule, access)


def grad_line(access: str) -> str:
    """Where the gradient of a parameter is: ``net[2].weight.grad``."""
    return f"{access}.grad"


def forward_lines(root: str = "net", loss: str = "sum", backward: bool = True) -> str:
    """The forward (and backward) pass of the app's run buttons."""
    call = {
        "sum": f"loss = {root}(X).sum()",
        "mse": f"output = {root}(X)\nloss = F.mse_loss(output, torch.zeros_like(output))",
        "cross_entropy": f"output = {root}(X)\n"
        "loss = F.cross_entropy(output.flatten(0, -2), target)  # random class ids",
    }[loss]
    return call + ("\nloss.backward()" if backward else "")


def move_line(root: str, device: str, dtype: str) -> str:
    """``net.to(device="cuda:0", dtype=torch.float64)``."""
    return OPS["move"].code({"device": device, "dtype": dtype}, root)


_LOSS_CODE = {
    "mse": "F.mse_loss({out}, {y})",
    "bce": "F.binary_cross_entropy_with_logits({out}, {y})",
    "cross_entropy": "F.cross_entropy({out}.flatten(0, -2), {y}.flatten())",
}
_TASK_LOSS = {"regression": "mse", "teacher": "mse", "moons": "cross_entropy"}


def train_lines(op: Mapping, root: str = "net", loss: str | None = None) -> str:
    """The training loop a train op runs, as a student would write it (batches elided)."""
    loss = loss or _TASK_LOSS.get(op["task"], "cross_entropy")
    call = _LOSS_CODE[loss].format(out=f"{root}(X)", y="y")
    return "\n".join(
        [
            optimizer_line(op, root),
            f"for step in range({op['steps']}):",
            f"    X, y = batch({op['batch_size']})  # {op['task']} examples, drawn with the seed",
            "    opt.zero_grad()",
            f"    loss = {call}",
            "    loss.backward()",
            "    opt.step()",
        ]
    )


# --- the model's construction, in the builder's order ---

# The layers a spec can name that torch.nn does not have, copied into the script.
CUSTOM = {kind: bt.custom.__name__ for kind, bt in BLOCKS.items() if bt.custom is not None}
_TAKEN = frozenset({"net", "torch", "nn", "F", "math", "OrderedDict", "X", "data", "opt", "loss"})


class _Structure:
    """Writes the model's construction as one expression, in the builder's order."""

    def __init__(self, info: SpecInfo, root: str):
        self.info, self.root = info, root
        self.variables: dict[str, str] = {}  # block name -> its Python variable
        self.classes: set[str] = set()
        self.ties: list[tuple[str, str, str, str]] = []  # holder, attribute, block, parameter
        self.functions: list[str] = []  # one function per repeated block, as the chapter's block1

    def block(self, spec: Mapping, path: str, access: str) -> str:
        name = spec.get("name")
        if spec["type"] == "shared":
            return self.named(spec["ref"])
        if name is not None and name in self.variables:
            return self.variables[name]
        code = self._make(spec, path, access)
        if name is not None:
            self.variables[name] = self._variable(name)
            code = f"({self.variables[name]} := {code})"
        for own, target in (spec.get("tie") or {}).items():
            block, param = target.split(".")
            self.ties.append((access, own, block, param))
        return code

    def named(self, name: str) -> str:
        """A named block: its variable, or its construction where it first appears."""
        if name in self.variables:
            return self.variables[name]
        path = self.info.name_paths[name]
        return self.block(self.info.named[name], path, f"<{name}>")

    def _variable(self, name: str) -> str:
        taken = name in _TAKEN or name == self.root or keyword.iskeyword(name)
        taken = taken or hasattr(builtins, name) or name in CUSTOM.values()
        return f"{name}_" if taken else name

    def _make(self, spec: Mapping, path: str, access: str) -> str:
        kind = spec["type"]
        bt = BLOCKS[kind]
        v = bt.get(spec)
        if kind in CUSTOM:
            self.classes.add(kind)
        if kind == "sequential":
            return self._sequential(spec, path, access)
        if kind == "repeat":
            return self._repeat(spec, path, access, v)
        if kind == "residual":
            where = f"{path}.block".lstrip(".")
            return f"Residual({self.block(spec['block'], where, f'{access}.block')})"
        return bt.emit(v, self.info.shapes.get(path, {}))

    def _sequential(self, spec: Mapping, path: str, access: str) -> str:
        where = f"{path}.children".lstrip(".")
        parts, keys = [], []
        for i, child in enumerate(spec["children"]):
            keys.append(child.get("key", str(i)))
            parts.append(self.block(child, f"{where}[{i}]", f"{access}[{i}]"))
        if keys == [str(i) for i in range(len(keys))]:
            return _call("nn.Sequential(", parts, ")")
        pairs = [f"({k!r}, {p})" for k, p in zip(keys, parts, strict=True)]
        return _call("nn.Sequential(OrderedDict([", pairs, "]))")

    def _repeat(self, spec: Mapping, path: str, access: str, v: Get) -> str:
        where = f"{path}.block".lstrip(".")
        times, key_format = v("times"), spec.get("key_format") or "{i}"
        keys = [key_format.replace("{i}", str(i)) for i in range(times)]
        if _refers(spec["block"]):  # unrolled: a named block is built once, then reused
            parts = [self.block(spec["block"], where, f"{access}[{i}]") for i in range(times)]
        else:
            child = self._function(self.block(spec["block"], where, f"{access}[i]"))
            parts = None
        if keys == [str(i) for i in range(times)]:
            if parts is None:
                return f"nn.Sequential(*[{child} for i in range({times})])"
            return _call("nn.Sequential(", parts, ")")
        if parts is None:
            key = f"{key_format!r}.replace('{{i}}', str(i))"
            return f"nn.Sequential(OrderedDict(({key}, {child}) for i in range({times})))"
        pairs = [f"({k!r}, {p})" for k, p in zip(keys, parts, strict=True)]
        return _call("nn.Sequential(OrderedDict([", pairs, "]))")

    def _function(self, body: str) -> str:
        """A function that builds one copy of a repeated block; returns its call."""
        name = f"block{len(self.functions) + 1}"
        body = body.replace("\n", "\n    ")
        self.functions.append(
            f"def {name}():\n"
            '    """A new copy of the repeated block, with its own parameters."""\n'
            f"    return {body}"
        )
        return f"{name}()"


def _call(opening: str, args: list[str], closing: str) -> str:
    """A call on one line when short, else one argument per line, indented."""
    flat = f"{opening}{', '.join(args)}{closing}"
    if len(flat) <= 72 and "\n" not in flat:
        return flat
    inner = "".join(f"\n    {arg.replace(chr(10), chr(10) + '    ')}," for arg in args)
    return f"{opening}{inner}\n{closing}"


def _refers(spec: Mapping) -> bool:
    """Whether a block (or one inside it) is shared, named or tied: then copies differ."""
    if spec.get("type") == "shared" or spec.get("tie") or spec.get("name"):
        return True
    children = list(spec.get("children") or ())
    if isinstance(spec.get("block"), Mapping):
        children.append(spec["block"])
    return any(_refers(c) for c in children)


# --- the script ---


def to_script(experiment: Experiment, limits: Limits = DEFAULT_LIMITS) -> str:
    """A runnable plain PyTorch script that rebuilds the experiment's model and values.

    On the CPU its values equal ``realize(experiment)``'s bit for bit. A model written as
    code (``experiment.source``) cannot be written out: its factory is its code.
    """
    exp = experiment
    check_experiment(exp, limits)
    if exp.source is not None:
        raise SpecError(
            f"this model came from code ({exp.source}); that file is its PyTorch code", "source"
        )
    return _Script(exp, limits).text()


class _Script:
    def __init__(self, exp: Experiment, limits: Limits):
        self.exp, self.limits = exp, limits
        self.root = exp.root_name
        meta = "meta" if exp.device == "meta" else None  # structure only: the meta budget
        self.info = validate(exp.spec, limits, input_shape=exp.lazy_features, device=meta)
        self.meta = build(exp.spec, limits, device="meta")
        self.lazy = self.was_lazy = any(is_lazy(p) for p in self.meta.parameters())
        if self.lazy and exp.materialized:
            with torch.no_grad():
                self.meta(self._meta_input())
            self.lazy = False
        self.tree = inspect_tree(self.meta, root_name=self.root)
        self.helpers: list[str] = []
        self.helper_keys: set[str] = set()
        self.formulas: dict[tuple[str, bool], str] = {}

    def text(self) -> str:
        structure = _Structure(self.info, self.root)
        model = structure.block(self.exp.spec, "", self.root)
        body = [
            *self._build(model, structure),
            *self._first_forward(),
            *self._rules(),
            *self._ops(),
            *self._mode(),
            *self._run(),
        ]
        head = self._head(structure)
        helpers = [f"\n{h}" for h in self.helpers]
        return "\n".join([*head, *helpers, "", *body]).rstrip() + "\n"

    # -- parts --

    def _head(self, structure: _Structure) -> list[str]:
        exp = self.exp
        title = f"{exp.preset} preset" if exp.preset in PRESETS else "custom model"
        lines = [
            f'"""The explorer\'s {title}, rebuilt in plain PyTorch.',
            "",
            "Generated by the Parameter Explorer's Export; run it with python. On the CPU it",
            "gives the explorer's values bit for bit: the same construction order, seeds and",
            'rules, then the edits, moves and training runs recorded since."""',
            "",
            "import math",
            "from collections import OrderedDict",
            "",
            "import torch",
            "import torch.nn.functional as F",
            "from torch import nn",
            "",
            f"SEED = {exp.seed}",
            f"DEVICE = {exp.device!r}",
        ]
        for kind in sorted(structure.classes, key=list(CUSTOM).index):
            source = inspect.getsource(BLOCKS[kind].custom)
            lines += ["", "", source.replace("SpecError(", "ValueError(").rstrip()]
        return lines

    def _build(self, model: str, structure: _Structure) -> list[str]:
        lines = [f"\n\n{f}" for f in structure.functions]
        lines += ["\n"] if structure.functions else []
        lines += [
            "",
            "# 1. Build the model; PyTorch's default initialization draws from the seed.",
            "torch.manual_seed(SEED)",
            "with torch.device(DEVICE):",
            f"    {self.root} = {model.replace(chr(10), chr(10) + '    ')}",
        ]
        for holder, own, block, param in structure.ties:
            target = structure.variables[block]
            where = re.sub(r"^<(\w+)>", lambda m: structure.variables[m[1]], holder)
            lines.append(f"{where}.{own} = {target}.{param}  # tie: one tensor, two names")
        return lines

    def _meta_input(self) -> torch.Tensor:
        exp = self.exp
        tokens = exp.input_kind == InputKind.TOKENS
        dtype = torch.int64 if tokens else torch.float32
        return torch.empty(exp.input_shape, dtype=dtype, device="meta")

    def _input(self, name: str, dtype: str) -> str:
        exp = self.exp
        shape = tuple(exp.input_shape)
        seeded = "generator=torch.Generator().manual_seed(SEED)"
        if exp.input_kind == InputKind.TOKENS:
            return f"{name} = torch.randint(0, {exp.vocab}, {shape}, {seeded}).to(DEVICE)"
        dtype_arg = "" if dtype == "float32" else f", dtype={_DTYPE_CODE[dtype]}"
        return f"{name} = torch.rand({shape}, {seeded}{dtype_arg}).to(DEVICE)"

    def _first_forward(self) -> list[str]:
        exp = self.exp
        if not (exp.materialized and self.was_lazy):
            return []
        return [
            "",
            "# 2. The first forward pass gives the lazy layers their shapes (seeded again).",
            self._input("X", "float32"),
            "torch.manual_seed(SEED)",
            "with torch.no_grad():",
            f"    {self.root}(X)",
        ]

    def _rules(self) -> list[str]:
        if self.lazy:
            return ["", "# 3. The rules wait: lazy layers have no values before a first forward."]
        rules = check_rules(self.exp.rules, self.limits)
        lines = [
            "",
            "# 3. The initializer rules, in order, seeded again.",
            "torch.manual_seed(SEED)",
        ]
        lines.append("with torch.no_grad():")
        body = []
        for i, (rule, keys) in enumerate(zip(rules, _plan(rules, self.meta), strict=True)):
            if not keys:
                continue
            target = rule.get("regex", rule.get("target"))
            body.append(f"# rule {i + 1}: {rule['init']} on {target!r}")
            body += self._rule_lines(rule, keys)
        if not body:
            body = ["pass  # no rule sets any tensor"]
        lines += [f"    {line}" for line in "\n".join(body).splitlines()]
        return lines

    def _rule_lines(self, rule: dict, keys: list[str]) -> list[str]:
        access = self.tree.access_path
        if rule["init"] == "default":
            return self._default_lines(keys)
        if rule["init"] == "formula":
            return self._formula_lines(rule["expr"], keys)
        if rule["init"] == "d2l_mixture" and keys == self._linear_weights():
            self._helper("my_init", MY_INIT)
            return [f"{self.root}.apply(my_init)  # the chapter's custom initializer"]
        return [init_lines(rule, access(key)) for key in keys]

    def _linear_weights(self) -> list[str]:
        """The first names of the Linear weights, in the order ``net.apply`` visits them."""
        first = {
            id(p): n for n, p in reversed(list(self.meta.named_parameters(remove_duplicate=False)))
        }
        return [first[id(m.weight)] for m in self.meta.modules() if type(m) is nn.Linear]

    def _formula_lines(self, expr: str, keys: list[str]) -> list[str]:
        """A formula as a few lines of torch where each tensor is evaluated in one chunk, else
        as the explorer's chunked evaluation written out."""
        access = self.tree.access_path
        formula = parse_formula(expr, self.limits)
        steps = {}
        for key in keys:
            p = self.meta.get_parameter(key)
            step = formula.chunk_rows(tuple(p.shape), p.dtype)
            steps[key] = 1 if p.dim() == 0 else min(step, p.shape[0])
        one_chunk = all(
            self.meta.get_parameter(k).dim() == 0 or steps[k] >= self.meta.get_parameter(k).shape[0]
            for k in keys
        )
        fn = self._formula(expr, one_chunk)
        short = (expr, True) in self.formulas and self.formulas[(expr, True)] == fn
        lines = []
        for key in keys:
            call = (
                f"{fn}({access(key)}, g)" if short else f"{fn}({access(key)}, g, step={steps[key]})"
            )
            lines += [
                "g = torch.Generator(DEVICE).manual_seed(int(torch.randint(0, 2**62, (1,))))",
                f"{access(key)}.copy_({call})",
            ]
        return lines

    def _default_lines(self, keys: list[str]) -> list[str]:
        """Each owning layer's reset_parameters, in named_modules order, keeping the rest."""
        targets = {id(self.meta.get_parameter(k)) for k in keys}
        lines = []
        for path, owner in self.meta.named_modules():
            own = {n: p for n, p in owner._parameters.items() if p is not None}
            if not hasattr(owner, "reset_parameters") or not targets & {
                id(p) for p in own.values()
            }:
                continue
            keep = [n for n, p in own.items() if id(p) not in targets]
            where = self.tree.access_path(path) if path else self.root
            if keep or owner._buffers:
                self._helper("reset_keeping", _RESET_KEEPING)
                lines.append(f"reset_keeping({', '.join([where, *map(repr, keep)])})")
            else:
                lines.append(f"{where}.reset_parameters()")
        return lines

    def _formula(self, expr: str, short: bool) -> str:
        """The name of the function that computes ``expr``, written once."""
        key = (expr, short)
        if key not in self.formulas:
            name = f"formula_{len(self.formulas) + 1}"
            self.formulas[key] = name
            if short:
                self.helpers.append("\n" + formula_short(expr, name, self.limits).strip("\n"))
            else:
                self._helper("formula_names", FORMULA_HELPERS)
                self.helpers.append("\n" + formula_function(expr, name, self.limits).strip("\n"))
        return self.formulas[key]

    def _helper(self, key: str, source: str) -> None:
        if key not in self.helper_keys:
            self.helper_keys.add(key)
            self.helpers.append("\n" + source.strip("\n"))

    def _ops(self) -> list[str]:
        exp = self.exp
        lines = []
        if exp.dtype != "float32":
            lines += [
                "",
                "# 4. The dtype: the rules drew in float32.",
                f"{self.root}.to({_DTYPE_CODE[exp.dtype]})",
            ]
        if not exp.ops:
            return lines
        lines += ["", "# 5. The value changes since, in order."]
        for op in exp.ops:
            if op["op"] == "edit":
                if op["name"] not in self.tree.params:
                    raise SpecError(f"no parameter is named {op['name']!r}", "ops")
                access = self.tree.access_path(op["name"])
                lines.append(edit_line(access, op["how"], op["value"], op.get("index")))
            elif op["op"] == "move":
                lines.append(move_line(self.root, op["device"], op["dtype"]))
            else:
                lines += self._train(op)
        return lines

    def _train(self, op: Mapping) -> list[str]:
        tokens = op["task"] == "next_token"
        out = tasks.output_shape(self.meta, tuple(op["input"]), tokens)
        data, loss = self._task_data(op, out)
        root = self.root
        seed_line = (
            ["    torch.manual_seed(step_seed)  # the dropout masks"]
            if draws_random(self.meta)
            else []
        )
        call = _LOSS_CODE[loss].format(out=f"{root}(X_train[index])", y="y_train[index]")
        lines = [
            "",
            f"# training: {op['task']}, {op['optimizer']} lr {number_text(op['lr'])}, "
            f"batch {op['batch_size']}, {op['steps']} steps (data seed {op['seed']}, "
            f"batch order seed {op['seed'] + 1})",
            *data,
            f"param = next({root}.parameters())",
            "X_train = X_train.to(param.device, param.dtype if X_train.is_floating_point() "
            "else X_train.dtype)",
            "y_train = y_train.to(param.device, param.dtype if y_train.is_floating_point() "
            "else y_train.dtype)",
            optimizer_line(op, root),
            f"order = torch.Generator().manual_seed({op['seed'] + 1})",
            "losses = []",
            f"for step in range({op['steps']}):",
            f"    index = torch.randint(0, {tasks.SAMPLES}, ({op['batch_size']},), "
            "generator=order)",
            f"    step_seed = int(torch.randint(0, 2**{STEP_SEED_HIGH.bit_length() - 1}, (1,), "
            "generator=order))",
            *seed_line,
            "    opt.zero_grad(set_to_none=True)",
            f"    loss = {call}",
            "    loss.backward()",
            "    opt.step()",
            "    losses.append(loss.item())",
            f"{root}.zero_grad(set_to_none=True)",
            'print(f"trained {len(losses)} steps: loss {losses[0]:.4g} -> {losses[-1]:.4g}")',
        ]
        return lines

    def _task_data(self, op: Mapping, out: tuple) -> tuple[list[str], str]:
        """The task's examples, drawn as explorer.engine.tasks.make_task draws them."""
        shape, n = tuple(op["input"]), tasks.SAMPLES
        generator = f"torch.Generator().manual_seed({op['seed']})"
        task = op["task"]
        fn = {
            "regression": tasks.regression_data,
            "moons": tasks.moons_data,
            "teacher": tasks.teacher_data,
            "next_token": tasks.next_token_data,
        }[task]
        self._helper(fn.__name__, "\n" + inspect.getsource(fn))
        if task == "regression":
            call, loss = f"regression_data({n}, {shape[0]}, {out[0]}, {generator})", "mse"
        elif task == "moons":
            call = f"moons_data({n}, {shape[0]}, {generator})"
            loss = "cross_entropy" if out[0] >= 2 else "bce"
        elif task == "teacher":
            hidden = tasks.TEACHER_HIDDEN
            call, loss = f"teacher_data({n}, {shape}, {out}, {generator}, {hidden})", "mse"
        else:
            call, loss = (
                f"next_token_data({n}, {shape[0]}, {op['vocab']}, {generator})",
                "cross_entropy",
            )
        lines = [f"X_train, y_train = {call}"]
        if loss == "bce":
            lines.append("y_train = y_train.unsqueeze(1).float()  # one logit: class 1 or not")
        return lines, loss

    def _run(self) -> list[str]:
        exp = self.exp
        if exp.ran == Ran.NONE:
            return []
        device, dtype = exp.device, exp.dtype
        for op in exp.ops:
            if op["op"] == "move":
                device, dtype = op["device"], op["dtype"]
        backward = exp.ran == Ran.BACKWARD
        root = self.root
        lines = ["", "# 6. The batch, forward" + (" and backward." if backward else " only.")]
        if device != exp.device:
            lines.append(f"DEVICE = {device!r}")
        lines += [self._input("X", dtype), f"{root}.zero_grad(set_to_none=True)"]
        forward = [f"output = {root}(X)"]
        if exp.loss == "sum":
            forward.append("loss = output.sum()")
        elif exp.loss == "mse":
            forward.append("loss = F.mse_loss(output, torch.zeros_like(output))")
        else:
            forward += [
                "logits = output.reshape(-1, output.shape[-1])",
                "target = torch.randint(0, logits.shape[1], (logits.shape[0],), "
                "generator=torch.Generator().manual_seed(0))",
                "loss = F.cross_entropy(logits, target.to(logits.device))",
            ]
        if backward:
            body = ["torch.manual_seed(SEED)", *forward, "loss.backward()"]
        else:
            body = ["torch.manual_seed(SEED)", "with torch.no_grad():"]
            body += [f"    {line}" for line in forward]
        if exp.passes > 1:
            note = "  # no zero_grad between them: .grad adds up" if backward else ""
            lines.append(f"for _ in range({exp.passes}):{note}")
            body = [f"    {line}" for line in body]
        lines += body
        lines.append('print("loss", loss.item())')
        return lines

    def _mode(self) -> list[str]:
        """``net.train()`` or ``net.eval()``, when the experiment says which."""
        if self.exp.mode is None:
            return []
        return ["", f"# The mode: {self.exp.mode}.", f"{self.root}.{self.exp.mode}()"]


_RESET_KEEPING = '''
def reset_keeping(module, *keep):
    """module.reset_parameters(), leaving its buffers and the parameters named in keep
    as they were (BatchNorm's reset_parameters also resets its running statistics)."""
    saved = {name: getattr(module, name).detach().clone() for name in keep}
    saved.update({name: b.clone() for name, b in module.named_buffers(recurse=False)})
    module.reset_parameters()
    for name, values in saved.items():
        getattr(module, name).copy_(values)
'''


def _plan(rules: list[dict], module: nn.Module) -> list[list[str]]:
    """For each rule, the first names of the tensors it sets (as explorer.init.rules plans it)."""
    names: dict[int, list[str]] = {}
    first: dict[int, str] = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
        first.setdefault(id(p), name)
    plan, set_by = [], set()
    for rule in rules:
        keys = [
            first[i]
            for i in first
            if any(matches(rule, n) for n in names[i])
            and (rule.get("force_reinit", True) or first[i] not in set_by)
        ]
        if rule.get("min_ndim"):
            keys = [k for k in keys if module.get_parameter(k).dim() >= rule["min_ndim"]]
        set_by.update(keys)
        plan.append(keys)
    return plan
