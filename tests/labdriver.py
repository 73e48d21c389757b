"""A person's JupyterLab in headless Chromium, logged in at the Hub's own form and scripted
through JupyterLab's own commands (the Hub runs it with ``expose_app_in_browser``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hubharness.launcher import TestHub


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
