"""How much memory each workspace action adds, on a GPT-2-sized model (issue 7).

An action builds its new state aside and swaps it in; the old state is dropped after. The
figure that matters is the *peak* it adds over the settled memory before it, compared with
the bytes of what the action changes. Peaks are read from Linux's ``VmHWM`` after resetting
it (``/proc/self/clear_refs``), so each action is measured alone.

Run: ``python -m benchmarks.action_memory [--blocks 12]``
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
from collections.abc import Callable

import torch

from benchmarks.models import gpt2_like_spec
from explorer.core.limits import LOCAL
from explorer.session.experiment import Experiment
from explorer.session.workspace import Workspace

__all__ = ["measure", "main"]

MIB = 2**20


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _trim() -> None:
    """Give freed heap back to the OS, so the next peak counts only new memory."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure(action: Callable[[], object]) -> int:
    """Peak resident bytes the action adds over what was resident just before it."""
    gc.collect()
    _trim()
    _reset_peak()
    before = _status("VmRSS")
    action()
    return _status("VmHWM") - before


def main(argv: list[str] | None = None) -> str:
    """Print a Markdown table: each action, the bytes it changes, and the peak it adds."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.action_memory")
    parser.add_argument("--blocks", type=int, default=12, help="GPT-2-sized MLP blocks")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    spec = {"type": "sequential", "children": [gpt2_like_spec(args.blocks)]}
    exp = Experiment(spec=spec, input_shape=(8, 768))
    ws = Workspace(exp, LOCAL)
    params = sum(p.numel() * p.element_size() for p in ws.module.parameters())
    biggest = max(ws.module.parameters(), key=lambda p: p.numel())
    big_name = next(n for n, p in ws.module.named_parameters() if p is biggest)
    weights = sum(
        p.numel() * p.element_size() for n, p in ws.module.named_parameters() if "weight" in n
    )
    rows = [
        ("edit one element of the largest weight", biggest.numel() * 4,
         lambda: ws.edit(big_name, "set", 1.0, (0, 0))),
        ("re-initialize the weights only (normal 0.02)", weights,
         lambda: ws.change(rules=[{"init": "normal", "target": "*.weight", "std": 0.02}])),
        ("re-initialize everything (default)", params,
         lambda: ws.change(rules=[{"init": "default", "target": "*"}])),
        ("move to float64", params * 2, lambda: ws.move(dtype="float64")),
        ("move back to float32", params, lambda: ws.move(dtype="float32")),
        ("forward + backward (gradients are new, by nature)", params,
         lambda: ws.backward()),
        ("undo: back to before the run (replays it: values and gradients)", params * 2, ws.undo),
    ]  # fmt: skip
    lines = [
        f"Model: {args.blocks} × (Linear(768, 3072), GELU, Linear(3072, 768)), "
        f"{params / MIB:,.0f} MiB of float32 parameters",
        "",
        "| action | bytes it changes | peak it adds | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, changes, action in rows:
        added = measure(action)
        lines.append(
            f"| {label} | {changes / MIB:,.0f} MiB | {added / MIB:,.0f} MiB | "
            f"{added / changes:.2f} |"
        )
    report = "\n".join(lines)
    print(report)
    return report


if __name__ == "__main__":
    main()
