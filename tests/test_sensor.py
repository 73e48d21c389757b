"""cull-idle-sensor in a real jupyter_server (with JupyterLab's server extension, as installed
in a single-user image), asked over HTTP with the server's own token: which requests it counts
as work, and that asking it is not activity."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
import requests
from cull_idle_sensor.activity import TAB_HEADER, _is_document_update
from cull_idle_sensor.notice import keep_choices
from cull_idle_sensor.polls import IDLE_POLLS, PollMatcher

from hubharness.launcher import free_port

pytestmark = pytest.mark.timeout(120)
TOKEN = "sensor-test-token"


class Server:
    def __init__(self, tmp: Path, *args: str) -> None:
        self.url = f"http://127.0.0.1:{free_port()}/"
        port = self.url.rsplit(":", 1)[1].rstrip("/")
        self.log = (tmp / "server.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                "--no-browser",
                "--allow-root",
                f"--port={port}",
                f"--IdentityProvider.token={TOKEN}",
                f"--ServerApp.root_dir={tmp}",
                *args,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "api", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            assert self.process.poll() is None, (tmp / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {TOKEN}"

    def call(
        self, method: str, path: str, expected: tuple[int, ...] = (), **kwargs: Any
    ) -> requests.Response:
        r = self.session.request(method, self.url + path, timeout=30, **kwargs)
        assert r.status_code < 400 or r.status_code in expected, (method, path, r.status_code, r.text)
        return r

    def work(self) -> dict[str, Any]:
        return dict(self.call("GET", "api/cull-idle/work").json())

    def last_request(self) -> Optional[str]:
        value: Optional[str] = self.work()["last_request"]
        return value

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    yield s
    s.stop()


def test_an_idle_tab_s_polls_are_not_work_and_a_save_is(server: Server) -> None:
    # What a visible, untouched JupyterLab tab sends (docs/idleness.md, measured).
    polls = [
        ("GET", "api/kernels"),
        ("GET", "api/sessions"),
        ("GET", "api/terminals"),
        ("GET", "api/kernelspecs"),
        ("GET", "api/me"),
        ("GET", "api/contents?content=1"),
        ("GET", "lab/api/workspaces"),
        ("GET", "api/status"),
    ]
    for method, path in polls:
        server.call(method, path)
    server.call("PUT", "lab/api/workspaces/default", json={"data": {}, "metadata": {"id": "default"}})
    assert server.last_request() is None
    status = server.call("GET", "api/status").json()["last_activity"]
    # Asking the sensor is not activity for jupyter_server either.
    server.work()
    assert server.call("GET", "api/status").json()["last_activity"] == status

    # A request that asks not to be tracked is not work, whatever it does.
    server.call(
        "PUT",
        "api/contents/probe.txt?no_track_activity=1",
        json={"type": "file", "format": "text", "content": "x"},
    )
    assert server.last_request() is None
    server.call("PUT", "api/contents/notes.txt", json={"type": "file", "format": "text", "content": "x"})
    saved = server.last_request()
    assert saved is not None
    account = server.work()
    assert account["last_activity"] == saved and account["kernels"] == 0, account


def test_what_a_page_loads_to_show_itself_is_not_work_and_opening_it_is(server: Server) -> None:
    # As a tab loads them: the application's chunks (some only when first needed, such as the
    # notification's when the culler's warning is the first one shown), extensions', themes'.
    lab_static = Path(sys.prefix) / "share" / "jupyter" / "lab" / "static"
    chunk = next(p.name for p in sorted(lab_static.glob("*.js")))
    assets = [
        f"static/lab/{chunk}",
        "static/favicons/favicon.ico",
        "lab/extensions/cull-idle-sensor/static/remoteEntry.js",
        "lab/api/themes/@jupyterlab/theme-light-extension/index.css",
        "custom/custom.css",
    ]
    for path in assets:
        # custom.css is there only where an operator wrote one.
        server.call("GET", path, expected=(404,) if path.startswith("custom/") else ())
    assert server.last_request() is None
    # The page itself is a person opening it.
    server.call("GET", "lab")
    assert server.last_request() is not None


def test_a_tab_that_reports_input_is_judged_by_it_not_by_what_it_sends(server: Server) -> None:
    tab = {TAB_HEADER: "1"}
    # Whatever a tab with the extension sends by itself, listed or not: not work.
    server.call("POST", "some-extension/refresh", headers=tab, json={}, expected=(404,))
    server.call("GET", "an/unknown/poll", headers=tab, expected=(404,))
    server.call(
        "POST", "api/sessions", headers=tab, json={"path": "a.ipynb", "type": "notebook"}, expected=(400,)
    )
    assert server.last_request() is None
    # The same unknown request from anything else (a script, a tab without it) still is.
    server.call("GET", "an/unknown/poll", expected=(404,))
    assert server.last_request() is not None
    status = server.call("GET", "api/status").json()["last_activity"]
    server.call("POST", "api/cull-idle/input", headers=tab)
    account = server.work()
    assert account["last_input"] is not None and account["last_activity"] == account["last_input"], account
    # The report is not jupyter_server activity: the Hub's own count stays where it was.
    assert server.call("GET", "api/status").json()["last_activity"] == status
    # A file written by the tab is the person's data, marked or not.
    before = server.last_request()
    server.call(
        "PUT", "api/contents/n.txt", headers=tab, json={"type": "file", "format": "text", "content": "x"}
    )
    assert server.last_request() != before
    assert requests.post(server.url + "api/cull-idle/input", timeout=30).status_code == 403


def test_document_updates_over_the_collaboration_websocket_are_edits() -> None:
    # y-protocols: [0 sync, 2 update, ...] is an edit; [0, 0|1] the handshake; [1] awareness.
    assert _is_document_update(b"\x00\x02\x05abcde")
    assert _is_document_update(b"\x02\x04save\x01")
    assert not _is_document_update(b"\x00\x00\x01\x00")
    assert not _is_document_update(b"\x00\x01\x02\x00\x00")
    assert not _is_document_update(b"\x01\x0a{}")
    assert not _is_document_update(b"")
    assert not _is_document_update("text")


def test_kernels_count_by_their_own_activity_and_unauthenticated_requests_not_at_all(server: Server) -> None:
    kernel = server.call("POST", "api/kernels", json={"name": "python3"}).json()
    # Starting a kernel is a request, and work.
    started = server.last_request()
    assert started is not None
    account = server.work()
    assert account["kernels"] == 1 and account["busy_kernels"] == 0
    # Nobody signed in: a scanner, a health check.
    assert requests.put(server.url + "api/contents/x.txt", json={}, timeout=30).status_code == 403
    assert requests.get(server.url + "api/cull-idle/work", timeout=30).status_code == 403
    assert server.last_request() == started
    server.call("DELETE", f"api/kernels/{kernel['id']}")


def test_operators_add_their_extensions_polls(tmp_path: Path) -> None:
    config = tmp_path / "jupyter_server_config.json"
    config.write_text(json.dumps({"CullIdleSensor": {"extra_idle_polls": ["POST git/.*/status"]}}))
    s = Server(tmp_path, f"--config={config}")
    try:
        # jupyterlab-git is not installed here: the server answers 404 to both, and only the
        # poll list tells them apart.
        s.session.post(s.url + "git/repo/status", timeout=30)
        assert s.last_request() is None
        s.session.post(s.url + "git/repo/commit", timeout=30)
        assert s.last_request() is not None
    finally:
        s.stop()


def test_requests_to_an_app_behind_jupyter_server_proxy_are_work(tmp_path: Path) -> None:
    # An app with no kernels (RStudio, code-server stand here as a plain HTTP server).
    app = {"command": [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1"], "timeout": 30}
    config = tmp_path / "jupyter_server_config.json"
    config.write_text(json.dumps({"ServerProxy": {"servers": {"app": app}}}))
    s = Server(tmp_path, f"--config={config}")
    try:
        assert s.last_request() is None
        s.call("GET", "app/")
        assert s.last_request() is not None
    finally:
        s.stop()


ECHO_APP = """
import asyncio, sys
from tornado import web, websocket

class Echo(websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(message)

async def main():
    web.Application([(r"/.*", Echo)]).listen(int(sys.argv[1]), "127.0.0.1")
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_typing_into_an_app_behind_jupyter_server_proxy_is_work(tmp_path: Path) -> None:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    # A websocket app (code-server stands here as an echo server): typing reaches it as messages.
    (tmp_path / "echo_app.py").write_text(ECHO_APP)
    app = {"command": [sys.executable, str(tmp_path / "echo_app.py"), "{port}"], "timeout": 30}
    config = tmp_path / "jupyter_server_config.json"
    config.write_text(json.dumps({"ServerProxy": {"servers": {"echo": app}}}))
    s = Server(tmp_path, f"--config={config}")
    try:
        url = s.url.replace("http://", "ws://") + "echo/ws"
        ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {TOKEN}"}))
        opened = s.last_request()
        assert opened is not None
        await ws.write_message("print('hello')")
        assert await ws.read_message() == "print('hello')"
        typed = s.last_request()
        assert typed is not None and typed > opened, (opened, typed)
        ws.close()
    finally:
        s.stop()


def test_every_idle_poll_names_its_source_and_the_matcher_is_exact() -> None:
    assert all(p.source for p in IDLE_POLLS)
    docs = (Path(__file__).resolve().parents[1] / "docs" / "idleness.md").read_text(encoding="utf-8")
    for poll in IDLE_POLLS:
        # A pipe in a Markdown table's cell is escaped, even inside backquotes.
        pattern = poll.pattern.replace("|", "\\|")
        assert f"| `{poll.method}` | `{pattern}` | {poll.source} |" in docs, poll
    polls = PollMatcher(IDLE_POLLS)
    assert polls.is_idle_poll("GET", "api/kernels")
    assert polls.is_idle_poll("get", "api/contents/a/b.ipynb")
    assert polls.is_idle_poll("GET", "api/kernels/1234/channels")
    assert not polls.is_idle_poll("POST", "api/kernels")
    assert not polls.is_idle_poll("PUT", "api/contents/a.ipynb")
    assert not polls.is_idle_poll("PATCH", "api/contents/a.ipynb")
    assert not polls.is_idle_poll("GET", "lab")
    assert not polls.is_idle_poll("GET", "api/kernelsX")
    # jupyterlab-git's panel, with the repository at the root or in a folder (measured).
    for method, path in [("POST", "git/status"), ("POST", "git/a/b/branch"), ("GET", "git/remote/show")]:
        assert polls.is_idle_poll(method, path), path
    assert not polls.is_idle_poll("POST", "git/commit")
    assert not polls.is_idle_poll("POST", "git/branch/delete")


def test_the_notice_is_neither_activity_nor_work_and_is_silent_without_a_culler(server: Server) -> None:
    status = server.call("GET", "api/status").json()["last_activity"]
    before = server.last_request()
    # No CULL_IDLE_URL here: the tab is told there is no culler, and shows nothing.
    notice = server.call("GET", "api/cull-idle/notice").json()
    assert notice["culler"] is False, notice
    r = server.session.post(server.url + "api/cull-idle/notice", json={"seconds": 3600}, timeout=30)
    assert r.status_code == 404, r.text
    bad = server.session.post(server.url + "api/cull-idle/notice", json={"seconds": True}, timeout=30)
    assert bad.status_code == 400, bad.text
    for number in ("NaN", "Infinity", "-Infinity", "1e999"):
        body = f'{{"seconds": {number}}}'
        headers = {"Content-Type": "application/json"}
        bad = server.session.post(server.url + "api/cull-idle/notice", data=body, headers=headers, timeout=30)
        assert bad.status_code == 400, (number, bad.status_code, bad.text)
    assert server.call("GET", "api/status").json()["last_activity"] == status
    assert server.last_request() == before
    assert requests.get(server.url + "api/cull-idle/notice", timeout=30).status_code == 403


def test_the_keep_buttons_follow_the_culler_s_bound() -> None:
    assert keep_choices(0) == []
    assert keep_choices(1800) == [1800]
    assert keep_choices(7200) == [3600, 7200]
    assert keep_choices(86400 * 7) == [3600, 7200, 14400]


# Loads the notice's hand-made federation container in node, with a shared scope as JupyterLab
# gives it, and prints which version of each package it took and what it warned.
LOADER = r"""
const fs = require('fs');
global.window = {};
const picked = {};
function offered(pkg, versions, loaded) {
  const entries = {};
  for (const version of versions) {
    entries[version] = {
      get: () => Promise.resolve(() => { picked[pkg] = version; return { IStatusBar: {} }; }),
    };
    if (version === loaded) entries[version].loaded = 1;
  }
  return entries;
}
const [source, scopeJson] = process.argv.slice(1);
const warnings = [];
console.warn = message => warnings.push(message);
eval(fs.readFileSync(source, 'utf8'));
const container = window._JUPYTERLAB['cull-idle-sensor'];
const scope = {};
for (const [pkg, [versions, loaded]] of Object.entries(JSON.parse(scopeJson))) {
  scope[pkg] = offered(pkg, versions, loaded);
}
container.init(scope);
container.get('./extension').then(factory => {
  const plugins = factory().default.map(plugin => plugin.id);
  process.stdout.write(JSON.stringify({ picked, warnings, plugins }));
});
"""
NOTICE_SOURCE = Path(__file__).resolve().parents[1] / "sensor" / "labextension" / "static" / "remoteEntry.js"


def load_notice(scope: dict[str, Any]) -> dict[str, Any]:
    ran = subprocess.run(
        ["node", "-e", LOADER, str(NOTICE_SOURCE), json.dumps(scope)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    loaded: dict[str, Any] = json.loads(ran.stdout)
    return loaded


def test_the_notice_takes_jupyterlab_s_packages_as_its_loader_picks_them() -> None:
    loaded = load_notice(
        {
            # The newest by number, not by text ("4.9.0" sorts after "4.10.1").
            "@jupyterlab/apputils": [["4.9.0", "4.10.1", "4.10.0"], None],
            # A release is newer than its pre-release.
            "@jupyterlab/services": [["7.9.0", "7.10.0", "7.10.0-beta.1"], None],
            # A singleton already loaded is the one in use, whatever else is offered.
            "@jupyterlab/statusbar": [["4.10.0", "4.2.0"], "4.2.0"],
            "@lumino/widgets": [["2.3.0"], None],
        }
    )
    assert loaded["picked"] == {
        "@jupyterlab/apputils": "4.10.1",
        "@jupyterlab/services": "7.10.0",
        "@jupyterlab/statusbar": "4.2.0",
        "@lumino/widgets": "2.3.0",
    }
    assert loaded["warnings"] == []
    assert loaded["plugins"] == ["cull-idle-sensor:notice", "cull-idle-sensor:input"]
    # Outside the versions it was written for (a JupyterLab 5): it goes on, and says so.
    newer = load_notice(
        {
            "@jupyterlab/apputils": [["5.0.0"], None],
            "@jupyterlab/services": [["8.0.0"], None],
            "@jupyterlab/statusbar": [["5.0.0"], None],
            "@lumino/widgets": [["3.0.0"], None],
        }
    )
    assert len(newer["warnings"]) == 4, newer
    assert any("written for @lumino/widgets ^2.0, given 3.0.0" in w for w in newer["warnings"]), newer
