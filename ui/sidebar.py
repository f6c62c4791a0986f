"""The sidebar: which model, where it runs, on what input, and the forward + backward button."""

from __future__ import annotations

import streamlit as st

from explorer.devices import available_devices
from explorer.presets import PRESETS, preset
from explorer.tree import tensor_preview
from explorer.workspace import DTYPES, LOSSES, Workspace
from ui import state


def render(ws: Workspace) -> None:
    """Draw the whole sidebar."""
    with st.sidebar:
        st.title(":material/account_tree: Parameter Explorer")
        st.caption("See inside a PyTorch model's parameters, as in D2L's *Parameter Management*.")
        _model_picker(ws)
        _run_button(ws)
        st.divider()
        _execution(ws)


def status_line(ws: Workspace) -> None:
    """Device, dtype, seed and input, always shown: a screenshot says where numbers came from."""
    s = ws.setup
    shape = "×".join(map(str, s.input_shape))
    ran = "forward + backward done" if ws.last_run else "not run yet"
    lazy = (
        " · :material/hourglass_empty: lazy shapes unknown until the first forward"
        if ws.has_lazy()
        else ""
    )
    title = PRESETS[s.preset].title if s.preset in PRESETS else "Custom model"
    if s.preset in PRESETS and s.spec != PRESETS[s.preset].spec:
        title += " (modified)"
    st.markdown(
        f"**{title}** · "
        f":blue-badge[device {ws.device}] :violet-badge[{ws.dtype}] :orange-badge[seed {s.seed}] "
        f":gray-badge[input {shape} {s.input_kind}] :green-badge[loss {s.loss}] · {ran}{lazy}"
    )


def _model_picker(ws: Workspace) -> None:
    keys = list(PRESETS)
    current = ws.setup.preset if ws.setup.preset in PRESETS else None
    choice = st.selectbox(
        "Model preset",
        keys,
        index=keys.index(current) if current else None,
        format_func=lambda k: PRESETS[k].title,
        key="preset_choice",
        placeholder="Custom model",
    )
    if choice and choice != current:
        p = preset(choice)
        if state.act(
            "preset",
            lambda: ws.change(
                spec=p.spec,
                rules=p.rules,
                input_shape=p.input_shape,
                input_kind=p.input_kind,
                vocab=p.vocab,
                loss=p.loss,
                preset=choice,
            ),
        ):
            state.select("")
            st.rerun()
    state.show_messages("preset")
    if ws.setup.preset in PRESETS:
        st.caption(PRESETS[ws.setup.preset].description)


def _execution(ws: Workspace) -> None:
    options = available_devices()
    usable = [d.name for d in options if d.available]
    index = usable.index(ws.device) if ws.device in usable else 0
    device = st.selectbox("Device", usable, index=index, key="device_choice")
    for d in options:
        if not d.available:
            st.caption(f":material/block: ~~{d.name}~~ — {d.reason}")
    dtypes = list(DTYPES)
    dtype = st.selectbox("dtype", dtypes, index=dtypes.index(ws.dtype), key="dtype_choice")
    if device != ws.device or dtype != ws.dtype:
        state.act("execution", lambda: ws.move(device=device, dtype=dtype))
    seed = st.number_input(
        "Seed",
        min_value=0,
        max_value=2**31 - 1,
        value=ws.setup.seed,
        step=1,
        key=f"seed_{ws.setup.seed}",
        help="Seeds the initializers and the random input batch.",
    )
    if seed != ws.setup.seed:
        state.act("execution", lambda: (ws.change(seed=int(seed)), ws.reinitialize()))
        st.rerun()
    _input_controls(ws)
    state.show_messages("execution")


def _input_controls(ws: Workspace) -> None:
    s = ws.setup
    text = st.text_input(
        "Input shape",
        ", ".join(map(str, s.input_shape)),
        key=f"input_shape_{s.input_shape}",
        help="A random batch: torch.rand(shape) as in the chapter, or token ids "
        "for embedding models.",
    )
    shape = _parse_shape(text)
    if shape is None:
        st.error(
            "Input shape: whole numbers separated by commas, e.g. 2, 4", icon=":material/error:"
        )
    elif shape != tuple(s.input_shape) and state.act(
        "execution", lambda: ws.change(input_shape=shape)
    ):
        st.rerun()
    loss = st.selectbox(
        "Loss",
        LOSSES,
        index=LOSSES.index(s.loss),
        key="loss_choice",
        help="sum: output.sum(); mse: against zeros; cross_entropy: against random class ids.",
    )
    if loss != s.loss:
        state.act("execution", lambda: ws.change(loss=loss))


def _parse_shape(text: str) -> tuple[int, ...] | None:
    parts = [p.strip() for p in text.replace("×", ",").replace("x", ",").split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def _run_button(ws: Workspace) -> None:
    if st.button(
        "Forward + backward",
        type="primary",
        key="run_button",
        icon=":material/play_arrow:",
        use_container_width=True,
    ):
        with st.spinner("Running forward and backward…"):
            state.act("run", ws.forward_backward)
    state.show_messages("run")
    result = ws.last_run
    if result is None:
        st.caption("No run yet: gradients are None until a backward pass.")
        return
    st.metric("Loss", f"{result.loss:.6g}", help=f"loss = {ws.setup.loss}")
    st.caption(
        f"Output {tuple(result.output.shape)} on {result.device}, "
        f"{result.dtype} · {result.seconds * 1000:.1f} ms"
    )
    with st.expander("Output tensor", expanded=False):
        st.code(tensor_preview(result.output), language=None)
