"""Smoke runs of the load test (benchmarks/load.py), small enough for ``make test``.

The measured run (30 students, 5 minutes of watching the memory) is not part of the test
suite; README "Hosting it for a class" keeps its figures and the command. Here a few
scripted students do every step against a server (and through HAProxy to 2 replicas) and
must finish without one error: a broken protocol, a page that shows an error, a click whose
parameter is not shown, a dropped websocket or a timeout each fail the test. Speed is
printed, never asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(150)


def run_load(tmp_path: Path, *args: str, timeout: float = 120) -> dict:
    """``python -m benchmarks.load ARGS`` in a child; its figures (the --json file)."""
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.load", "--after", "0", "--ramp", "1", "--think",
         "0.2", "--json", str(out), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    print(done.stdout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text())


def test_three_students_do_every_step_without_an_error(tmp_path):
    """3 students × (rgnet, re-initialize, forward + backward, 2 clicks) on one server."""
    figures = run_load(tmp_path, "--sessions", "3", "--clicks", "2", "--deadline", "60")
    assert figures["errors"] == []
    assert figures["completed"] == 3
    assert figures["steps"]["click"]["n"] == 6
    assert set(figures["steps"]) == {
        "open", "preset", "initialize tab", "re-initialize", "explore tab", "run", "click"
    }  # fmt: skip
    assert 100 < figures["rss_before"] <= figures["rss_peak"]  # the server's memory was read


def _haproxy() -> None:
    """Install Debian's haproxy if we may (as scripts/ensure_chromium.sh does), else skip."""
    done = subprocess.run(
        ["bash", str(ROOT / "deploy" / "ensure_haproxy.sh")], capture_output=True, text=True
    )
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()[-1]
        if os.environ.get("CI") == "true":
            pytest.fail(f"the proxy smoke test must run under CI: {reason}", pytrace=False)
        pytest.skip(f"no HAProxy: {reason}")


def test_two_replicas_behind_haproxy_serve_students_on_sticky_sessions(tmp_path):
    """Through deploy/replicas.sh: both replicas work, websockets pass, sessions stick."""
    _haproxy()
    figures = run_load(
        tmp_path, "--replicas", "2", "--sessions", "4", "--clicks", "1", "--deadline", "60"
    )
    assert figures["errors"] == []
    assert figures["completed"] == 4
    assert figures["replicas"] == 2
    assert all(cpu > 0 for cpu in figures["server_cpu_each"]), figures["server_cpu_each"]


def test_the_proxy_sets_a_sticky_cookie_and_keeps_to_it(tmp_path):
    """New browsers are spread over the replicas by cookie; a browser's cookie is honoured."""
    _haproxy()
    env = {**os.environ, "RUN_DIR": str(tmp_path / "run")}
    deploy = ROOT / "deploy" / "replicas.sh"
    port = _free_port()
    start = subprocess.run(
        ["bash", str(deploy), "start", "2", "--port", str(port), "--addr", "127.0.0.1"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    try:
        assert start.returncode == 0, start.stderr[-2000:]
        base = f"http://127.0.0.1:{port}/"
        fresh: set = set()
        for _ in range(30):  # a replica HAProxy saw starting late is back after `rise` checks
            fresh |= {_route(base) for _ in range(6)}  # leastconn over idle replicas
            if len(fresh - {None}) == 2:
                break
            threading.Event().wait(1)
        assert len(fresh) == 2 and None not in fresh, fresh
        chosen = sorted(fresh)[0]
        assert {_route(base, chosen) for _ in range(6)} == {None}  # kept: not set again
    finally:
        subprocess.run(["bash", str(deploy), "stop"], env=env, timeout=120)


def _route(url: str, cookie: str | None = None) -> str | None:
    """The EXPLORER_ROUTE value the proxy sets on a GET, or None when it sets none."""
    request = urllib.request.Request(url)
    if cookie:
        request.add_header("Cookie", f"EXPLORER_ROUTE={cookie}")
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()
        for header in answer.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            if name.strip() == "EXPLORER_ROUTE":
                return rest.split(";", 1)[0]
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_closed_session_is_dropped_after_its_reconnect_window(tmp_path, monkeypatch):
    """A student leaves; after SESSION_TTL the replica's janitor drops and shuts the session."""
    from benchmarks.load import free_port, run_students, serve, wait_healthy

    monkeypatch.setenv("SESSION_TTL", "1")
    monkeypatch.setenv("REAP_EVERY", "1")
    log = tmp_path / "server.log"
    port = free_port()
    server = serve(port, "hosted", log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, 120)
        students = run_students(url, 1, clicks=1, deadline_s=60, ramp=0, think=0.1)
        assert students[0].done, students[0].errors
        for _ in range(60):
            if "dropped 1 closed sessions" in log.read_text(errors="replace"):
                break
            threading.Event().wait(0.5)
        assert "session janitor: dropped 1 closed sessions" in log.read_text(errors="replace")
    finally:
        server.terminate()
        server.wait(30)
