"""Run issue 9's benchmark table and print it as Markdown; ``--out`` also writes it.

Example::

    python -m benchmarks --out docs/benchmarks.md    # every row, full sizes (minutes)
    python -m benchmarks --quick                     # smaller models, 3 repeats
    python -m benchmarks --smoke --rows 3,8          # the chapter's MLP: seconds
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.cases import FULL, QUICK, SMOKE, run_all
from benchmarks.report import markdown
from benchmarks.timing import machine_line


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run the rows, print the report and write it if asked."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller models, a few repeats")
    size.add_argument("--smoke", action="store_true", help="the chapter's MLP, one repeat")
    parser.add_argument("--rows", help="only these rows, e.g. 3,4,8")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else QUICK if args.quick else FULL
    rows = {int(r) for r in args.rows.split(",")} if args.rows else None
    command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    report = markdown(machine_line(), sizes, run_all(sizes, rows), command.strip())
    print(report, end="")
    if args.out is not None:
        args.out.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
