#!/usr/bin/env bash
# The whole test suite: Rust lint and unit tests, Python lint, then pytest against a real
# JupyterHub that the suite starts on loopback. Exits non-zero if anything fails.
#
#   scripts/test.sh [PYTEST ARGS]           everything, as CI runs it
#   scripts/test.sh --quick [PYTEST ARGS]   the same checks, then only pytest's quick tier
#                                           (-m "not slow": no wheels, bench, demo, deploy,
#                                           real servers, browsers or Hubs of a test's own)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
if [ "${1:-}" = "--quick" ]; then
    quick=true
    shift
fi
scripts/setup-dev.sh
# The slow tier's browser and real-server tests drive Debian's Chromium behind Debian's node
# configurable-http-proxy: installed here too, so that this one command works on a fresh clone.
if ! $quick; then
    scripts/install-system.sh
fi
# shellcheck disable=SC1091
. .venv/bin/activate
step() { echo "== $(date +%H:%M:%S) $*"; }
step "lint and Rust tests (clippy and the test binaries: about 1.5 minutes the first time on 2 cores)"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
ruff check python tests demo bench sensor
ruff format --check python tests demo bench sensor
python -m mypy --strict python/cull_idle
python -m mypy --strict sensor/cull_idle_sensor
python -m mypy.stubtest cull_idle._core
if $quick; then
    exec python -m pytest -m "not slow" "$@"
fi
# What PyPI gets, for tests/test_dist.py; offline, as cargo has every crate by now.
step "the wheels PyPI gets (a release build with LTO and zig: about 2 minutes the first time on 2 cores)"
CARGO_NET_OFFLINE=true scripts/build-dist.sh
step "pytest (about 20 minutes on 2 cores)"
python -m pytest --durations=25 "$@"
