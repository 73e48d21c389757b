"""What PyPI gets: the wheel and the sdist that scripts/build-dist.sh makes, installed as users do.

The wheel goes into a fresh venv whose PATH has no cargo or rustc, and the sdist into one that
builds it with cargo; each then answers ``--version`` and culls against the suite's real Hub.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Optional

import pytest

from helpers import ACTIVE, IDLE, setup_servers

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
CARGO_VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)  # type: ignore[union-attr]
# Where no Rust toolchain is: the system's own directories, and the venv's.
BARE_PATH = "/usr/local/bin:/usr/bin:/bin"


SOURCES = ["src", "python", "Cargo.toml", "Cargo.lock", "pyproject.toml", "README.md", "LICENSE"]
# scripts/test.sh builds dist/ before pytest; a run of pytest alone rebuilds what is stale.
pytestmark = pytest.mark.timeout(1800)


def artifact(pattern: str) -> Optional[Path]:
    found = sorted(DIST.glob(pattern))
    return found[0] if found else None


def newest_source() -> float:
    paths = [ROOT / name for name in SOURCES]
    files = [f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]
    # Not what an import or `maturin develop` leaves in the source tree.
    files = [f for f in files if "__pycache__" not in f.parts and f.suffix != ".so"]
    return max(f.stat().st_mtime for f in files)


@pytest.fixture(scope="module")
def dist() -> dict[str, Path]:
    """The wheel and sdist of the sources as they are, from scripts/build-dist.sh."""
    wheel = artifact(f"cull_idle-{CARGO_VERSION}-*.whl")
    sdist = artifact(f"cull_idle-{CARGO_VERSION}.tar.gz")
    if wheel is None or sdist is None or min(wheel.stat().st_mtime, sdist.stat().st_mtime) < newest_source():
        env = {**os.environ, "CARGO_NET_OFFLINE": "true"}
        subprocess.run([str(ROOT / "scripts" / "build-dist.sh")], check=True, cwd=ROOT, env=env)
        wheel = artifact(f"cull_idle-{CARGO_VERSION}-*.whl")
        sdist = artifact(f"cull_idle-{CARGO_VERSION}.tar.gz")
    assert wheel and sdist, sorted(DIST.iterdir())
    return {"wheel": wheel, "sdist": sdist}


def new_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / "bin" / "python"


def run(
    python: Path, args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=python.parent
    )


def installed_culler_culls(python: Path, hub, env: dict[str, str]) -> None:
    version = run(python, ["-m", "cull_idle", "--version"], env)
    assert version.returncode == 0 and version.stdout == f"cull-idle {CARGO_VERSION}\n", version
    setup_servers(
        hub, {("idle", ""): {"last_activity_ago": IDLE}, ("active", ""): {"last_activity_ago": ACTIVE}}
    )
    once = run(
        python,
        ["-m", "cull_idle", "--once", f"--url={hub.api_url}"],
        {**env, "JUPYTERHUB_API_TOKEN": hub.cull_token},
    )
    assert once.returncode == 0, once.stdout + once.stderr
    assert "1 servers stopped" in once.stdout + once.stderr, once.stdout + once.stderr
    assert not hub.running("idle") and hub.running("active")


def test_the_wheel_is_manylinux2014_abi3_and_small(dist):
    wheel = dist["wheel"]
    assert wheel.name == f"cull_idle-{CARGO_VERSION}-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
    shown = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", str(wheel)], capture_output=True, text=True, check=True
    ).stdout
    assert '"manylinux_2_17_x86_64"' in " ".join(shown.split()), shown
    with zipfile.ZipFile(wheel) as z:
        (library,) = (i for i in z.infolist() if i.filename.endswith(".so"))
        metadata = z.read(f"cull_idle-{CARGO_VERSION}.dist-info/METADATA").decode()
    assert library.filename == "cull_idle/_core.abi3.so"
    # Stripped: the symbol table alone would add megabytes.
    assert library.file_size < 12 * 1024 * 1024, library.file_size
    assert f"\nVersion: {CARGO_VERSION}\n" in metadata


def test_twine_passes_the_wheel_and_sdist(dist):
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dist["wheel"]), str(dist["sdist"])],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2, checked.stdout


def test_the_wheel_installs_and_culls_where_there_is_no_rust(dist, hub, tmp_path):
    python = new_venv(tmp_path / "venv")
    env = {"PATH": f"{python.parent}:{BARE_PATH}", "HOME": str(tmp_path)}
    assert shutil.which("cargo", path=env["PATH"]) is None
    assert shutil.which("rustc", path=env["PATH"]) is None
    install = run(python, ["-m", "pip", "install", "--no-index", str(dist["wheel"])], env)
    assert install.returncode == 0, install.stdout + install.stderr
    installed_culler_culls(python, hub, env)
    script = subprocess.run(
        [str(python.parent / "cull-idle"), "--version"], env=env, capture_output=True, text=True
    )
    assert script.stdout == f"cull-idle {CARGO_VERSION}\n"


def test_the_sdist_builds_with_cargo_installs_and_culls(dist, hub, tmp_path):
    python = new_venv(tmp_path / "venv")
    maturin = next(
        line
        for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if line.startswith("maturin==")
    )
    # The build backend, from pip's cache where the suite's own venv got it.
    backend = run(python, ["-m", "pip", "install", maturin], dict(os.environ), timeout=300)
    assert backend.returncode == 0, backend.stdout + backend.stderr
    # The sdist is built by cargo as pip builds it, offline. Its dev profile shares the suite's
    # compiled dependencies (CARGO_TARGET_DIR); the release profile is the wheel's, tested above.
    env = {**os.environ, "CARGO_NET_OFFLINE": "true", "MATURIN_PEP517_ARGS": "--profile dev"}
    install = run(
        python,
        ["-m", "pip", "install", "--no-index", "--no-build-isolation", str(dist["sdist"])],
        env,
        timeout=1200,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    installed_culler_culls(python, hub, {"PATH": f"{python.parent}:{BARE_PATH}", "HOME": str(tmp_path)})


def test_one_version_from_cargo_toml():
    from importlib.metadata import version

    import cull_idle

    assert cull_idle.__version__ == CARGO_VERSION
    assert version("cull-idle") == CARGO_VERSION
    shown = subprocess.run([sys.executable, "-m", "cull_idle", "--version"], capture_output=True, text=True)
    assert shown.stdout == f"cull-idle {CARGO_VERSION}\n"
