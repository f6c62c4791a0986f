"""What the chapter's five editions teach beyond names, as each edition's own code.

The gradient before a backward pass, value edits (``+= 1``, DJL's ``addi``/``divi``/``set``,
TensorFlow's ``.assign``), the custom ``my_init`` written as each framework's initializer
class, what ``my_init`` prints, and the evidence for the exercise "why is sharing parameters a
good idea?". Every snippet is quoted from the seeds (tests/test_editions.py checks each line).

Example::

    where = places(net)["0.weight"]
    edit_lines(where, "divide", 9, None)[Framework.DJL]
    # 'net.getChildren().valueAt(0).getParameters().valueAt(0).getArray().divi(9)'
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from explorer.editions.places import Framework, Place
from explorer.engine.uses import uses_sum_error
from explorer.init.initializers import MY_INIT as CHAPTER_MY_INIT
from explorer.session.ops import EDIT_OPERATORS
from explorer.view.tree import ParamTree

__all__ = [
    "MY_INIT",
    "MY_INIT_FORMULA",
    "MY_INIT_PARTS",
    "SAFE_EDITS",
    "DJL_GRADIENTS",
    "SharingEvidence",
    "edit_lines",
    "gradient_before_backward",
    "init_prints",
    "sharing_evidence",
    "summed_gradient",
]

F = Framework
_SIGNS = {"add": "+", "multiply": "*", "divide": "/"}


def gradient_before_backward(where: dict[Framework, Place]) -> dict[Framework, tuple[str, str]]:
    """What each edition shows for a parameter's gradient before a backward pass: (code, text)."""
    out = {}
    for fw, place in where.items():
        if place.missing:
            out[fw] = ("", f"no counterpart: {place.missing}")
        elif fw == F.PYTORCH:
            out[fw] = (f"{place.access[0]}.grad", "is None")
        elif fw == F.MXNET:
            out[fw] = (f"{place.access[0]}.grad()", "is all zeros, with the weight's shape")
        elif fw == F.DJL:
            out[fw] = (
                f"{place.values}.getGradient()",
                f"is all zeros, with the weight's shape. {DJL_GRADIENTS}",
            )
        elif fw == F.KERAS:
            out[fw] = ("", "the TensorFlow edition does not look at gradients here")
        else:
            grads = "jax.grad(loss)(params)" + place.values.removeprefix("params")
            out[fw] = (
                grads,
                "is how JAX gives them: it keeps no gradient with the parameters, the grad "
                "transformation of a loss function returns them",
            )
    return out


# DJL's gradient API as its English seed names it (pre-0.11 names, with today's beside them).
DJL_GRADIENTS = (
    "Parameter.requireGradient() (requiresGradient() since DJL 0.11) says whether it needs a "
    "gradient, set on the NDArray with attachGradient() (setRequiresGradient(true) since 0.11); "
    "the gradient is NDArray.getGradient(), and backward runs inside a GradientCollector: "
    "try (GradientCollector gc = Engine.getInstance().newGradientCollector()) "
    "{ gc.backward(loss); }"
)


def summed_gradient(where: dict[Framework, Place]) -> dict[Framework, tuple[str, str]]:
    """Where each edition keeps the summed gradient of a tied layer's uses: (code, text).

    The seeds name ``shared.params.grad()`` (Gluon) and ``shared.getGradient()`` (DJL); neither
    exists (a ParameterDict has no ``grad()``, a Block no ``getGradient()``), so the working
    calls are given with that note."""
    out = {}
    for fw, place in where.items():
        if place.missing:
            out[fw] = ("", f"no counterpart: {place.missing}")
        elif fw == F.PYTORCH:
            out[fw] = (f"{place.access[0]}.grad", "one tensor for every alias: the sum of the uses")
        elif fw == F.MXNET:
            out[fw] = (
                f"{place.access[0]}.grad()",
                "the same Parameter in both layers, one buffer holding the sum (the seed's "
                "shared.params.grad() does not exist: a ParameterDict has no grad(); "
                "shared.weight.grad() is this one)",
            )
        elif fw == F.DJL:
            out[fw] = (
                f"{place.values}.getGradient()",
                "the NDArray of the block added twice (the seed's shared.getGradient() does not "
                "exist: it is shared.getParameters().valueAt(0).getArray().getGradient())",
            )
        elif fw == F.KERAS:
            out[fw] = (
                "tape.gradient(loss, net.trainable_variables)",
                "returns one gradient for the one variable of the layer added twice",
            )
        else:
            out[fw] = (
                "jax.grad(loss)(params)" + place.values.removeprefix("params"),
                "one entry for the layer stored once: the sum over its uses",
            )
    return out


def edit_lines(
    where: dict[Framework, Place], how: str, value: float, index: tuple[int, ...] | None
) -> dict[Framework, str]:
    """One value edit (set, add, multiply, divide; one element or all) in every edition."""
    return {fw: _edit_line(place, how, value, index) for fw, place in where.items()}


def _edit_line(place: Place, how: str, value: float, index: tuple[int, ...] | None) -> str:
    if place.missing:
        return f"# no counterpart: {place.missing}"
    v = f"{value:g}"
    w = place.values
    fw = place.framework
    if fw in (F.PYTORCH, F.MXNET):
        at = ", ".join(map(str, index)) if index else ":"
        return f"{w}[{at}] {EDIT_OPERATORS[how]} {v}"
    if fw == F.DJL:
        if index is None:
            whole = {"add": "addi", "multiply": "muli", "divide": "divi"}
            return f"{w}.muli(0).addi({v})" if how == "set" else f"{w}.{whole[how]}({v})"
        at = ", ".join(map(str, index))
        if how == "set":
            return f"{w}.set(new NDIndex({at}), {v})"
        return f"{w}.set(new NDIndex({at}), {w}.getFloat({at}) {_SIGNS[how]} {v})"
    if fw == F.KERAS:
        if index is None:
            if how == "set":
                return f"{w}.assign(tf.fill({w}.shape, {float(value)!r}))"
            return f"{w}[:].assign({w} {_SIGNS[how]} {v})"
        cell = f"{w}[{', '.join(map(str, reversed(index) if place.transposed else index))}]"
        return f"{cell}.assign({v})" if how == "set" else f"{cell}.assign({cell} {_SIGNS[how]} {v})"
    return "# the JAX edition has no cell that changes values"


# How each edition says to change values safely: its own sentences, quoted.
SAFE_EDITS = {
    F.PYTORCH: ("The PyTorch edition edits the values through .data: net[0].weight.data[:] += 1",),
    F.MXNET: (
        "A note for advanced users: if you want to adjust parameters within an autograd scope, "
        "you need to use set_data to avoid confusing the automatic differentiation mechanics.",
    ),
    F.DJL: (
        "A note for advanced users: you cannot directly modify parameters within a "
        "GarbageCollector scope. You must modify them outside the GarbageCollector scope to "
        "avoid confusing the automatic differentiation mechanics.",
        "高级用户请注意:不能在GarbageCollector范围内调整参数,以避免误导自动微分机制。",
        "'__'i() is an inplace operation to modify the original NDArray",
    ),
    F.KERAS: ("The TensorFlow edition writes into a variable with .assign",),
    F.FLAX: ("The JAX edition has no cell that changes values.",),
}

MY_INIT_FORMULA = "u = uniform(-10, 10); where(abs(u) >= 5, u, 0)"

MY_INIT = {
    F.PYTORCH: CHAPTER_MY_INIT + "\n\nnet.apply(my_init)",
    F.MXNET: """class MyInit(init.Initializer):
    def _init_weight(self, name, data):
        print('Init', name, data.shape)
        data[:] = np.random.uniform(-10, 10, data.shape)
        data *= np.abs(data) >= 5

net.initialize(MyInit(), force_reinit=True)""",
    F.KERAS: """class MyInit(tf.keras.initializers.Initializer):
    def __call__(self, shape, dtype=None):
        data=tf.random.uniform(shape, -10, 10, dtype=dtype)
        factor=(tf.abs(data) >= 5)
        factor=tf.cast(factor, tf.float32)
        return data * factor

net = tf.keras.models.Sequential([
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(
        4,
        activation=tf.nn.relu,
        kernel_initializer=MyInit()),
    tf.keras.layers.Dense(1),
])""",
    F.DJL: """static class MyInit implements Initializer {
    public MyInit() {}
    @Override
    public NDArray initialize(NDManager manager, Shape shape, DataType dataType) {
        System.out.printf("Init %s\\n", shape.toString());
        NDArray data = manager.randomUniform(-10, 10, shape, dataType);
        NDArray absGte5 = data.abs().gte(5);
        return data.mul(absGte5);
    }
}

net.setInitializer(new MyInit(), Parameter.Type.WEIGHT);""",
    F.FLAX: "# The JAX edition has no section on initialization.",
}

# The formula's two steps, and the line of each edition's class that does each.
MY_INIT_PARTS = [
    (
        "u = uniform(-10, 10)",
        {
            F.PYTORCH: "nn.init.uniform_(m.weight, -10, 10)",
            F.MXNET: "data[:] = np.random.uniform(-10, 10, data.shape)",
            F.KERAS: "data=tf.random.uniform(shape, -10, 10, dtype=dtype)",
            F.DJL: "NDArray data = manager.randomUniform(-10, 10, shape, dataType);",
        },
    ),
    (
        "where(abs(u) >= 5, u, 0)",
        {
            F.PYTORCH: "m.weight.data *= m.weight.data.abs() >= 5",
            F.MXNET: "data *= np.abs(data) >= 5",
            F.KERAS: "return data * factor",
            F.DJL: "return data.mul(absGte5);",
        },
    ),
    (
        "on the weights only (target *.weight)",
        {
            F.PYTORCH: "nn.init.uniform_(m.weight, -10, 10)",
            F.MXNET: "def _init_weight(self, name, data):",
            F.KERAS: "kernel_initializer=MyInit()),",
            F.DJL: "net.setInitializer(new MyInit(), Parameter.Type.WEIGHT);",
        },
    ),
]


def init_prints(
    module: nn.Module, where: dict[str, dict[Framework, Place]]
) -> dict[Framework, str]:
    """What each edition's ``my_init`` prints on this model: one line per dense weight."""
    weights = []
    seen: set[int] = set()
    for name, p in module.named_parameters(remove_duplicate=False):
        owner = module.get_submodule(name.rpartition(".")[0]) if "." in name else module
        if isinstance(owner, nn.Linear) and name.endswith("weight") and id(p) not in seen:
            seen.add(id(p))
            weights.append((name, where[name]))
    out = {F.PYTORCH: [], F.MXNET: [], F.DJL: []}
    for _, place in weights:
        shape = place[F.PYTORCH].shape
        dims = ", ".join("?" if d is None else str(d) for d in shape)
        out[F.PYTORCH].append(f"Init weight torch.Size([{dims}])")
        if not place[F.MXNET].missing:
            out[F.MXNET].append(f"Init {place[F.MXNET].name} ({dims})")
        if not place[F.DJL].missing:
            out[F.DJL].append(f"Init ({dims})")
    return {fw: "\n".join(lines) for fw, lines in out.items()}


@dataclass(frozen=True)
class SharingEvidence:
    """What tying saves and how its gradients add up, measured on one model."""

    groups: tuple[tuple[str, ...], ...]  # the names of each tied tensor
    unique_elements: int  # parameters(): each tensor once
    state_dict_elements: int  # state_dict(): every name
    uses: tuple[int, ...]  # per group: how many calls used it in the last forward (0: no run)
    sum_error: tuple[float | None, ...]  # per group: max |use 1 + use 2 + … − .grad|

    @property
    def saved(self) -> int:
        """Elements that the aliases would hold if they were separate tensors."""
        return self.state_dict_elements - self.unique_elements

    def __repr__(self) -> str:
        return f"SharingEvidence({len(self.groups)} groups, saves {self.saved:,} elements)"


def sharing_evidence(tree: ParamTree, last_run=None) -> SharingEvidence | None:
    """The tied groups' counts and, after a backward pass, the per-use gradient sums."""
    if not tree.tied_groups:
        return None
    counts = tree.counts()
    groups = tuple(tuple(sorted(g, key=list(tree.params).index)) for g in tree.tied_groups)
    uses, errors = [], []
    for names in groups:
        grads = last_run.grad_by_use.get(names[0], []) if last_run is not None else []
        uses.append(len(grads))
        grad = tree.tensor(names[0]).grad
        ok = grads and grad is not None and all(isinstance(g, torch.Tensor) for g in grads)
        errors.append(uses_sum_error(grads, grad) if ok else None)
    return SharingEvidence(
        groups, counts.unique_elements, counts.state_dict_elements, tuple(uses), tuple(errors)
    )
