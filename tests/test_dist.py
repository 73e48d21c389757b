"""What PyPI gets: the wheels and the sdists that scripts/build-dist.sh makes, installed as users do.

The wheel goes into a fresh venv whose PATH has no cargo or rustc, and the sdist into one that
builds it with cargo; each then answers ``--version`` and culls against the suite's real Hub. The
sensor's wheel goes into a fresh venv beside JupyterLab, whose lists must show it enabled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Optional

import pytest
from oldest_lab import CARGO_VERSION, pinned

from helpers import ACTIVE, IDLE, setup_servers

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
# Where no Rust toolchain is: the system's own directories, and the venv's.
BARE_PATH = "/usr/local/bin:/usr/bin:/bin"


SOURCES = ["src", "python", "sensor", "Cargo.toml", "Cargo.lock", "pyproject.toml", "README.md", "LICENSE"]
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
    """The wheels and sdists of the sources as they are, from scripts/build-dist.sh."""
    patterns = {
        "wheel": f"cull_idle-{CARGO_VERSION}-*.whl",
        "sdist": f"cull_idle-{CARGO_VERSION}.tar.gz",
        "sensor": f"cull_idle_sensor-{CARGO_VERSION}-py3-none-any.whl",
        "sensor_sdist": f"cull_idle_sensor-{CARGO_VERSION}.tar.gz",
    }
    found = {name: artifact(pattern) for name, pattern in patterns.items()}
    if any(path is None or path.stat().st_mtime < newest_source() for path in found.values()):
        env = {**os.environ, "CARGO_NET_OFFLINE": "true"}
        subprocess.run([str(ROOT / "scripts" / "build-dist.sh")], check=True, cwd=ROOT, env=env)
        found = {name: artifact(pattern) for name, pattern in patterns.items()}
    built = {name: path for name, path in found.items() if path is not None}
    assert built.keys() == patterns.keys(), sorted(DIST.iterdir())
    return built


def new_venv(path: Path, base: str = sys.executable) -> Path:
    subprocess.run([base, "-m", "venv", str(path)], check=True)
    return path / "bin" / "python"


# The oldest and newest CPython the package claims (pyproject.toml's classifiers), beside the
# suite's own: where pyenv has them, as on the machines this suite runs on.
CLAIMED = ("3.9", "3.13")


def interpreter(minor: str) -> str:
    if sys.version.startswith(f"{minor}."):
        return sys.executable
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = sorted(root.glob(f"versions/{minor}.*/bin/python{minor}"))
    if not found:
        pytest.skip(f"CPython {minor} is not installed (pyenv)")
    return str(found[-1])


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


def test_twine_passes_the_wheels_and_sdists(dist):
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.values())],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 4, checked.stdout


@pytest.mark.parametrize("minor", [f"{sys.version_info[0]}.{sys.version_info[1]}", *CLAIMED])
def test_the_wheel_installs_and_culls_where_there_is_no_rust(dist, hub, tmp_path, minor):
    python = new_venv(tmp_path / "venv", interpreter(minor))
    assert run(python, ["-c", "import sys; print(sys.version)"], {}).stdout.startswith(f"{minor}.")
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


def test_the_sensor_wheel_installs_enabled_beside_jupyterlab(oldest_lab):
    # The wheel as scripts/build-dist.sh builds it (from the sdist), installed into a fresh venv
    # beside JupyterLab (the oldest the notice supports; the suite's own venv has the newest).
    env = {"PATH": f"{oldest_lab.parent}:{BARE_PATH}", "HOME": str(oldest_lab.parents[1])}

    def listed(*args: str) -> str:
        shown = subprocess.run(
            [str(oldest_lab.parent / "jupyter"), *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert shown.returncode == 0, shown.stdout + shown.stderr
        return re.sub(r"\x1b\[[0-9;]*m", "", shown.stdout + shown.stderr)

    server = listed("server", "extension", "list")
    assert re.search(r"^\s+cull_idle_sensor enabled$", server, re.M), server
    assert re.search(rf"^\s+cull_idle_sensor {re.escape(CARGO_VERSION)} OK$", server, re.M), server
    lab = listed("labextension", "list")
    assert re.search(rf"^\s+cull-idle-sensor v{re.escape(CARGO_VERSION)} enabled OK", lab, re.M), lab
    imported = run(oldest_lab, ["-c", "import cull_idle_sensor; print(cull_idle_sensor.__version__)"], env)
    assert imported.stdout == f"{CARGO_VERSION}\n", imported


def test_one_version_from_cargo_toml():
    from importlib.metadata import version

    import cull_idle

    assert cull_idle.__version__ == CARGO_VERSION
    assert version("cull-idle") == CARGO_VERSION
    shown = subprocess.run([sys.executable, "-m", "cull_idle", "--version"], capture_output=True, text=True)
    assert shown.stdout == f"cull-idle {CARGO_VERSION}\n"
    # The sensor ships at the same version, which is written nowhere else.
    assert version("cull-idle-sensor") == CARGO_VERSION
    sensor = ROOT / "sensor"
    assert "version" not in json.loads((sensor / "labextension" / "package.json").read_text())
    assert 'dynamic = ["version"]' in (sensor / "pyproject.toml").read_text()


@pytest.fixture(scope="module", autouse=True)
def sdist_build(dist, tmp_path_factory):
    """The sdist built by cargo as pip builds it, offline, in a fresh venv: started as the module
    starts, so that its minute and a half of compiling runs beside the tests above, and waited
    for by the last test below. Its dev profile shares the suite's compiled dependencies
    (CARGO_TARGET_DIR); the release profile is the wheel's, tested above."""
    where = tmp_path_factory.mktemp("sdist")
    python = new_venv(where / "venv")
    # The build backend, from pip's cache where the suite's own venv got it.
    backend = run(python, ["-m", "pip", "install", pinned("maturin")], dict(os.environ), timeout=300)
    assert backend.returncode == 0, backend.stdout + backend.stderr
    env = {**os.environ, "CARGO_NET_OFFLINE": "true", "MATURIN_PEP517_ARGS": "--profile dev"}
    log = (where / "install.log").open("w+")
    build = subprocess.Popen(
        [str(python), "-m", "pip", "install", "--no-index", "--no-build-isolation", str(dist["sdist"])],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=where,
    )
    yield python, build, log
    if build.poll() is None:
        build.kill()
        build.wait()
    log.close()


def test_the_sdist_builds_with_cargo_installs_and_culls(sdist_build, hub, tmp_path):
    python, build, log = sdist_build
    returncode = build.wait(timeout=1200)
    log.seek(0)
    assert returncode == 0, log.read()
    installed_culler_culls(python, hub, {"PATH": f"{python.parent}:{BARE_PATH}", "HOME": str(tmp_path)})
