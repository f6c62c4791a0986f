"""Initializer rules: which rule sets which parameter, applied in order with a seed.

A rule names an initializer from ``explorer.init.initializers`` and a target: a glob over
parameter names (``"target": "*.weight"``), or a regex (``"regex": ".*weight"``, matched
against the whole name, or with ``"match": "prefix"`` from its start as Gluon's
``collect_params`` does). ``"min_ndim": 2`` keeps only tensors of 2 or more dimensions
(the kernels that Keras, MXNet and DJL initialize). A later rule overrides an earlier
one, unless it says ``"force_reinit": false``: then, as DJL's ``setInitializer`` and
Gluon's ``initialize`` without ``force_reinit``, it leaves what an earlier rule set.

``initial_values`` computes the new values aside and never touches the module;
``initialize`` writes the same values into the module (the notebook API).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import torch
from torch import nn
from torch.nn.parameter import UninitializedTensorMixin, is_lazy

from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.core.patterns import MatchMode, Pattern, compile_pattern
from explorer.core.rebind import walk_modules
from explorer.core.rng import seeded
from explorer.init.formula import Formula, parse_formula
from explorer.init.initializers import INITIALIZERS, Initializer, check_options
from explorer.spec.fields import whole

__all__ = [
    "Initializer",
    "OPTIONS",
    "InitResult",
    "check_rules",
    "formula_problem",
    "matches",
    "initial_values",
    "initialize",
]

# Each initializer's options with their defaults (None: required), read from the registry.
OPTIONS: dict[str, dict[str, object]] = {n: i.defaults() for n, i in INITIALIZERS.items()}
_RULE_KEYS = ("init", "target", "regex", "match", "force_reinit", "min_ndim")


@dataclass
class InitResult:
    """New values computed aside: one fresh tensor per distinct targeted tensor.

    ``values`` is keyed by the first name ``named_parameters(remove_duplicate=False)``
    gives each tensor (a tied tensor appears once); ``provenance`` maps every name, each
    alias included, to the index of the rule that set it (None: no rule did).
    """

    values: dict[str, torch.Tensor]
    provenance: dict[str, int | None]
    log: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"InitResult({len(self.values)} tensors, {len(self.provenance)} names)"


def check_rules(rules: object, limits: Limits = DEFAULT_LIMITS) -> list[dict]:
    """Validate rules and return them with every option filled in; raise ``SpecError``."""
    if not isinstance(rules, list | tuple):
        raise SpecError("must be a list of rules", "rules")
    if len(rules) > limits.max_rules:
        raise SpecError(f"at most {limits.max_rules} rules", "rules")
    return [_check_rule(rule, f"rules[{i}]", limits) for i, rule in enumerate(rules)]


def _check_rule(rule: object, path: str, limits: Limits) -> dict:
    if not isinstance(rule, Mapping):
        raise SpecError(f"must be a rule object, got {type(rule).__name__}", path)
    name = rule.get("init")
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise SpecError(
            f"unknown initializer {name!r}; use one of {', '.join(INITIALIZERS)}", f"{path}.init"
        )
    if "target" in rule and "regex" in rule:
        raise SpecError('give either "target" (a glob) or "regex", not both', path)
    allowed = {*_RULE_KEYS, *OPTIONS[name]}
    for key in rule:
        if key not in allowed:
            raise SpecError(
                f"unknown option for {name}; allowed: {', '.join(sorted(allowed))}", f"{path}.{key}"
            )
    checked = {"init": name, **check_options(name, rule, path)}
    if name == "formula":
        try:
            parse_formula(checked["expr"], limits)
        except SpecError as err:
            raise SpecError(err.reason, f"{path}.expr") from None
    checked.update(_check_target(rule, path, limits))
    if rule.get("force_reinit", True) is not True:
        if rule["force_reinit"] is not False:
            raise SpecError("must be true or false", f"{path}.force_reinit")
        checked["force_reinit"] = False
    if rule.get("min_ndim", 0) != 0:
        ndim = rule["min_ndim"]
        whole(ndim, f"{path}.min_ndim", 0, limits.max_ndim)
        checked["min_ndim"] = ndim
    return checked


def _check_target(rule: Mapping, path: str, limits: Limits) -> dict:
    if "regex" in rule:
        mode = rule.get("match", MatchMode.FULL)
        if mode not in (MatchMode.FULL, MatchMode.PREFIX):
            raise SpecError('must be "full" or "prefix"', f"{path}.match")
        compile_pattern(rule["regex"], mode, limits, f"{path}.regex")
        return {"regex": rule["regex"]} | ({"match": "prefix"} if mode == "prefix" else {})
    if "match" in rule:
        raise SpecError('"match" goes with "regex"; a glob target always matches whole names', path)
    target = rule.get("target", "*")
    if not isinstance(target, str) or not target:
        raise SpecError('must be a glob over parameter names, e.g. "*.weight"', f"{path}.target")
    compile_pattern(target, MatchMode.GLOB, limits, f"{path}.target")
    return {"target": target}


def _pattern(rule: Mapping, limits: Limits = DEFAULT_LIMITS) -> Pattern:
    if "regex" in rule:
        return compile_pattern(rule["regex"], rule.get("match", MatchMode.FULL), limits)
    return compile_pattern(rule.get("target", "*"), MatchMode.GLOB, limits)


def matches(rule: Mapping, name: str) -> bool:
    """Whether a rule's glob ``target`` or ``regex`` (full or prefix match) selects a name."""
    return _pattern(rule).matches(name)


def formula_problem(
    module: nn.Module, rule: Mapping, limits: Limits = DEFAULT_LIMITS, most: int = 16
) -> str | None:
    """Why a formula rule cannot be applied to ``module``, or None: for the box as you type.

    Beyond the syntax, the formula runs on a few rows of each distinct shape and dtype it
    targets (of each tensor, when it reads ``w``), at most ``most`` of them, so a formula
    that gives inf or nan there, such as ``1/0`` or ``exp(1000)``, is caught before it is
    applied. Lazy and meta tensors are skipped: they have no values to sample.
    """
    try:
        checked = _check_rule(rule, "rule", limits)
    except SpecError as err:
        return err.reason
    formula = parse_formula(checked["expr"], limits)
    pattern, seen = _pattern(checked, limits), set()
    for key, t in _tensors(module).items():
        p = t.param
        if is_lazy(p) or p.is_meta or p.dim() < checked.get("min_ndim", 0):
            continue
        if not any(pattern.matches(n) for n in t.names):
            continue
        sample = (key,) if formula.uses_w else (tuple(p.shape), p.dtype)
        if sample in seen:
            continue
        seen.add(sample)
        try:
            formula.sample(tuple(p.shape), p.dtype, p.detach() if formula.uses_w else None)
        except SpecError as err:
            return f"on {key} {tuple(p.shape)}: {err.reason}"
        if len(seen) >= most:
            break
    return None


@dataclass(slots=True)
class _Tensor:
    """One distinct parameter: every name it has, and each module that holds it directly."""

    param: torch.Tensor
    names: list[str]
    owners: list[nn.Module]


def _tensors(module: nn.Module) -> dict[str, _Tensor]:
    """Distinct parameters keyed by their first name, in ``named_parameters`` order."""
    by_id: dict[int, _Tensor] = {}
    keyed: dict[str, _Tensor] = {}
    for prefix, owner in walk_modules(module):
        dot = prefix + "." if prefix else ""
        for local, param in owner._parameters.items():
            if param is None:
                continue
            entry = by_id.get(id(param))
            if entry is None:
                by_id[id(param)] = keyed[dot + local] = _Tensor(param, [dot + local], [owner])
                continue
            entry.names.append(dot + local)
            if all(o is not owner for o in entry.owners):
                entry.owners.append(owner)
    return keyed


def _plan(rules: list[dict], tensors: dict[str, _Tensor], limits: Limits) -> list[list[str]]:
    """For each rule, the keys of the tensors it sets; every check runs here, before any draw.

    Which names each rule matches depends only on the names and the rules, and is kept for
    the last few models (``_matched``); the checks on the tensors themselves run every time,
    and only for the initializers that need them.
    """
    plan, set_by = [], set()
    aliases = tuple((key, tuple(t.names[1:])) for key, t in tensors.items() if len(t.names) > 1)
    matched = _matched(tuple(tensors), aliases, tuple(_rule_key(r) for r in rules), limits)
    lazy = [key for key, t in tensors.items() if isinstance(t.param, UninitializedTensorMixin)]
    for i, (rule, keys) in enumerate(zip(rules, matched, strict=True)):
        path = f"rules[{i}]"
        if not rule.get("force_reinit", True):
            keys = [key for key in keys if key not in set_by]
        if lazy:
            for key in set(lazy).intersection(keys):
                _check_materialized(tensors[key], path)
        if rule.get("min_ndim", 0):
            keys = [k for k in keys if tensors[k].param.dim() >= rule["min_ndim"]]
        if INITIALIZERS[rule["init"]].needs_2d or rule["init"] == "formula":
            for key in keys:
                _check_target_tensor(rule, tensors[key], path, limits)
        set_by.update(keys)
        plan.append(list(keys))
    return plan


def _rule_key(rule: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in rule.items() if k in _TARGET_KEYS))


_TARGET_KEYS = ("target", "regex", "match")


@lru_cache(maxsize=32)
def _matched(keys: tuple, aliases: tuple, targets: tuple, limits: Limits) -> tuple:
    """Each rule's target (``_rule_key``) against every name: the keys it hits, in order. A
    tied tensor is hit when any of its names matches."""
    names = [*keys, *(n for _, more in aliases for n in more)]
    hit_lists = []
    for target in targets:
        hits = _pattern(dict(target), limits).matching(names)
        hits.update(key for key, more in aliases if not hits.isdisjoint(more))
        hit_lists.append(tuple(key for key in keys if key in hits))
    return tuple(hit_lists)


def _check_materialized(t: _Tensor, path: str) -> None:
    if is_lazy(t.param):
        raise SpecError(
            f"{t.names[0]} is not materialized yet (a lazy layer gets its shape "
            "from its first input): run a forward pass first",
            path,
        )


def _check_target_tensor(rule: dict, t: _Tensor, path: str, limits: Limits) -> None:
    if INITIALIZERS[rule["init"]].needs_2d and t.param.dim() < 2:
        raise SpecError(
            f"{rule['init']} needs a tensor of 2 or more dimensions, but "
            f"{t.names[0]} has shape {tuple(t.param.shape)}; target weights only, "
            'e.g. "*.weight", or add "min_ndim": 2',
            path,
        )
    if rule["init"] == "formula":
        if t.param.is_meta:
            raise SpecError(
                f"{t.names[0]} is on the meta device: no values there for a formula to "
                'compute; use another initializer (e.g. "default") for a structure-only model',
                f"{path}.expr",
            )
        try:
            parse_formula(rule["expr"], limits).check(tuple(t.param.shape), t.param.dtype)
        except SpecError as err:
            raise SpecError(f"{t.names[0]}: {err.reason}", f"{path}.expr") from None


class _Aside:
    """Writes new values into fresh tensors, leaving the module alone (``initial_values``)."""

    def __init__(self):
        self.values: dict[str, torch.Tensor] = {}

    def out(self, key: str, t: _Tensor) -> torch.Tensor:
        if key not in self.values:
            p = t.param
            self.values[key] = torch.empty(p.shape, dtype=p.dtype, device=p.device)
        return self.values[key]

    def current(self, key: str, t: _Tensor) -> torch.Tensor:
        return self.values.get(key, t.param).detach()

    def put(self, key: str, t: _Tensor, new: torch.Tensor) -> None:
        self.values[key] = new


class _InPlace:
    """Writes new values straight into the parameters (``initialize``)."""

    def out(self, key: str, t: _Tensor) -> torch.Tensor:
        return t.param

    def current(self, key: str, t: _Tensor) -> torch.Tensor:
        return t.param.detach()

    def put(self, key: str, t: _Tensor, new: torch.Tensor) -> None:
        t.param.copy_(new)


def _run(
    module: nn.Module, rules: object, seed: int | None, limits: Limits, sink: _Aside | _InPlace
) -> tuple[dict[str, int | None], list, list, dict[str, _Tensor]]:
    """Check and plan every rule, then fill the targeted tensors through ``sink``, in order.

    Returns the provenance, the checked rules, their plan and the tensors (for ``_log``).
    """
    rules = check_rules(rules, limits)
    tensors = _tensors(module)
    plan = _plan(rules, tensors, limits)
    tied = {key: t.names[1:] for key, t in tensors.items() if len(t.names) > 1}
    if tied:  # each tensor's names together, its first name first
        provenance = dict.fromkeys(n for t in tensors.values() for n in t.names)
    else:
        provenance = dict.fromkeys(tensors)
    with seeded(seed), torch.no_grad():
        for i, (rule, keys) in enumerate(zip(rules, plan, strict=True)):
            if rule["init"] == "default":
                _fill_default(module, {key: tensors[key] for key in keys}, sink)
            elif rule["init"] == "formula":
                formula = parse_formula(rule["expr"], limits)
                _fill_formula(formula, {key: tensors[key] for key in keys}, sink)
            elif isinstance(sink, _InPlace):
                fill = INITIALIZERS[rule["init"]].fill
                for key in keys:
                    fill(tensors[key].param, rule)
            else:
                fill, out = INITIALIZERS[rule["init"]].fill, sink.out
                for key in keys:
                    fill(out(key, tensors[key]), rule)
            provenance.update(dict.fromkeys(keys, i))
            for key in tied.keys() & keys:
                provenance.update(dict.fromkeys(tied[key], i))
    return provenance, rules, plan, tensors


def _log(rules: list[dict], plan: list[list[str]], tensors: dict[str, _Tensor]) -> list[str]:
    """One line per tensor a rule set, in the order they were set."""
    return [
        f"Init {key} {tuple(tensors[key].param.shape)} with {rule['init']}"
        for rule, keys in zip(rules, plan, strict=True)
        for key in keys
    ]


def _fill_formula(formula: Formula, targets: dict[str, _Tensor], sink: _Aside | _InPlace) -> None:
    for key, t in targets.items():
        # one seed per tensor, drawn from the seeded stream: a formula's draws reproduce
        seed = int(torch.randint(0, 2**62, (1,)).item())
        generator = torch.Generator(t.param.device).manual_seed(seed)
        values = formula.evaluate(
            tuple(t.param.shape),
            dtype=t.param.dtype,
            device=t.param.device,
            generator=generator,
            current=sink.current(key, t),
        )
        sink.put(key, t, values)


def _fill_default(module: nn.Module, targets: dict[str, _Tensor], sink: _Aside | _InPlace) -> None:
    """Each owning layer's ``reset_parameters``, run on a copy of it with fresh tensors.

    Owners reset in ``named_modules`` order, each once, as a plain
    ``for m in net.modules(): m.reset_parameters()`` would; a tensor held by two layers
    (a tied head) takes the values of the last one. The module itself is never touched,
    and the owners' untargeted parameters and buffers keep their values.
    """
    wanted = {id(t.param): key for key, t in targets.items()}
    owners = {id(o) for t in targets.values() for o in t.owners}
    for _, owner in module.named_modules():
        if id(owner) not in owners or not hasattr(owner, "reset_parameters"):
            continue
        twin, fresh = _fresh_copy(owner)
        twin.reset_parameters()
        for old_id, new in fresh.items():
            if old_id in wanted:
                key = wanted[old_id]
                sink.put(key, targets[key], new.detach())


def _fresh_copy(owner: nn.Module) -> tuple[nn.Module, dict[int, torch.Tensor]]:
    """A shallow copy of ``owner``'s subtree whose parameters and buffers are fresh tensors.

    Returns the copy and, for each original parameter's ``id``, its fresh stand-in (tied
    parameters stay tied inside the copy).
    """
    fresh: dict[int, torch.Tensor] = {}
    return _twin(owner, fresh), fresh


def _twin(m: nn.Module, fresh: dict[int, torch.Tensor]) -> nn.Module:
    # a plain function, not a closure: a recursive closure is a reference cycle that would
    # keep every fresh tensor alive until the garbage collector runs (a whole model's worth)
    c = copy.copy(m)
    c._parameters = {
        k: None if p is None else _fresh_param(p, fresh) for k, p in m._parameters.items()
    }
    c._buffers = {k: None if b is None else b.clone() for k, b in m._buffers.items()}
    c._modules = {k: None if s is None else _twin(s, fresh) for k, s in m._modules.items()}
    return c


def _fresh_param(p: torch.Tensor, fresh: dict[int, torch.Tensor]) -> nn.Parameter:
    if id(p) not in fresh:
        fresh[id(p)] = nn.Parameter(torch.empty_like(p), requires_grad=p.requires_grad)
    return fresh[id(p)]


def initial_values(
    module: nn.Module,
    rules: object,
    seed: int | None = None,
    log: list[str] | None = None,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> InitResult:
    """The values the rules give, computed aside in fresh tensors; ``module`` is not touched.

    Each distinct targeted tensor is drawn once (a tied head too), with the dtype and
    device of its parameter. Every check (lazy layers, 2-D initializers, formulas) runs
    before the first draw. With a seed the result is bit-identical run to run and the
    global RNG is left as it was. ``log``, if given, is extended with the init log.

    Example::

        result = initial_values(net, [{"init": "zeros", "target": "*.bias"}], seed=0)
        result.values["0.bias"]       # a new tensor of zeros; net[0].bias is unchanged
        result.provenance["0.weight"]  # None: no rule set it
    """
    sink = _Aside()
    provenance, *planned = _run(module, rules, seed, limits, sink)
    lines = _log(*planned)
    if log is not None:
        log.extend(lines)
    return InitResult(sink.values, provenance, lines)


def initialize(
    module: nn.Module,
    rules: object,
    seed: int | None = None,
    log: list[str] | None = None,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> dict[str, int | None]:
    """Apply rules in order, in place; return each name's rule index (the notebook API).

    The values are exactly those of ``initial_values`` with the same arguments. Every
    alias of a tied tensor is in the result. With a seed the values are bit-identical
    from run to run on the same device, and the global RNG is untouched.

    Example::

        initialize(net, [{"init": "normal", "target": "*.weight", "std": 0.01},
                         {"init": "zeros", "target": "*.bias"}], seed=0)
        # {"0.weight": 0, "0.bias": 1, "2.weight": 0, "2.bias": 1}
    """
    provenance, *planned = _run(module, rules, seed, limits, _InPlace())
    if log is not None:
        log.extend(_log(*planned))
    return provenance
