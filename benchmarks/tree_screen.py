"""What one tree rerun costs: rows on screen against every row of the model.

For Sequentials of N ``Linear(8, 8)`` blocks (built on the meta device: structure only), it
times building the tree's payload (``ui.tree_rows.tree_rows`` + ``json.dumps``) as the app sends
it, opened as a new visitor sees it, against the reference of sending every row (every block
open, no paging: what the tree sent before), and reports both payloads' size. It then times a
whole run of the tree demo app (AppTest, ``tests/apps/tree_view_demo.py``) at 5,000 blocks,
after a browser view change (one block opened), and the notebook views of GPT-2-small's
structure (``_repr_html_`` and ``to_frame``; built on the meta device).

Example::

    python -m benchmarks.tree_screen            # N = 10, 100, 1,000, 5,000
    python -m benchmarks.tree_screen --quick    # N = 10, 100
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

import explorer
from benchmarks.timing import compare, machine_line
from explorer.core.limits import DEFAULT_LIMITS
from ui.tree_rows import TreeView, tree_rows

DEMO = Path(__file__).resolve().parent.parent / "tests" / "apps" / "tree_view_demo.py"
EVERYTHING = replace(DEFAULT_LIMITS, tree_open_rows=10**9, tree_page_rows=10**9)


def _tree(blocks: int):
    with torch.device("meta"):
        net = nn.Sequential(*(nn.Linear(8, 8) for _ in range(blocks)))
    return explorer.inspect(net)


def payload_row(blocks: int, repeats: int) -> str:
    """One table row: ms and bytes of the screen's rows and of every row."""
    tree = _tree(blocks)
    view = TreeView(open={"7": True} if blocks > 7 else {})

    def screen() -> str:
        return json.dumps(tree_rows(tree, view=view, selected="3/weight"))

    def everything() -> str:
        return json.dumps(tree_rows(tree, selected="3/weight", limits=EVERYTHING))

    new_ms, all_ms = compare(screen, everything, repeats)
    rows = len(json.loads(screen()))
    return (
        f"| {blocks:,} | {rows} | {len(screen()):,} | {new_ms:.2f} "
        f"| {len(everything()):,} | {all_ms:.2f} | {all_ms / new_ms:.0f}× |"
    )


def demo_rerun_ms(blocks: int, repeats: int) -> tuple[float, float]:
    """Median ms of the demo's whole run, and of tree_rows alone, after a view change."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(DEMO), default_timeout=120)
    at.query_params["blocks"] = str(blocks)
    at.run()
    model = json.loads(next(e for e in at.main if hasattr(e.proto, "json")).proto.json)["model"]
    times = []
    for i in range(repeats):
        view = {"model": model, "open": {str(i): True}, "shown": {}}
        at.session_state["demo_tree"] = {"view": view}
        start = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - start) * 1e3)
        assert not at.exception
    tree = _tree(blocks)
    start = time.perf_counter()
    tree_rows(tree, view=TreeView(open={"1": True}))
    return statistics.median(times), (time.perf_counter() - start) * 1e3


def notebook_line(repeats: int = 5) -> str:
    """Size and median ms of GPT-2-small's notebook HTML, and ms of its DataFrame."""
    from tests.models import gpt2_small

    tree = explorer.inspect(gpt2_small())
    html_ms, frame_ms = compare(tree._repr_html_, tree.to_frame, repeats)
    return (
        f"Notebook, GPT-2-small on meta ({len(tree.params)} names): _repr_html_ "
        f"{len(tree._repr_html_().encode()) / 1000:.1f} kB in {html_ms:.1f} ms; "
        f"to_frame() {frame_ms:.1f} ms"
    )


def main(argv: list[str] | None = None) -> None:
    """Print the payload table and the demo rerun time."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tree_screen")
    parser.add_argument("--quick", action="store_true", help="N = 10 and 100 only, no AppTest")
    args = parser.parse_args(argv)
    sizes = (10, 100) if args.quick else (10, 100, 1_000, 5_000)
    print(machine_line())
    print()
    print("| blocks | rows sent | payload (bytes) | ms | every row (bytes) | ms | ratio |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for blocks in sizes:
        print(payload_row(blocks, repeats=5 if blocks >= 1_000 else 9))
    print()
    print(notebook_line())
    if not args.quick:
        whole, rows_only = demo_rerun_ms(5_000, repeats=5)
        print()
        print(
            f"Demo app, 5,000 blocks, one block opened: whole script run {whole:.0f} ms "
            "(median of 5, AppTest; the tree inspected once, as the app does per state), "
            f"tree_rows {rows_only:.1f} ms"
        )


if __name__ == "__main__":
    main()
