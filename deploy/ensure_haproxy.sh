#!/usr/bin/env bash
# Make sure Debian's HAProxy is there for the proxy smoke test (tests/test_load_smoke.py).
#
# - haproxy on PATH (or in /usr/sbin): print its version, exit 0.
# - otherwise, as root (or with passwordless sudo) and with apt-get: install Debian's
#   `haproxy` package (it is not started as a service here; deploy/replicas.sh runs it).
# - otherwise: exit 3 with the reason (the test skips locally and fails under CI=true).
set -uo pipefail

find_haproxy() {
    command -v haproxy 2>/dev/null || { [ -x /usr/sbin/haproxy ] && echo /usr/sbin/haproxy; } || true
}

bin=$(find_haproxy)
if [ -n "$bin" ]; then
    "$bin" -v 2>/dev/null | head -n 1
    exit 0
fi

SUDO=""
if ! command -v apt-get >/dev/null 2>&1; then
    echo "haproxy not found and no apt-get to install it" >&2
    exit 3
fi
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "haproxy not found and cannot be installed (not root): apt-get install haproxy" >&2
        exit 3
    fi
fi
echo "haproxy not found: installing Debian's haproxy package with apt-get..."
if $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends haproxy </dev/null >/dev/null; then
    bin=$(find_haproxy)
    if [ -n "$bin" ]; then
        "$bin" -v 2>/dev/null | head -n 1
        exit 0
    fi
fi
echo "apt-get install haproxy failed" >&2
exit 3
