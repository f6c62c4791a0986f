"""A read-only view of any module's parameters: blocks, tied groups, paths, stats and counts.

The tree holds facts only (paths, types, shapes, who shares what, counts); how they look is
the caller's choice (``ui/tree_rows.py`` for the app, ``explorer/view/notebook.py`` for Jupyter).
"""

from __future__ import annotations

import hashlib
import keyword
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from explorer.core.patterns import MatchMode
from explorer.core.patterns import select as select_names
from explorer.view.notebook import tree_frame, tree_html
from explorer.view.reduce import tensor_preview, tensor_stats
from explorer.view.ties import find_sharing, group_label

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ParamInfo",
    "BlockNode",
    "BlockCount",
    "ParamCounts",
    "ParamTree",
    "inspect",
    "tensor_stats",
    "tensor_preview",
]


@dataclass(frozen=True)
class ParamInfo:
    """One parameter as seen under one name; a tied tensor has one ``ParamInfo`` per alias."""

    name: str  # qualified, e.g. "0.1.0.bias"
    local: str  # "bias"
    block: str  # path of the owning block, "0.1.0"
    shape: tuple[int, ...] | None  # None while lazy
    dtype: str
    device: str
    numel: int
    requires_grad: bool
    is_lazy: bool
    has_grad: bool
    alias_of: str | None = None  # the first name of the same Parameter object, if not this

    def __repr__(self) -> str:
        shape = "?" if self.shape is None else tuple(self.shape)
        return f"ParamInfo({self.name}, {shape}, {self.dtype})"


@dataclass
class BlockNode:
    """A block of the module tree; a module used twice appears at both paths."""

    path: str  # "" for the root, "0.1"
    type: str  # "Linear"
    children: list[BlockNode] = field(default_factory=list)
    params: list[ParamInfo] = field(default_factory=list)

    @property
    def own_count(self) -> int:
        return sum(p.numel for p in self.params)

    @property
    def name(self) -> str:
        """The last part of the path: the key in its parent's ``_modules`` ("" for the root)."""
        return self.path.rpartition(".")[2]

    def walk(self):
        """Yield this node and every node below it, in pre-order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def __repr__(self) -> str:
        return f"BlockNode({self.path or '<root>'}: {self.type}, {len(self.children)} children)"


@dataclass(frozen=True)
class BlockCount:
    """A block's parameter elements, as ``block.parameters()`` counts them (each tensor once)."""

    elements: int  # unique elements with a known shape
    alias_elements: int  # the extra elements counted when every alias name counts again
    lazy: int  # parameters without a shape yet: while > 0, ``elements`` is not the total


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts three ways, because tying makes them differ."""

    unique_tensors: int  # len(list(module.parameters()))
    unique_elements: int  # what the model really stores and trains
    state_dict_entries: int  # parameter names, each alias of a tied tensor counted
    state_dict_elements: int
    per_layer_sum: int  # the naive sum of each layer's own parameters


class ParamTree:
    """The result of ``inspect``: the block tree, tied groups, and on-demand stats."""

    def __init__(
        self,
        module: nn.Module,
        root: BlockNode,
        params: dict[str, ParamInfo],
        tied_groups: list[set[str]],
        root_name: str,
        overlaps: list[set[str]] | None = None,
        shared_blocks: list[set[str]] | None = None,
    ):
        self.module = module
        self.root = root
        self.params = params
        self.tied_groups = tied_groups  # exact aliases: one tensor under several names
        self.overlaps = overlaps or []  # names whose bytes partly overlap (w and w[:4])
        self.shared_blocks = shared_blocks or []  # paths holding the same module object
        self.root_name = root_name
        self._blocks = {node.path: node for node in root.walk()}
        self._group = {name: group for group in tied_groups for name in group}
        self.group_labels = {
            name: group_label(i) for i, group in enumerate(tied_groups) for name in group
        }  # "A", "B", … "AA": computed here once, for every view
        self._block_counts = _block_counts(root, params)
        self.structure_key = _structure_key(root)
        self._indexes: dict[int, dict[str, int]] = {}  # id(container) -> child key -> index

    def __repr__(self) -> str:
        return (
            f"ParamTree({len(self._blocks)} blocks, {len(self.params)} parameter names, "
            f"{len(self.tied_groups)} tied groups)"
        )

    @property
    def blocks(self) -> dict[str, BlockNode]:
        """Every block by path, in pre-order ("" is the root)."""
        return self._blocks

    def block(self, path: str) -> BlockNode:
        """The block at ``path`` ("" is the root)."""
        if path not in self._blocks:
            raise KeyError(f"no block at path {path!r}")
        return self._blocks[path]

    def select(self, pattern: str, mode: str = MatchMode.FULL) -> list[str]:
        """Parameter names a pattern matches, in linear time (RE2, never Python's ``re``).

        ``mode`` is ``"full"`` (the whole name, as the filter: ``.*weight``), ``"prefix"``
        (from the start, as Gluon's ``collect_params``) or ``"glob"`` (``*.bias``).
        """
        return select_names(self.params, pattern, mode)

    def block_count(self, path: str = "") -> BlockCount:
        """Elements of the block at ``path`` as its ``parameters()`` count them, and aliases."""
        return self._block_counts[path]

    def group_of(self, name: str) -> set[str]:
        """Every name sharing a tensor with ``name`` (itself included)."""
        return self._group.get(name, {name})

    def access_path(self, name: str, root: str | None = None) -> str:
        """The Python expression reaching a parameter or block, e.g. ``net[0][1][0].bias``.

        Children of a ``Sequential`` or ``ModuleList`` are indexed (``rgnet[0][1]``, even when
        added as ``block 1``); other names that are not identifiers go through ``getattr``
        (``getattr(net, 'block 1')``), so the result is always valid Python.
        """
        expr, module = root or self.root_name, self.module
        for part in name.split(".") if name else []:
            if part in module._modules and isinstance(module, nn.Sequential | nn.ModuleList):
                expr = f"{expr}[{self._child_index(module, part)}]"
            elif part.isidentifier() and not keyword.iskeyword(part):
                expr = f"{expr}.{part}"
            else:
                expr = f"getattr({expr}, {part!r})"
            module = module._modules.get(part)
            if module is None:
                break
        return expr

    def _child_index(self, module: nn.Module, key: str) -> int:
        """The position of ``key`` among ``module``'s children, from a per-module index."""
        index = self._indexes.get(id(module))
        if index is None:
            index = self._indexes[id(module)] = {k: i for i, k in enumerate(module._modules)}
        return index[key]

    def tensor(self, name: str) -> torch.Tensor:
        """The live parameter tensor for a name."""
        return self.module.get_parameter(name)

    def stats(self, name: str) -> dict[str, float | None]:
        """Mean, std, min, max, L2 norm and zero fraction of values and gradient, on its device."""
        param = self.tensor(name)
        result = tensor_stats(param)
        grad = param.grad
        result.update(
            {f"grad_{k}": v for k, v in tensor_stats(grad).items()} if grad is not None else {}
        )
        return result

    def to_frame(
        self, stats: bool = False, provenance: dict[str, int | None] | None = None
    ) -> pd.DataFrame:
        """One row per parameter name (aliases marked), with stats when asked: a DataFrame."""
        return tree_frame(self, stats=stats, provenance=provenance)

    def _repr_html_(self) -> str:
        """Jupyter's view: a collapsible tree with counts, shapes, tied groups, access paths."""
        return tree_html(self)

    def counts(self, path: str = "") -> ParamCounts:
        """Parameter counts of the block at ``path``, three ways."""
        module = self.module.get_submodule(path) if path else self.module
        unique = list(module.parameters())
        named = list(module.named_parameters(remove_duplicate=False))
        per_layer = sum(
            p.numel for node in self.block(path).walk() for p in node.params if not p.is_lazy
        )
        return ParamCounts(
            unique_tensors=len(unique),
            unique_elements=sum(_numel(p) for p in unique),
            state_dict_entries=len(named),
            state_dict_elements=sum(_numel(p) for _, p in named),
            per_layer_sum=per_layer,
        )


def inspect(module: nn.Module, root_name: str = "net") -> ParamTree:
    """Describe any module's blocks and parameters, and find the tensors shared between names.

    Example: for the chapter's tied net, ``inspect(net).tied_groups`` is
    ``[{"2.bias", "4.bias"}, {"2.weight", "4.weight"}]``.
    """
    walk = _Walk()
    root = walk.node(module, "")
    sharing = find_sharing(walk.named)
    shared = sorted((set(p) for p in walk.paths_of.values() if len(p) > 1), key=sorted)
    return ParamTree(
        module, root, walk.params, sharing.aliases, root_name, sharing.overlaps, shared
    )


class _Walk:
    """One pre-order pass over the modules, in the order of ``named_parameters()``."""

    def __init__(self):
        self.params: dict[str, ParamInfo] = {}
        self.named: list[tuple[str, torch.Tensor]] = []
        self.paths_of: dict[int, list[str]] = {}  # id(module with parameters) -> its paths
        self._first: dict[int, str] = {}  # id(parameter) -> its first name

    def node(self, module: nn.Module, path: str) -> BlockNode:
        node = BlockNode(path, type(module).__name__)
        for local, param in module._parameters.items():
            if param is not None:
                name = f"{path}.{local}" if path else local
                alias_of = self._first.setdefault(id(param), name)
                info = _info(name, local, path, param, None if alias_of == name else alias_of)
                node.params.append(info)
                self.params[name] = info
                self.named.append((name, param))
        for key, child in module._modules.items():
            if child is not None:
                node.children.append(self.node(child, f"{path}.{key}" if path else key))
        if node.params or any(c.params or c.children for c in node.children):
            self.paths_of.setdefault(id(module), []).append(path)
        return node


def _info(
    name: str, local: str, block: str, param: torch.Tensor, alias_of: str | None
) -> ParamInfo:
    lazy = is_lazy(param)
    return ParamInfo(
        name=name,
        local=local,
        block=block,
        shape=None if lazy else tuple(param.shape),
        dtype=str(param.dtype).removeprefix("torch."),
        device=str(param.device),
        numel=0 if lazy else param.numel(),
        requires_grad=param.requires_grad,
        is_lazy=lazy,
        has_grad=param.grad is not None,
        alias_of=alias_of,
    )


def _numel(param: torch.Tensor) -> int:
    return 0 if is_lazy(param) else param.numel()


def _ancestors(block: str) -> list[str]:
    """``"0.1"`` -> ``["", "0", "0.1"]``: every block path that contains ``block``."""
    parts = block.split(".") if block else []
    return [".".join(parts[:i]) for i in range(len(parts) + 1)]


def _block_counts(root: BlockNode, params: dict[str, ParamInfo]) -> dict[str, BlockCount]:
    """Each block's unique, alias and lazy counts, from one bottom-up pass and the aliases."""
    every: dict[str, int] = {}  # elements under every name, as state_dict() counts
    lazy: dict[str, int] = {}

    def visit(node: BlockNode) -> tuple[int, int]:
        elements, unknown = 0, 0
        for info in node.params:
            elements += info.numel
            unknown += info.is_lazy
        for child in node.children:
            below = visit(child)
            elements += below[0]
            unknown += below[1]
        every[node.path], lazy[node.path] = elements, unknown
        return elements, unknown

    visit(root)
    names_of: dict[str, list[ParamInfo]] = {}  # first name -> every name of that Parameter
    for info in params.values():
        if info.alias_of is not None:
            names_of.setdefault(info.alias_of, [params[info.alias_of]]).append(info)
    repeated: Counter[str] = Counter()  # elements counted again under a second name
    for names in names_of.values():
        inside = Counter(path for info in names for path in _ancestors(info.block))
        for path, times in inside.items():
            repeated[path] += (times - 1) * names[0].numel
    return {
        path: BlockCount(every[path] - repeated[path], repeated[path], lazy[path]) for path in every
    }


def _structure_key(root: BlockNode) -> str:
    """A short hash of the block paths and parameter names: not types, shapes or values.

    It stays the same when lazy layers get their shapes (``LazyLinear`` becomes ``Linear``).
    """
    digest = hashlib.blake2b(digest_size=8)
    for node in root.walk():
        digest.update(f"{node.path}\0".encode())
        for info in node.params:
            digest.update(f"{info.local}\1".encode())
    return digest.hexdigest()
