"""Idle by work (``--idle-by=work``) against real JupyterLab tabs in headless Chromium, behind
the real configurable-http-proxy, with cull-idle-sensor in the servers (``bare-*`` users run
without it). A person logs in at the Hub's own form, and the test drives JupyterLab through its
own commands (``expose_app_in_browser``): a notebook left open, a cell sleeping, typing and
saving, a terminal printing. The Hub learns of the tab's requests from the proxy when the test
asks it to (``poll_proxy``), as it does every ``last_activity_interval``.

Every wait is for a state: the kernel's own last activity past the limit, a log line, the Hub
reporting the server stopped."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from labdriver import Lab

import cull_idle

from culler_process import Culler
from helpers import Receiver
from hubharness.launcher import TestHub, free_port, real_servers_env

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


def test_work_in_a_tab_keeps_its_server_and_without_the_sensor_only_kernels_and_terminals_count(
    lab_hub, browser
):
    sleeping = Lab(lab_hub, browser, "lab-sleeping")
    sleeping.notebook("import time; time.sleep(600)", wait_for="busy")
    typing = Lab(lab_hub, browser, "lab-typing")
    typing.notebook()
    printing = Lab(lab_hub, browser, "lab-printing")
    printing.terminal("while true; do date; sleep 1; done")
    terminal_opened = time.monotonic()
    bare_typing = Lab(lab_hub, browser, "bare-typing")
    bare_typing.notebook()
    bare_sleeping = Lab(lab_hub, browser, "bare-sleeping")
    bare_sleeping.notebook("import time; time.sleep(600)", wait_for="busy")
    labs = [sleeping, typing, printing, bare_typing, bare_sleeping]
    try:
        for lab in labs:
            lab.wait_until_kernels_quiet_for(LIMIT + 1)
        # Opening the terminal was a request; only its output can keep it from here on.
        lab_hub.wait_for(
            lambda: time.monotonic() - terminal_opened > LIMIT + 1, "the terminal to be older than the limit"
        )
        # Typing and saving, no cell run: the kernels stay quiet, the sensor sees the saves.
        typing.type_and_save("# a thought")
        bare_typing.type_and_save("# a thought")
        report = one_pass(lab_hub, idle_by="work")
        got = verdicts(report)
        assert got["lab-sleeping"] == "busy", got
        assert got["lab-typing"] == "worked", got
        assert got["lab-printing"] in ("busy", "worked"), got
        assert got["bare-sleeping"] == "busy", got
        # Without the sensor a save is not seen: its quiet kernel makes it idle.
        assert got["bare-typing"] == "would-stop", got
        probes = {s.user: s.probe["work"] for s in report.skipped if s.probe}
        probes.update({a.user: a.probe["work"] for a in report.actions if a.probe})
        assert probes["lab-typing"]["sensor"] and not probes["bare-typing"]["sensor"], probes
        printed_ago = (
            (time.time() - probes["lab-printing"]["last_work"])
            if probes["lab-printing"]["last_work"]
            else None
        )
        assert printed_ago is not None and printed_ago < LIMIT / 2, probes["lab-printing"]
        assert probes["bare-sleeping"]["busy_kernels"] == 1 and not probes["bare-sleeping"]["sensor"]

        # Asked through an address where nothing answers, every server is judged by the Hub,
        # which sees the open tabs: all kept, none culled on doubt.
        assert typing.hub_idle_for() < LIMIT
        unreachable = one_pass(lab_hub, idle_by="work", server_url=f"http://127.0.0.1:{free_port()}")
        assert not unreachable.actions, unreachable.actions
        assert verdicts(unreachable)["lab-typing"] == "unanswered"
    finally:
        for lab in labs:
            lab.close()
