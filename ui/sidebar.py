"""The sidebar: which model, the one filter, the run buttons, and where and on what it runs.

Every control acts in its callback, before the page is drawn. Widget keys carry the state
version where the widget shows a value of the state, so after an undo it shows the new value.
"""

from __future__ import annotations

import streamlit as st

from explorer.core.devices import DTYPES, available_devices
from explorer.core.errors import SpecError
from explorer.core.frozen import freeze
from explorer.core.patterns import MODE_LABELS, MatchMode
from explorer.engine.run import Loss
from explorer.io.script import forward_lines, move_line
from explorer.session.experiment import Ran
from explorer.session.workspace import Workspace
from explorer.spec.presets import PRESETS
from explorer.view.reduce import tensor_preview
from ui import session_state

TEXT = {
    "title": "Parameter Explorer",
    "caption": "See inside a PyTorch model's parameters, as in D2L's *Parameter Management*. "
    "New here? The first tab, **Start here**, walks the chapter step by step.",
    "preset": "Model preset",
    "filter": "Filter parameters",
    "filter_help": "A regular expression over parameter names, matched in linear time. "
    "Whole name: `.*weight` keeps every weight, like Gluon's `net.collect_params('.*weight')`. "
    "From the start: `0` keeps every name under block 0, like `collect_params('dense0')`. "
    "A filter no PyTorch name matches is tried on the other editions' names: `dense0.*` "
    "(MXNet), `01Linear.*` (DJL), `layers_2/.*` (Flax).",
    "not_run": "Not run yet: `.grad` is `None` until a backward pass.",
    "forward_only": "Forward done: the output and loss are here; `.grad` is still `None`.",
    "forward_help": "output = net(X): the output and the loss; no gradients yet.",
    "backward_help": "loss.backward() after the forward pass: fills every .grad.",
    "both_help": "Forward and backward in one click.",
    "again_help": "loss.backward() once more without optimizer.zero_grad(): PyTorch adds the "
    "new gradients to the ones .grad holds.",
    "accumulated": "`.grad` holds the sum of {n} backward passes: `loss.backward()` ran {n} "
    "times without `zero_grad()`, as PyTorch accumulates.",
    "fresh": "One backward pass on fresh gradients (as after `zero_grad()`); *Backward again* "
    "accumulates instead.",
    "mode_help": "net.train() or net.eval(): dropout drops and BatchNorm uses and updates the "
    "batch's statistics only in train mode. Changing it keeps the values and drops the run.",
}


def render(ws: Workspace) -> None:
    """Draw the whole sidebar."""
    with st.sidebar:
        st.title(f":material/account_tree: {TEXT['title']}")
        st.caption(TEXT["caption"])
        history_buttons(ws)
        _model_picker(ws)
        _filter()
        _run_buttons(ws)
        st.divider()
        _execution(ws)


def history_buttons(ws: Workspace) -> None:
    """Undo and redo, named by what they take back, on every tab (Ctrl+Z, Ctrl+Shift+Z)."""
    undo, redo = ws.undo_label, ws.redo_label
    with st.container(horizontal=True, gap="small"):
        st.button(
            f"Undo: {undo}" if undo else "Undo",
            key="undo_button",
            icon=":material/undo:",
            disabled=undo is None,
            shortcut="Ctrl+Z",
            help=ws.replay_note() or "Go back to before the last action",
            on_click=session_state.act,
            args=("history", lambda: session_state.workspace().undo()),
        )
        st.button(
            f"Redo: {redo}" if redo else "Redo",
            key="redo_button",
            icon=":material/redo:",
            disabled=redo is None,
            shortcut="Ctrl+Shift+Z",
            help=ws.replay_note(forward=True) or "Do again what Undo took back",
            on_click=session_state.act,
            args=("history", lambda: session_state.workspace().redo()),
        )
    session_state.show_error("history")


def status_line(ws: Workspace) -> None:
    """Device, dtype, seed, input, loss and state number: where a screenshot's numbers come from."""
    exp = ws.experiment
    shape = "×".join(map(str, exp.input_shape))
    ran = {
        Ran.NONE: "not run on these values yet",
        Ran.FORWARD: "forward done",
        Ran.BACKWARD: "forward + backward done",
    }[Ran(exp.ran)]
    if exp.ran == Ran.BACKWARD and exp.passes > 1:
        ran = f"backward ×{exp.passes}, gradients summed (no zero_grad)"
    trained = sum(op["steps"] for op in exp.ops if op["op"] == "train")
    if trained:
        ran = f"trained {trained:,} steps · {ran}"
    lazy = " · :material/hourglass_empty: lazy shapes unknown until the first forward"
    title = PRESETS[exp.preset].title if exp.preset in PRESETS else "Custom model"
    if exp.preset in PRESETS and (
        exp.spec != freeze(PRESETS[exp.preset].spec)
        or exp.rules != freeze(tuple(PRESETS[exp.preset].rules))
    ):
        title += " (modified)"
    edits = f" · {len(exp.ops)} value change(s) since init" if exp.ops else ""
    mode = "train" if ws.module.training else "eval"
    st.markdown(
        f"**{title}** · "
        f":blue-badge[device {ws.device}] :violet-badge[{ws.dtype}] "
        f":orange-badge[seed {exp.seed}] :gray-badge[input {shape} {exp.input_kind}] "
        f":green-badge[loss {exp.loss}] :red-badge[{mode} mode] · {ran}{edits}"
        f"{lazy if ws.has_lazy() else ''} "
        f"· state {ws.version}"
    )


def _model_picker(ws: Workspace) -> None:
    keys = list(PRESETS)
    current = ws.experiment.preset if ws.experiment.preset in PRESETS else None
    session_state.show_value("preset_choice", current)
    st.selectbox(
        TEXT["preset"],
        keys,
        format_func=lambda k: PRESETS[k].title,
        key="preset_choice",
        placeholder="Custom model",
        on_change=_load_preset,
        args=("preset_choice",),
    )
    session_state.show_error("preset_choice")
    if current:
        st.caption(PRESETS[current].description)


def _load_preset(key: str) -> None:
    """Open a preset where the values are now (a structure-only preset stays on meta)."""
    choice = st.session_state.get(key)
    if not choice:
        return
    if session_state.act(key, lambda: session_state.workspace().open_preset(choice)):
        session_state.select("")


def _filter() -> None:
    st.text_input(
        TEXT["filter"],
        key="filter",
        placeholder="e.g. .*weight",
        help=TEXT["filter_help"],
    )
    st.segmented_control(
        "Match",
        [MatchMode.FULL, MatchMode.PREFIX],
        default=MatchMode.FULL,
        format_func=lambda m: "whole name" if m == MatchMode.FULL else "from the start",
        key="filter_mode",
        label_visibility="collapsed",
        help=" · ".join(MODE_LABELS[m] for m in (MatchMode.FULL, MatchMode.PREFIX)),
    )
    session_state.show_message(session_state.filter_problem())
    pattern = session_state.name_filter()
    if isinstance(pattern, session_state.EditionPattern):
        st.caption(f"No PyTorch name matches; another edition's names keep {len(pattern.also)}.")


def _run_buttons(ws: Workspace) -> None:
    ran = Ran(ws.experiment.ran)
    if ws.device == "meta":
        st.info(
            "Structure only: this model lives on the meta device, with names, shapes and "
            "counts but no values, so it cannot run.",
            icon="ℹ️",
        )
        return
    cols = st.columns(2)
    cols[0].button(
        "Forward",
        key="forward_button",
        icon=":material/east:",
        width="stretch",
        help=TEXT["forward_help"],
        on_click=session_state.act,
        args=("run", lambda: session_state.workspace().forward()),
    )
    cols[1].button(
        "Backward",
        key="backward_button",
        icon=":material/west:",
        width="stretch",
        disabled=ran == Ran.NONE,
        help=TEXT["backward_help"],
        on_click=session_state.act,
        args=("run", lambda: session_state.workspace().backward()),
    )
    st.button(
        "Forward + backward",
        type="primary",
        key="run_button",
        icon=":material/play_arrow:",
        width="stretch",
        help=TEXT["both_help"],
        on_click=session_state.act,
        args=("run", lambda: session_state.workspace().backward()),
    )
    st.button(
        "Backward again (no zero_grad)",
        key="accumulate_button",
        icon=":material/add:",
        width="stretch",
        disabled=ran != Ran.BACKWARD,
        help=TEXT["again_help"],
        on_click=session_state.act,
        args=("run", lambda: session_state.workspace().backward(accumulate=True)),
    )
    session_state.show_error("run")
    result = ws.last_run
    if result is None:
        st.caption(TEXT["not_run"])
        return
    st.metric("Loss", f"{result.loss:.6g}", help=f"loss = {ws.experiment.loss}")
    st.caption(
        f"Output {tuple(result.output.shape)} on {result.device}, "
        f"{result.dtype} · {result.seconds * 1000:.1f} ms"
    )
    if ran == Ran.FORWARD:
        st.caption(TEXT["forward_only"])
    elif ws.experiment.passes > 1:
        st.caption(TEXT["accumulated"].format(n=ws.experiment.passes))
    else:
        st.caption(TEXT["fresh"])
    exp = ws.experiment
    st.code(forward_lines(exp.root_name, exp.loss, ran == Ran.BACKWARD), language="python")
    with st.expander("Output tensor", expanded=False):
        st.code(
            session_state.cached("output", None, lambda: tensor_preview(result.output)),
            language=None,
        )


def _execution(ws: Workspace) -> None:
    exp = ws.experiment
    if ws.device == "meta":
        st.caption("Device: `meta`, structure only. Pick another preset to run a model.")
        return
    options = available_devices()
    usable = [d.name for d in options if d.available]
    _control(
        st.selectbox, "device_choice", ws.device, "move", "device", label="Device", options=usable
    )
    for d in options:
        if not d.available:
            st.caption(f":material/block: ~~{d.name}~~ — {d.reason}")
    _control(
        st.selectbox, "dtype_choice", ws.dtype, "move", "dtype", label="dtype", options=list(DTYPES)
    )
    st.code(move_line(exp.root_name, ws.device, ws.dtype), language="python")
    mode = "train" if ws.module.training else "eval"
    _control(
        st.segmented_control,
        "mode_choice",
        mode,
        "change",
        "mode",
        label="Mode",
        options=["train", "eval"],
        help=TEXT["mode_help"],
    )
    st.code(f"{exp.root_name}.{mode}()", language="python")
    _control(
        st.number_input,
        "seed",
        exp.seed,
        "change",
        "seed",
        label="Seed",
        min_value=0,
        max_value=session_state.LIMITS.max_seed,
        step=1,
        help="Seeds PyTorch's default initialization, the rules and the random input batch.",
    )
    _control(
        st.text_input,
        "input_shape",
        ", ".join(map(str, exp.input_shape)),
        "change",
        "input_shape",
        label="Input shape",
        help="A random batch: torch.rand(shape) as in the chapter, or token ids "
        "for embedding models.",
    )
    _control(
        st.selectbox,
        "loss_choice",
        exp.loss,
        "change",
        "loss",
        label="Loss",
        options=[str(x) for x in Loss],
        help="sum: output.sum(); mse: against zeros; cross_entropy: against random class ids.",
    )


def _control(widget, key: str, value, method: str, field: str, **kwargs) -> None:
    """A widget showing one field of the state; changing it runs ``ws.<method>(field=...)``."""
    session_state.show_value(key, value)
    widget(key=key, on_change=_on_change, args=(key, method, field), **kwargs)
    session_state.show_error(key)


def _on_change(key: str, method: str, field: str) -> None:
    """A sidebar control changed: run ``ws.move`` or ``ws.change`` with its new value."""
    value = st.session_state.get(key)
    if field == "mode" and value is None:  # the selected option clicked again: no change
        return
    if field == "input_shape":
        value = _parse_shape(str(value))
    elif field == "seed":
        value = int(value)

    def run() -> None:
        if value is None:
            raise SpecError("whole numbers separated by commas, e.g. 2, 4", "input_shape")
        getattr(session_state.workspace(), method)(**{field: value})

    session_state.act(key, run)


def _parse_shape(text: str) -> tuple[int, ...] | None:
    parts = [p.strip() for p in text.replace("×", ",").replace("x", ",").split(",") if p.strip()]
    if not parts or not all(p.isdigit() and len(p) <= 9 for p in parts):
        return None
    return tuple(int(p) for p in parts)
