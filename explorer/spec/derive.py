"""A spec for a module written as code, where one can be read off it exactly.

``spec_of(module)`` gives a spec when the module is an ``nn.Sequential`` (nested ones too) of
layers the spec format has, with their default options; a module object used at several
places becomes a named block and ``shared`` references, as the chapter ties layers. For
anything else (custom ``forward`` code, parameters tied across different layers, options the
format lacks) it gives None: no spec would rebuild the same model.

Example::

    spec_of(nn.Sequential(nn.Linear(4, 8), nn.ReLU()))
    # {"type": "sequential", "children": [{"type": "linear", "in_features": 4, ...}, ...]}
"""

from __future__ import annotations

from torch import nn

from explorer.spec.blocks import BLOCKS

__all__ = ["spec_of"]


# Each module class the spec format has, with the reader of its block type's entry.
_READERS = {cls: read for bt in BLOCKS.values() for cls, read in bt.from_module.items()}


def spec_of(module: nn.Module) -> dict | None:
    """The spec that builds this module's structure again, or None when there is none."""
    uses: dict[int, int] = {}
    for _, m in module.named_modules(remove_duplicate=False):
        uses[id(m)] = uses.get(id(m), 0) + 1
    if not _ties_whole_modules_only(module):
        return None
    names: dict[int, str] = {}
    return _block(module, uses, names)


def _block(m: nn.Module, uses: dict[int, int], names: dict[int, str]) -> dict | None:
    if id(m) in names:
        return {"type": "shared", "ref": names[id(m)]}
    if type(m) is nn.Sequential:
        children = []
        for i, (key, child) in enumerate(m._modules.items()):  # repeats kept
            spec = _block(child, uses, names)
            if spec is None:
                return None
            if key != str(i):
                spec["key"] = key
            children.append(spec)
        spec = {"type": "sequential", "children": children}
    else:
        make = _READERS.get(type(m))
        spec = None if make is None else make(m)
        if spec is None:
            return None
    if uses[id(m)] > 1:
        names[id(m)] = f"shared_{len(names)}"
        spec["name"] = names[id(m)]
    return spec


def _ties_whole_modules_only(module: nn.Module) -> bool:
    """True when every tensor used at two names belongs to one module object used twice."""
    owner: dict[int, int] = {}
    for _, m in module.named_modules(remove_duplicate=False):
        for p in m.parameters(recurse=False):
            if owner.setdefault(id(p), id(m)) != id(m):
                return False
    return True
