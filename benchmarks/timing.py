"""Timing and machine facts: medians of interleaved calls, peak memory, one result row."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Row", "compare", "machine_line", "peak_rss_mib"]


@dataclass(frozen=True)
class Row:
    """One benchmark result: the explorer and its reference, timed in the same run."""

    benchmark: str
    model: str          # the model or tensor, and anything else measured on it
    explorer_ms: float
    reference_ms: float
    reference: str      # what the reference is, in words

    @property
    def ratio(self) -> float:
        """Explorer time over reference time: 1.0 is as fast as plain PyTorch."""
        return self.explorer_ms / self.reference_ms

    def __repr__(self) -> str:
        return f"Row({self.benchmark}, {self.model}, ratio={self.ratio:.2f})"


def compare(explorer: Callable[[], object], reference: Callable[[], object],
            repeats: int) -> tuple[float, float]:
    """Median milliseconds of each callable after one warm-up call each.

    The calls alternate (explorer, reference, explorer, ...), so a slow spell of a
    shared machine lands on both sides rather than on one.
    """
    explorer()
    reference()
    explorer_ms, reference_ms = [], []
    for _ in range(repeats):
        explorer_ms.append(_time_ms(explorer))
        reference_ms.append(_time_ms(reference))
    return statistics.median(explorer_ms), statistics.median(reference_ms)


def _time_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, else KiB


def machine_line() -> str:
    """CPU count, torch threads and versions, for the line above the table."""
    return (f"Machine: {os.cpu_count()} CPUs ({torch.get_num_threads()} torch threads), "
            f"torch {torch.__version__}, Python {platform.python_version()} "
            f"({platform.machine()}, {platform.system()})")
