# Parameter explorer: developer entry points.
#
#   make run    create/reuse .venv, install requirements.txt, start the Streamlit app
#   make test   install requirements-test.txt + the package, ensure Chromium, run pytest
#   make lint   ruff check
#   make bench  install requirements-bench.txt, print issue 9's table, write docs/benchmarks.md
#               (BENCH_ARGS=--quick for smaller sizes)
#   make clean  remove .venv, caches and test artifacts
#
# Installs are skipped while the stamp files in .venv are newer than the requirement files.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := run
.DELETE_ON_ERROR:

VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

RUN_STAMP := $(VENV)/.stamp-run
TEST_STAMP := $(VENV)/.stamp-test
BENCH_STAMP := $(VENV)/.stamp-bench
BENCH_ARGS ?=
PIP_LOG := $(VENV)/pip-install.log

# pip's full output goes to $(PIP_LOG); only "Collecting"/"Installing collected" lines are
# shown (shortened) as progress. On failure the tail of the log is printed and make stops.
define pip_install
	$(PY) -m pip install --progress-bar off $(1) 2>&1 | tee -a $(PIP_LOG) \
	  | { grep --line-buffered -E '^(Collecting|Installing collected) ' \
	      | sed -u -E 's/^(.{96}).+/\1.../; s/^/  /' || true; } \
	  || { echo "pip install failed; last lines of $(PIP_LOG):" >&2; \
	       tail -n 40 $(PIP_LOG) >&2; exit 1; }
endef

.PHONY: run test lint bench clean

run: $(RUN_STAMP)
	@echo ""
	@echo "Open http://localhost:$(PORT) in your browser (Ctrl+C to stop)"
	@echo ""
	$(VENV)/bin/streamlit run app.py --server.port $(PORT) --server.maxUploadSize 200

test: $(TEST_STAMP)
	@bash scripts/ensure_chromium.sh
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .

bench: $(BENCH_STAMP)
	$(PY) -m benchmarks $(BENCH_ARGS) --out docs/benchmarks.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis test-artifacts build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Create the virtualenv with python3.11 (or python3 if it is >= 3.11).
$(PY):
	@py="$$(command -v python3.11 || command -v python3 || true)"; \
	if [ -z "$$py" ]; then echo "error: python3.11 (or python3 >= 3.11) not found" >&2; exit 1; fi; \
	if ! "$$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then \
	  echo "error: Python >= 3.11 required, but $$py is $$("$$py" -V 2>&1)" >&2; exit 1; fi; \
	echo "Creating virtualenv $(VENV) with $$("$$py" -V 2>&1) ($$py)..."; \
	if ! "$$py" -m venv $(VENV); then \
	  rm -rf $(VENV); \
	  echo "error: '$$py -m venv' failed; on Debian/Ubuntu install python3-venv" \
	       "(apt-get install python3.11-venv)" >&2; exit 1; fi

$(RUN_STAMP): requirements.txt | $(PY)
	@echo "Installing dependencies into $(VENV) (first run takes a few minutes)..."
	@: > $(PIP_LOG)
	@$(call pip_install,-r requirements.txt)
	@touch $@
	@echo "Dependencies installed."

$(TEST_STAMP): requirements.txt requirements-test.txt pyproject.toml | $(PY)
	@echo "Installing test dependencies into $(VENV) (first run takes a few minutes)..."
	@: > $(PIP_LOG)
	@$(call pip_install,-r requirements-test.txt)
	@echo "Installing the explorer package (editable)..."
	@$(call pip_install,-e . --no-deps)
	@touch $@ $(RUN_STAMP)  # requirements-test.txt includes requirements.txt
	@echo "Test dependencies installed."

$(BENCH_STAMP): requirements.txt requirements-bench.txt | $(PY)
	@echo "Installing benchmark references (TensorBoard, torchinfo) into $(VENV)..."
	@: > $(PIP_LOG)
	@$(call pip_install,-r requirements-bench.txt)
	@touch $@ $(RUN_STAMP)  # requirements-bench.txt includes requirements.txt
