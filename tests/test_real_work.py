"""Work as people do it, with the extensions real images carry (jupyterlab-git,
jupyter-collaboration, jupyter-resource-usage, jupyterlab-lsp, ipywidgets, jupytext,
jupyterlab-execute-time), in JupyterLab 4 and Notebook 7 in headless Chromium, behind the node
configurable-http-proxy, judged by ``--idle-by=work``.

The test opens every tab first and waits until each server's sensor has seen nothing for longer
than the limit: an idle tab that kept its server would never get there, and the wait would fail.
Then the people act, and one dry-run pass says what the culler would do to each. Beside them,
servers without those extensions (``lab-*``) and without the sensor (``bare-*``) are judged by
their kernels, terminals and saves, and a pass that cannot reach any server culls none."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import pytest
from labdriver import Lab, age

import cull_idle

from hubharness.launcher import TestHub, free_port, real_servers_env

pytestmark = pytest.mark.timeout(600)

LIMIT = 20  # seconds: the culler's --timeout in these tests
UNLISTED_POLL = """(base) => {
    const xsrf = decodeURIComponent((document.cookie.match(/_xsrf=([^;]+)/) || ['', ''])[1]);
    const poll = () => fetch(base + 'lab/api/settings', {cache: 'no-store', headers: {'X-XSRFToken': xsrf}})
        .then(r => { window.unlistedPolls = (window.unlistedPolls || 0) + (r.ok ? 1 : 0); });
    setInterval(poll, 3000);
}"""


@pytest.fixture(scope="module")
def work_hub():
    hub = TestHub(extra_env=real_servers_env(TEST_LAB="1")).start()
    yield hub
    hub.stop()


def account(lab: Lab) -> dict[str, Any]:
    r = lab.hub.session.get(lab.base + "api/cull-idle/work", timeout=30)
    r.raise_for_status()
    return dict(r.json())


def wait_until_idle(labs: list[Lab], seconds: float) -> None:
    """Until no sensor has seen work for ``seconds``: kernels, terminals, requests, input, edits."""

    def quiet(lab: Lab) -> bool:
        last: Optional[str] = account(lab)["last_activity"]
        return last is not None and age(last) > seconds

    labs[0].hub.wait_for(
        lambda: all(quiet(lab) for lab in labs),
        f"{', '.join(lab.name for lab in labs)} to be idle for {seconds} s by their sensors",
        timeout=seconds + 90,
    )


def verdicts(hub: TestHub, **options: Any) -> dict[str, str]:
    """One dry-run pass by work, from a thread of its own (Playwright holds this one's loop)."""
    with ThreadPoolExecutor(1) as pool:
        report = pool.submit(
            cull_idle.cull_idle_blocking,
            hub.api_url,
            hub.cull_kernels_token,
            LIMIT,
            dry_run=True,
            idle_by="work",
            **options,
        ).result()
    out = {a.user: a.outcome for a in report.actions}
    out.update({s.user: s.reason for s in report.skipped if s.server == ""})
    return out


def git_repository(hub: TestHub, name: str) -> None:
    """The person's home is a git repository, as a cloned course or project is."""
    home = hub.dir / "home" / name
    subprocess.run(["git", "init", "-q", str(home)], check=True)


def open_git_panel(lab: Lab) -> None:
    lab.page.evaluate("() => window.jupyterapp.shell.activateById('jp-git-sessions')")
    # The panel has read the repository: its polls run from here on.
    lab.page.wait_for_selector("#jp-git-sessions .jp-git-toolbar, #jp-git-sessions [title*='branch' i]")


def test_idle_tabs_are_culled_and_people_at_work_kept_in_jupyterlab_and_notebook_7(work_hub, browser):
    # Started together: each Lab below then only logs its person in.
    names = ["rw-idle", "nb-idle", "rw-typing", "solo-typing", "rw-scrolling", "rw-coediting"]
    names += ["rw-terminal", "nb-typing", "lab-saving", "lab-sleeping", "lab-printing"]
    names += ["bare-typing", "bare-sleeping"]
    work_hub.create_users(names)
    # Real jupyter_server processes with every extension: about 5 s of CPU each, on 2 cores.
    work_hub.start_servers([(name, "") for name in names], timeout=180)

    # Every person logs in, and their pages load together.
    def open_lab(name: str, **options: Any) -> Lab:
        return Lab(work_hub, browser, name, wait=False, **options)

    idle = open_lab("rw-idle", before_login=lambda: git_repository(work_hub, "rw-idle"))
    nb_idle = open_lab("nb-idle", app="notebooks/idle.ipynb")
    typing = open_lab("rw-typing")
    alone = open_lab("solo-typing")
    scrolling = open_lab("rw-scrolling")
    coediting = open_lab("rw-coediting")
    terminal = open_lab("rw-terminal")
    nb_typing = open_lab("nb-typing", app="notebooks/typing.ipynb")
    # Without the real images' extensions, and bare-* without the sensor: kernels, terminals
    # and saves, as before any of this.
    saving = open_lab("lab-saving")
    sleeping = open_lab("lab-sleeping")
    printing = open_lab("lab-printing")
    bare_typing = open_lab("bare-typing")
    bare_sleeping = open_lab("bare-sleeping")

    idle.ready().notebook()
    open_git_panel(idle)
    # And an extension nobody has listed, polling from the tab every 3 s as extensions do
    # (ServerConnection.makeRequest: window.fetch, with the XSRF header).
    idle.page.evaluate(UNLISTED_POLL, idle.base)
    nb_idle.ready()
    for lab in (typing, alone, scrolling, coediting, saving, bare_typing):
        lab.ready().notebook()
    terminal.ready().terminal("")
    nb_typing.ready()
    sleeping.ready().notebook("import time; time.sleep(600)", wait_for="busy")
    printing.ready().terminal("while true; do date; sleep 1; done")
    bare_sleeping.ready().notebook("import time; time.sleep(600)", wait_for="busy")
    people = [idle, nb_idle, typing, alone, scrolling, coediting, terminal, nb_typing, saving]
    labs = [*people, sleeping, printing, bare_typing, bare_sleeping]
    try:
        wait_until_idle(people, LIMIT + 1)
        for lab in (sleeping, bare_typing, bare_sleeping):
            lab.wait_until_kernels_quiet_for(LIMIT + 1)

        typing.type_text("# a thought")  # collaborative: the edit goes over the websocket
        alone.type_text("# a thought")  # without collaboration: only the tab's report tells
        nb_typing.type_text("# a thought")
        scrolling.page.mouse.wheel(0, 400)
        # A collaborator's edit arrives by the document's websocket alone: no key in this tab.
        coediting.page.evaluate("() => window.testPanel.model.cells.get(0).sharedModel.setSource('x = 2')")
        terminal.type_in_terminal("echo hello")
        # Typing and saving, no cell run: the kernels stay quiet, the sensor sees the save.
        saving.type_and_save("# a thought")
        bare_typing.type_and_save("# a thought")
        for lab in (typing, alone, nb_typing, scrolling, terminal):
            lab.hub.wait_for(
                lambda lab=lab: account(lab)["last_input"] is not None, f"{lab.name}'s input report"
            )
        work_hub.wait_for(lambda: account(coediting)["last_edit"] is not None, "rw-coediting's edit")

        assert idle.page.evaluate("() => window.unlistedPolls") > LIMIT / 3  # answered, all along
        got = verdicts(work_hub)
        assert got["rw-idle"] == "would-stop", got
        assert got["nb-idle"] == "would-stop", got
        for lab in (typing, alone, nb_typing, scrolling, coediting, saving):
            assert got[lab.name] == "worked", (lab.name, got)
        # Typing in a terminal, or a terminal printing, is its own activity (reason busy).
        assert got["rw-terminal"] in ("worked", "busy"), got
        assert got["lab-printing"] in ("worked", "busy"), got
        assert got["lab-sleeping"] == "busy", got
        assert got["bare-sleeping"] == "busy", got
        # Without the sensor a save is not seen: its quiet kernel makes it idle.
        assert got["bare-typing"] == "would-stop", got
        assert account(typing)["last_edit"] is not None and account(nb_typing)["last_edit"] is not None
        assert account(alone)["last_edit"] is None
        assert account(coediting)["last_input"] is None
        # No one touched these (their notebooks' opening edits are older than the limit).
        assert account(idle)["last_input"] is None and account(nb_idle)["last_input"] is None

        # Asked through an address where nothing answers, every server is judged by the Hub,
        # which sees the open tabs: all kept, none culled on doubt.
        assert typing.hub_idle_for() < LIMIT
        unreachable = verdicts(work_hub, server_url=f"http://127.0.0.1:{free_port()}")
        assert not [name for name, verdict in unreachable.items() if verdict == "would-stop"], unreachable
        assert unreachable["rw-typing"] == "unanswered", unreachable
    finally:
        for lab in labs:
            lab.close()
