"""Issue 9's table as Markdown: the machine, one line per measurement, its goal and a mark."""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks.cases import CASES, Line, Sizes

__all__ = ["markdown"]

HEADER = (
    "#",
    "measurement",
    "reference, same run",
    "device",
    "model / size",
    "explorer (ms)",
    "reference (ms)",
    "ratio",
    "goal",
    "result",
)
ALIGN = ("---:", "---", "---", "---", "---", "---:", "---:", "---:", "---", "---")
FIXES = Path(__file__).with_name("fixes.md")  # the fixes' before/after, written by hand


def markdown(machine: str, sizes: Sizes, lines: list[Line], command: str) -> str:
    """The whole report as one Markdown string, ending in a newline."""
    table = [_cells(HEADER), _cells(ALIGN)]
    shown: set[int] = set()
    for line in lines:
        case = next(case for case in CASES if case.number == line.row)
        first = line.row not in shown
        shown.add(line.row)
        table.append(
            _cells(
                (
                    str(line.row),
                    case.measurement if first else "",
                    case.reference if first else "",
                    line.device,
                    line.model or "—",
                    _ms(line.explorer_ms),
                    _ms(line.reference_ms),
                    "" if line.ratio is None else f"{line.ratio:.2f}×",
                    case.goal,
                    _result(line),
                )
            )
        )
    parts = [
        "# Benchmarks: issue 9's table",
        "",
        f"Produced by `make bench` (`{command}`). Each time is the median of interleaved "
        "repeats in one process, after one warm-up; ratio = explorer ÷ reference, so 1.00× "
        "is as fast as the reference.",
        "",
        machine,
        f"Sizes: {sizes.name} ({sizes.repeats} repeats; {sizes.heavy_repeats} for whole-model "
        "sweeps, backward passes and builds).",
        "",
        *table,
        "",
        *(f"- {note}" for note in _notes(lines)),
    ]
    if FIXES.exists():
        parts += ["", FIXES.read_text(encoding="utf-8").rstrip()]
    return "\n".join(parts) + "\n"


def _cells(values: tuple[str, ...]) -> str:
    return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.1f}" if value >= 10 else f"{value:.3f}"


def _result(line: Line) -> str:
    if line.status:
        return line.status
    return "✓ pass" if line.passed else "✗ fail"


def _notes(lines: list[Line]) -> list[str]:
    measured = [line for line in lines if not line.status]
    notes = [
        f"{sum(bool(line.passed) for line in measured)} of {len(measured)} measured lines "
        "meet their goal; lines not measured say why."
    ]
    chain = [
        (line.size, line.explorer_ms)
        for line in lines
        if line.row == 6 and line.size is not None and line.explorer_ms is not None
    ]
    if len(chain) >= 2:
        fit = statistics.linear_regression([n for n, _ in chain], [ms for _, ms in chain])
        blocks = ", ".join(f"{n:,}" for n, _ in chain)
        notes.append(
            f"Row 6 slope: {fit.slope:.3f} ms per block, {fit.intercept:.0f} ms at "
            f"N = 0 (least squares over N = {blocks})."
        )
    notes.append(
        "Row 5's payload is the figure's JSON as Streamlit sends it "
        "(`plotly.io.to_json`): z as base64 float32."
    )
    notes.append(
        "Row 7's peak RSS is the growth of this process's resident memory while "
        "building and inspecting (the kernel's high-water mark, reset first)."
    )
    return notes
