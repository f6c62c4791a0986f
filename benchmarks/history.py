"""Row 9: undo after a long history costs about one edit, flat in the history's length.

Each line builds a history (training steps, then edits), then times, interleaved: one edit
(then its undo and a redo, not timed), and one undo of the last step (then its redo). The
walk back (``undo × n``) times every undo from the end of the history to its start, and
reports the mean over the ``max_undo`` steps kept: the steps far back are rebuilt from what
each edit overwrote, or from the nearest kept state.
"""

from __future__ import annotations

import statistics
import time

from benchmarks.cases import Line, Sizes
from explorer.session.workspace import Workspace

__all__ = ["row_undo", "UNDO_GOAL"]

UNDO_GOAL = 5.0  # undo ÷ one edit


def _ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _history(preset: str, steps: int, edits: int) -> Workspace:
    ws = Workspace.from_preset(preset)
    ws.materialize()
    if steps:
        task = "next_token" if ws.experiment.input_kind == "tokens" else "regression"
        ws.train({"task": task, "steps": steps, "batch_size": 8})
    name = next(iter(ws.state.tree.params))
    index = tuple(0 for _ in ws.state.tree.params[name].shape)
    for i in range(edits):
        ws.edit(name, "set", float(i), index)
    return ws


def _recent(ws: Workspace, repeats: int) -> tuple[float, float]:
    """Median ms of one edit and of undoing the last step, interleaved."""
    name = next(iter(ws.state.tree.params))
    index = tuple(0 for _ in ws.state.tree.params[name].shape)
    edit_ms, undo_ms = [], []
    for r in range(repeats):
        edit_ms.append(_ms(lambda r=r: ws.edit(name, "add", 1.0 + r, index)))
        undo_ms.append(_ms(ws.undo))
    return statistics.median(undo_ms), statistics.median(edit_ms)


def _walk_back(ws: Workspace) -> tuple[float, int]:
    """Mean ms of each undo from the end of the history to its start, and how many."""
    times = []
    while ws.undo_stack:
        times.append(_ms(ws.undo))
    return statistics.mean(times), len(times)


def row_undo(sizes: Sizes, device: str) -> list[Line]:
    """Undo after 2,000 training steps and after 200 edits, on the tied net and GPT-2-tiny."""
    big = sizes.name == "full"
    plans = [("tied", 2000, 1), ("tied", 0, 200)]
    if sizes.name != "smoke":
        plans.append(("gpt2_tiny", 20 if big else 2, 200 if big else 20))
    lines = []
    for preset, steps, edits in plans:
        ws = _history(preset, steps, edits)
        words = f"{preset}: {steps:,} training steps, {edits} edit(s)"
        undo, edit = _recent(ws, sizes.repeats)
        lines.append(_undo_line(f"{words}; undo the last step", undo, edit))
        if edits > 1:
            mean, count = _walk_back(ws)
            lines.append(_undo_line(f"{words}; undo × {count} (all kept), mean", mean, edit))
    return lines


def _undo_line(model: str, undo_ms: float, edit_ms: float) -> Line:
    return Line(9, "cpu", model, undo_ms, edit_ms, undo_ms / edit_ms <= UNDO_GOAL)
