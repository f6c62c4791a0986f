"""How values are written in the PyTorch code the explorer shows and exports."""

from __future__ import annotations

__all__ = ["number_text"]


def number_text(x: float) -> str:
    """A number as short as it can be written without losing bits: ``0.01``, ``42``."""
    if isinstance(x, bool):
        return repr(x)
    if isinstance(x, int):
        return str(x)
    short = f"{x:g}"
    return short if float(short) == x and "e" not in short else repr(float(x))
