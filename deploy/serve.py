"""Start the app for a class: ``streamlit run app.py`` with what a shared server needs.

``deploy/replica.sh`` runs this; its arguments go to ``streamlit run``. Before the first
session it does two things plain ``streamlit run`` does not:

- **Imports and freezes.** PyTorch, pandas, Plotly and the explorer are imported before
  the server starts, the app's ``ui`` modules as soon as its runtime exists (their
  components register with it), and ``gc.freeze()`` then moves the ~370,000 objects they
  made out of the garbage collector's sight. Streamlit calls ``gc.collect()`` after every
  script run (``runner.postScriptGC``); with those objects tracked each call took
  0.25–0.5 s of CPU holding the GIL, which alone made 30 students wait in line. Frozen,
  it takes milliseconds and still collects everything sessions leave behind.
- **Drops closed sessions.** Streamlit keeps a disconnected session for
  ``server.disconnectedSessionTTL`` seconds so a reconnecting tab gets its state back,
  but removes expired ones only when another session is stored, and then never shuts
  them down (their media files and dataframes stay registered). A janitor thread asks the
  server's event loop every ``REAP_EVERY`` seconds to remove expired sessions and shut
  them down, then collects and hands freed heap back to the OS (``malloc_trim``), so the
  resident memory returns to its baseline when a class leaves.

Both use Streamlit internals (``Runtime._session_mgr``), checked at start: on a Streamlit
whose internals differ, the janitor logs one warning and the server runs without it.

Example::

    EXPLORER_PROFILE=hosted python deploy/serve.py --server.port 8501
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
REAP_EVERY = float(os.environ.get("REAP_EVERY", "15"))  # seconds between two sweeps

_log = logging.getLogger("explorer.deploy")


def preload() -> None:
    """Import what every session needs and pay PyTorch's first meta-device pass now."""
    sys.path.insert(0, str(ROOT))
    import pandas  # noqa: F401
    import plotly.graph_objects  # noqa: F401
    import pyarrow  # noqa: F401
    import torch  # noqa: F401

    import explorer  # noqa: F401
    import explorer.session.actions  # noqa: F401
    import explorer.view.figures  # noqa: F401
    from explorer.session.state import warm_up

    warm_up()


def import_app() -> None:
    """Import every module of the app's ``ui`` package, once the runtime exists.

    Custom components register with the running ``Runtime`` when their module is imported,
    so this must not run before it exists (as ``preload`` does).
    """
    import importlib
    import pkgutil

    import ui

    for module in pkgutil.iter_modules(ui.__path__):
        importlib.import_module(f"ui.{module.name}")


def trim() -> None:
    """Give the heap's free pages back to the OS (glibc only; a no-op elsewhere)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name)
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def reap(runtime) -> int:
    """On the runtime's event loop: remove expired stored sessions and shut them down."""
    manager = runtime._session_mgr
    with manager._storage_lock:
        removed = manager._session_storage._cache.expire()
    for _session_id, info in removed:
        info.session.shutdown()
    return len(removed)


def _after_start() -> None:
    """Once the runtime exists: import the app and freeze; then sweep closed sessions."""
    from streamlit.runtime import Runtime

    while not Runtime.exists():
        time.sleep(0.2)
    try:
        import_app()
    except Exception:  # the app's first run shows the same error to the user
        _log.exception("preloading the app's modules failed")
    gc.collect()
    gc.freeze()
    loop = _event_loop(Runtime.instance())
    if loop is not None:
        _sweep_forever(Runtime.instance(), loop)


def _event_loop(runtime):
    """The runtime's event loop once it has started; None if Streamlit's internals differ."""
    while True:
        try:
            loop = runtime._get_async_objs().eventloop
            runtime._session_mgr._session_storage._cache.expire  # noqa: B018 (they exist)
            runtime._session_mgr._storage_lock  # noqa: B018
            return loop
        except RuntimeError:  # "Runtime hasn't started yet!"
            time.sleep(0.2)
        except AttributeError as err:
            _log.warning("session janitor off: this Streamlit's internals differ (%s)", err)
            return None


def _sweep_forever(runtime, loop) -> None:
    """Every ``REAP_EVERY`` s, reap on the event loop; after a reap, collect and trim."""
    while not loop.is_closed():
        time.sleep(REAP_EVERY)
        done, count = threading.Event(), [0]

        def sweep(done=done, count=count) -> None:
            try:
                count[0] = reap(runtime)
            except Exception:  # never take the server down for a sweep
                _log.exception("session janitor: sweep failed")
            finally:
                done.set()

        try:
            loop.call_soon_threadsafe(sweep)
        except RuntimeError:  # the loop closed: the server is stopping
            return
        done.wait(60)
        if count[0]:
            gc.collect()
            trim()
            _log.info("session janitor: dropped %d closed sessions", count[0])


def main(argv: list[str] | None = None) -> None:
    """Preload and freeze, start the after-start thread, then run ``streamlit run app.py ARGV``."""
    argv = sys.argv[1:] if argv is None else argv
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    _log.addHandler(handler)
    _log.setLevel(logging.INFO)
    preload()
    gc.collect()
    gc.freeze()  # what the imports made is never garbage: keep it out of every collection
    threading.Thread(target=_after_start, name="explorer-after-start", daemon=True).start()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *argv]
    cli.main()


if __name__ == "__main__":
    main()
