"""What an open, untouched JupyterLab or Notebook 7 tab sends to its server by itself, with the
extensions installed in this environment, and whether cull-idle-sensor counted any of it as work.

    python bench/tab_requests.py [SECONDS [SCENARIO...]]     (default 120 s, every scenario)

A real JupyterHub on loopback spawns real servers behind the node configurable-http-proxy; each
scenario logs a person in with headless Chromium, opens what it names (a notebook, a sidebar
panel), lets the page settle, then records every request and websocket for SECONDS without
touching the page. It prints, per scenario, each request's method and path (numbers and names
folded) with its rate per minute, whether it carried the tab's header (``X-Cull-Idle-Tab``), and
whether the sensor's ``last_activity`` moved while nobody was there. This is how the idle polls
in docs/idleness.md were found.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from labdriver import Lab

from hubharness.launcher import TestHub, real_servers_env

SETTLE = 20  # seconds after opening, before recording: the opening is the person's doing

#: name -> (page, JavaScript run in the page once JupyterLab has restored)
SCENARIOS: dict[str, tuple[str, str]] = {
    "lab-panels-closed": ("lab", ""),
    "lab-notebook-open": (
        "lab",
        "await window.jupyterapp.commands.execute('notebook:create-new', {kernelName: 'python3'})",
    ),
    "lab-git-panel-open": ("lab", "window.jupyterapp.shell.activateById('jp-git-sessions')"),
    "lab-git-panel-closed": ("lab", ""),
    "lab-running-panel-open": ("lab", "window.jupyterapp.shell.activateById('jp-running-sessions')"),
    "lab-extensions-panel-open": (
        "lab",
        "window.jupyterapp.shell.activateById('extensionmanager.main-view')",
    ),
    "lab-collaboration-panel-open": ("lab", "window.jupyterapp.shell.activateById('jp-collaboration-panel')"),
    "notebook7-tree": ("tree", ""),
}


def fold(path: str) -> str:
    path = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27,}", "ID", path)
    path = re.sub(r"\d{6,}", "N", path)
    return re.sub(r"(api/contents|api/collaboration/room)/[^?]*", r"\1/PATH", path)


def measure(hub: TestHub, browser: Any, name: str, page: str, script: str, seconds: float) -> None:
    def repository() -> None:
        # The home is a git repository, as a cloned course or project is.
        subprocess.run(["git", "init", "-q", str(hub.dir / "home" / name)], check=True)

    lab = Lab(hub, browser, name, before_login=repository if "-git-" in name else None)
    try:
        if page != "lab":
            lab.page.goto(lab.base + page)
            lab.page.wait_for_function("() => window.jupyterapp !== undefined", timeout=90_000)
            lab.page.evaluate("async () => { await window.jupyterapp.restored; }")
        if script:
            lab.page.evaluate(f"async () => {{ {script}; }}")
        lab.page.wait_for_timeout(SETTLE * 1000)
        seen: Counter[tuple[str, str, bool]] = Counter()

        def on_request(request: Any) -> None:
            if request.url.startswith(lab.base):
                path = request.url[len(lab.base) :].split("?")[0]
                marked = "x-cull-idle-tab" in request.headers
                seen[(request.method, fold(path), marked)] += 1

        def on_websocket(socket: Any) -> None:
            if lab.base.split("://", 1)[1] in socket.url:
                path = socket.url.split(lab.base.split("://", 1)[1], 1)[1].split("?")[0]
                seen[("WS", fold(path), False)] += 1

        before = lab.hub.session.get(lab.base + "api/cull-idle/work", timeout=30).json()
        lab.page.on("request", on_request)
        lab.page.on("websocket", on_websocket)
        lab.page.wait_for_timeout(seconds * 1000)
        after = lab.hub.session.get(lab.base + "api/cull-idle/work", timeout=30).json()
        moved = before["last_activity"] != after["last_activity"]
        print(f"\n## {name}: sensor's last_activity moved while nobody was there: {'YES' if moved else 'no'}")
        for (method, path, marked), count in sorted(seen.items(), key=lambda kv: -kv[1]):
            tag = "tab" if marked else "   "
            print(f"  {count * 60 / seconds:6.1f}/min  {tag}  {method:6} {path}")
    finally:
        lab.close()


def main() -> None:
    from playwright.sync_api import sync_playwright

    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 120
    only = sys.argv[2:]
    hub = TestHub(extra_env=real_servers_env(TEST_LAB="1")).start()
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed (scripts/install-system.sh)"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            for name, (page, script) in SCENARIOS.items():
                if only and name not in only:
                    continue
                started = time.monotonic()
                measure(hub, browser, name, page, script, seconds)
                print(f"  ({time.monotonic() - started:.0f} s)")
            browser.close()
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
