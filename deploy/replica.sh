#!/usr/bin/env bash
# One app replica: `streamlit run app.py` with the settings a shared server needs, through
# deploy/serve.py (imports frozen out of the per-run garbage collection; closed sessions
# dropped).
#
#   PORT=8501 deploy/replica.sh              # listens on 127.0.0.1:8501, hosted profile
#   ADDRESS=0.0.0.0 PORT=8501 deploy/replica.sh   # in a container (see deploy/Dockerfile)
#
# Environment (all optional):
#   PORT              port to listen on (8501)
#   ADDRESS           address to listen on (127.0.0.1; behind a proxy on the same host)
#   EXPLORER_PROFILE  hosted (default here) or local: the caps in explorer/core/limits.py
#   THREADS           PyTorch CPU threads for this replica (1: one replica per core)
#   PYTHON            the interpreter (.venv/bin/python, else python3)
#   SESSION_TTL       seconds a closed tab's session is kept for a reconnect (60)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PORT="${PORT:-8501}"
ADDRESS="${ADDRESS:-127.0.0.1}"
THREADS="${THREADS:-1}"
SESSION_TTL="${SESSION_TTL:-60}"
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

export EXPLORER_PROFILE="${EXPLORER_PROFILE:-hosted}"
# One PyTorch thread per replica: N replicas on N cores do not fight over them.
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
# Fewer malloc arenas: Streamlit runs each session's script in its own thread, and glibc's
# default of 8 arenas per core keeps freed memory spread over many of them.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"

exec "$PYTHON" deploy/serve.py \
    --server.address "$ADDRESS" \
    --server.port "$PORT" \
    --server.headless true \
    --server.fileWatcherType none \
    --server.runOnSave false \
    --server.disconnectedSessionTTL "$SESSION_TTL" \
    --runner.postScriptGC "${POST_SCRIPT_GC:-true}" \
    --server.maxUploadSize "$(EXPLORER_PROFILE="$EXPLORER_PROFILE" "$PYTHON" -c \
        'from explorer.core.limits import profile; print(profile().max_upload_bytes >> 20)')" \
    --browser.gatherUsageStats false
