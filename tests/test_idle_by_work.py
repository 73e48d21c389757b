"""Idle by work (``--idle-by=work``) against real tabs in headless Chromium, behind the real
configurable-http-proxy, with cull-idle-sensor in the servers and the culler as the Hub's
managed service: a notebook left open is kept by the Hub's count, and warned then culled by
work, once, when the notice said. A person logs in at the Hub's own form, and the test drives
JupyterLab through its own commands (``expose_app_in_browser``). The Hub learns of the tabs'
requests from the proxy when the test asks it to (``poll_proxy``), as it does every
``last_activity_interval``. People at work, in JupyterLab and Notebook 7, with the extensions of
real images: tests/test_real_work.py.

Every wait is for a state: what the tab shows, what the culler answers or posts, the Hub
reporting the server stopped."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pagehub
import pytest
from labdriver import Lab
from pagehub import me, server_token

import cull_idle

from helpers import Receiver
from hubharness.launcher import TestHub

pytestmark = pytest.mark.timeout(420)

LIMIT = 30  # seconds: the culler's --timeout in these tests
WINDOW = 10  # --warn-before
# A warning the tab undid (by counting what showing it loads as work) is given again a whole
# stretch later, and the stop comes about LIMIT - WINDOW later than the notice said.
LATE = (LIMIT - WINDOW) / 2


def one_pass(hub: TestHub, **options: Any) -> Any:
    """A dry-run pass, from a thread of its own: Playwright's sync API holds this thread's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(
            cull_idle.cull_idle_blocking, hub.api_url, hub.cull_kernels_token, LIMIT, dry_run=True, **options
        ).result()


def returning(hub: TestHub, name: str) -> None:
    """A person who answered JupyterLab's first-visit question about news on an earlier day: the
    notice is the first notification this tab shows."""
    folder = (
        hub.dir / "home" / name / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    )
    folder.mkdir(parents=True)
    (folder / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_an_open_idle_tab_is_kept_by_the_hub_and_warned_once_then_culled_by_work_when_the_notice_said(
    browser, tmp_path
):
    receiver = Receiver()
    hub = pagehub.start(
        tmp_path,
        f"--timeout={LIMIT}",
        "--idle-by=work",
        f"--warn-before={WINDOW}",
        f"--warn-webhook={receiver.url}",
        extra_scopes=("tokens",),  # to ask servers about their work
        lab_env={"TEST_NOTICE_INTERVAL": "2"},
    )
    # JupyterLab without extensions, and Notebook 7 as real images run it (nb-* users).
    people = ["lab-tab", "nb-returning"]
    labs: list[Lab] = []
    try:
        hub.create_users(people)
        hub.start_servers([(name, "") for name in people], timeout=180)
        lab = Lab(hub, browser, "lab-tab", before_login=lambda: returning(hub, "lab-tab"), wait=False)
        labs.append(lab)
        notebook = Lab(hub, browser, "nb-returning", app="notebooks/reading.ipynb", wait=False)
        labs.append(notebook)
        lab.ready().notebook("x = 1")
        notebook.ready()

        first: dict[str, float] = {}
        for tab in labs:
            tab.page.locator(".jp-toast-message", has_text="will be stopped at").first.wait_for(
                state="visible", timeout=(LIMIT + 60) * 1000
            )
            [server] = me(hub, server_token(hub, tab.name))["servers"]
            assert server["warned_at"] and server["stop_at"], server
            first[tab.name] = seconds(server["stop_at"])
        assert lab.page.locator(".jp-toast-message", has_text="official Jupyter news").count() == 0

        # Idle by work, not by the Hub: the tab's polls keep the Hub's count fresh, and the
        # reference's way keeps the server.
        assert lab.hub_idle_for() < LIMIT - WINDOW
        by_hub = one_pass(hub)
        assert "lab-tab" not in {a.user for a in by_hub.actions}, by_hub.actions

        stopped: dict[str, float] = {}

        def record_stops() -> bool:
            for name in people:
                if name not in stopped and not hub.running(name):
                    stopped[name] = time.time()
            return len(stopped) == len(people)

        hub.wait_for(record_stops, "both servers to stop", timeout=LIMIT + 60)
    finally:
        for tab in labs:
            tab.close()
        hub.stop()
        receiver.close()
    warnings = receiver.all()
    for name in people:
        # One warning for the stretch, and the stop when it and the notice said: not before,
        # and not a warning's worth later.
        [warning] = [w for w in warnings if w.get("user") == name]
        assert warning["reason"] == "idle", warning
        # (The page and the webhook write times to the second.)
        assert abs(seconds(warning["cull_at"]) - first[name]) <= 1, (warning, first)
        assert first[name] - 1 <= stopped[name] < first[name] + LATE, (name, first[name], stopped[name])
