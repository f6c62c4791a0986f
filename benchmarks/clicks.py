"""Server time of the app's reruns on the chapter's MLP: what a student waits for (issue 8).

Each click a student makes is one script run on the server. This drives the real app with
Streamlit's AppTest (no browser, so this is the server's share of the wait), warms the
imports with one page load, then times a fresh session's first load and a mix of clicks:
selecting parameters and blocks, Forward, Backward, an edit, a rule change and a seed.

Run: ``python -m benchmarks.clicks [--rounds 20]``. Goals: first load < 1 s once the
imports are warm; clicks median < 150 ms and p95 < 300 ms.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from streamlit.testing.v1 import AppTest

__all__ = ["main"]

APP = str(Path(__file__).resolve().parent.parent / "app.py")
FIRST_LOAD_GOAL_MS, MEDIAN_GOAL_MS, P95_GOAL_MS = 1000, 150, 300


def _quiet() -> None:
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: "missing ScriptRunContext" not in record.getMessage()
    )


def _timed(step: Callable[[], object]) -> float:
    start = time.perf_counter()
    step()
    return (time.perf_counter() - start) * 1e3


def _clicks(app: AppTest) -> list[tuple[str, Callable[[], object]]]:
    """One round of a student's clicks on the MLP, each a whole script run."""

    def select(node: str) -> Callable[[], object]:
        def run() -> None:
            app.session_state["selected"] = node
            app.run()

        return run

    def edit() -> None:
        app.number_input(key="edit_0.weight_value").set_value(42.0)
        app.text_input(key="edit_0.weight_index").input("0, 0")
        app.button(key="edit_0.weight_apply").click().run()

    return [
        ("select 0.weight", select("0/weight")),
        ("Forward", lambda: app.button(key="forward_button").click().run()),
        ("Backward", lambda: app.button(key="backward_button").click().run()),
        ("select 2.weight", select("2/weight")),
        ("select block 0", select("0")),
        ("select 0.weight", select("0/weight")),
        ("edit 0.weight[0, 0] = 42", edit),
        ("seed + 1", lambda: app.number_input(key="seed").increment().run()),
        ("forward + backward", lambda: app.button(key="run_button").click().run()),
    ]


def main(argv: list[str] | None = None) -> str:
    """Print first-load and per-click server times with their goals."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.clicks")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of the click mix")
    args = parser.parse_args(argv)
    _quiet()
    AppTest.from_file(APP, default_timeout=600).run()  # imports and PyTorch's one-time costs
    loads = []
    for _ in range(5):
        app = AppTest.from_file(APP, default_timeout=600)
        loads.append(_timed(app.run))
    times: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        app = AppTest.from_file(APP, default_timeout=600)
        app.run()
        for label, click in _clicks(app):
            times.setdefault(label, []).append(_timed(click))
            if app.exception:
                raise RuntimeError(f"{label}: {app.exception[0].message}")
    every = sorted(t for ts in times.values() for t in ts)
    p95 = every[min(len(every) - 1, round(0.95 * (len(every) - 1)))]
    first = statistics.median(loads)
    lines = [
        "| measurement | median ms | p95 ms | goal | met |",
        "| --- | ---: | ---: | --- | --- |",
        f"| first load of a new session (imports warm) | {first:.0f} | {max(loads):.0f} | "
        f"< {FIRST_LOAD_GOAL_MS} ms | {'yes' if first < FIRST_LOAD_GOAL_MS else 'no'} |",
    ]
    for label, ts in times.items():
        lines.append(f"| {label} | {statistics.median(ts):.0f} | {max(ts):.0f} | | |")
    median = statistics.median(every)
    met = median < MEDIAN_GOAL_MS and p95 < P95_GOAL_MS
    lines.append(
        f"| **every click** ({len(every)} runs) | **{median:.0f}** | **{p95:.0f}** | "
        f"median < {MEDIAN_GOAL_MS}, p95 < {P95_GOAL_MS} | {'yes' if met else 'no'} |"
    )
    report = "\n".join(lines)
    print(report)
    return report


if __name__ == "__main__":
    main()
