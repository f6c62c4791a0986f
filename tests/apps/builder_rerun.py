"""Time one rerun of the Build tab with N blocks through AppTest (not a test; a measurement).

    python tests/apps/builder_rerun.py [REPO_ROOT] [--flat] GROUPS...

Each GROUPS value g makes g (linear, relu) pairs: each in its own sequential under the root
(3·g + 1 blocks, g + 1 sequential rows), or with --flat all in the root (2·g + 1 blocks).
Prints the median of 5 reruns after a first run.
"""

import statistics
import sys
import time
from pathlib import Path

args = sys.argv[1:]
root = Path(args.pop(0) if args and not args[0].lstrip("-").isdigit() else ".").resolve()
flat = "--flat" in args
sys.path.insert(0, str(root))

from streamlit.testing.v1 import AppTest  # noqa: E402

from explorer.session.workspace import Workspace  # noqa: E402

PAIR = [{"type": "linear", "out_features": 8, "in_features": 8}, {"type": "relu"}]


def spec(groups: int) -> dict:
    if flat:
        return {"type": "sequential", "children": [b for _ in range(groups) for b in PAIR]}
    return {
        "type": "sequential",
        "children": [{"type": "sequential", "children": PAIR} for _ in range(groups)],
    }


def rerun_seconds(groups: int, repeats: int = 5) -> float:
    ws = Workspace.from_preset("mlp")
    ws.change(spec=spec(groups))
    at = AppTest.from_file(str(root / "tests/apps/builder_app.py"), default_timeout=600)
    at.session_state["workspace"] = ws
    at.run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
    assert not at.exception, at.exception
    return statistics.median(times)


for groups in (int(a) for a in args if a != "--flat"):
    blocks = 2 * groups + 1 if flat else 3 * groups + 1
    print(f"{blocks} blocks ({'flat' if flat else 'nested'}): {rerun_seconds(groups):.3f} s")
