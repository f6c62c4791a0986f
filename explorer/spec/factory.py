"""Models written as code: ``path/to/file.py:make_model`` or ``package.module:factory``.

An experiment can name a factory instead of a spec; ``realize`` calls it (seeded) to get
the module. This runs the user's own code, so it is for a local session only: the hosted
profile refuses it (``Limits.allow_code``).

Example::

    make_module("tests/model_files/tied_embedding.py:make_model")   # an nn.Module
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import threading
from pathlib import Path

from torch import nn

from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS, Limits

__all__ = ["check_source", "make_module"]

_REF = re.compile(r"(?P<where>[^:]{1,500}):(?P<name>[A-Za-z_][A-Za-z0-9_]{0,99})")


def check_source(source: object, limits: Limits = DEFAULT_LIMITS) -> tuple[str, str]:
    """Split ``"where:factory"`` and check it may run here; ``SpecError`` says why not."""
    if not limits.allow_code:
        raise SpecError(
            "models from code run only in a local session, not on a shared server", "source"
        )
    match = _REF.fullmatch(source) if isinstance(source, str) else None
    if match is None:
        raise SpecError(
            f"must be path/to/file.py:factory or package.module:factory, got {source!r}",
            "source",
        )
    return match["where"], match["name"]


def make_module(source: str, limits: Limits = DEFAULT_LIMITS) -> nn.Module:
    """Call the factory a source names and check that it gives an ``nn.Module`` in time."""
    where, name = check_source(source, limits)
    factory = getattr(_load(where), name, None)
    if not callable(factory):
        raise SpecError(f"{where} has no function named {name!r}", "source")
    box: dict = {}

    def call() -> None:
        try:
            box["module"] = factory()
        except Exception as err:  # the user's code: any error is theirs to read
            box["error"] = err

    worker = threading.Thread(target=call, name=f"factory {name}", daemon=True)
    worker.start()
    worker.join(limits.factory_seconds)
    if worker.is_alive():
        raise SpecError(
            f"{name}() took longer than {limits.factory_seconds:g} s to build the model", "source"
        )
    if "error" in box:
        err = box["error"]
        raise SpecError(f"{name}() raised {type(err).__name__}: {err}", "source") from err
    module = box.get("module")
    if not isinstance(module, nn.Module):
        raise SpecError(
            f"{name}() returned {type(module).__name__}, not a torch.nn.Module", "source"
        )
    return module


def _load(where: str):
    """Import a module by dotted name, or load a ``.py`` file by path."""
    if where.endswith(".py"):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise SpecError(f"no such file: {where}", "source")
        key = f"explorer_user_model_{abs(hash(str(path)))}"
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as err:
            raise SpecError(
                f"{where} failed to load: {type(err).__name__}: {err}", "source"
            ) from None
        sys.modules[key] = module
        return module
    try:
        return importlib.import_module(where)
    except Exception as err:
        raise SpecError(f"cannot import {where}: {type(err).__name__}: {err}", "source") from None
