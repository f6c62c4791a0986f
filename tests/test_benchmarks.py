"""The benchmark harness runs end to end on the chapter's MLP; speed is reported, never asserted."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ROWS = {str(n) for n in range(1, 10)}
MARKS = ("✓ pass", "✗ fail", "not yet: ", "skipped: ")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[str, str]:
    """Printed and written report of ``python -m benchmarks --smoke`` (every row, the MLP)."""
    out = tmp_path_factory.mktemp("bench") / "benchmarks.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, out.read_text(encoding="utf-8")


def _lines(report: str) -> list[list[str]]:
    """The body rows of the report's first table (issue 9's), cell by cell."""
    text = report.splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith("| # |"))
    rows = []
    for line in text[start + 2 :]:
        if not line.startswith("| "):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_smoke_run_prints_and_writes_one_report_with_the_machine(smoke):
    """The printed report is the written one, and it names the machine, torch and threads."""
    printed, written = smoke
    assert printed == written
    assert "Machine: " in written and "torch threads), torch 2." in written


def test_every_issue_9_row_has_a_line_with_its_goal_and_a_mark(smoke):
    """Every row appears; every line ends in its goal and pass/fail, not yet or skipped."""
    lines = _lines(smoke[1])
    assert {line[0] for line in lines} == ROWS
    for line in lines:
        goal, result = line[-2], line[-1]
        assert goal.startswith("≤"), line
        assert result.startswith(MARKS), line


def test_measured_lines_have_numbers_and_a_ratio(smoke):
    """A measured line carries finite times and their ratio; the others say why not."""
    for line in _lines(smoke[1]):
        explorer_ms, reference_ms, ratio, result = line[5], line[6], line[7], line[9]
        if result.startswith(("✓", "✗")):
            values = [
                float(v.replace(",", "").rstrip("×")) for v in (explorer_ms, reference_ms, ratio)
            ]
            assert all(math.isfinite(v) and v > 0 for v in values), line
            assert values[2] == pytest.approx(values[0] / values[1], rel=0.01, abs=0.01)
        else:
            assert explorer_ms == reference_ms == ratio == "", line


def test_cuda_rows_are_measured_or_skipped_with_the_reason(smoke):
    """Rows 1, 3, 4, 5 and 8 have a cuda line: measured on a GPU, else skipped with why."""
    cuda = {line[0]: line[-1] for line in _lines(smoke[1]) if line[3] == "cuda"}
    assert set(cuda) == {"1", "3", "4", "5", "8"}
    import torch

    if not torch.cuda.is_available():
        assert set(cuda.values()) == {"skipped: no CUDA device visible to PyTorch"}
