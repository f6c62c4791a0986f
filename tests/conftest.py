"""Shared pytest fixtures: Chromium discovery, Streamlit servers, Playwright browser/page.

Browser tests use Debian's chromium (not Playwright's downloaded browsers). Without it they
are skipped locally, but under CI=true they fail instead: CI must never skip them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}
SERVER_START_TIMEOUT_S = 60.0


def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


def _skip_or_fail(reason: str) -> None:
    """Skip locally; fail under CI=true, where browser tests must never be skipped."""
    if _in_ci():
        pytest.fail(f"{reason} [CI=true: browser tests must not be skipped]", pytrace=False)
    pytest.skip(reason)


def find_chromium() -> str | None:
    """Path of a system Chromium ($CHROMIUM_PATH, chromium, chromium-browser), or None."""
    override = os.environ.get("CHROMIUM_PATH")
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


# --------------------------------------------------------------------------- outcome hook


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Store each phase's report on the item (item.rep_setup / rep_call / rep_teardown)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# --------------------------------------------------------------------------- chromium


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        override = os.environ.get("CHROMIUM_PATH")
        where = (
            f"CHROMIUM_PATH={override} is not executable"
            if override
            else "no `chromium` or `chromium-browser` on PATH"
        )
        _skip_or_fail(f"Chromium not installed: {where} (run `make test` as root to install it)")
    return path  # type: ignore[return-value]


# --------------------------------------------------------------------------- streamlit


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<could not read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:]) or "<empty log>"


def _stop_process(proc: subprocess.Popen) -> None:
    """Terminate a server we started (its own process group), then kill if needed."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # start_new_session=True: pgid == pid
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as resp:
            return resp.status == 200 and resp.read().decode().strip() == "ok"
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


@pytest.fixture(scope="session")
def streamlit_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., str]]:
    """Factory ``start_app(script="app.py", fresh=False) -> base_url``.

    Starts ``python -m streamlit run <script>`` from the repo root on a free port and
    waits for ``/_stcore/health``. Servers are reused per script for the whole session
    (pass ``fresh=True`` for a new one) and all are stopped at session end.
    """
    log_dir = tmp_path_factory.mktemp("streamlit-logs")
    procs: list[subprocess.Popen] = []
    by_script: dict[str, str] = {}
    proc_of: dict[str, subprocess.Popen] = {}

    def stop_all() -> None:
        for proc in procs:
            _stop_process(proc)

    atexit.register(stop_all)  # also covers an interrupted session

    def start_app(script: str = "app.py", *, fresh: bool = False) -> str:
        script_path = (REPO_ROOT / script).resolve()
        if not script_path.is_file():
            pytest.fail(f"Streamlit script not found: {script_path}", pytrace=False)
        key = str(script_path)
        if not fresh and key in by_script:
            return by_script[key]
        if key in proc_of:  # a fresh server replaces the script's last one: stop it now
            _stop_process(proc_of.pop(key))
            by_script.pop(key, None)

        env = dict(os.environ)
        env.update(
            PYTHONUNBUFFERED="1",
            STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
            STREAMLIT_SERVER_HEADLESS="true",
        )
        last_error = ""
        for _attempt in range(3):  # retry if another process grabbed the port
            port = _free_port()
            base_url = f"http://127.0.0.1:{port}"
            log_path = log_dir / f"{script_path.stem}-{port}.log"
            cmd = [
                sys.executable, "-m", "streamlit", "run", str(script_path),
                "--server.headless", "true",
                "--server.port", str(port),
                "--server.address", "127.0.0.1",
                "--browser.gatherUsageStats", "false",
                # no file watcher: its polling threads cost an idle server a fifth of a core
                "--server.fileWatcherType", "none",
                "--server.runOnSave", "false",
            ]  # fmt: skip
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    cmd,
                    cwd=REPO_ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            procs.append(proc)

            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while time.monotonic() < deadline:
                if _healthy(base_url):
                    by_script[key] = base_url
                    proc_of[key] = proc
                    return base_url
                if proc.poll() is not None:
                    break
                time.sleep(0.25)
            else:
                _stop_process(proc)
                pytest.fail(
                    f"Streamlit ({script}) not healthy at {base_url} after "
                    f"{SERVER_START_TIMEOUT_S:.0f}s; log tail:\n{_log_tail(log_path)}",
                    pytrace=False,
                )
            tail = _log_tail(log_path)
            last_error = (
                f"Streamlit ({script}) exited with code {proc.returncode}; log tail:\n{tail}"
            )
            if "already in use" not in tail:
                break
        pytest.fail(last_error, pytrace=False)

    yield start_app
    stop_all()
    atexit.unregister(stop_all)


# --------------------------------------------------------------------------- playwright


@pytest.fixture(scope="session")
def browser(chromium_path: str):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _skip_or_fail(f"playwright (Python package) not installed: {exc}")
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(
                executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
            )
        except Exception as exc:  # surface any launch problem clearly
            pytest.fail(f"could not launch Chromium at {chromium_path}: {exc}", pytrace=False)
        try:
            yield browser
        finally:
            browser.close()


def _artifact_name(nodeid_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid_name).strip("_")[:150] or "test"


@pytest.fixture
def page(browser, request: pytest.FixtureRequest):
    """A fresh 1400x900 page; on failure its screenshot goes to test-artifacts/<test>.png."""
    context = browser.new_context(viewport=VIEWPORT)
    pg = context.new_page()
    try:
        yield pg
    finally:
        node = request.node
        failed = any(
            getattr(getattr(node, f"rep_{when}", None), "failed", False)
            for when in ("setup", "call")
        )
        if failed:
            ARTIFACTS_DIR.mkdir(exist_ok=True)
            path = ARTIFACTS_DIR / f"{_artifact_name(node.name)}.png"
            with contextlib.suppress(Exception):
                pg.screenshot(path=str(path), full_page=True)
                print(f"\nscreenshot saved: {path}")
        context.close()
