#!/usr/bin/env bash
# Install everything, then run a throw-away JupyterHub with cull-idle as a managed service.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system.sh
# The test suite's (debug) build: two users need no optimised culler, and a newcomer who runs
# both scripts builds the dependencies once, not a second time with release's LTO.
scripts/setup-dev.sh
exec .venv/bin/python demo/run_demo.py "$@"
