#!/usr/bin/env bash
# Build what PyPI gets into dist/: a manylinux2014 (manylinux_2_17) x86_64 abi3 wheel, linked by
# zig against glibc 2.17 so that it installs on RHEL/Rocky 8, Ubuntu 20.04 and Amazon Linux 2,
# and an sdist; and the sensor's sdist and wheel. Needs cargo, and maturin, ziglang, auditwheel
# and build in the active Python (all in requirements-dev.txt); no container, and no network once
# the crates are fetched (CARGO_NET_OFFLINE=true keeps cargo off the registry) and pip's cache
# has hatchling, the sensor's build backend.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${DIST_DIR:-dist}
mkdir -p "$out"
rm -f "$out"/cull_idle-*.whl "$out"/cull_idle-*.tar.gz "$out"/cull_idle_sensor-*
maturin build --release --locked --strip --zig --compatibility manylinux2014 \
    --target x86_64-unknown-linux-gnu --out "$out"
maturin sdist --out "$out"
# The sensor: its sdist, and its wheel built from that sdist, at the same version (Cargo.toml's).
python -m build --outdir "$out" sensor
auditwheel show "$out"/cull_idle-*.whl
ls -l "$out"
