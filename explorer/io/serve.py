"""``python -m explorer serve file.py:make_model``: the app, opened on your own ``nn.Module``.

The command checks the source and the options, then starts ``streamlit run app.py`` with the
experiment in the ``EXPLORER_EXPERIMENT`` environment variable; the app reads it on each
session's first visit (``served_experiment``). Models from code run only in a local session:
the hosted profile refuses the command before anything starts.

Example::

    python -m explorer serve tests/model_files/fancy_mlp.py:make_model --input 2,20
    param-explorer serve mypackage.models:make_net --tokens 1000 --input 2,16
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from explorer.core.errors import SpecError
from explorer.core.limits import MIB, Limits, profile
from explorer.engine.run import InputKind, Loss
from explorer.session.experiment import Experiment, check_experiment

__all__ = ["ENV_EXPERIMENT", "Launch", "launch", "served_experiment", "main"]

ENV_EXPERIMENT = "EXPLORER_EXPERIMENT"
APP = Path(__file__).resolve().parents[2] / "app.py"


@dataclass(frozen=True)
class Launch:
    """The command that starts the app, and the environment it runs in."""

    argv: list[str]
    env: dict[str, str]
    experiment: Experiment


def launch(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> Launch:
    """Check the source and options, and say how to start the app; ``SpecError`` says why not."""
    name = args.profile or environ.get("EXPLORER_PROFILE") or "local"
    limits = profile(name)
    source = _absolute(args.source)
    if args.tokens is not None:
        kind, vocab, loss = InputKind.TOKENS, args.tokens, args.loss or Loss.CROSS_ENTROPY
    else:
        kind, vocab, loss = InputKind.UNIFORM, None, args.loss or Loss.SUM
    exp = Experiment(
        spec=None,
        source=source,
        input_shape=_shape(args.input),
        input_kind=kind,
        vocab=vocab,
        loss=loss,
        root_name="net",
    )
    check_experiment(exp, limits)  # refuses code in the hosted profile, and bad inputs
    argv = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(args.port),
        "--server.maxUploadSize", str(max(1, limits.max_upload_bytes // MIB)),
        *args.streamlit,
    ]  # fmt: skip
    env = {**environ, ENV_EXPERIMENT: exp.to_json(), "EXPLORER_PROFILE": name}
    return Launch(argv, env, exp)


def served_experiment(limits: Limits, environ: Mapping[str, str] = os.environ) -> Experiment | None:
    """The experiment ``serve`` handed to this app process, or None when it was not served.

    Raises ``SpecError`` when it cannot run here (a hosted profile, a malformed value).
    """
    text = environ.get(ENV_EXPERIMENT)
    if not text:
        return None
    return Experiment.from_json(text, limits)


def _absolute(source: str) -> str:
    """``file.py:fn`` with the file's absolute path, so the app finds it from any folder."""
    where, sep, name = source.rpartition(":")
    if sep and where.endswith(".py"):
        return f"{Path(where).expanduser().resolve()}:{name}"
    return source


def _shape(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    if not all(p.isdigit() and len(p) <= 9 for p in parts):
        raise SpecError(f"must be whole numbers separated by commas, got {text!r}", "--input")
    return tuple(int(p) for p in parts)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m explorer", description="See inside a PyTorch model's parameters."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the app on your own nn.Module")
    serve.add_argument("source", help="path/to/file.py:make_model or package.module:factory")
    serve.add_argument("--input", default="2,4", help="input batch shape, e.g. 2,20 (default 2,4)")
    serve.add_argument(
        "--tokens",
        type=int,
        default=None,
        metavar="VOCAB",
        help="feed integer token ids below VOCAB instead of torch.rand values",
    )
    serve.add_argument("--loss", choices=[str(x) for x in Loss], default=None)
    serve.add_argument("--port", type=int, default=8501)
    serve.add_argument("--profile", choices=["local", "hosted"], default=None,
                       help="limits profile (default: $EXPLORER_PROFILE or local)")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line: ``serve`` checks, then runs the app until it is stopped."""
    argv = sys.argv[1:] if argv is None else argv
    cut = argv.index("--") if "--" in argv else len(argv)
    args = _parser().parse_args(argv[:cut])
    args.streamlit = argv[cut + 1 :]  # after --: more options for streamlit run
    try:
        how = launch(args)
    except (SpecError, ValueError) as err:
        print(f"param-explorer: {err}", file=sys.stderr)
        return 2
    print(f"Serving {how.experiment.source} (input {how.experiment.input_shape})", flush=True)
    try:
        return subprocess.call(how.argv, env=how.env)
    except KeyboardInterrupt:
        return 0
