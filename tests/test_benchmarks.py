"""The benchmark suite runs end to end; its speed is measured and reported, never asserted."""

import math
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = {
    "initialize",
    "inspect",
    "stats",
    "histogram",
    "heatmap payload",
    "meta-device structure",
    "workspace action",
}


def test_quick_benchmarks_write_a_table_with_a_ratio_per_row(tmp_path):
    """--quick prints and writes one table: every benchmark, numeric ratios, a tiny meta RSS."""
    out = tmp_path / "results.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = out.read_text(encoding="utf-8")
    assert done.stdout == report
    assert report.startswith("Machine: ")
    rows = [
        [cell.strip() for cell in line.strip("|").split(" | ")]
        for line in report.splitlines()[4:]
        if line.startswith("| ")
    ]
    assert {row[0] for row in rows} == BENCHMARKS
    for name, _, explorer_ms, reference_ms, ratio, _ in rows:
        assert all(
            math.isfinite(float(v.replace(",", ""))) for v in (explorer_ms, reference_ms, ratio)
        ), name
    (meta,) = [row for row in rows if row[0] == "meta-device structure"]
    grown = float(re.search(r"peak RSS \+(-?[\d.]+) MiB", meta[1]).group(1))
    assert grown < 64  # the same model on the CPU would take 24.5 GiB
