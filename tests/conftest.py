import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import logging
import subprocess

import secret_guard
from hubharness.launcher import TestHub


@pytest.fixture(autouse=True)
def no_token_in_any_output():
    """Fails a test whose cullers printed, or logged even at DEBUG, a token of the suite."""
    logger = logging.getLogger("cull_idle")
    recorder = secret_guard.Recorder()
    saved_level = logger.level
    logger.addHandler(recorder)
    logger.setLevel(logging.DEBUG)
    first_output = len(secret_guard.OUTPUTS)
    try:
        yield
    finally:
        logger.removeHandler(recorder)
        logger.setLevel(saved_level)
    texts = recorder.texts + [read() for read in secret_guard.OUTPUTS[first_output:]]
    leaks = secret_guard.leaked(texts)
    assert not leaks, f"tokens in culler output or logs: {leaks}"


REPO = Path(__file__).resolve().parent.parent

# The slow tier, by module: each starts Hubs, servers, kernels, builds or browsers of its own.
# Single slow tests elsewhere carry @pytest.mark.slow.
SLOW_MODULES = {
    "test_bench_smoke",
    "test_demo",
    "test_deploy",
    "test_dist",
    "test_internal_ssl",
    "test_kernels",
    "test_idle_by_work",
    "test_real_work",
    "test_notice",
    "test_sensor",
    "test_page",
    "test_page_browser",
    "test_page_promises",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.module is not None and item.module.__name__ in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


# What building and linting leave in a checkout; anything else new was written by a test.
BUILD_LEFTOVERS = (
    "target/",
    ".venv",
    "__pycache__/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".mypy_cache/",
    "dist/",
)


def _changed_files() -> str:
    listed = subprocess.run(
        ["git", "diff", "--name-only", "--", "docs", "README.md", "CHANGELOG.md", "deploy"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    return listed.stdout


def _untracked_files() -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "--ignored", "--directory"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0:  # not a git checkout (an sdist): nothing to compare
        return set()
    return {
        path
        for path in listed.stdout.splitlines()
        if not any(part in path for part in BUILD_LEFTOVERS) and not path.endswith((".so", ".pyd"))
    }


@pytest.fixture(scope="session", autouse=True)
def tests_write_only_to_temporary_directories():
    """Fails the run if a test left a file in the checkout (a state file, a screenshot, …)."""
    before = _untracked_files()
    changed_before = _changed_files()
    yield
    new = _untracked_files() - before
    assert not new, f"tests wrote into the checkout: {sorted(new)}"
    # Only what a test could write (screenshots, the README's tables): code edited while the
    # suite runs is not a test's doing.
    changed = _changed_files()
    assert changed == changed_before, f"tests changed tracked files: {changed}"


@pytest.fixture(scope="session")
def oldest_lab(tmp_path_factory) -> Path:
    """The python of a venv with the oldest JupyterLab the notice supports and the sensor's
    wheel (tests/oldest_lab.py)."""
    import oldest_lab

    return oldest_lab.make(tmp_path_factory.mktemp("oldest-lab") / "venv")


@pytest.fixture(scope="session")
def page_hub(tmp_path_factory):
    """A Hub with the culler as a managed service serving its page (tests/pagehub.py), shared
    by the page's tests, which each use users of their own."""
    from pagehub import start

    hub = start(tmp_path_factory.mktemp("page"))
    yield hub
    hub.stop()


@pytest.fixture(scope="session")
def hub_session():
    hub = TestHub().start()
    yield hub
    hub.stop()


@pytest.fixture
def hub(hub_session):
    """The shared Hub, emptied of users after each test."""
    hub_session.reset_stop_stats()
    yield hub_session
    hub_session.delete_all_users()
    hub_session.delete_all_groups()


@pytest.fixture
def no_hub_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("JUPYTERHUB_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, driven by Playwright (its own browser download is not used)."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is not installed (Debian: apt-get install chromium chromium-driver)"
    with sync_playwright() as p:
        # Root in a container has no user namespace for Chromium's sandbox.
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()
