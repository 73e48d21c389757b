"""A person's JupyterLab in headless Chromium, logged in at the Hub's own form and scripted
through JupyterLab's own commands (the Hub runs it with ``expose_app_in_browser``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Optional

from hubharness.launcher import TestHub


def age(stamp: str) -> float:
    return (datetime.now(timezone.utc) - datetime.fromisoformat(stamp.replace("Z", "+00:00"))).total_seconds()


class Lab:
    """One person's JupyterLab in its own browser context, scripted through its commands."""

    def __init__(
        self,
        hub: TestHub,
        browser: Any,
        name: str,
        app: str = "lab",
        before_login: Optional[Callable[[], None]] = None,
        wait: bool = True,
    ) -> None:
        """``app``: the page to open, ``lab`` or Notebook 7's ``notebooks/NAME.ipynb`` (a new
        notebook, made before the person logs in). ``wait=False`` returns once the person has
        logged in, so that several pages load together; ``ready()`` then waits for this one."""
        self.hub = hub
        self.name = name
        self.app = app
        # Servers may have been started together beforehand (TestHub.start_servers).
        if hub.user(name) is None:
            hub.create_users([name])
        if not hub.running(name):
            hub.start_server(name)
        self.base = f"{hub.public_url}/user/{name}/"
        if app.startswith("notebooks/"):
            path = app.split("/", 1)[1]
            # With its kernel named, so that Notebook 7 starts it without asking which.
            notebook = {
                "nbformat": 4,
                "nbformat_minor": 5,
                "metadata": {
                    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
                },
                "cells": [
                    {
                        "cell_type": "code",
                        "id": "c0",
                        "source": "",
                        "metadata": {},
                        "outputs": [],
                        "execution_count": None,
                    }
                ],
            }
            model = {"type": "notebook", "format": "json", "content": notebook}
            r = hub.session.put(self.base + f"api/contents/{path}", json=model, timeout=30)
            assert r.status_code == 201, r.text
        if before_login is not None:
            before_login()
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.goto(f"{hub.public_url}/hub/login?next=/user/{name}/{app}")
        self.page.fill("#username_input", name)
        self.page.fill("#password_input", "any password")
        self.page.click("#login_submit")
        if wait:
            self.ready()

    def ready(self) -> Lab:
        """Until the application has restored (and Notebook 7 has started the notebook's kernel)."""
        self.page.wait_for_function("() => window.jupyterapp !== undefined", timeout=120_000)
        self.page.evaluate("async () => { await window.jupyterapp.restored; }")
        if self.app.startswith("notebooks/"):
            # Notebook 7 opens the notebook and starts its kernel by itself.
            self.page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
            self.hub.wait_for(lambda: len(self.kernels()) == 1, f"{self.name}'s kernel to start", timeout=60)
        return self

    def notebook(self, code: str = "", wait_for: str = "idle") -> None:
        """Open a new notebook with a kernel; run ``code`` in its first cell, if any, and wait
        until the kernel is ``wait_for`` (busy, or idle after running it)."""
        self.page.evaluate(
            """async (name) => {
                const app = window.jupyterapp;
                const panel = await app.commands.execute('notebook:create-new', {kernelName: 'python3'});
                await panel.context.ready;
                await panel.sessionContext.ready;
                // Named, so that saving it later does not ask for a name first.
                await panel.context.rename(name + '.ipynb');
                app.shell.activateById(panel.id);
                window.testPanel = panel;
            }""",
            self.name,
        )
        if not code:
            return
        # The run command acts on the current notebook, once its kernel is connected and idle:
        # with more extensions loaded, both settle later than the calls above return.
        self.page.wait_for_function(
            """() => {
                const panel = window.testPanel;
                const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
                return window.jupyterapp.shell.currentWidget === panel && kernel
                    && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
            }""",
            timeout=60_000,
        )
        self.page.evaluate(
            """(code) => {
                window.testPanel.content.activeCell.model.sharedModel.setSource(code);
                // Not awaited: the command ends when the cell does.
                void window.jupyterapp.commands.execute('notebook:run-cell');
            }""",
            code,
        )
        if wait_for == "busy":
            # As the server sees it: the kernel busy with the cell, not a prompt in the page.
            self.hub.wait_for(
                lambda: any(k["execution_state"] == "busy" for k in self.kernels()),
                f"{self.name}'s kernel to be busy",
                timeout=60,
            )
        else:
            self.page.wait_for_function(
                "() => window.testPanel.model.cells.get(0).executionCount !== null", timeout=60_000
            )

    def type_and_save(self, text: str) -> None:
        """Type into the notebook's first cell, as a person does, and save it with Ctrl+S."""
        self.page.click(".jp-Notebook .jp-Cell .cm-content")
        self.page.keyboard.type(text)
        source = self.page.evaluate("() => window.testPanel.model.cells.get(0).sharedModel.getSource()")
        assert text in source, source
        self.page.keyboard.press("Control+s")
        self.page.wait_for_function("() => !window.testPanel.context.model.dirty", timeout=30_000)

    def type_text(self, text: str) -> None:
        """Type into the notebook's first cell, as a person does, without saving."""
        self.page.click(".jp-Notebook .jp-Cell .cm-content")
        self.page.keyboard.type(text)

    def type_in_terminal(self, command: str) -> None:
        """Click into the open terminal and type a command, as a person does."""
        self.page.click(".jp-Terminal .xterm-screen")
        self.page.keyboard.type(command)
        self.page.keyboard.press("Enter")

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
