"""The labs: train the model and watch it learn (Train tab); the signal through depth (Depth tab).

Training runs in a worker thread so the page and every other session stay responsive; a
fragment polls its progress twice a second while it runs, and offers a Stop button. The
workspace swaps the trained state in at the end, as one action (``Workspace.train``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st
from torch.nn.parameter import is_lazy

from explorer.core.errors import ExplorerError
from explorer.engine.run import InputKind
from explorer.engine.tasks import TASK_TEXT, Task
from explorer.engine.train import Optimizer, Progress, TrainSettings
from explorer.io.script import to_script, train_lines
from explorer.labs.charts import NORMS, depth_figure, loss_figure, norms_figure, uses_figure
from explorer.labs.depth import DEPTH_BATCH, RULE_LABELS, RULE_SETS, compare, symmetry
from explorer.session.ops import check_op
from explorer.session.state import State
from explorer.session.workspace import Workspace
from explorer.spec.presets import PRESETS
from explorer.view.figures import heatmap, histogram
from explorer.view.reduce import colour_limit, downsample
from ui import session_state

__all__ = ["train_panel", "depth_panel", "snapshot_scrubber", "export_view", "TrainJob"]

_JOB = "train_job"
_WHERE = "train"
_PLOT = {"displayModeBar": False}
_POLL_SECONDS = 0.5
_log = logging.getLogger(__name__)

TEXT = {
    "intro": "The chapter's exercise: *construct an MLP containing a shared parameter layer "
    "and train it; during training, observe the model parameters and gradients of each "
    "layer.* Pick a task and press **Train**: the loss, every tensor's value and gradient "
    "norm, and the gradient of each use of a tied layer are recorded at every step.",
    "not_tied": "This model has no tied layer. The chapter's exercise trains the **Tied "
    "layers** preset (pick it in the sidebar); any model can be trained here.",
    "empty": "Not trained yet: the curves appear here after **Train**. The Explore tab then "
    "shows the trained values, with a step slider through the snapshots; undo returns to "
    "the values before training.",
    "after": "The tree and the detail panel show these trained values; select a parameter in "
    "**Explore** and drag its *training step* slider to watch it change. **Undo** (sidebar) "
    "returns to the values before training.",
}


@dataclass
class TrainJob:
    """One training run of this session, shared between its worker thread and the page."""

    settings: TrainSettings
    total: int
    done: int = 0
    losses: list[float] = field(default_factory=list)
    waiting: int | None = None
    error: str | None = None
    finished: bool = False
    shown: bool = False
    stop: threading.Event = field(default_factory=threading.Event)

    def progress(self, p: Progress) -> None:
        self.waiting = None
        self.done = p.done
        self.losses.append(p.loss)

    def wait(self, ahead: int) -> None:
        self.waiting = ahead


def train_panel(ws: Workspace) -> None:
    """The Train tab: settings, Train and Stop, progress, then the curves of the last run."""
    st.markdown(TEXT["intro"])
    if not ws.state.tree.tied_groups:
        st.caption(TEXT["not_tied"])
    job = st.session_state.get(_JOB)
    running = job is not None and not job.finished
    _settings(ws, running)
    st.fragment(_progress, run_every=_POLL_SECONDS if running else None)()
    log = ws.state.train_log
    if log is None:
        st.info(TEXT["empty"], icon=":material/model_training:")
        return
    _curves(log)


def _settings(ws: Workspace, running: bool) -> None:
    tokens = ws.experiment.input_kind == InputKind.TOKENS
    tasks = [str(Task.NEXT_TOKEN)] if tokens else [t for t in map(str, Task) if t != "next_token"]
    if st.session_state.get("train_task") not in tasks:
        st.session_state["train_task"] = tasks[0]
    with st.container(border=True):
        top = st.columns([3, 3, 2, 2])
        top[0].selectbox("Task", tasks, key="train_task", format_func=lambda t: TASK_TEXT[t])
        top[1].segmented_control(
            "Optimizer",
            [str(o) for o in Optimizer],
            default=str(Optimizer.SGD),
            key="train_optimizer",
            format_func={"sgd": "SGD", "adam": "Adam"}.get,
        )
        top[2].number_input(
            "Learning rate", 1e-5, 10.0, 0.05, step=0.01, format="%g", key="train_lr"
        )
        adam = st.session_state.get("train_optimizer") == "adam"
        top[3].number_input(
            "Momentum",
            0.0,
            0.99,
            0.9,
            step=0.05,
            format="%g",
            key="train_momentum",
            disabled=adam,
            help="SGD's momentum; Adam keeps its own running averages.",
        )
        bottom = st.columns([2, 2, 3])
        bottom[0].number_input(
            "Batch size", 1, session_state.LIMITS.max_train_batch, 32, key="train_batch"
        )
        bottom[1].number_input(
            "Steps", 1, session_state.LIMITS.max_train_steps, 200, step=50, key="train_steps"
        )
        with bottom[2]:
            st.write("")  # aligns the button with the inputs
            st.button(
                "Train",
                type="primary",
                icon=":material/model_training:",
                key="train_button",
                disabled=running,
                on_click=_start,
                width="stretch",
            )
        session_state.show_error(_WHERE)
        op = _chosen().op(ws.experiment.input_shape[1:], ws.experiment.vocab, ws.experiment.seed)
        with st.expander("The same in PyTorch", expanded=False):
            st.code(train_lines(op, ws.experiment.root_name), language="python")


def _chosen() -> TrainSettings:
    """The settings the widgets show."""
    get = st.session_state.get
    adam = get("train_optimizer") == "adam"
    return TrainSettings(
        task=get("train_task") or str(Task.REGRESSION),
        optimizer=get("train_optimizer") or str(Optimizer.SGD),
        lr=float(get("train_lr") or 0.05),
        momentum=0.0 if adam else float(get("train_momentum") or 0.0),
        batch_size=int(get("train_batch") or 32),
        steps=int(get("train_steps") or 200),
    )


def _start() -> None:
    """Train's callback: check the settings, then start the run in a worker thread."""
    ws = session_state.workspace()
    settings = _chosen()

    def check() -> None:
        exp = ws.experiment
        check_op(settings.op(exp.input_shape[1:], exp.vocab, exp.seed), _WHERE, ws.limits)

    if not session_state.act(_WHERE, check):
        return
    job = TrainJob(settings, settings.steps)
    st.session_state[_JOB] = job
    threading.Thread(target=_work, args=(job, ws), name="explorer-train", daemon=True).start()


def _work(job: TrainJob, ws: Workspace) -> None:
    """The worker thread: the whole run as one workspace action. It never calls streamlit."""
    try:
        ws.train(job.settings, on_step=job.progress, should_stop=job.stop.is_set, on_wait=job.wait)
    except ExplorerError as err:
        job.error = str(err)
    except Exception as err:  # a bug: say so without a traceback; the state is unchanged
        _log.exception("training failed")
        job.error = f"Unexpected error ({type(err).__name__}). Nothing was changed."
    finally:
        job.finished = True


def _progress() -> None:
    """A fragment: the running job's progress and Stop button, polled while it runs."""
    job: TrainJob | None = st.session_state.get(_JOB)
    if job is None:
        return
    if job.finished:
        if not job.shown:
            job.shown = True
            st.rerun(scope="app")  # the whole page shows the trained state
        session_state.show_message(job.error)
        if job.error is None and job.done < job.total:
            st.caption(f"Stopped after {job.done} of {job.total} steps; those steps are kept.")
        return
    if job.waiting is not None:
        st.info(
            f"Waiting for a free slot: the server runs a few long jobs at a time "
            f"({job.waiting} ahead).",
            icon=":material/hourglass_top:",
        )
    loss = f" · loss {job.losses[-1]:.4g}" if job.losses else ""
    left, right = st.columns([5, 1])
    left.progress(job.done / max(job.total, 1), text=f"step {job.done} of {job.total}{loss}")
    right.button(
        "Stop", icon=":material/stop:", key="train_stop", on_click=job.stop.set, width="stretch"
    )
    if len(job.losses) > 1:
        st.plotly_chart(
            loss_figure(list(job.losses), "Loss so far"), key="train_live_loss", config=_PLOT
        )


def _curves(log) -> None:
    """The last run's loss, per-tensor norms and the tied tensors' uses."""
    first, last = float(log.loss[0]), float(log.loss[-1])
    with st.container(horizontal=True, gap="large"):  # wraps at a narrow window, never cuts
        st.metric(
            "Steps", f"{log.done:,}", help="stopped early" if log.stopped else None, width="content"
        )
        st.metric(
            "Loss",
            f"{last:.4g}",
            f"{last - first:+.3g} since step 1",
            delta_color="inverse",
            width="content",
        )
        st.metric("Task", log.settings["task"], width="content")
        optimizer = f"{log.settings['optimizer']} · lr {log.settings['lr']:g}"
        st.metric("Optimizer", optimizer, width="content")
    st.caption(TEXT["after"])
    fig = session_state.cached("train_loss", None, lambda: loss_figure(log.loss))
    st.plotly_chart(fig, key="train_loss_chart", config=_PLOT)
    for key in log.use_norm:
        fig = session_state.cached("train_uses", key, lambda k=key: uses_figure(log, k))
        st.plotly_chart(fig, key=f"train_uses_{key}", config=_PLOT)
    for kind in NORMS:  # full width, one under the other: a tensor per line needs room
        fig = session_state.cached("train_norms", kind, lambda k=kind: norms_figure(log, k))
        st.plotly_chart(fig, key=f"train_{kind}", config=_PLOT)


def snapshot_scrubber(s: State, name: str) -> None:
    """In the detail panel: a step slider through the parameter's training snapshots."""
    log = s.train_log
    if log is None or log.key(name) is None:
        return
    st.markdown("#### Through training")
    if log.snapshot(name, 0) is None:
        st.caption("No snapshots of this tensor: they would exceed the snapshot memory budget.")
        return
    frames = list(log.frames)
    step = st.select_slider(
        "Training step", frames, value=frames[-1], key=f"scrub_{name}_{s.version}"
    )
    i = frames.index(step)
    values = log.snapshot(name, i)
    zmax = session_state.cached(
        "scrub_scale",
        name,
        lambda: colour_limit([downsample(log.snapshot(name, j))[0] for j in (0, len(frames) - 1)]),
    )
    left, right = st.columns(2)
    with left:
        fig = session_state.cached(
            "scrub_heat", (name, i), lambda: heatmap(values, f"{name} after step {step}", zmax=zmax)
        )
        st.plotly_chart(fig, key=f"scrub_heat_{name}", config=_PLOT)
    with right:
        fig = session_state.cached(
            "scrub_hist", (name, i), lambda: histogram(values, f"{name} after step {step}")
        )
        st.plotly_chart(fig, key=f"scrub_hist_{name}", config=_PLOT)
    st.caption(
        f"{len(frames)} snapshots from before the first step (0) to the last ({frames[-1]}); "
        "one colour scale for every step."
    )


# --- the depth lab ---

DEPTH_TEXT = {
    "intro": "**Why initialization matters.** One batch of "
    f"{DEPTH_BATCH} examples runs forward through the current model under each rule set: "
    "each layer's output mean and std, then, after a backward pass, each layer's gradient "
    "norm. With normal(0, 0.01) the activations shrink at every layer until almost nothing "
    "reaches the output, and the first layers get almost no gradient; xavier_uniform and "
    "kaiming (made for ReLU) keep the signal alive.",
    "deep": "The chapter's case is a deep net: open the 10-layer MLP (Linear(256, 256) + "
    "ReLU, ten times).",
    "symmetry": "**Symmetry.** With a constant init every hidden unit of a layer computes the "
    "same value and receives the same gradient, so its rows stay identical however long it "
    "trains: the layer might as well have one unit. The output layer's rows can part, "
    "because each output has its own target.",
}
_DEPTH_CODE = """stats = []
for m in net.modules():  # every layer: its output's mean and std
    m.register_forward_hook(lambda m, i, o: stats.append((o.mean(), o.std())))
net(X).sum().backward()
[m.weight.grad.norm() for m in net.modules() if isinstance(m, nn.Linear)]"""
_SYMMETRY_CODE = """for m in net.modules():
    if isinstance(m, nn.Linear):
        nn.init.constant_(m.weight, {value})
        nn.init.zeros_(m.bias)
# ... train ...
len(torch.unique(net[0].weight, dim=0))  # distinct rows: 1"""


def depth_panel(ws: Workspace) -> None:
    """The Depth tab: the signal through depth for several rule sets, then symmetry."""
    st.markdown(DEPTH_TEXT["intro"])
    if ws.experiment.preset != "deep_mlp":
        st.caption(DEPTH_TEXT["deep"])
        st.button(
            "Open the 10-layer MLP",
            key="depth_open_deep",
            icon=":material/stacks:",
            on_click=session_state.act,
            args=("depth", lambda: _open_preset("deep_mlp")),
        )
    st.multiselect(
        "Rule sets to compare",
        list(RULE_LABELS),
        default=["normal", "xavier", "kaiming"],
        format_func=RULE_LABELS.get,
        key="depth_rules",
        max_selections=4,
    )
    st.button(
        "Run the batch through each",
        type="primary",
        key="depth_run",
        icon=":material/play_arrow:",
        on_click=session_state.act,
        args=("depth", _run_depth),
    )
    session_state.show_error("depth")
    with st.expander("The same in PyTorch", expanded=False):
        st.code(_DEPTH_CODE, language="python")
    profiles = _current("depth_result")
    if profiles:
        _depth_figures(profiles)
    st.divider()
    _symmetry(ws)


def _open_preset(key: str) -> None:
    session_state.workspace().open_preset(key)
    session_state.select("")


def _current(key: str):
    """A lab result kept in the session, while the state it was computed on is current."""
    kept = st.session_state.get(key)
    if kept is None or kept[0] != session_state.workspace().version:
        return None
    return kept[1]


def _run_depth() -> None:
    ws = session_state.workspace()
    chosen = st.session_state.get("depth_rules") or ["normal", "kaiming"]
    rule_sets = {
        RULE_LABELS[k]: ws.experiment.rules if k == "current" else RULE_SETS[k] for k in chosen
    }
    profiles = compare(ws.experiment, rule_sets, ws.limits)
    st.session_state["depth_result"] = (ws.version, profiles)


def _depth_figures(profiles) -> None:
    left, right = st.columns(2)
    with left:
        fig = depth_figure(profiles, "act_std", "Activation std per layer", "std (log scale)")
        st.plotly_chart(fig, key="depth_std", config=_PLOT)
    with right:
        fig = depth_figure(profiles, "grad_norm", "Gradient norm per layer", "‖∇w‖ (log scale)")
        st.plotly_chart(fig, key="depth_grad", config=_PLOT)
    fig = depth_figure(profiles, "act_mean", "Activation mean per layer", "mean")
    st.plotly_chart(fig, key="depth_mean", config=_PLOT)
    rows = []
    for p in profiles:
        grads = [r.grad_norm for r in p.layers if r.grad_norm is not None]
        rows.append(
            {
                "rule set": p.label,
                "first layer std": f"{p.layers[0].act_std:.3g}",
                "last layer std": f"{p.layers[-1].act_std:.3g}",
                "first layer ‖∇‖": f"{grads[0]:.3g}" if grads else "—",
                "last layer ‖∇‖": f"{grads[-1]:.3g}" if grads else "—",
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="depth_table", width="stretch")


def _symmetry(ws: Workspace) -> None:
    st.markdown(DEPTH_TEXT["symmetry"])
    fans = [p.shape[1] for p in ws.module.parameters() if not is_lazy(p) and p.dim() >= 2]
    default = 1.0 / max(fans) if fans else 0.1
    value_key = f"symmetry_value_{default:g}"  # a new model: a new default
    cols = st.columns([2, 2, 3])
    cols[0].number_input(
        "Constant for every weight",
        value=default,
        format="%g",
        key=value_key,
        help="1 / the widest fan-in by default, so the signal neither explodes nor dies.",
    )
    cols[1].number_input("Training steps", 1, 500, 20, key="symmetry_steps")
    with cols[2]:
        st.write("")
        st.button(
            "Initialize with the constant and train",
            key="symmetry_run",
            icon=":material/drag_handle:",
            on_click=session_state.act,
            args=("symmetry", lambda: _run_symmetry(value_key)),
        )
    session_state.show_error("symmetry")
    value = st.session_state.get(value_key, default)
    with st.expander("The same in PyTorch", expanded=False):
        st.code(_SYMMETRY_CODE.format(value=f"{value:g}"), language="python")
    rows = _current("symmetry_result")
    if not rows:
        return
    steps = st.session_state.get("symmetry_steps", 20)
    table = [
        {
            "weight": r.name + (" (output layer)" if r.output else ""),
            "rows": r.rows,
            "distinct rows": r.values_before,
            "distinct rows of .grad": r.grads_before,
            f"distinct rows after {steps} steps": r.values_after,
        }
        for r in rows
    ]
    st.dataframe(pd.DataFrame(table), hide_index=True, key="symmetry_table", width="stretch")
    hidden = [r for r in rows if not r.output]
    if hidden and all(r.values_after == 1 for r in hidden):
        st.success(
            f"Distinct rows: 1 in every hidden layer, before and after {steps} training steps.",
            icon=":material/drag_handle:",
        )


def _run_symmetry(value_key: str) -> None:
    ws = session_state.workspace()
    value = float(st.session_state.get(value_key) or 0.1)
    steps = int(st.session_state.get("symmetry_steps") or 20)
    rows = symmetry(ws.experiment, value, steps, ws.limits)
    st.session_state["symmetry_result"] = (ws.version, rows)


# --- the code behind the current state ---


def export_view(ws: Workspace) -> None:
    """The Code tab's script: the current state in plain PyTorch, with a download button."""
    st.markdown("#### The code behind the current state")
    try:
        script = session_state.cached(
            "export_script", None, lambda: to_script(ws.experiment, ws.limits)
        )
    except ExplorerError as err:
        session_state.show_message(str(err))
        return
    st.caption(
        "One plain PyTorch script, no explorer needed: it builds this model in the same order "
        "under the same seed, applies the rules, the edits and the training runs, and runs the "
        "batch. On the CPU its values equal the ones shown here, bit for bit."
    )
    preset = ws.experiment.preset if ws.experiment.preset in PRESETS else "model"
    st.download_button(
        "Download the script",
        script,
        file_name=f"{preset}.py",
        mime="text/x-python",
        key="export_download",
        icon=":material/download:",
        on_click="ignore",
    )
    st.code(script, language="python", line_numbers=True, height=480)
