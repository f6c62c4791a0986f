"""Issue 9's table: each row is one function timing the explorer against a reference.

A row function takes the sizes and a device and returns the ``Line`` s it measured. A row
whose dependency is missing raises ``NotYet`` (the reason is printed instead of a figure);
a reference that is not installed raises ``Skip``. Rows 1, 3, 4, 5 and 8 also run on CUDA
when PyTorch sees a GPU.

Example::

    from benchmarks.cases import QUICK, run_all
    lines = run_all(QUICK)
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from inspect import signature
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.models import gpt2_like_stack, linear_chain_spec, plain_llama, size_in_words
from benchmarks.timing import PeakMemory, compare
from explorer.engine.run import make_input, run
from explorer.init.rules import initialize
from explorer.spec.build import build
from explorer.spec.presets import PRESETS
from explorer.view.figures import heatmap, histogram
from explorer.view.reduce import tensor_stats
from explorer.view.tree import inspect

__all__ = ["Sizes", "FULL", "QUICK", "SMOKE", "Line", "Case", "CASES", "NotYet", "Skip", "run_all"]

APP = Path(__file__).resolve().parent.parent / "app.py"
NO_CUDA = "no CUDA device visible to PyTorch"
INSTALL = "`make bench` installs requirements-bench.txt"
GPT2_RULES = (  # row 1: GPT-2's own initialization
    {"init": "normal", "target": "*.weight", "mean": 0.0, "std": 0.02},
    {"init": "zeros", "target": "*.bias"},
)
PAYLOAD_GOAL = 1_100_000  # bytes of JSON for the 8192² heatmap (row 5)
RSS_GOAL_MIB = 200  # row 7


class NotYet(Exception):
    """The row needs work that is not in the explorer yet; the message says which."""


class Skip(Exception):
    """The row cannot run here (no GPU, a reference not installed); the message says why."""


@dataclass(frozen=True)
class Sizes:
    """How big each row's model or tensor is, and how many interleaved repeats each gets."""

    name: str
    repeats: int  # cheap rows
    heavy_repeats: int  # rows that take seconds per call (whole-model sweeps, backward passes)
    model: str  # the preset of rows 1-4 and 8: GPT-2-small, a 2-layer GPT-2, the chapter's MLP
    mlp_blocks: int  # row 8's second model: blocks of Linear(768↔3072) (12: 57 M); 0: none
    heatmap_side: int
    app_blocks: tuple[int, ...]  # row 6: N
    app_gpt2: bool  # row 6: also GPT-2-small loaded in the app
    llama_layers: int  # row 7


FULL = Sizes("full", 9, 5, "gpt2_small", 12, 8192, (10, 100, 1000, 5000), True, 32)
QUICK = Sizes("quick", 3, 3, "gpt2_tiny", 2, 4096, (10, 100), False, 32)
SMOKE = Sizes("smoke", 1, 1, "mlp", 0, 256, (3,), False, 1)  # the chapter's MLP: seconds


@dataclass(frozen=True)
class Line:
    """One measured line of a row, or why it was not measured (``status``)."""

    row: int
    device: str
    model: str = ""
    explorer_ms: float | None = None
    reference_ms: float | None = None
    passed: bool | None = None
    status: str = ""  # "" when measured; "not yet: ..." or "skipped: ..." otherwise
    size: int | None = None  # row 6: the model's block count N, for the slope

    @property
    def ratio(self) -> float | None:
        if self.explorer_ms is None or not self.reference_ms:
            return None
        return self.explorer_ms / self.reference_ms


@dataclass(frozen=True)
class Case:
    """One row of the issue's table: what is timed, against what, and the goal."""

    number: int
    measurement: str
    reference: str
    goal: str
    max_ratio: float
    measure: Callable[[Sizes, str], list[Line]]
    devices: tuple[str, ...] = ("cpu",)


# --- shared pieces ---


def _sync(device: str) -> Callable[[], None] | None:
    return torch.cuda.synchronize if device == "cuda" else None


def _preset_model(key: str, device: str) -> tuple[nn.Module, torch.Tensor]:
    """A preset built by the explorer on ``device`` with its input (lazy layers shaped)."""
    p = PRESETS[key]
    model = build(p.spec).to(device)
    x = make_input(p.input_shape, p.input_kind, high=p.vocab, device=device)
    if any(nn.parameter.is_lazy(q) for q in model.parameters()):
        with torch.no_grad():
            model(x)
    return model, x


def _model_words(key: str, model: nn.Module) -> str:
    return f"{PRESETS[key].title.split(' (')[0]}, {size_in_words(model)}"


def _line(
    case: Case,
    device: str,
    model: str,
    explorer_ms: float,
    reference_ms: float,
    extra_ok: bool = True,
) -> Line:
    ok = explorer_ms / reference_ms <= case.max_ratio and extra_ok
    return Line(case.number, device, model, explorer_ms, reference_ms, ok)


# --- the rows ---


def row_initialize(sizes: Sizes, device: str) -> list[Line]:
    """``initialize`` with GPT-2's rules against the same ``nn.init`` calls in a loop."""
    model, _ = _preset_model(sizes.model, device)

    def plain_loop() -> None:
        torch.manual_seed(0)
        for name, param in model.named_parameters():
            if name.endswith(".weight"):
                nn.init.normal_(param, mean=0.0, std=0.02)
            elif name.endswith(".bias"):
                nn.init.zeros_(param)

    times = compare(
        lambda: initialize(model, list(GPT2_RULES), seed=0),
        plain_loop,
        sizes.heavy_repeats,
        _sync(device),
    )
    return [_line(ROWS[1], device, _model_words(sizes.model, model), *times)]


def row_inspect(sizes: Sizes, device: str) -> list[Line]:
    """``inspect`` + tied groups + select against ``torchinfo.summary(model, verbose=0)``."""
    if importlib.util.find_spec("torchinfo") is None:
        raise Skip(f"torchinfo is not installed; {INSTALL}")
    import torchinfo

    model, _ = _preset_model(sizes.model, device)

    def explore() -> object:
        tree = inspect(model)
        return tree.tied_groups, tree.select(".*weight")

    times = compare(explore, partial(torchinfo.summary, model, verbose=0), sizes.repeats)
    return [_line(ROWS[2], device, _model_words(sizes.model, model), *times)]


def row_stats(sizes: Sizes, device: str) -> list[Line]:
    """``tensor_stats`` of every parameter against the same reductions, one by one."""
    model, _ = _preset_model(sizes.model, device)
    params = list(model.parameters())

    def plain_loop() -> list:
        return [
            [
                p.mean().item(),
                p.std().item(),
                p.min().item(),
                p.max().item(),
                torch.linalg.vector_norm(p).item(),
                torch.count_nonzero(p).item(),
            ]
            for p in (q.detach() for q in params)
        ]

    times = compare(
        lambda: [tensor_stats(p) for p in params], plain_loop, sizes.repeats, _sync(device)
    )
    return [_line(ROWS[3], device, _model_words(sizes.model, model), *times)]


def row_histograms(sizes: Sizes, device: str) -> list[Line]:
    """A histogram figure of every parameter against TensorBoard's ``add_histogram`` on each."""
    if importlib.util.find_spec("tensorboard") is None:
        raise Skip(f"TensorBoard is not installed; {INSTALL}")
    from torch.utils.tensorboard import SummaryWriter

    model, _ = _preset_model(sizes.model, device)
    named = list(model.named_parameters())
    with tempfile.TemporaryDirectory() as logs:
        writer = SummaryWriter(logs)
        try:
            times = compare(
                lambda: [histogram(p, name) for name, p in named],
                lambda: [writer.add_histogram(name, p, 0) for name, p in named],
                sizes.heavy_repeats,
                _sync(device),
            )
        finally:
            writer.close()
    return [_line(ROWS[4], device, _model_words(sizes.model, model), *times)]


def row_heatmap(sizes: Sizes, device: str) -> list[Line]:
    """A heatmap figure of a large matrix, serialized as Streamlit sends it, against one read."""
    side = sizes.heatmap_side
    t = torch.randn(side, side, generator=torch.Generator().manual_seed(0)).to(device)
    payload = len(heatmap(t, "w").to_json().encode())
    times = compare(
        lambda: heatmap(t, "w").to_json(), lambda: t.sum().item(), sizes.repeats, _sync(device)
    )
    words = f"{side}×{side} float32 ({t.nbytes / 2**20:.3g} MiB); payload {payload / 1e6:.2f} MB"
    return [_line(ROWS[5], device, words, *times, extra_ok=payload <= PAYLOAD_GOAL)]


def row_app(sizes: Sizes, device: str) -> list[Line]:
    """One click (select a parameter) in the app with N blocks against the same with the MLP."""
    try:
        from streamlit.testing.v1 import AppTest

        from explorer.io.serve import ENV_EXPERIMENT
        from explorer.session.experiment import Experiment
    except ImportError as err:
        raise NotYet(f"the app cannot be opened on a given experiment ({err})") from err
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: "missing ScriptRunContext" not in record.getMessage()
    )  # AppTest's session state is set from this thread, outside a script run: expected

    def opened(experiment: Experiment) -> AppTest:
        previous = os.environ.get(ENV_EXPERIMENT)
        os.environ[ENV_EXPERIMENT] = experiment.to_json()
        try:
            app = AppTest.from_file(str(APP), default_timeout=600)
            app.run()
        finally:
            if previous is None:
                os.environ.pop(ENV_EXPERIMENT, None)
            else:
                os.environ[ENV_EXPERIMENT] = previous
        if app.exception:
            raise NotYet(f"the app failed to open: {app.exception[0].message}")
        if app.error:  # e.g. a limit refused the model and the app fell back to the MLP
            raise NotYet(f"the app did not open the model: {app.error[0].value}")
        return app

    def clicker(app: AppTest, first: str, last: str) -> Callable[[], None]:
        nodes = iter([first, last] * 10**6)

        def click() -> None:
            app.session_state["selected"] = next(nodes)
            app.run()

        return click

    # The chapter's MLP after its first ``net(X)``: its lazy layers have values, so its
    # click draws the same panels (heatmap, histogram, stats) as the loaded model's.
    mlp = opened(Experiment.from_preset("mlp").replace(materialized=True))
    loaded = [
        (
            n,
            f"{n:,} blocks of Linear(8, 8)",
            opened(Experiment(spec=linear_chain_spec(n), input_shape=(2, 8))),
            "0/weight",
            f"{n - 1}/weight",
        )
        for n in sizes.app_blocks
    ]
    if sizes.app_gpt2:
        loaded.append(
            (
                None,
                "GPT-2-small",
                opened(Experiment.from_preset("gpt2_small")),
                "h.0.mlp.block.c_fc/weight",
                "h.11.mlp.block.c_proj/weight",
            )
        )
    lines = []
    for n, words, app, first, last in loaded:
        reference = clicker(mlp, "0/weight", "2/weight")
        times = compare(clicker(app, first, last), reference, sizes.repeats)
        lines.append(replace(_line(ROWS[6], device, words, *times), size=n))
    return lines


def row_meta(sizes: Sizes, device: str) -> list[Line]:
    """``build(spec, device="meta")`` + ``inspect`` of Llama-7B's shape against plain PyTorch."""
    spec = _llama_spec(sizes.llama_layers)
    inspect(build(spec, device="meta"))  # first meta builds import parts of torch: not counted
    with PeakMemory() as peak:
        times = compare(
            lambda: inspect(build(spec, device="meta")).tied_groups,
            partial(_plain_meta, sizes.llama_layers),
            sizes.heavy_repeats,
        )
    net = build(spec, device="meta")
    words = (
        f"Llama-shaped, {sizes.llama_layers} layers, {size_in_words(net)} on meta; "
        f"peak RSS +{peak.mib:.1f} MiB"
    )
    return [_line(ROWS[7], device, words, *times, extra_ok=peak.mib < RSS_GOAL_MIB)]


def _llama_spec(layers: int) -> dict:
    """The ``llama_7b`` preset's spec with ``layers`` blocks; NotYet when it is missing."""
    from explorer.core.frozen import thaw

    if "llama_7b" not in PRESETS or "device" not in signature(build).parameters:
        raise NotYet("needs the llama_7b preset and explorer.build(spec, device='meta')")
    spec = thaw(PRESETS["llama_7b"].spec)
    (stack,) = [child for child in spec["children"] if child["type"] == "repeat"]
    stack["times"] = layers
    return spec


def _plain_meta(layers: int) -> nn.Module:
    with torch.device("meta"):
        return plain_llama(layers)


def row_run(sizes: Sizes, device: str) -> list[Line]:
    """``run`` (forward, backward, per-use capture) against plain ``loss.backward()``.

    Each model gets a second line without ``run``'s activation probe on the meta device
    (``probe=False``), when ``run`` has one: the difference is the probe's cost, the rest
    is the capture's.
    """
    model, x = _preset_model(sizes.model, device)
    p = PRESETS[sizes.model]
    models = [
        (
            model,
            x,
            p.loss,
            f"{_model_words(sizes.model, model)}, {p.input_kind} {tuple(p.input_shape)}",
        )
    ]
    if sizes.mlp_blocks:
        mlp = gpt2_like_stack(sizes.mlp_blocks).to(device)
        words = f"MLP, {sizes.mlp_blocks} × Linear(768↔3072), {size_in_words(mlp)}, input (8, 768)"
        models.append((mlp, make_input((8, 768), device=device), "sum", words))
    probes = [True, False] if "probe" in signature(run).parameters else [True]
    return [
        _run_line(model, x, loss, device, sizes, words, probe)
        for model, x, loss, words in models
        for probe in probes
    ]


def _run_line(
    model: nn.Module, x: torch.Tensor, loss: str, device: str, sizes: Sizes, words: str, probe: bool
) -> Line:
    target = None
    if loss == "cross_entropy":
        classes = model(x[:1]).shape[-1]
        target = torch.randint(0, classes, (x.numel(),), generator=torch.Generator().manual_seed(0))
        target = target.to(device)

    def plain() -> None:
        model.zero_grad(set_to_none=True)
        out = model(x)
        value = (
            F.cross_entropy(out.reshape(-1, out.shape[-1]), target)
            if target is not None
            else out.sum()
        )
        value.backward()

    options = {} if probe else {"probe": False}
    times = compare(
        lambda: run(model, x, loss=loss, target=target, **options),
        plain,
        sizes.heavy_repeats,
        _sync(device),
    )
    return _line(ROWS[8], device, words if probe else f"{words}; `probe=False`", *times)


GPU = ("cpu", "cuda")
CASES: tuple[Case, ...] = (
    Case(
        1,
        "`initialize` (normal .02 on weights, zeros on biases)",
        "the same `torch.nn.init` calls in a plain loop",
        "≤ 1.10×",
        1.10,
        row_initialize,
        GPU,
    ),
    Case(
        2,
        "`inspect` + tied groups + select",
        "`torchinfo.summary(model, verbose=0)`",
        "≤ 1.0×",
        1.0,
        row_inspect,
    ),
    Case(
        3,
        "stats of every parameter",
        "a plain loop of the same reductions",
        "≤ 1.2×",
        1.2,
        row_stats,
        GPU,
    ),
    Case(
        4,
        "histograms of every parameter (figures built)",
        "TensorBoard `add_histogram` on each",
        "≤ 0.5×",
        0.5,
        row_histograms,
        GPU,
    ),
    Case(
        5,
        "heatmap built and serialized (`to_json`)",
        "one read of the tensor (`t.sum()`)",
        "≤ 5×, ≤ 1.1 MB",
        5.0,
        row_heatmap,
        GPU,
    ),
    Case(
        6,
        "app rerun after a click (select a parameter), N blocks",
        "the same click with the chapter's MLP after `net(X)`",
        "≤ 1.5× at any N",
        1.5,
        row_app,
    ),
    Case(
        7,
        "build + inspect a Llama-shaped spec on meta",
        "plain construction on meta",
        "≤ 1.2×, RSS < 200 MB",
        1.2,
        row_meta,
    ),
    Case(
        8,
        "`run` (forward + backward with per-use capture)",
        "plain `loss.backward()`",
        "≤ 1.2×",
        1.2,
        row_run,
        GPU,
    ),
    Case(
        9,
        "undo after a long history (issue 20)",
        "one edit on the same state",
        "≤ 5×, flat in the history",
        5.0,
        lambda sizes, device: _history_rows().row_undo(sizes, device),
    ),
)
ROWS = {case.number: case for case in CASES}


def _history_rows():
    """benchmarks/history.py reads ``Line`` from here: imported when row 9 runs."""
    import benchmarks.history

    return benchmarks.history


def run_all(sizes: Sizes, rows: set[int] | None = None) -> list[Line]:
    """Every row's lines, in the table's order; row 7 runs first (peak memory is cleanest)."""
    chosen = [case for case in CASES if rows is None or case.number in rows]
    order = sorted(chosen, key=lambda case: case.number != 7)
    done = {case.number: _measure(case, sizes) for case in order}
    return [line for case in chosen for line in done[case.number]]


def _measure(case: Case, sizes: Sizes) -> list[Line]:
    lines = []
    for device in case.devices:
        if device == "cuda" and not torch.cuda.is_available():
            lines.append(Line(case.number, device, status=f"skipped: {NO_CUDA}"))
            continue
        try:
            lines += case.measure(sizes, device)
        except NotYet as reason:
            lines.append(Line(case.number, device, status=f"not yet: {reason}"))
        except Skip as reason:
            lines.append(Line(case.number, device, status=f"skipped: {reason}"))
    return lines
