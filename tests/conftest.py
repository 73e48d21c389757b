import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import logging

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
