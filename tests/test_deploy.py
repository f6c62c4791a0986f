"""deploy/ is consistent: the proxy config parses, scripts parse, the image has what runs.

Docker is not available here, so the Dockerfile and compose file are checked statically:
every path the image copies exists and passes its .dockerignore, and the modules and files
the app loads at run time are inside what it copies. The proxy itself runs in
tests/test_load_smoke.py and tests/test_failover.py; the replicas' supervisor runs here.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def _copied() -> list[str]:
    """The sources of every COPY in deploy/Dockerfile."""
    sources = []
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            sources += line.split()[1:-1]
    return sources


def _ignored(path: str) -> bool:
    """Whether deploy/Dockerfile.dockerignore leaves ``path`` out (last matching rule wins)."""
    verdict = False
    for rule in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        keep = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            verdict = not keep
    return verdict


def test_every_copy_source_exists_and_is_in_the_build_context():
    """Each COPY source is in the repository and not excluded by the .dockerignore."""
    sources = _copied()
    assert {"requirements.txt", "app.py", "explorer/", "ui/", ".streamlit/"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _ignored(source.rstrip("/")), f"{source} is left out of the build context"
    assert _ignored(".venv") and _ignored(".git") and _ignored("test-artifacts")


IMPORTS = """
import importlib, pkgutil, sys
import explorer
for m in pkgutil.walk_packages(explorer.__path__, "explorer."):
    importlib.import_module(m.name)
for m in list(sys.modules.values()):
    f = getattr(m, "__file__", None) or ""
    if f.startswith(sys.argv[1]) and "/.venv/" not in f:
        print(f)
"""


def test_what_the_app_loads_is_inside_what_the_image_copies():
    """Every repository file the core's modules import, and the UI's assets, are copied."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS, str(ROOT) + "/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    copied = tuple(s.rstrip("/") for s in _copied())
    loaded = [str(Path(f).relative_to(ROOT)) for f in done.stdout.split()]
    assert "explorer/session/state.py" in loaded
    for relative in loaded:
        assert relative.startswith(copied), f"{relative} is imported but not in the image"
    for asset in ("ui/icon.png", "ui/tree_view.js", "ui/tree_view.css", "ui/session_state.py"):
        assert asset.startswith(copied) and (ROOT / asset).is_file()


@pytest.mark.parametrize("script", ["replica.sh", "replicas.sh", "ensure_haproxy.sh"])
def test_the_shell_scripts_parse(script):
    done = subprocess.run(["bash", "-n", str(DEPLOY / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_haproxy_config_is_valid_and_sticky():
    """``haproxy -c`` accepts the config; it inserts the sticky cookie and checks health."""
    text = (DEPLOY / "haproxy.cfg").read_text()
    assert re.search(r"^\s*cookie EXPLORER_ROUTE insert indirect nocache", text, re.M)
    assert re.search(r"^\s*timeout tunnel ", text, re.M)  # open websockets
    assert "option httpchk GET /_stcore/health" in text
    ensure = subprocess.run(["bash", str(DEPLOY / "ensure_haproxy.sh")], capture_output=True)
    haproxy = next((p for p in ("/usr/sbin/haproxy", "/usr/bin/haproxy") if Path(p).exists()), None)
    if ensure.returncode != 0 or haproxy is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no haproxy under CI, and deploy/ensure_haproxy.sh could not install it")
        pytest.skip("no haproxy here, and not root to install it (apt-get install haproxy)")
    env = {**os.environ, "PROXY_PORT": "8080", "COOKIE_KEY": "test"}
    done = subprocess.run([haproxy, "-c", "-f", str(DEPLOY / "haproxy.cfg")], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_compose_file_runs_the_image_behind_the_proxy():
    """compose.yaml: the app from deploy/Dockerfile, the proxy with deploy/haproxy.cfg."""
    text = (DEPLOY / "compose.yaml").read_text()
    assert "dockerfile: deploy/Dockerfile" in text
    assert "COPY haproxy.cfg /etc/haproxy/haproxy.cfg" in text
    assert "apt-get install -y --no-install-recommends haproxy" in text  # Debian's package
    assert "endpoint_mode: dnsrr" in text  # HAProxy sees every replica
    assert "server-template app " in (DEPLOY / "haproxy.cfg").read_text()


def test_the_haproxy_config_fails_over_at_once_and_logs_requests():
    """A dead replica is down within 2 checks 1 s apart; requests retry on another; logs."""
    text = (DEPLOY / "haproxy.cfg").read_text()
    assert re.search(r"^\s*option redispatch\b", text, re.M)
    assert re.search(r"^\s*retries [1-9]\b", text, re.M)
    assert re.search(r"^\s*retry-on .*\bconn-failure\b", text, re.M)
    checks = re.search(r"^\s*default-server (.*)$", text, re.M).group(1)
    assert "inter 1s" in checks and "fall 2" in checks and "rise 2" in checks, checks
    assert re.search(r"^\s*log stdout .* info$", text, re.M)  # a line per request
    assert re.search(r"^\s*option httplog\b", text, re.M)


def test_compose_restarts_what_stops():
    """Both services come back after a crash (docker compose and a swarm stack)."""
    text = (DEPLOY / "compose.yaml").read_text()
    assert text.count("restart: unless-stopped") == 2
    assert "condition: any" in text


def test_the_supervisor_starts_a_dead_replica_again_and_backs_off_when_it_keeps_dying(tmp_path):
    """``replicas.sh supervise``: a replica that is gone is started again at once; one that
    dies right after each start waits 2 s for the next try (then 4, 8, ... 60); TERM stops it."""
    (tmp_path / "replica1.pid").write_text("999999999\n")  # no such process
    env = {**os.environ, "RUN_DIR": str(tmp_path), "PYTHON": "false"}  # dies at once
    log = tmp_path / "supervisor.log"
    with open(log, "wb") as out:
        supervisor = subprocess.Popen(
            ["bash", str(DEPLOY / "replicas.sh"), "supervise", "1", "18090", "hosted", "1"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            for _ in range(100):
                if "(restart 2)" in log.read_text():
                    break
                time.sleep(0.1)
        finally:
            supervisor.terminate()
            supervisor.wait(5)  # it ends its wait at once on TERM
    text = log.read_text()
    assert re.search(r"replica 1 \(pid 999999999\) is gone: started again as pid \d+ "
                     r"on 127\.0\.0\.1:18091 \(restart 1\)", text), text  # fmt: skip
    assert re.search(r"replica 1 \(pid \d+\) died \d s after it was started; next try in 2 s",
                     text), text  # fmt: skip
    assert "(restart 2)" in text and "(restart 3)" not in text, text
    assert text.rstrip().endswith("supervisor: stopped"), text
    assert (tmp_path / "replica1.restarts").read_text().strip() == "2"
