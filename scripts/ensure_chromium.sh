#!/usr/bin/env bash
# Make sure a Chromium for the browser tests (tests marked `browser`) is available.
#
# - chromium / chromium-browser on PATH: print its version, exit 0.
# - otherwise, as root (or with passwordless sudo) and with apt-get: install Debian's
#   `chromium` package.
# - otherwise: warn that browser tests will be SKIPPED and exit 0, except when CI=true,
#   where it exits 1 (CI must never skip the browser tests).
set -uo pipefail

find_chromium() {
    command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true
}

report() {
    local bin=$1 version
    # Debian's launcher script can print noise on stderr; keep only the version line.
    version=$("$bin" --version 2>/dev/null | head -n 1)
    echo "Chromium: ${version:-unknown version} ($bin)"
}

bin=$(find_chromium)
if [ -n "$bin" ]; then
    report "$bin"
    exit 0
fi

SUDO=""
can_install=false
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        can_install=true
    elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
        SUDO="sudo -n"
        can_install=true
    fi
fi

if $can_install; then
    echo "Chromium not found: installing Debian's chromium package with apt-get (takes a minute)..."
    if $SUDO apt-get update -qq \
        && $SUDO env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq chromium </dev/null >/dev/null; then
        bin=$(find_chromium)
        if [ -n "$bin" ]; then
            report "$bin"
            exit 0
        fi
        echo "apt-get install chromium finished, but no chromium binary is on PATH." >&2
    else
        echo "apt-get install chromium failed." >&2
    fi
    msg="Chromium could not be installed: browser tests will be SKIPPED"
else
    if command -v apt-get >/dev/null 2>&1; then why="not root"; else why="no apt-get"; fi
    msg="Chromium not found and cannot be installed ($why): browser tests will be SKIPPED"
    msg+=" (run \`make test\` as root, or install the 'chromium' package)"
fi

if [ "${CI:-}" = "true" ]; then
    echo "ERROR: $msg -- refusing under CI=true, where browser tests must run." >&2
    exit 1
fi
echo "WARNING: $msg" >&2
exit 0
