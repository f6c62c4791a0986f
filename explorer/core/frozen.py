"""Immutable JSON values: dicts that refuse changes, lists as tuples, and a canonical text.

An ``Experiment`` holds its spec and rules frozen, so a state can be shared, cached and
put on the undo stack without anyone changing it behind its back. ``thaw`` gives a plain,
editable deep copy; ``json.dumps`` writes frozen values as ordinary JSON.

Example::

    spec = freeze({"type": "linear", "out_features": 8})
    spec["out_features"] = 4   # TypeError: a frozen dict cannot change
    thaw(spec)                 # {"type": "linear", "out_features": 8}, a new plain dict
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["FrozenDict", "freeze", "thaw", "canonical"]


class FrozenDict(dict):
    """A dict that cannot change after it is made; hashable, and still a ``dict`` for JSON."""

    __slots__ = ("_hash",)

    def _refuse(self, *args, **kwargs):
        raise TypeError(
            "a frozen dict cannot change; use explorer.core.frozen.thaw for an editable copy"
        )

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:
            self._hash = hash(canonical(self))
            return self._hash

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo) -> FrozenDict:
        return self

    def __reduce__(self):
        return (FrozenDict, (dict(self),))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


def freeze(value: Any) -> Any:
    """A deep, immutable copy: dicts become ``FrozenDict``, lists and tuples become tuples."""
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, dict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A deep, editable copy: dicts become plain dicts, tuples and lists become lists."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value


def canonical(value: Any) -> str:
    """Compact JSON with sorted keys: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
