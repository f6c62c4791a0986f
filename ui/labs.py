"""The labs: train the model and watch it learn (Train tab); the signal through depth (Depth tab).

Training runs in a worker thread so the page and every other session stay responsive; a
fragment polls its progress twice a second while it runs, and offers a Stop button. The
workspace swaps the trained state in at the end, as one action (``Workspace.train``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import streamlit as st

from explorer.errors import ExplorerError
from explorer.experiment import InputKind, check_op
from explorer.export import train_lines
from explorer.lab_figures import NORMS, loss_figure, norms_figure, uses_figure
from explorer.reduce import colour_limit, downsample
from explorer.state import State
from explorer.tasks import TASK_TEXT, Task
from explorer.train import Optimizer, Progress, TrainSettings
from explorer.workspace import Workspace
from ui import state

__all__ = ["train_panel", "snapshot_scrubber", "TrainJob"]

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
    "**Explore** and drag its *training step* slider to watch it change. **Undo** (Build "
    "tab) returns to the values before training.",
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
        top = st.columns([3, 2, 2, 2])
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
        bottom[0].number_input("Batch size", 1, state.LIMITS.max_train_batch, 32, key="train_batch")
        bottom[1].number_input(
            "Steps", 1, state.LIMITS.max_train_steps, 200, step=50, key="train_steps"
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
        state.show_error(_WHERE)
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
    ws = state.workspace()
    settings = _chosen()

    def check() -> None:
        exp = ws.experiment
        check_op(settings.op(exp.input_shape[1:], exp.vocab, exp.seed), _WHERE, ws.limits)

    if not state.act(_WHERE, check):
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
        state.show_message(job.error)
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
    cols = st.columns(4)
    cols[0].metric("Steps", f"{log.done:,}", help="stopped early" if log.stopped else None)
    cols[1].metric(
        "Loss", f"{last:.4g}", f"{last - first:+.3g} since step 1", delta_color="inverse"
    )
    cols[2].metric("Task", log.settings["task"])
    cols[3].metric("Optimizer", f"{log.settings['optimizer']} · lr {log.settings['lr']:g}")
    st.caption(TEXT["after"])
    fig = state.cached("train_loss", None, lambda: loss_figure(log.loss))
    st.plotly_chart(fig, key="train_loss_chart", config=_PLOT)
    for key in log.use_norm:
        fig = state.cached("train_uses", key, lambda k=key: uses_figure(log, k))
        st.plotly_chart(fig, key=f"train_uses_{key}", config=_PLOT)
    left, right = st.columns(2)
    for col, kind in zip((left, right, left), NORMS, strict=True):
        with col:
            fig = state.cached("train_norms", kind, lambda k=kind: norms_figure(log, k))
            st.plotly_chart(fig, key=f"train_{kind}", config=_PLOT)


def snapshot_scrubber(s: State, name: str) -> None:
    """In the detail panel: a step slider through the parameter's training snapshots."""
    log = s.train_log
    if log is None or log.key(name) is None:
        return
    from explorer.figures import heatmap, histogram

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
    zmax = state.cached(
        "scrub_scale",
        name,
        lambda: colour_limit([downsample(log.snapshot(name, j))[0] for j in (0, len(frames) - 1)]),
    )
    left, right = st.columns(2)
    with left:
        fig = state.cached(
            "scrub_heat", (name, i), lambda: heatmap(values, f"{name} after step {step}", zmax=zmax)
        )
        st.plotly_chart(fig, key=f"scrub_heat_{name}", config=_PLOT)
    with right:
        fig = state.cached(
            "scrub_hist", (name, i), lambda: histogram(values, f"{name} after step {step}")
        )
        st.plotly_chart(fig, key=f"scrub_hist_{name}", config=_PLOT)
    st.caption(
        f"{len(frames)} snapshots from before the first step (0) to the last ({frames[-1]}); "
        "one colour scale for every step."
    )
