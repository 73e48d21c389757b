#!/usr/bin/env bash
# The whole test suite: Rust lint and unit tests, Python lint, then pytest against a real
# JupyterHub that the suite starts on loopback. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-dev.sh
# shellcheck disable=SC1091
. .venv/bin/activate
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
ruff check python tests demo bench
ruff format --check python tests demo bench
python -m mypy --strict python/cull_idle
python -m mypy.stubtest cull_idle._core
python -m pytest "$@"
