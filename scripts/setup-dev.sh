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
maturin develop --quiet ${MATURIN_ARGS:-}
