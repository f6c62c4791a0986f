"""The Files tab: checkpoints in (inspect or load), downloads out, the link, ONNX.

An upload is read once (``explorer.io.checkpoints.read_checkpoint``: never unpickled) and kept
in this session until another file replaces it. Loading runs ``ws.load_checkpoint`` in a
button callback, like every action: the model changes whole, or not at all, and undo
goes back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import streamlit as st

from explorer.core.errors import ExplorerError
from explorer.core.limits import MIB
from explorer.io import downloads, onnx_export
from explorer.io.checkpoints import Checkpoint, read_checkpoint
from explorer.session.checkpoint_load import compare
from explorer.session.experiment import Experiment
from explorer.session.workspace import Workspace
from explorer.view.notebook import tree_html
from ui import session_state
from ui.url import link_box

__all__ = ["files_panel", "upload_limit_mb"]

_UPLOAD, _READ, _LOAD = "files_upload", "files_read", "files_load"
_PARTIAL, _NONFINITE, _ONNX = "files_partial", "files_nonfinite", "files_onnx_result"
TYPES = ["safetensors", "pt", "pth", "bin", "json"]  # .json: an experiment saved here


def files_panel(ws: Workspace) -> None:
    """Draw the Files tab."""
    left, right = st.columns(2, gap="large")
    with left:
        _checkpoint_in(ws)
    with right:
        _downloads(ws)
        st.divider()
        link_box(ws)
        st.divider()
        _onnx(ws)


def upload_limit_mb() -> int:
    """The uploader's limit in MB: the profile's ``max_upload_bytes`` (server.maxUploadSize)."""
    return max(1, session_state.LIMITS.max_upload_bytes // MIB)


# --- checkpoints in ---


def _checkpoint_in(ws: Workspace) -> None:
    st.markdown("**Open a checkpoint or an experiment**")
    st.caption(
        "A .safetensors file, or a torch.save state_dict (.pt, .pth). PyTorch files are read "
        "with torch.load(weights_only=True) only: anything that is not tensor data is refused. "
        "Or the experiment .json this tab saves: the same model, values and runs."
    )
    upload = st.file_uploader(
        "Checkpoint file",
        type=TYPES,
        key=_UPLOAD,
        max_upload_size=upload_limit_mb(),
        label_visibility="collapsed",
    )
    if upload is not None and upload.name.lower().endswith(".json"):
        _experiment_in(upload)
        return
    ckpt = _read(upload)
    if ckpt is None:
        return
    kb = ckpt.nbytes / 1024
    st.text(f"{ckpt.name}: {ckpt.format}, {len(ckpt.tensors):,} keys, {kb:,.1f} KiB")
    if ckpt.note:
        st.caption(ckpt.note)
    if ckpt.nonfinite:
        st.warning(
            f"{len(ckpt.nonfinite)} tensor(s) hold NaN or Inf; they load only if you confirm.",
            icon=":material/warning:",
        )
    inspect_tab, load_tab = st.tabs(["Inspect the file", "Load into the model"])
    with inspect_tab:
        _inspect(ckpt)
    with load_tab:
        _load(ws, ckpt)


def _experiment_in(upload) -> None:
    """An experiment file: checked as a link is, then opened with one click (undo goes back)."""
    try:
        exp = Experiment.from_json(upload.getvalue(), session_state.LIMITS)
    except ExplorerError as err:
        session_state.show_message(f"{upload.name} was not read: {err}")
        return
    model = exp.preset or ("a model from code" if exp.source else "a custom model")
    st.text(
        f"{upload.name}: an experiment: {model}, seed {exp.seed}, {len(exp.rules)} rule(s), "
        f"{len(exp.ops)} value change(s), input {tuple(exp.input_shape)}"
    )
    st.button(
        "Open this experiment",
        key="files_open_experiment",
        type="primary",
        icon=":material/file_open:",
        on_click=session_state.act,
        args=("files_experiment", lambda: session_state.workspace().load(exp)),
    )
    session_state.show_error("files_experiment")


def _read(upload) -> Checkpoint | None:
    """The uploaded file, read once per upload; its refusal is shown as plain text."""
    if upload is None:
        st.session_state.pop(_READ, None)
        return None
    kept = st.session_state.get(_READ)
    if kept is None or kept[0] != upload.file_id:
        try:
            kept = (
                upload.file_id,
                read_checkpoint(upload.getvalue(), upload.name, session_state.LIMITS),
            )
        except ExplorerError as err:
            kept = (upload.file_id, f"{upload.name} was not read: {err}")
        st.session_state[_READ] = kept
    if isinstance(kept[1], str):
        session_state.show_message(kept[1])
        return None
    return kept[1]


def _inspect(ckpt: Checkpoint) -> None:
    try:
        tree = ckpt.tree()
    except ExplorerError as err:
        session_state.show_message(str(err))
        return
    st.html(tree_html(tree, session_state.LIMITS))


def _load(ws: Workspace, ckpt: Checkpoint) -> None:
    try:
        report = session_state.cached(
            "load_report", ckpt.digest, lambda: compare(ws.state.values, ckpt.tensors)
        )
    except ExplorerError as err:
        session_state.show_message(str(err))
        return
    st.text(report.summary())
    for label, items in (
        ("Missing (the model has them, the file does not)", report.missing),
        ("Unexpected (the file has them, the model does not)", report.unexpected),
        ("Other shapes (file → model)", [f"{k}: {a} → {b}" for k, a, b in report.mismatched]),
        ("Tied in the model, different in the file", [" = ".join(c) for c in report.conflicts]),
        ("NaN or Inf", report.nonfinite),
    ):
        if items:
            with st.expander(f"{label}: {len(items)}"):
                st.code("\n".join(items), language=None)
    partial = nonfinite = False
    if not report.complete:
        partial = st.checkbox("Load what matches (a partial load)", key=_PARTIAL)
    if report.nonfinite:
        nonfinite = st.checkbox("Load values with NaN or Inf", key=_NONFINITE)
    st.button(
        "Load into the model",
        key="files_load_button",
        type="primary",
        icon=":material/upload:",
        disabled=not report.keys,
        on_click=session_state.act,
        args=(_LOAD, lambda: session_state.workspace().load_checkpoint(ckpt, partial, nonfinite)),
    )
    session_state.show_error(_LOAD)
    last = ws.experiment.ops[-1] if ws.experiment.ops else {}
    if last.get("digest") == ckpt.digest:
        st.success(
            f"Loaded {report.keys} keys. Undo it from the sidebar (Ctrl+Z) while the load is "
            "the last thing done.",
            icon=":material/check:",
        )
    session_state.show_message(ws.take_notice())


# --- downloads ---


@dataclass(frozen=True)
class _Download:
    """One file the Files tab offers: made only when its button is pressed."""

    label: str
    kind: str  # the widget key's last part
    suffix: str  # after the preset's name: "model.safetensors"
    mime: str
    make: Callable[[Workspace], Callable[[], bytes]]
    offered: Callable[[Workspace], bool] = lambda ws: True


def _has_values(ws: Workspace) -> bool:
    return not ws.has_lazy()


_DOWNLOADS = (
    _Download(
        "Experiment (.json)",
        "json",
        ".experiment.json",
        "application/json",
        lambda ws: partial(downloads.experiment_json, ws.experiment),
    ),
    _Download(
        "Parameters (.safetensors)",
        "safetensors",
        ".safetensors",
        "application/octet-stream",
        lambda ws: partial(downloads.safetensors_bytes, ws.module),
        _has_values,
    ),
    _Download(
        "state_dict (.pt)",
        "pt",
        ".pt",
        "application/octet-stream",
        lambda ws: partial(downloads.pt_bytes, ws.module),
        _has_values,
    ),
    _Download(
        "Parameter table (.csv)",
        "csv",
        ".parameters.csv",
        "text/csv",
        lambda ws: partial(downloads.parameters_csv, ws.tree()),
        _has_values,
    ),
    _Download(
        "Training log (.csv)",
        "train_csv",
        ".train_log.csv",
        "text/csv",
        lambda ws: partial(downloads.train_log_csv, ws.state.train_log),
        lambda ws: ws.state.train_log is not None and ws.state.train_log.done > 0,
    ),
)


def _downloads(ws: Workspace) -> None:
    """Download buttons; each file is made when its button is pressed (deferred)."""
    st.markdown("**Download**")
    base = ws.experiment.preset or "model"
    if ws.has_lazy():
        st.caption("Parameters: lazy layers have no values yet; run a forward pass first.")
    for d in _DOWNLOADS:
        if d.offered(ws):
            _button(d.label, d.kind, d.make(ws), base + d.suffix, d.mime)
    code = session_state.cached("download", "script", lambda: _script_or_reason(ws.experiment))
    if isinstance(code, bytes):
        _button("PyTorch script (.py)", "script", code, f"{base}.py", "text/x-python")
    elif code:
        st.text(f"PyTorch script: {code}")  # an error's text may quote user names: not markdown


def _button(label: str, kind: str, data, name: str, mime: str) -> None:
    st.download_button(
        label,
        data,
        file_name=name,
        mime=mime,
        key=f"files_dl_{kind}",
        icon=":material/download:",
        on_click="ignore",
    )


def _script_or_reason(exp) -> bytes | str | None:
    """The script's bytes, why there is none (a model from code, a load), or None."""
    try:
        return downloads.script(exp)
    except ExplorerError as err:
        return str(err)


# --- ONNX ---


def _onnx(ws: Workspace) -> None:
    """Export to ONNX on the experiment's input, check it in ONNX Runtime, then download."""
    st.markdown("**ONNX**")
    st.caption(
        "Save the model so it may be executed in other software: exported with "
        "torch.onnx.export on this input, then run in ONNX Runtime and compared with PyTorch."
    )
    reason = onnx_export.missing()
    if reason is not None:
        st.text(reason)
        return
    done = st.session_state.get(_ONNX)
    if done is None or done[0] != ws.version:
        st.button(
            "Export to ONNX", key="files_onnx", icon=":material/output:", on_click=_export_onnx
        )
        session_state.show_error(_ONNX)
        return
    _, data, check = done
    verdict = "match" if check.ok else "DIFFER"
    st.text(
        f"ONNX Runtime output {check.output_shape}: max |difference| {check.max_abs_diff:.3g} "
        f"(tolerance {check.tolerance:g}): the outputs {verdict}"
    )
    name = f"{ws.experiment.preset or 'model'}.onnx"
    st.download_button(
        "Download .onnx",
        data,
        file_name=name,
        mime="application/octet-stream",
        key="files_dl_onnx",
        icon=":material/download:",
        on_click="ignore",
    )


def _export_onnx() -> None:
    """Button callback: export and check; the bytes are kept for this state version only."""

    def run() -> None:
        ws = session_state.workspace()
        x = ws.state.input(session_state.LIMITS)
        data = onnx_export.to_onnx(ws.module, x, session_state.LIMITS)
        st.session_state[_ONNX] = (ws.version, data, onnx_export.check_onnx(data, ws.module, x))

    session_state.act(_ONNX, run)
