"""How each edition of the chapter names and reaches a parameter: PyTorch, MXNet, DJL, Keras, Flax.

The chapter is published for five frameworks. ``places(module)`` writes the PyTorch model the
way each edition writes the same net and says, for every parameter name, what that edition
calls it and the expressions that reach it. It is computed from the module, with the rules the
editions show (docs/editions.md quotes them):

- **MXNet/Gluon** fuses a ReLU into the Dense before it (``nn.Dense(8, activation='relu')``),
  so PyTorch's ``net[2]`` is Gluon's ``net[1]``. Names come from global counters per kind of
  block (``sequential0_``, ``dense0_weight``), counted in the order the blocks appear; a net
  built after another continues counting (``first={"dense": 2, "sequential": 1}``).
- **DJL** keys a SequentialBlock's children ``01Linear``, ``02LambdaBlock`` (``Activation.
  reluBlock()``), … and a parameter by joining the keys with ``_``: ``01Linear_weight``.
  ``getParameters()`` lists every parameter in order, a block added twice twice.
- **Keras** fuses the ReLU too, begins a Sequential whose first layer is a Dense with
  ``Flatten()`` (as the chapter's Keras code does, so that Dense is ``net.layers[1]``) and
  lists a layer added twice once in ``net.layers``. Its ``kernel`` is PyTorch's weight
  transposed: (in, out).
- **Flax** keeps PyTorch's positions (``nn.relu`` takes one: ``layers_2``), stores a layer
  used twice once (under its first position) and has a ``kernel`` of shape (in, out) too.

Layers outside the chapter (convolutions, embeddings, attention, …) get a ``missing`` reason.

Example::

    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    where = places(net)["2.weight"]
    where[Framework.MXNET].name       # 'dense1_weight'
    where[Framework.MXNET].access[0]  # 'net[1].weight'
    where[Framework.FLAX].access[0]   # "params['params']['layers_2']['kernel']"
"""

from __future__ import annotations

import keyword
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from torch import nn
from torch.nn.parameter import is_lazy

from explorer.spec.layers import FixedHiddenMLP, NestMLP

__all__ = ["Framework", "LABELS", "Place", "places", "listing", "lengths", "edition_names"]


class Framework(StrEnum):
    """The chapter's five editions."""

    PYTORCH = "pytorch"
    MXNET = "mxnet"
    DJL = "djl"
    KERAS = "keras"
    FLAX = "flax"


LABELS = {
    Framework.PYTORCH: "PyTorch",
    Framework.MXNET: "MXNet (Gluon)",
    Framework.DJL: "DJL",
    Framework.KERAS: "Keras (TensorFlow)",
    Framework.FLAX: "Flax (JAX)",
}

Shape = tuple[int | None, ...] | None  # None: unknown; a None dim: unknown until the first forward

# The chapter's own classes (section 5.1's exercise models): the name each edition gives each
# PyTorch attribute. The MXNet, TensorFlow and JAX classes call ``linear`` ``dense``; DJL's
# FixedHiddenMLP adds it as the child block "denseLayer" (d2l-java's model-construction).
CHAPTER_CLASSES: dict[type[nn.Module], dict[str, dict[Framework, str]]] = {
    NestMLP: {
        "net": dict.fromkeys(Framework, "net"),
        "linear": {
            Framework.PYTORCH: "linear",
            **dict.fromkeys(
                (Framework.MXNET, Framework.DJL, Framework.KERAS, Framework.FLAX), "dense"
            ),
        },
    },
    FixedHiddenMLP: {
        "linear": {
            Framework.PYTORCH: "linear",
            Framework.MXNET: "dense",
            Framework.DJL: "denseLayer",
            Framework.KERAS: "dense",
            Framework.FLAX: "dense",
        },
    },
}


@dataclass(frozen=True)
class Place:
    """Where one edition keeps one PyTorch parameter name, or why it has no counterpart."""

    framework: Framework
    name: str | None = None  # what the edition prints: dense0_weight, 01Linear_weight, kernel
    access: tuple[str, ...] = ()  # expressions that reach the parameter, the main one first
    values: str = ""  # the expression edits write to: .data, .data(), .getArray(), the Variable
    index: int | None = None  # position in the edition's flat list of parameters
    shape: Shape = None  # in the edition's layout
    transposed: bool = False  # stored as (in, out): PyTorch's weight transposed
    missing: str = ""  # why this edition has no counterpart ("" when it has one)

    def __repr__(self) -> str:
        if self.missing:
            return f"Place({self.framework}, missing)"
        return f"Place({self.framework}, {self.name}, {self.access[0] if self.access else ''})"


Walk = Callable[["_Model", str, Mapping[str, int] | None], dict[str, Place]]


def places(
    module: nn.Module, root: str = "net", first: Mapping[str, int] | None = None
) -> dict[str, dict[Framework, Place]]:
    """For every parameter name (each alias of a tied tensor), its place in each edition.

    ``root`` is the model's variable name (``net``, ``rgnet``); ``first`` the numbers MXNet's
    global counters start from when other blocks were built before (``{"dense": 2}``).
    """
    model = _Model(module)
    result: dict[str, dict[Framework, Place]] = {name: {} for name in model.names}
    for framework, walk in _WALKS.items():
        found = walk(model, root, first)
        for name in model.names:
            place = found.get(name) or Place(framework, missing=model.outside(name))
            if framework != Framework.PYTORCH and name in model.param_ties and not place.missing:
                place = Place(framework, missing=model.param_ties[name])
            result[name][framework] = place
    return result


def edition_names(
    module: nn.Module, root: str = "net", first: Mapping[str, int] | None = None
) -> dict[str, dict[Framework, str]]:
    """For every PyTorch name, what MXNet, DJL and Flax call it (``dense0_weight``,
    ``01Linear_weight``, ``layers_0/kernel``), so a filter may use any edition's names.

    Keras's ``kernel`` and ``bias`` name no layer, so they are left out."""
    found = places(module, root, first)
    editions = (Framework.MXNET, Framework.DJL, Framework.FLAX)
    return {
        name: {fw: where[fw].name for fw in editions if where[fw].name and not where[fw].missing}
        for name, where in found.items()
    }


def listing(
    module: nn.Module,
    framework: Framework,
    root: str = "net",
    first: Mapping[str, int] | None = None,
) -> str:
    """All parameters at once, as each edition's call lists them (shapes, not values).

    PyTorch ``named_parameters()``, MXNet ``print(net.collect_params())``, DJL the keys of
    ``getParameters()``, Keras the shapes of ``net.get_weights()``, Flax
    ``jax.tree_util.tree_map(lambda x: x.shape, params)``.
    """
    model = _Model(module)
    found = _WALKS[framework](model, root, first)
    if framework == Framework.DJL:
        return "\n".join(p.name for p in found.values())
    once = _once(framework, found.values())
    if framework == Framework.PYTORCH:
        return "\n".join(f"({p.name!r}, torch.Size({_dims(p.shape)}))" for p in once)
    if framework == Framework.MXNET:
        dtype = next((str(p.dtype).removeprefix("torch.") for p in module.parameters()), "")
        lines = [
            f"  Parameter {p.name} (shape={_shape_text(p.shape)}, dtype={dtype})" for p in once
        ]
        names = _MxnetNames(first)
        kind = "sequential" if isinstance(module, nn.Sequential) else type(module).__name__.lower()
        head = names.peek(kind)
        if isinstance(module, FixedHiddenMLP):  # Gluon's params.get_constant: a Constant
            lines.insert(0, f"  Constant {head}_rand_weight (shape=(20, 20), dtype={dtype})")
        return "\n".join([f"{head}_ (", *lines, ")"])
    if framework == Framework.KERAS:
        return "[" + ", ".join(_shape_text(p.shape) for p in once) + "]"
    tree: dict = {}
    for p in once:
        *keys, last = p.name.split("/")
        node = tree
        for key in keys:
            node = node.setdefault(key, {})
        node[last] = _Shaped(p.shape)
    return repr({"params": _sorted(tree)})


def _sorted(tree: dict) -> dict:
    """A nested dict with its keys in sorted order, as jax's tree functions give them back."""
    return {k: _sorted(v) if isinstance(v, dict) else v for k, v in sorted(tree.items())}


def lengths(module: nn.Module) -> dict[Framework, int | None]:
    """How many entries the model's top level has in each edition (None: not a sequential).

    PyTorch ``len(net)``, MXNet ``len(net)`` (ReLUs fused), DJL ``net.getChildren().size()``,
    Keras ``len(net.layers)`` (a layer added twice counts once; ``Flatten()`` first), Flax
    ``len(params['params'])`` (only layers with parameters, each once).
    """
    if not isinstance(module, nn.Sequential):
        return dict.fromkeys(Framework)
    model = _Model(module)
    kids = _children(module)
    fused = model.layers(module, fuse=True)
    keras = {id(c) for _, c in fused}
    flatten = 1 if fused and isinstance(fused[0][1], nn.Linear) else 0
    flax = {id(c) for _, c in kids if any(True for _ in c.parameters())}
    return {
        Framework.PYTORCH: len(module),
        Framework.MXNET: len(fused),
        Framework.DJL: len(kids),
        Framework.KERAS: flatten + len(keras),
        Framework.FLAX: len(flax),
    }


# --- the model, read once ---


class _Model:
    """The facts every edition's walk needs: names, fused ReLUs, ties between different layers."""

    def __init__(self, module: nn.Module):
        self.module = module
        self.names: list[str] = []
        owners: dict[int, set[int]] = {}
        ids: dict[str, int] = {}
        for path, owner in _paths(module):
            for local, p in owner._parameters.items():
                if p is not None:
                    name = _join(path, local)
                    self.names.append(name)
                    ids[name] = id(p)
                    owners.setdefault(id(p), set()).add(id(owner))
        split = {pid for pid, mods in owners.items() if len(mods) > 1}
        self.param_ties = {
            name: "one weight tied between two different layers: the chapter's editions tie "
            "whole layers (Gluon's params=shared.params; DJL, Keras and Flax reuse the layer)"
            for name, pid in ids.items()
            if pid in split
        }
        self.fused = _fused_relus(module)
        self._dense: dict[int, list[tuple[str, Shape]]] = {}

    def dense(self, m: nn.Linear) -> list[tuple[str, Shape]]:
        """A Linear's parameters with PyTorch's shapes, computed once per layer."""
        if id(m) not in self._dense:
            self._dense[id(m)] = _dense_params(m)
        return self._dense[id(m)]

    def layers(self, seq: nn.Sequential, fuse: bool) -> list[tuple[str, nn.Module]]:
        """A sequential's children as an edition writes them: ReLUs fused into Dense if ``fuse``."""
        kids = _children(seq)
        return [
            (key, child)
            for i, (key, child) in enumerate(kids)
            if not (fuse and i > 0 and type(child) is nn.ReLU and id(kids[i - 1][1]) in self.fused)
        ]

    def outside(self, name: str) -> str:
        """Why a parameter has no counterpart: its layer or a block above is not the chapter's."""
        chain = [self.module]
        for key in name.split(".")[:-1]:
            chain.append(chain[-1]._modules[key])
        owner = chain[-1]
        if not isinstance(owner, nn.Linear):
            return (
                f"{type(owner).__name__} is not in the chapter: its editions build nets from "
                "dense layers (Linear/Dense) in sequential blocks"
            )
        custom = next(
            type(m).__name__ for m in chain[:-1] if not isinstance(m, (nn.Sequential, *_CHAPTER))
        )
        return (
            f"this layer sits in a {custom}, a custom block: the chapter's editions write "
            "sequential blocks only"
        )


_CHAPTER = tuple(CHAPTER_CLASSES)


def _kids(m: nn.Module, framework: Framework) -> list[tuple[str, nn.Module, str]]:
    """A container's children as ``(PyTorch key, child, the edition's name)``; a Sequential's
    children are named by position (the edition's name is ""), a chapter class's by attribute."""
    if isinstance(m, nn.Sequential):
        return [(k, c, "") for k, c in _children(m)]
    names = CHAPTER_CLASSES.get(type(m), {})
    return [(k, c, names[k][framework]) for k, c in _children(m) if k in names]


def _paths(module: nn.Module, path: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Every module with its dotted path, a module used twice at each of its paths."""
    yield path, module
    for key, child in _children(module):
        yield from _paths(child, _join(path, key))


def _children(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """All children in order, a child added twice at both keys (``named_children`` skips it)."""
    return [(k, c) for k, c in module._modules.items() if c is not None]


def _fused_relus(module: nn.Module) -> set[int]:
    """Linear layers followed by a ReLU at every use: Gluon and Keras write Dense(…, 'relu')."""
    followed: dict[int, bool] = {}
    seen: set[int] = set()

    def visit(m: nn.Module) -> None:
        if id(m) in seen:
            return
        seen.add(id(m))
        kids = [c for _, c in _children(m)]
        for i, child in enumerate(kids):
            if isinstance(child, nn.Linear):
                relu = isinstance(m, nn.Sequential) and i + 1 < len(kids)
                relu = relu and type(kids[i + 1]) is nn.ReLU
                followed[id(child)] = followed.get(id(child), True) and relu
            visit(child)

    if isinstance(module, nn.Linear):
        return set()
    visit(module)
    return {lid for lid, relu in followed.items() if relu}


def _dense_params(m: nn.Linear) -> list[tuple[str, Shape]]:
    """A Linear's parameters with PyTorch's shapes; a lazy weight's input size is unknown."""
    out: list[tuple[str, Shape]] = [("weight", _linear_shape(m, "weight"))]
    if m.bias is not None:
        out.append(("bias", _linear_shape(m, "bias")))
    return out


def _linear_shape(m: nn.Linear, local: str) -> Shape:
    p = getattr(m, local)
    if not is_lazy(p):
        return tuple(p.shape)
    return (m.out_features, None) if local == "weight" else (m.out_features,)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _attr(expr: str, key: str) -> str:
    if key.isidentifier() and not keyword.iskeyword(key):
        return f"{expr}.{key}"
    return f"getattr({expr}, {key!r})"


def _t(shape: Shape) -> Shape:
    return None if shape is None else tuple(reversed(shape))


# --- one walk per edition ---


def _pytorch(model: _Model, root: str, first) -> dict[str, Place]:
    module = model.module
    index = {id(p): i for i, (_, p) in enumerate(module.named_parameters())}
    out: dict[str, Place] = {}

    def visit(m: nn.Module, path: str, expr: str) -> None:
        for local, p in m._parameters.items():
            if p is None:
                continue
            name = _join(path, local)
            shape = None if is_lazy(p) else tuple(p.shape)
            if isinstance(m, nn.Linear):
                shape = _linear_shape(m, local)
            access = (f"{expr}.{local}", f"{root}.state_dict()[{name!r}]")
            values = f"{expr}.{local}.data"
            out[name] = Place(Framework.PYTORCH, name, access, values, index[id(p)], shape)
        for i, (key, child) in enumerate(_children(m)):
            seq = isinstance(m, nn.Sequential | nn.ModuleList)
            visit(child, _join(path, key), f"{expr}[{i}]" if seq else _attr(expr, key))

    visit(module, "", root)
    return out


class _MxnetNames:
    """Gluon's global name counters: one per kind of block, counted in order of creation."""

    def __init__(self, first: Mapping[str, int] | None):
        self.count = Counter(first or {})
        self.given: dict[int, str] = {}

    def prefix(self, block: nn.Module, kind: str) -> str:
        if id(block) not in self.given:
            self.given[id(block)] = f"{kind}{self.count[kind]}_"
            self.count[kind] += 1
        return self.given[id(block)]

    def peek(self, kind: str) -> str:
        return f"{kind}{self.count[kind]}"


def _mxnet(model: _Model, root: str, first) -> dict[str, Place]:
    names = _MxnetNames(first)
    out: dict[str, Place] = {}

    def visit(m: nn.Module, path: str, expr: str) -> None:
        if isinstance(m, nn.Sequential):
            names.prefix(m, "sequential")
            for i, (key, child) in enumerate(model.layers(m, fuse=True)):
                visit(child, _join(path, key), f"{expr}[{i}]")
        elif isinstance(m, _CHAPTER):
            names.prefix(m, type(m).__name__.lower())
            for key, child, attr in _kids(m, Framework.MXNET):
                visit(child, _join(path, key), f"{expr}.{attr}")
        elif isinstance(m, nn.Linear):
            prefix = names.prefix(m, "dense")
            for local, shape in model.dense(m):
                name = prefix + local
                access = (
                    f"{expr}.{local}",
                    f"{root}.collect_params()[{name!r}]",
                    f"{expr}.params[{name!r}]",  # by name inside the layer
                )
                out[_join(path, local)] = Place(
                    Framework.MXNET, name, access, f"{expr}.{local}.data()", None, shape
                )

    visit(model.module, "", root)
    return out


def _djl(model: _Model, root: str, first) -> dict[str, Place]:
    out: dict[str, Place] = {}
    # each enclosing block's getParameters() position counter; None once a layer outside the
    # chapter (whose parameter count DJL's code would decide) came before
    blocks: list[tuple[str, list]] = []

    def visit(m: nn.Module, path: str, key: str, by_value: str, by_pair: str) -> None:
        if isinstance(m, (nn.Sequential, *_CHAPTER)):
            blocks.append((by_value, [0]))
            for n, (k, child, attr) in enumerate(_kids(m, Framework.DJL)):
                visit(
                    child,
                    _join(path, k),
                    f"{key}{n + 1:02d}{attr or _djl_class(child)}_",
                    f"{by_value}.getChildren().valueAt({n})",
                    f"{by_pair}.getChildren().get({n}).getValue()",
                )
            blocks.pop()
        elif isinstance(m, nn.Linear):
            for j, (local, shape) in enumerate(model.dense(m)):
                name = key + local
                access = [f'{root}.getParameters().get("{name}")']
                access += [
                    f"{b}.getParameters().valueAt({at[0]})" for b, at in blocks if at[0] is not None
                ]
                access += [
                    f"{by_value}.getParameters().valueAt({j})",
                    f"{by_pair}.getParameters().get({j}).getValue()",
                ]
                values = f"{by_value}.getParameters().valueAt({j}).getArray()"
                index = blocks[0][1][0] if blocks else j
                out[_join(path, local)] = Place(
                    Framework.DJL, name, tuple(access), values, index, shape
                )
                for _, at in blocks:
                    at[0] = None if at[0] is None else at[0] + 1
        elif any(True for _ in m.parameters()):
            for _, at in blocks:
                at[0] = None

    visit(model.module, "", "", root, root)
    return out


def _djl_class(block: nn.Module) -> str:
    """The class name DJL keys a child with: ``Activation.reluBlock()`` is a LambdaBlock."""
    if isinstance(block, nn.Sequential):
        return "SequentialBlock"
    if isinstance(block, nn.Linear):
        return "Linear"
    return "LambdaBlock" if type(block) is nn.ReLU else type(block).__name__


def _keras(model: _Model, root: str, first) -> dict[str, Place]:
    out: dict[str, Place] = {}
    flat: dict[int, int] = {}  # id(parameter) -> position in net.get_weights()
    known = [True]

    def visit(m: nn.Module, path: str, expr: str, flatten: bool = True) -> None:
        if isinstance(m, nn.Sequential):
            kids = model.layers(m, fuse=True)
            dense_first = kids and isinstance(kids[0][1], nn.Linear)
            start = 1 if flatten and dense_first else 0  # the chapter's Flatten() first
            index: dict[int, int] = {}  # net.layers lists a layer added twice once
            for key, child in kids:
                i = index.setdefault(id(child), start + len(index))
                visit(child, _join(path, key), f"{expr}.layers[{i}]")
        elif isinstance(m, _CHAPTER):  # a subclassed Model: its Sequential has no Flatten
            for key, child, attr in _kids(m, Framework.KERAS):
                visit(child, _join(path, key), f"{expr}.{attr}", flatten=False)
        elif isinstance(m, nn.Linear):
            for j, (local, shape) in enumerate(model.dense(m)):
                p = getattr(m, local)
                k = flat.setdefault(id(p), len(flat)) if known[0] else None
                access = (f"{expr}.weights[{j}]",)
                if k is not None:
                    access += (f"{root}.get_weights()[{k}]",)
                kernel = local == "weight"
                out[_join(path, local)] = Place(
                    Framework.KERAS,
                    "kernel" if kernel else "bias",
                    access,
                    f"{expr}.weights[{j}]",
                    k,
                    _t(shape) if kernel else shape,
                    transposed=kernel,
                )
        elif any(True for _ in m.parameters()):
            known[0] = False

    if isinstance(model.module, (nn.Sequential, *_CHAPTER)):
        visit(model.module, "", root)
    return out


def _flax(model: _Model, root: str, first) -> dict[str, Place]:
    out: dict[str, Place] = {}
    where: dict[int, tuple[str, ...]] = {}  # a layer used twice is stored once, at its first use

    def visit(m: nn.Module, path: str, keys: tuple[str, ...]) -> None:
        if isinstance(m, (nn.Sequential, *_CHAPTER)):
            for i, (key, child, attr) in enumerate(_kids(m, Framework.FLAX)):
                at = (*keys, attr or f"layers_{i}")
                visit(child, _join(path, key), where.setdefault(id(child), at))
        elif isinstance(m, nn.Linear):
            for local, shape in model.dense(m):
                kernel = local == "weight"
                leaf = "kernel" if kernel else "bias"
                expr = "params['params']" + "".join(f"[{k!r}]" for k in (*keys, leaf))
                out[_join(path, local)] = Place(
                    Framework.FLAX,
                    "/".join((*keys, leaf)),
                    (expr,),
                    expr,
                    None,
                    _t(shape) if kernel else shape,
                    transposed=kernel,
                )

    if isinstance(model.module, (nn.Sequential, *_CHAPTER)):
        visit(model.module, "", ())
    return out


_WALKS: dict[Framework, Walk] = {
    Framework.PYTORCH: _pytorch,
    Framework.MXNET: _mxnet,
    Framework.DJL: _djl,
    Framework.KERAS: _keras,
    Framework.FLAX: _flax,
}


# --- listings ---


class _Shaped:
    """A shape that prints as a tuple, with ``?`` for a size known after the first forward."""

    def __init__(self, shape: Shape):
        self.shape = shape

    def __repr__(self) -> str:
        return _shape_text(self.shape)


def _shape_text(shape: Shape) -> str:
    if shape is None:
        return "?"
    dims = ["?" if d is None else str(d) for d in shape]
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


def _dims(shape: Shape) -> str:
    return (
        "?" if shape is None else "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
    )


def _once(framework: Framework, found: Iterable[Place]) -> list[Place]:
    """Each parameter once, as the edition lists it: a tied tensor under its first name."""
    seen: dict[object, Place] = {}
    for p in found:
        if framework in (Framework.PYTORCH, Framework.KERAS):
            key = p.index if p.index is not None else p.access[0]
        else:
            key = p.name
        seen.setdefault(key, p)
    return list(seen.values())
