"""The oldest JupyterLab the notice supports, in a venv of its own beside the suite's (which has
the newest): the newest patch of JupyterLab 4.0, with the cull-idle-sensor wheel as built for
PyPI and what a single-user server needs. The Hub runs the servers of users named ``old-*``
with it (tests/hubharness/jupyterhub_config.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLDEST_JUPYTERLAB = "4.0.13"
CARGO_VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)  # type: ignore[union-attr]


def pinned(name: str) -> str:
    """``name==version`` as requirements-dev.txt pins it, for pip's cache to answer."""
    lines = (ROOT / "requirements-dev.txt").read_text().splitlines()
    return next(line for line in lines if line.startswith(f"{name}=="))


def sensor_wheel(scratch: Path) -> Path:
    """The sensor's wheel in dist/ (scripts/build-dist.sh) when it is newer than its sources,
    else one built into ``scratch`` the same way (from its sdist)."""
    built = ROOT / "dist" / f"cull_idle_sensor-{CARGO_VERSION}-py3-none-any.whl"
    sources = [f for f in (ROOT / "sensor").rglob("*") if f.is_file() and "__pycache__" not in f.parts]
    newest = max(f.stat().st_mtime for f in [*sources, ROOT / "Cargo.toml"])
    if built.exists() and built.stat().st_mtime >= newest:
        return built
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(scratch), str(ROOT / "sensor")],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return scratch / built.name


def make(where: Path) -> Path:
    """The venv, made at ``where``; its python. The suite's pip installs into it (without a pip
    of its own, nor bytecode compiled ahead): half the time of a venv's own pip, on 2 cores."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    wanted = [
        str(sensor_wheel(where.parent)),
        f"jupyterlab=={OLDEST_JUPYTERLAB}",
        pinned("jupyterhub"),
        pinned("ipykernel"),
    ]
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-compile"]
    subprocess.run([*install, *wanted], check=True, capture_output=True, timeout=900)
    return python
