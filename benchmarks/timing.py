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

__all__ = ["Row", "compare", "machine_line", "peak_rss_mib", "PeakMemory"]


@dataclass(frozen=True)
class Row:
    """One benchmark result: the explorer and its reference, timed in the same run."""

    benchmark: str
    model: str  # the model or tensor, and anything else measured on it
    explorer_ms: float
    reference_ms: float
    reference: str  # what the reference is, in words

    @property
    def ratio(self) -> float:
        """Explorer time over reference time: 1.0 is as fast as plain PyTorch."""
        return self.explorer_ms / self.reference_ms

    def __repr__(self) -> str:
        return f"Row({self.benchmark}, {self.model}, ratio={self.ratio:.2f})"


def compare(
    explorer: Callable[[], object],
    reference: Callable[[], object],
    repeats: int,
    sync: Callable[[], None] | None = None,
) -> tuple[float, float]:
    """Median milliseconds of each callable after one warm-up call each.

    The calls alternate (explorer, reference, explorer, ...), so a slow spell of a
    shared machine lands on both sides rather than on one. ``sync`` (e.g.
    ``torch.cuda.synchronize``) runs before the clock starts and before it stops.
    """
    explorer()
    reference()
    explorer_ms, reference_ms = [], []
    for _ in range(repeats):
        explorer_ms.append(_time_ms(explorer, sync))
        reference_ms.append(_time_ms(reference, sync))
    return statistics.median(explorer_ms), statistics.median(reference_ms)


def _time_ms(fn: Callable[[], object], sync: Callable[[], None] | None = None) -> float:
    if sync is not None:
        sync()
    start = time.perf_counter()
    fn()
    if sync is not None:
        sync()
    return (time.perf_counter() - start) * 1e3


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, else KiB


class PeakMemory:
    """The peak resident memory a block of code adds: ``with PeakMemory() as peak: ...``.

    On Linux the kernel's high-water mark is reset first (``/proc/self/clear_refs``), so the
    block is measured alone; elsewhere it is this process's peak so far, minus the start.
    """

    def __enter__(self) -> PeakMemory:
        self._reset = _write("/proc/self/clear_refs", "5")
        self._start = _status_kib("VmRSS") if self._reset else peak_rss_mib() * 2**10
        self.mib = 0.0
        return self

    def __exit__(self, *exc_info) -> None:
        peak = _status_kib("VmHWM") if self._reset else peak_rss_mib() * 2**10
        self.mib = (peak - self._start) / 2**10


def _write(path: str, text: str) -> bool:
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError:
        return False
    return True


def _status_kib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def machine_line() -> str:
    """CPU count, torch threads and versions (and the GPU, if any), for the line above the table."""
    line = (
        f"Machine: {os.cpu_count()} CPUs ({torch.get_num_threads()} torch threads), "
        f"torch {torch.__version__}, Python {platform.python_version()} "
        f"({platform.machine()}, {platform.system()})"
    )
    if torch.cuda.is_available():
        line += f"; GPU: {torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    return line
