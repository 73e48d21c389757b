#!/usr/bin/env bash
# Install everything, then run a throw-away JupyterHub with cull-idle as a managed service.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system.sh
MATURIN_ARGS=--release scripts/setup-dev.sh
exec .venv/bin/python demo/run_demo.py "$@"
