"""The README's Notebooks code runs in a fresh process and prints what its comments say."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = "# A model written in plain PyTorch, inspected in a notebook."

# Runs the README's block (our own file, never user text), then reports what it made.
RUNNER = """
import json, sys
namespace = {}
exec(compile(sys.stdin.read(), "README.md", "exec"), namespace)
tree, frame, model = namespace["tree"], namespace["frame"], namespace["model"]
import explorer
html = tree._repr_html_()
print(json.dumps({
    "tied": sorted(sorted(g) for g in tree.tied_groups),
    "aliases": frame[frame.alias_of != ""].path.tolist(),
    "columns": frame.columns.tolist(),
    "rows": len(frame),
    "html_bytes": len(html.encode()),
    "html_fetches": ("http://" in html) or ("https://" in html) or ("<script" in html),
    "heatmap": explorer.heatmap("embed.weight", model).layout.title.text,
    "histogram": explorer.histogram(model.block[0].weight, model).layout.title.text,
}))
"""


def notebook_block() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    (block,) = [b for b in blocks if b.startswith(MARKER)]
    return block


def run_block() -> dict:
    done = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=notebook_block(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_readme_notebook_code_runs_and_its_comments_are_true():
    """Each commented value in the README block is what the code gives, in a fresh process."""
    block = notebook_block()
    out = run_block()
    assert "tree.tied_groups                     # [{'embed.weight', 'head.weight'}]" in block
    assert out["tied"] == [["embed.weight", "head.weight"]]
    assert "# ['head.weight']" in block and out["aliases"] == ["head.weight"]
    assert out["rows"] == 8  # one row per name: 7 tensors, the tied one twice
    assert out["columns"][:8] == [
        "path", "shape", "dtype", "device", "numel", "tied", "alias_of", "access",
    ]  # fmt: skip
    assert out["columns"][8:] == ["mean", "std", "min", "max", "norm", "zero_fraction"]
    assert out["heatmap"].startswith("embed.weight values")
    assert out["histogram"].startswith("block.0.weight histogram")


def test_the_notebook_html_is_self_contained():
    out = run_block()
    assert not out["html_fetches"]
    assert out["html_bytes"] < 200_000


def test_the_model_is_plain_pytorch():
    """The README's model is written with torch.nn only: no spec, no explorer.build."""
    block = notebook_block()
    assert "class TinyLM(nn.Module)" in block and "explorer.build" not in block
