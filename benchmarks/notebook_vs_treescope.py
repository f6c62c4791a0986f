"""The notebook view against treescope's: time and HTML size, and whether a reused layer shows.

For GPT-2-small's parameters (124 M, real values on the CPU, the head tied to ``wte``) it
times ``explorer.inspect(model)._repr_html_()`` against ``treescope.render_to_html(model)``
(median of a few runs, after one warm-up) and reports each HTML's size. On the chapter's
tied net it checks that both uses of the shared layer (``(2)`` and ``(4)``) appear
(treescope's HTML is packed for its JavaScript, so its ``render_to_text`` is read).
treescope 0.1.10 reads ``Tensor.names``, which torch 2.13 no longer has; the benchmark
reports that failure, then measures again with a shim that gives every tensor unnamed
dimensions (``names = (None,) * ndim``), as the issue's "patched" figures were taken.

Example::

    python -m benchmarks.notebook_vs_treescope            # GPT-2-small
    python -m benchmarks.notebook_vs_treescope --blocks 2 # a 2-block GPT-2 (quick)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

import explorer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import models  # noqa: E402  (the test models, defined once)


def timed(fn, repeats: int) -> tuple[float, object]:
    result = fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def treescope_html(model) -> str:
    import treescope

    return treescope.render_to_html(model)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    net = models.gpt2_small(device="cpu", blocks=args.blocks)
    size = sum(p.numel() for p in net.parameters())
    print(f"GPT-2-small-shaped model, {args.blocks} blocks, {size:,} parameters (CPU values)")
    seconds, html = timed(lambda: explorer.inspect(net)._repr_html_(), args.repeats)
    print(f"explorer  _repr_html_: {seconds * 1000:8.1f} ms, {len(html.encode()):>10,} bytes")
    tied = models.tied_net()
    ours = explorer.inspect(tied)._repr_html_()
    print(f"explorer  tied net shows (2) and (4): {'net[2]' in ours and 'net[4]' in ours}")
    try:
        import treescope  # noqa: F401
    except ImportError:
        print("treescope not installed: pip install treescope")
        return
    try:
        treescope_html(tied)
        print("treescope unpatched: renders")
    except Exception as err:  # report whatever breaks, then measure with the shim
        print(f"treescope unpatched: fails with {type(err).__name__}: {err}")
        torch.Tensor.names = property(lambda self: (None,) * self.dim())
    seconds, html = timed(lambda: treescope_html(net), args.repeats)
    print(f"treescope render_to_html: {seconds * 1000:8.1f} ms, {len(html.encode()):>10,} bytes")
    import treescope

    theirs = treescope.render_to_text(tied)  # its HTML is packed for its JS: read the text
    print(f"treescope tied net shows (2) and (4): {'(2):' in theirs and '(4):' in theirs}")


if __name__ == "__main__":
    main()
