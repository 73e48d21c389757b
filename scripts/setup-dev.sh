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
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -r requirements-dev.txt
# The sensor inside the test Hub's single-user servers (pure Python, built from sensor/).
python -m pip install --quiet ./sensor
# The suite's harness (the test Hub, its page helpers, the JupyterLab driver), which bench/ and
# demo/ import too: editable, so that they always run the harness as it is in tests/.
python -m pip install --quiet --editable ./tests
maturin develop --quiet ${MATURIN_ARGS:-}
