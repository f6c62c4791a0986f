"""The results as Markdown: the machine line, the table, then notes."""

from __future__ import annotations

from benchmarks.timing import Row

__all__ = ["markdown"]

HEADER = ("benchmark", "model / size", "explorer (ms)", "reference (ms)", "ratio",
          "what the reference is")


def markdown(machine: str, rows: list[Row], notes: list[str]) -> str:
    """The whole report as one Markdown string, ending in a newline."""
    table = [_line(HEADER), _line(("---",) * 2 + ("---:",) * 3 + ("---",))]
    table += [_line((r.benchmark, r.model, _ms(r.explorer_ms), _ms(r.reference_ms),
                     f"{r.ratio:.2f}", r.reference)) for r in rows]
    return "\n".join([machine, "", *table, "", *(f"- {n}" for n in notes)]) + "\n"


def _line(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:,.1f}"
