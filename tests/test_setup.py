"""Fast checks that lock the project's setup contract (dependencies, config, CI entry)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from explorer.core.limits import HOSTED, LOCAL

ROOT = Path(__file__).resolve().parent.parent

_REQ_LINE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*?)\s*$")


def _requirements(path: Path) -> dict[str, str]:
    """{normalised name: version spec} for the requirement lines of a requirements file."""
    reqs: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = _REQ_LINE.match(line)
        assert match, f"unparseable requirement line: {raw!r}"
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        assert name not in reqs, f"{name} listed twice in {path.name}"
        reqs[name] = match.group(2).replace(" ", "")
    return reqs


def test_requirements_pin_torch_exactly() -> None:
    reqs = _requirements(ROOT / "requirements.txt")
    # Exactly this pin: anything looser makes pip fetch a multi-GB CUDA build.
    assert reqs.get("torch") == "==2.13.0"


@pytest.mark.parametrize("name", ["streamlit", "plotly", "pandas", "safetensors", "numpy"])
def test_requirements_have_lower_bounds(name: str) -> None:
    reqs = _requirements(ROOT / "requirements.txt")
    assert name in reqs, f"{name} missing from requirements.txt"
    assert re.search(r"(^|,)>=\d", reqs[name]), f"{name} needs a lower bound: {reqs[name]!r}"


def test_pyproject_dependencies_match_requirements() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = pyproject["project"]["dependencies"]
    from_pyproject = {
        re.sub(r"[-_.]+", "-", m.group(1)).lower(): m.group(2).replace(" ", "")
        for m in (_REQ_LINE.match(d) for d in deps)
        if m
    }
    assert from_pyproject == _requirements(ROOT / "requirements.txt")
    assert pyproject["project"]["requires-python"] == ">=3.11"


def test_test_requirements_include_runtime_requirements() -> None:
    text = (ROOT / "requirements-test.txt").read_text()
    assert re.search(r"^-r\s+requirements\.txt\s*$", text, re.MULTILINE)
    reqs = _requirements(ROOT / "requirements-test.txt")
    for name in ("pytest", "pytest-timeout", "hypothesis", "playwright", "ruff"):
        assert name in reqs, f"{name} missing from requirements-test.txt"


def test_streamlit_config_is_secure() -> None:
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server = cfg["server"]
    assert server.get("enableXsrfProtection", True) is True
    assert server.get("enableCORS", True) is True
    assert server["maxUploadSize"] * 2**20 == HOSTED.max_upload_bytes  # safe without flags
    local_mb = LOCAL.max_upload_bytes // 2**20
    assert f"--server.maxUploadSize {local_mb}" in (ROOT / "Makefile").read_text()
    # No tracebacks in the browser.
    assert cfg["client"]["showErrorDetails"] in {"none", "type"}
    assert cfg["browser"]["gatherUsageStats"] is False


def _quickstart_section(readme: str) -> str | None:
    lines = readme.splitlines()
    for i, line in enumerate(lines):
        heading = re.match(r"^(#+)\s+.*quick\s*start", line, re.IGNORECASE)
        if heading:
            level = len(heading.group(1))
            body = []
            for nxt in lines[i + 1 :]:
                other = re.match(r"^(#+)\s", nxt)
                if other and len(other.group(1)) <= level:
                    break
                body.append(nxt)
            return "\n".join(body)
    return None


def test_readme_quickstart_uses_make_test() -> None:
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("README.md not written yet")
    section = _quickstart_section(readme.read_text())
    assert section is not None, "README.md has no Quickstart section"
    assert "make test" in section
    assert "make run" in section


def test_ci_entry_runs_make_test() -> None:
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK), ".ci/run must be executable"
    text = ci.read_text()
    assert "set -euo pipefail" in text
    commands = [ln.split("#", 1)[0] for ln in text.splitlines()]
    assert any(re.search(r"(^|\s)make test(\s|$)", c) for c in commands)


def test_ensure_chromium_script_is_executable() -> None:
    assert os.access(ROOT / "scripts" / "ensure_chromium.sh", os.X_OK)


def test_gitignore_ignores_venv() -> None:
    patterns = {ln.strip() for ln in (ROOT / ".gitignore").read_text().splitlines()}
    assert patterns & {".venv", ".venv/", "/.venv", "/.venv/"}


def test_import_explorer_does_not_import_streamlit() -> None:
    code = "import explorer, sys; assert 'streamlit' not in sys.modules, 'streamlit imported'"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
