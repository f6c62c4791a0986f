"""Per-use gradients: each call of a module gets its own stand-in for the module's parameters.

A parameter used twice (a tied layer) then has two gradients, one per call, whose sum is
its ``.grad``; this is the chapter's "the gradients ... are added together", made visible.

While the recorder is on, a module's ``_parameters`` holds the real Parameters only during
the module's own call. Its first use of a parameter gets the Parameter itself, so a
parameter used once costs nothing and its gradient is ``.grad``, as in plain PyTorch. A
later use (a second call, or a second module sharing the tensor) gets a new leaf on the same
memory (``param.detach()`` that requires grad), and code outside every call of the module
reads a leaf of its own: autograd stores each gradient in that leaf's ``.grad``, in C++,
with no hook and no copy. After backward, ``.grad`` is the sum of the uses, one add per
extra use, as autograd's own sum would be.

Code reaches a parameter through its module (``module.weight``, ``module.parameters()``,
``state_dict``), so every such read is seen. A Python reference to the Parameter kept
somewhere else and used directly is not: its gradient lands in the first use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch import nn

from explorer.core.rebind import walk_modules
from explorer.view.reduce import colour_limit, downsample

__all__ = [
    "OUTSIDE_LABEL",
    "PerUse",
    "UseRecorder",
    "uses_sum_error",
    "use_scale",
]

OUTSIDE_LABEL = "outside its module's forward"

_UNINIT = nn.parameter.UninitializedTensorMixin
_ALL = object()  # a use whose gradient is the whole ``.grad``: the parameter's only use


def _takes_grad(param) -> bool:
    return param is not None and param.requires_grad and not isinstance(param, _UNINIT)


class _Split:
    """One parameter's ``.grad``, the gradient of each use, and the remainder (outside every
    module call); the lists of tensors and labels are made on first request."""

    def __init__(self, grad, uses: list, outside: torch.Tensor | None, describe):
        self._grad, self._uses, self._outside, self._describe = grad, uses, outside, describe
        self._parts: tuple[list[torch.Tensor], list[str]] | None = None

    def parts(self) -> tuple[list[torch.Tensor], list[str]]:
        """The gradient of each use, then the remainder if any, with their labels."""
        if self._parts is None:
            self._parts = self._make()
            self._uses = []
        return self._parts

    def _make(self) -> tuple[list[torch.Tensor], list[str]]:
        grad = self._grad
        if grad is None:
            return [], []
        parts = [
            grad if g is _ALL else g if g is not None else torch.zeros_like(grad)
            for _, _, g in self._uses
        ]
        labels = [f"call {count} of {self._describe(module)}" for module, count, _ in self._uses]
        if self._outside is not None:
            parts.append(self._outside)
            labels.append(OUTSIDE_LABEL)
        return parts, labels


class _Index:
    """Every parameter name's ``_Split``, built on the first read of any name.

    ``grads`` holds each distinct parameter's ``.grad`` as the run left it, so a later
    change to ``.grad`` (another run) changes nothing here.
    """

    def __init__(self, recorder: UseRecorder, members: list, grads: dict[int, torch.Tensor]):
        self._recorder, self._members, self._grads = recorder, members, grads
        self._splits: dict[str, _Split] | None = None

    @property
    def splits(self) -> dict[str, _Split]:
        if self._splits is None:
            self._splits = self._build()
        return self._splits

    def _build(self) -> dict[str, _Split]:
        recorder = self._recorder
        uses = recorder.uses()
        by_param: dict[int, _Split] = {}
        splits = {}
        for path, items in self._members:
            for name, param in items:
                if param is None:
                    continue
                key = id(param)
                split = by_param.get(key)
                if split is None:
                    grad, rest = self._grads[key], recorder.outside.get(key)
                    calls = uses.get(key, [])
                    if not calls and rest is None:
                        rest = grad  # no call of a module used it: .grad came from outside
                    split = by_param[key] = _Split(grad, calls, rest, recorder.describe)
                splits[f"{path}.{name}" if path else name] = split
        return splits


class PerUse(Mapping):
    """A read-only mapping from every parameter name to a list computed on first request:
    ``grad_by_use[name]`` (tensors) or ``use_labels[name]`` (strings), as ``RunResult`` has."""

    def __init__(self, index: _Index, part: int):
        self._index, self._part = index, part

    def __getitem__(self, name: str) -> list:
        return list(self._index.splits[name].parts()[self._part])

    def __iter__(self) -> Iterator[str]:
        return iter(self._index.splits)

    def __len__(self) -> int:
        return len(self._index.splits)

    def __repr__(self) -> str:
        return f"PerUse({len(self)} names)"


class _Outside(dict):
    """A module's ``_parameters`` outside the module's own calls during a run: reading a
    parameter that takes a gradient (by name, ``.values()`` or ``.items()``) gives the
    run's leaf for uses outside every call, made on the first such read."""

    def __init__(self, real: dict, leaves: dict):
        super().__init__(real)
        self._leaves = leaves  # id(param) -> (param, leaf), shared by the whole run

    def __getitem__(self, name):
        param = dict.__getitem__(self, name)
        if not (torch.is_grad_enabled() and _takes_grad(param)):
            return param
        known = self._leaves.get(id(param))
        if known is None:
            known = self._leaves[id(param)] = (param, param.detach().requires_grad_())
        return known[1]

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def values(self):
        return [self[name] for name in self]

    def items(self):
        return [(name, self[name]) for name in self]


class _Calls:
    """One wrapped module's state in a run."""

    __slots__ = ("real", "outside", "count", "solo", "first", "rnn")

    def __init__(self, real: dict, outside: _Outside, rnn: bool):
        self.real, self.outside, self.rnn = real, outside, rnn
        self.solo = True  # no parameter of it is held by another module
        self.count = 0  # calls so far
        self.first = 0  # the call that used the real parameters, when solo


class UseRecorder:
    """Gives each use of a parameter in a module call its own gradient.

    On entering, each module that holds parameters gets a wrapped ``forward`` (an instance
    attribute, so it runs after the module's own pre-hooks, e.g. a lazy layer's shaping)
    and an ``_Outside`` view as its ``_parameters``; no other module is touched. A call puts
    the real Parameters in for its duration, or new leaves where this run used them already.
    Leaving the ``with`` block puts every module back as it was; if the block raised
    nothing, each parameter's ``.grad`` becomes the sum of its uses (``.grad`` should be None
    before the backward pass, as after ``zero_grad(set_to_none=True)``). ``modules`` is
    ``walk_modules(root)`` when the caller has it already.
    """

    def __init__(self, root: nn.Module, modules: list[tuple[str, nn.Module]] | None = None):
        self.modules = walk_modules(root) if modules is None else modules
        self.outside: dict[int, torch.Tensor] = {}  # id(param) -> what reached it outside
        self._paths: dict[nn.Module, list[str]] | None = None  # made for the first label
        self._calls: dict[nn.Module, _Calls] = {}
        self._forwards: dict[nn.Module, object] = {}
        self._flat: list[nn.Parameter] = []  # each distinct parameter once, in walk order
        self._members: list[tuple[str, tuple]] = []  # (path, its _parameters' items)
        self._taken: dict[int, tuple[nn.Module, int]] = {}  # shared: the real param's call
        self._later: dict[int, list] = {}  # id(param) -> [(module, call, leaf or grad), ...]
        self._outside_leaves: dict[int, tuple] = {}  # id(param) -> (param, leaf)
        self._params: dict[int, nn.Parameter] = {}  # used more than once
        self._first_grads: dict[int, torch.Tensor | None] = {}  # their first use's gradient

    def __enter__(self) -> UseRecorder:
        """One pass over the modules: wrap each holder of parameters once (a module at two
        paths is one module), note each distinct parameter, and mark shared ones."""
        owner: dict[int, _Calls] = {}
        for path, module in self.modules:
            known = self._calls.get(module)
            if known is not None:  # the same module at a second path
                self._members.append((path, tuple(known.real.items())))
                continue
            state = module.__dict__
            real = state.get("_parameters")
            if not real:
                continue
            self._members.append((path, tuple(real.items())))
            outside = _Outside(real, self._outside_leaves)
            calls = self._calls[module] = _Calls(real, outside, isinstance(module, nn.RNNBase))
            for param in real.values():
                if param is None:
                    continue
                first = owner.get(id(param))
                if first is None:
                    owner[id(param)] = calls
                    self._flat.append(param)
                else:  # held by two modules: each call checks which use is first
                    first.solo = calls.solo = False
            self._forwards[module] = own = state.get("forward")
            state["forward"] = self._wrap(module, own, calls)
            state["_parameters"] = outside
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        for module, calls in self._calls.items():
            module.__dict__["_parameters"] = calls.real
            own = self._forwards[module]
            if own is None:
                module.__dict__.pop("forward", None)
            else:
                module.__dict__["forward"] = own
            if calls.rnn:
                module._update_flat_weights()
        if exc_type is None:
            self._settle()
        else:
            self._later = {}
        self._outside_leaves = {}

    def drop_grads(self) -> None:
        """``zero_grad(set_to_none=True)`` on every real parameter, while the run is on."""
        for param in self._flat:
            if param.grad is not None:
                param.grad = None

    def split(self) -> tuple[PerUse, PerUse]:
        """Per-use gradients and labels for every parameter name, aliases included.

        Each parameter's ``.grad`` is read now; the lists are made when a name is first read.
        """
        grads = dict(zip(map(id, self._flat), [p.grad for p in self._flat], strict=True))
        index = _Index(self, self._members, grads)
        return PerUse(index, 0), PerUse(index, 1)

    def uses(self) -> dict[int, list[tuple[nn.Module, int, object]]]:
        """Each used parameter's calls in order, with their gradients (None: none reached
        it; ``_ALL``: the whole ``.grad``, for a parameter used once)."""
        uses: dict[int, list] = {}
        for module, calls in self._calls.items():
            if calls.solo and calls.first:
                for param in calls.real.values():
                    if _takes_grad(param):
                        uses[id(param)] = [(module, calls.first, self._share(id(param)))]
        for key, (module, count) in self._taken.items():
            uses[key] = [(module, count, self._share(key))]
        for key, later in self._later.items():
            uses.setdefault(key, []).extend(later)
        return uses

    def _share(self, key: int):
        """The gradient of the real parameter's own use."""
        return self._first_grads.get(key, _ALL)

    def describe(self, module: nn.Module) -> str:
        """How a use's label names ``module``: its path, and its other paths if shared."""
        if self._paths is None:
            self._paths = {}
            for path, m in self.modules:
                self._paths.setdefault(m, []).append(path)
        first, *others = self._paths[module]
        name = "the root module" if first == "" else f"module {first}"
        return f"{name} (also at {', '.join(others)})" if others else name

    def _wrap(self, module: nn.Module, own, calls: _Calls):
        """The wrapper for ``module.forward``: the real parameters for the call's first use
        of each, new leaves for later uses; the dict before the call is put back after it."""
        state = module.__dict__

        def forward(*args, **kwargs):
            calls.count += 1
            if not torch.is_grad_enabled():
                inside = calls.real
            elif calls.solo and not calls.first:
                calls.first, inside = calls.count, calls.real
            else:
                inside = self._later_use(module, calls)
            before, state["_parameters"] = state["_parameters"], inside
            if calls.rnn:
                module._update_flat_weights()
            try:
                if own is not None:
                    return own(*args, **kwargs)
                return type(module).forward(module, *args, **kwargs)
            finally:
                state["_parameters"] = before
                if calls.rnn:
                    module._update_flat_weights()

        return forward

    def _later_use(self, module: nn.Module, calls: _Calls) -> dict:
        """The parameters for a call of a module whose parameters were used already (or are
        shared): the real one where this run has not used it yet, else a new leaf."""
        inside = {}
        for name, param in calls.real.items():
            if not _takes_grad(param):
                inside[name] = param
                continue
            key = id(param)
            if not (calls.solo and calls.first) and key not in self._taken:
                self._taken[key] = (module, calls.count)
                inside[name] = param
                continue
            leaf = inside[name] = param.detach().requires_grad_()
            self._params[key] = param
            self._later.setdefault(key, []).append((module, calls.count, leaf))
        return inside

    @torch.no_grad()
    def _settle(self) -> None:
        """The ``.grad`` of each parameter used more than once: the sum of its uses, in the
        order autograd would add them (outside first, then the last use first). The leaves
        are dropped for their gradients, so none keeps a parameter's old memory."""
        for key, (param, leaf) in self._outside_leaves.items():
            if leaf.grad is not None:
                self.outside[key] = leaf.grad
                self._params[key] = param
        for key, param in self._params.items():
            self._first_grads[key] = param.grad
            later = self._later.get(key, [])
            later[:] = [(module, count, leaf.grad) for module, count, leaf in later]
            terms = [self.outside.get(key)]
            terms += [grad for _, _, grad in reversed(later)]
            terms.append(param.grad)
            total = _sum([t for t in terms if t is not None])
            if total is not param.grad:
                param.grad = total


def _sum(terms: list[torch.Tensor]) -> torch.Tensor | None:
    """The sum of ``terms`` in a new tensor, or the one term itself (no copy)."""
    if not terms:
        return None
    if len(terms) == 1:
        return terms[0]
    total = terms[0] + terms[1]
    for term in terms[2:]:
        total += term
    return total


@torch.no_grad()
def uses_sum_error(uses: list[torch.Tensor], grad: torch.Tensor) -> float:
    """Largest absolute difference between the sum of a tensor's uses and its ``.grad``."""
    rest = grad.detach().clone()
    for use in uses:
        rest.sub_(use)
    return float(rest.abs().max()) if rest.numel() else 0.0


@torch.no_grad()
def use_scale(uses: list[torch.Tensor], grad: torch.Tensor) -> float:
    """One colour range for the uses and their total: the 99th percentile of |value| over
    the cells their heatmaps draw (``explorer.view.reduce.colour_limit``), so one large use does
    not wash out the others. ``explorer.view.figures.uses_figure`` draws them with it."""
    return colour_limit(downsample(t)[0] for t in [*uses, grad])
