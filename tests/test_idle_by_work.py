"""Idle by work (``--idle-by=work``) against a real JupyterLab tab in headless Chromium, behind
the real configurable-http-proxy, with cull-idle-sensor in the server: a notebook left open is
kept by the Hub's count, and warned then culled by work. A person logs in at the Hub's own
form, and the test drives JupyterLab through its own commands (``expose_app_in_browser``). The
Hub learns of the tab's requests from the proxy when the test asks it to (``poll_proxy``), as it
does every ``last_activity_interval``. People at work, in JupyterLab and Notebook 7, with the
extensions of real images: tests/test_real_work.py.

Every wait is for a state: the kernel's own last activity past the limit, a log line, the Hub
reporting the server stopped."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from labdriver import Lab

import cull_idle

from culler_process import Culler
from helpers import Receiver
from hubharness.launcher import TestHub, real_servers_env

pytestmark = pytest.mark.timeout(420)

LIMIT = 20  # seconds: the culler's --timeout in these tests
WINDOW = 8  # --warn-before


@pytest.fixture(scope="module")
def lab_hub():
    hub = TestHub(extra_env=real_servers_env(TEST_LAB="1")).start()
    yield hub
    hub.stop()


def one_pass(hub: TestHub, **options: Any) -> Any:
    """A dry-run pass, from a thread of its own: Playwright's sync API holds this thread's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(
            cull_idle.cull_idle_blocking, hub.api_url, hub.cull_kernels_token, LIMIT, dry_run=True, **options
        ).result()


def verdicts(report: Any) -> dict[str, str]:
    out = {a.user: a.outcome for a in report.actions}
    out.update({s.user: s.reason for s in report.skipped if s.server == ""})
    return out


def test_an_open_idle_tab_keeps_its_server_by_the_hub_and_is_warned_then_culled_by_work(
    lab_hub, browser, tmp_path
):
    lab = Lab(lab_hub, browser, "lab-tab")
    lab.notebook("x = 1")
    lab.wait_until_kernels_quiet_for(LIMIT + 1)
    # The tab's polls keep the Hub's count fresh: the reference's way keeps the server.
    assert lab.hub_idle_for() < LIMIT
    by_hub = one_pass(lab_hub)
    assert "lab-tab" not in {a.user for a in by_hub.actions}, by_hub.actions

    receiver = Receiver()
    culler = Culler(
        [
            f"--url={lab_hub.api_url}",
            f"--timeout={LIMIT}",
            "--idle-by=work",
            f"--warn-before={WINDOW}",
            f"--warn-webhook={receiver.url}",
            "--cull-every=1",
            f"--state-file={tmp_path / 'state.sqlite'}",
        ],
        {"JUPYTERHUB_API_TOKEN": lab_hub.cull_kernels_token},
        cwd=str(tmp_path),
    )
    try:
        culler.wait_for(r"Warning user lab-tab: server .* will be culled at", timeout=60)
        culler.wait_for(r"Culling server lab-tab", timeout=60)
        lab_hub.wait_for(lambda: not lab_hub.running("lab-tab"), "lab-tab's server to stop", timeout=60)
    finally:
        culler.kill()
        receiver.close()
        lab.close()
    [warning] = [w for w in receiver.all() if w.get("user") == "lab-tab"]
    assert warning["reason"] == "idle", warning
