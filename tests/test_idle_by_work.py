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
from datetime import datetime, timezone
from typing import Any

import pytest

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


def age(stamp: str) -> float:
    return (datetime.now(timezone.utc) - datetime.fromisoformat(stamp.replace("Z", "+00:00"))).total_seconds()


class Lab:
    """One person's JupyterLab in its own browser context, scripted through its commands."""

    def __init__(self, hub: TestHub, browser: Any, name: str) -> None:
        self.hub = hub
        self.name = name
        hub.create_users([name])
        hub.start_server(name)
        self.base = f"{hub.public_url}/user/{name}/"
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.goto(f"{hub.public_url}/hub/login?next=/user/{name}/lab")
        self.page.fill("#username_input", name)
        self.page.fill("#password_input", "any password")
        self.page.click("#login_submit")
        self.page.wait_for_function("() => window.jupyterapp !== undefined", timeout=90_000)
        self.page.evaluate("async () => { await window.jupyterapp.restored; }")

    def notebook(self, code: str = "", wait_for: str = "idle") -> None:
        """Open a new notebook with a kernel; run ``code`` in its first cell, if any, and wait
        until the kernel is ``wait_for`` (busy, or idle after running it)."""
        self.page.evaluate(
            """async ([code, name]) => {
                const app = window.jupyterapp;
                const panel = await app.commands.execute('notebook:create-new', {kernelName: 'python3'});
                await panel.context.ready;
                await panel.sessionContext.ready;
                // Named, so that saving it later does not ask for a name first.
                await panel.context.rename(name + '.ipynb');
                app.shell.activateById(panel.id);
                window.testPanel = panel;
                if (code) {
                    panel.content.activeCell.model.sharedModel.setSource(code);
                    // Not awaited: the command ends when the cell does.
                    void app.commands.execute('notebook:run-cell');
                }
            }""",
            [code, self.name],
        )
        if code:
            done = "window.testPanel.model.cells.get(0).executionCount !== null"
            busy = "window.testPanel.sessionContext.session.kernel.status === 'busy'"
            self.page.wait_for_function(f"() => {busy if wait_for == 'busy' else done}", timeout=60_000)

    def type_and_save(self, text: str) -> None:
        """Type into the notebook's first cell, as a person does, and save it with Ctrl+S."""
        self.page.click(".jp-Notebook .jp-Cell .cm-content")
        self.page.keyboard.type(text)
        source = self.page.evaluate("() => window.testPanel.model.cells.get(0).sharedModel.getSource()")
        assert text in source, source
        self.page.keyboard.press("Control+s")
        self.page.wait_for_function("() => !window.testPanel.context.model.dirty", timeout=30_000)

    def terminal(self, command: str) -> None:
        self.page.evaluate(
            """async (command) => {
                const main = await window.jupyterapp.commands.execute('terminal:create-new');
                await main.content.ready;
                main.content.session.send({type: 'stdin', content: [command + '\\r']});
            }""",
            command,
        )

    def kernels(self) -> list[dict[str, Any]]:
        r = self.hub.session.get(self.base + "api/kernels?no_track_activity=1", timeout=30)
        r.raise_for_status()
        return list(r.json())

    def wait_until_kernels_quiet_for(self, seconds: float) -> None:
        """Until every kernel's own last activity is older than ``seconds``."""
        self.hub.wait_for(
            lambda: all(age(k["last_activity"]) > seconds for k in self.kernels()),
            f"{self.name}'s kernels to be quiet for {seconds} s",
            timeout=seconds + 60,
        )

    def hub_idle_for(self) -> float:
        """What the Hub says, after copying the proxy's activity as it does on its own."""
        r = self.hub.api("POST", "/testing", json={"poll_proxy": True, "items": []})
        assert r.status_code == 204, r.text
        model = self.hub.user(self.name)
        assert model is not None
        return age(model["servers"][""]["last_activity"])

    def close(self) -> None:
        self.context.close()


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
