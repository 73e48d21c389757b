import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hubharness.launcher import TestHub


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
