#!/usr/bin/env bash
# Create .venv with the test and demo dependencies, and build cull-idle into it (editable).
# Needs Python >= 3.9 with venv, and a Rust toolchain (cargo).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
step() { echo "== $(date +%H:%M:%S) $*"; }
step "pip: the test and demo dependencies (JupyterHub, JupyterLab and its extensions, Playwright, maturin; about 3 minutes the first time, seconds after)"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -r requirements-dev.txt
# The sensor inside the test Hub's single-user servers (pure Python, built from sensor/).
python -m pip install --quiet ./sensor
# The suite's harness (the test Hub, its page helpers, the JupyterLab driver), which bench/ and
# demo/ import too: editable, so that they always run the harness as it is in tests/.
python -m pip install --quiet --editable ./tests
step "cargo: cull-idle's Rust core, into .venv (cargo names each crate as it compiles it; about 1.5 minutes the first time on 2 cores, seconds after)"
maturin develop ${MATURIN_ARGS:-}
step "ready"
