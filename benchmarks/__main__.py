"""Run every benchmark and print a Markdown table of explorer / reference time ratios.

Example::

    python -m benchmarks --quick --out results.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.cases import FULL, QUICK, notes, run_all
from benchmarks.report import markdown
from benchmarks.timing import machine_line


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run the suite, print the report and write it if asked."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    report = markdown(machine_line(), run_all(sizes), notes(sizes))
    print(report, end="")
    if args.out is not None:
        args.out.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
