"""Kernel-aware culling against real single-user servers (jupyter_server) with real ipykernel
kernels, spawned as local processes by a real JupyterHub and reached through the real
configurable-http-proxy (the node one, Debian's)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Optional
from unittest import mock

import pytest
import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

import cull_idle
from cull_idle import connect, run_pass

from culler_process import run
from helpers import settled
from hubharness.launcher import TestHub, free_port, real_servers_env

pytestmark = pytest.mark.timeout(180)

IDLE = 3600  # seconds of Hub idleness given to every server under test
BUSY_CODE = "import time; time.sleep(120)"


@pytest.fixture(scope="module")
def real_hub():
    hub = TestHub(extra_env=real_servers_env()).start()
    yield hub
    hub.stop()


@pytest.fixture
def khub(real_hub):
    yield real_hub
    real_hub.delete_all_users()


class Kernel:
    """A kernel in a user's server, used the way a notebook tab uses it: REST and websocket."""

    def __init__(self, hub: TestHub, user: str) -> None:
        self.hub = hub
        self.base = f"{hub.public_url}/user/{user}/"
        r = hub.session.post(self.base + "api/kernels", json={"name": "python3"}, timeout=60)
        assert r.status_code == 201, r.text
        self.id = r.json()["id"]
        self.ws: Optional[WebSocketClientConnection] = None

    async def connect(self) -> None:
        url = self.base.replace("http://", "ws://") + f"api/kernels/{self.id}/channels"
        request = HTTPRequest(url, headers={"Authorization": f"token {self.hub.admin_token}"})
        self.ws = await websocket_connect(request)

    async def execute(self, code: str, wait_for: str) -> None:
        """Send ``code`` and wait for the kernel to report ``wait_for`` (busy or idle) for it."""
        assert self.ws is not None
        msg_id = uuid.uuid4().hex
        await self.ws.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "test",
                        "session": uuid.uuid4().hex,
                        "version": "5.3",
                        "date": datetime.now(timezone.utc).isoformat(),
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {"code": code, "silent": False, "store_history": False},
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        while True:
            text = await self.ws.read_message()
            assert text is not None, "the kernel's websocket closed"
            msg = json.loads(text)
            if (
                msg.get("msg_type") == "status"
                and msg.get("parent_header", {}).get("msg_id") == msg_id
                and msg["content"]["execution_state"] == wait_for
            ):
                return

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    def models(self) -> list[dict[str, Any]]:
        r = self.hub.session.get(self.base + "api/kernels?no_track_activity=1", timeout=30)
        r.raise_for_status()
        return list(r.json())

    def server_status(self) -> dict[str, Any]:
        r = self.hub.session.get(self.base + "api/status", timeout=30)
        r.raise_for_status()
        return dict(r.json())


async def kernel_in_server(hub: TestHub, user: str, *, busy: bool, keep_open: bool = False) -> Kernel:
    """A running server for ``user`` with one kernel, busy (sleeping) or idle, that the Hub
    considers idle for an hour; the kernel's websocket is closed unless ``keep_open``."""
    hub.create_users([user])
    hub.start_server(user)
    kernel = Kernel(hub, user)
    await kernel.connect()
    await kernel.execute(BUSY_CODE if busy else "x = 1", "busy" if busy else "idle")
    if not keep_open:
        kernel.close()
        hub.wait_for(lambda: all(k["connections"] == 0 for k in kernel.models()), "the connection to close")
    hub.set_times([{"user": user, "server": "", "last_activity_ago": IDLE}])
    return kernel


def cli_env(hub: TestHub, token: Optional[str] = None) -> dict[str, str]:
    return {"JUPYTERHUB_API_URL": hub.api_url, "JUPYTERHUB_API_TOKEN": token or hub.cull_kernels_token}


async def test_a_busy_kernel_keeps_an_idle_server_and_without_the_flag_it_is_culled(khub):
    await kernel_in_server(khub, "k-busy", busy=True)

    code, output = run(["--timeout=600", "--once", "--keep-busy-kernels"], cli_env(khub))
    assert code == 0, output
    assert "Not culling server k-busy" in output and "busy: 1 of 1 kernels busy" in output, output
    assert khub.running("k-busy"), output

    code, output = run(["--timeout=600", "--once"], cli_env(khub))
    assert code == 0, output
    assert "Culling server k-busy" in output, output
    khub.wait_for(lambda: not khub.running("k-busy"), "k-busy to stop")


async def test_an_idle_kernel_does_not_keep_the_server_and_the_probe_is_not_activity(khub):
    kernel = await kernel_in_server(khub, "k-idle", busy=False)
    before = kernel.server_status()["last_activity"]
    hub = connect(khub.api_url, khub.cull_kernels_token)

    report = await run_pass(hub, 600, keep_busy_kernels=True, dry_run=True)
    [action] = report.actions
    assert (action.user, action.outcome) == ("k-idle", "would-stop")
    assert action.probe == {
        "work": {
            "kernels": 1,
            "busy_kernels": 0,
            "stuck_kernels": 0,
            "connections": 0,
            "terminals": 0,
            "recent_terminals": 0,
            "cpu_percent": None,
            "last_work": action.probe["work"]["last_work"],
            # Its cell ran just now: within the limit (only --idle-by=work reads this).
            "recent_work": True,
            "sensor": False,
        },
        "error": None,
    }
    # jupyter_server did not count the probe as activity (it would report it to the Hub).
    assert kernel.server_status()["last_activity"] == before

    report = await run_pass(hub, 600, keep_busy_kernels=True)
    assert [(a.user, settled(khub, a)) for a in report.actions] == [("k-idle", "stopped")]
    assert not khub.running("k-idle")


async def test_a_kernel_left_starting_keeps_its_server_only_within_the_idle_limit(khub):
    khub.create_users(["k-stuck"])
    khub.start_server("k-stuck")
    # Started through the REST API and never connected to: it stays `starting`.
    kernel = Kernel(khub, "k-stuck")
    khub.set_times([{"user": "k-stuck", "server": "", "last_activity_ago": IDLE}])
    hub = connect(khub.api_url, khub.cull_kernels_token)

    report = await run_pass(hub, 600, keep_busy_kernels=True, dry_run=True)
    [skip] = [s for s in report.skipped if s.user == "k-stuck"]
    assert skip.reason == "busy" and skip.probe["work"]["busy_kernels"] == 1, skip

    def kernel_age() -> float:
        (model,) = kernel.models()
        assert model["execution_state"] == "starting", model
        started = datetime.fromisoformat(model["last_activity"].replace("Z", "+00:00"))
        return (datetime.now(timezone.utc) - started).total_seconds()

    # With a 3 s limit it has been starting for longer than that: stuck, so idle.
    khub.wait_for(lambda: kernel_age() > 3.5, "the kernel to be starting for longer than 3 s")
    report = await run_pass(hub, 3, keep_busy_kernels=True, dry_run=True)
    [action] = [a for a in report.actions if a.user == "k-stuck"]
    assert action.outcome == "would-stop", action
    assert action.probe["work"]["stuck_kernels"] == 1 and action.probe["work"]["busy_kernels"] == 0


BURN = "import subprocess, sys\nburner = subprocess.Popen([sys.executable, '-c', 'while True: pass'])"


async def test_a_process_burning_cpu_keeps_its_server_with_keep_cpu_above(khub):
    # A kernel starts a CPU-bound process and goes idle: no kernel is busy, the server is.
    kernel = await kernel_in_server(khub, "k-cpu", busy=False, keep_open=True)
    await kernel.execute(BURN, "idle")
    try:
        hub = connect(khub.api_url, khub.cull_kernels_token)
        report = await run_pass(hub, 600, keep_cpu_above=10, dry_run=True)
        [skip] = [s for s in report.skipped if s.user == "k-cpu"]
        assert skip.reason == "cpu", skip
        assert skip.probe["work"]["busy_kernels"] == 0 and skip.probe["work"]["cpu_percent"] > 10, skip
        assert "CPU " in skip.detail

        report = await run_pass(hub, 600, keep_busy_kernels=True, dry_run=True)
        assert [(a.user, a.outcome) for a in report.actions] == [("k-cpu", "would-stop")]
    finally:
        await kernel.execute("burner.kill(); burner.wait()", "idle")
    report = await run_pass(hub, 600, keep_cpu_above=10, dry_run=True)
    [action] = report.actions
    assert (action.user, action.outcome) == ("k-cpu", "would-stop")
    assert action.probe["work"]["cpu_percent"] <= 10


def test_no_busy_timeout_is_warned_about_at_start_up(khub):
    code, output = run(["--timeout=600", "--once", "--keep-busy-kernels"], cli_env(khub))
    assert code == 0, output
    assert "No --busy-timeout: a server that stays busy" in output and "--busy-timeout=86400" in output
    code, output = run(
        ["--timeout=600", "--once", "--keep-busy-kernels", "--busy-timeout=7200"], cli_env(khub)
    )
    assert "No --busy-timeout" not in output


async def test_busy_timeout_culls_a_busy_server(khub):
    await kernel_in_server(khub, "k-runaway", busy=True)
    hub = connect(khub.api_url, khub.cull_kernels_token)

    report = await run_pass(hub, 600, keep_busy_kernels=True, busy_timeout=7200, dry_run=True)
    assert [(s.user, s.reason) for s in report.skipped] == [("k-runaway", "busy")]
    assert report.skipped[0].probe["work"]["busy_kernels"] == 1

    report = await run_pass(hub, 600, keep_busy_kernels=True, busy_timeout=1800)
    [action] = report.actions
    assert (action.user, settled(khub, action), action.probe) == ("k-runaway", "stopped", None)
    assert "busy-timeout" in action.detail
    assert not khub.running("k-runaway")


async def test_the_culler_s_own_probes_through_the_proxy_do_not_reset_idleness(khub):
    """The probe is a 200 through configurable-http-proxy, which stamps the route; the Hub copies
    that stamp into the server's last_activity. The busy-timeout must still be reached."""
    await kernel_in_server(khub, "k-stamped", busy=True)
    hub = connect(khub.api_url, khub.cull_kernels_token)
    started = datetime.now(timezone.utc)

    report = await run_pass(hub, 600, keep_busy_kernels=True, busy_timeout=IDLE + 60)
    assert [(s.user, s.reason) for s in report.skipped] == [("k-stamped", "busy")]

    # The Hub reads the proxy's activity: the server now looks freshly active to it.
    khub.api("POST", "/testing", json={"poll_proxy": True})
    last_activity = khub.user("k-stamped")["servers"][""]["last_activity"]
    assert datetime.fromisoformat(last_activity.replace("Z", "+00:00")) >= started - timedelta(seconds=5)

    # Two minutes later the hour and a minute of idleness is reached, probes or not.
    later = datetime.now(timezone.utc) + timedelta(seconds=120)
    with mock.patch.object(cull_idle, "utcnow", lambda: later):
        report = await run_pass(hub, 600, keep_busy_kernels=True, busy_timeout=IDLE + 60)
    assert [(a.user, settled(khub, a)) for a in report.actions] == [("k-stamped", "stopped")], report


async def test_activity_after_a_probe_is_not_mistaken_for_the_probe(khub):
    await kernel_in_server(khub, "k-back", busy=True)
    hub = connect(khub.api_url, khub.cull_kernels_token)
    report = await run_pass(hub, 600, keep_busy_kernels=True, busy_timeout=IDLE + 60)
    assert [s.reason for s in report.skipped] == ["busy"]

    # The user comes back after the probe.
    khub.set_times([{"user": "k-back", "server": "", "last_activity_ago": -5}])
    later = datetime.now(timezone.utc) + timedelta(seconds=120)
    with mock.patch.object(cull_idle, "utcnow", lambda: later):
        report = await run_pass(hub, 600, keep_busy_kernels=True, busy_timeout=IDLE + 60)
    assert report.actions == [] and report.kept_active == 1, report


async def test_open_connections_keep_a_server_with_keep_connected(khub):
    kernel = await kernel_in_server(khub, "k-tab", busy=False, keep_open=True)
    try:
        hub = connect(khub.api_url, khub.cull_kernels_token)
        report = await run_pass(hub, 600, keep_connected=True)
        assert [(s.user, s.reason) for s in report.skipped] == [("k-tab", "connected")]
        assert report.skipped[0].probe["work"]["connections"] == 1
        assert khub.running("k-tab")

        report = await run_pass(hub, 600, keep_busy_kernels=True, dry_run=True)
        assert [(a.user, a.outcome) for a in report.actions] == [("k-tab", "would-stop")]
    finally:
        kernel.close()


async def test_a_server_that_cannot_be_asked_is_culled_after_retries_and_the_report_says_so(khub):
    await kernel_in_server(khub, "k-unreachable", busy=True)
    nowhere = f"http://127.0.0.1:{free_port()}"
    hub = connect(khub.api_url, khub.cull_kernels_token, probe_timeout=2)

    report = await run_pass(hub, 600, keep_busy_kernels=True, server_url=nowhere)
    [action] = report.actions
    assert (action.user, settled(khub, action)) == ("k-unreachable", "stopped")
    assert action.probe["work"] is None
    assert nowhere in action.probe["error"]
    assert action.detail.startswith("treated as not busy")


async def test_an_explicit_server_url_is_used(khub):
    await kernel_in_server(khub, "k-direct", busy=True)
    code, output = run(
        ["--timeout=600", "--once", "--keep-busy-kernels", f"--server-url={khub.public_url}/"], cli_env(khub)
    )
    assert code == 0, output
    assert "Not culling server k-direct" in output, output
    assert khub.running("k-direct")


def test_a_token_without_access_to_servers_is_refused(real_hub):
    code, output = run(
        ["--timeout=600", "--once", "--keep-busy-kernels"], cli_env(real_hub, real_hub.cull_token)
    )
    assert code == 2, output
    assert "the scope tokens" in output and "Traceback" not in output, output
    assert len(output.strip().splitlines()) <= 3, output


class Recorder:
    """A listener that plays a user's server: it records the ``Authorization`` of every request
    and answers as jupyter_server without the sensor (no kernels)."""

    def __init__(self) -> None:
        import http.server
        import threading

        seen: list[tuple[str, str]] = []
        self.seen = seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                seen.append((self.path, self.headers.get("Authorization") or ""))
                status, body = (404, b"{}") if "cull-idle/work" in self.path else (200, b"[]")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_what_a_server_receives_opens_that_server_alone(khub):
    """bob runs a listener where the culler asks his server: what it receives is a token of
    bob's own that opens bob's server and nothing else of the Hub's."""
    # Idle kernels: a sleeping one makes the server slow to stop when the test ends.
    await kernel_in_server(khub, "k-alice", busy=False)
    await kernel_in_server(khub, "k-bob", busy=False)
    recorder = Recorder()
    try:
        code, output = run(
            ["--timeout=600", "--once", "--keep-busy-kernels", f"--server-url={recorder.url}", "--dry-run"],
            cli_env(khub),
        )
    finally:
        recorder.close()
    assert code == 0, output
    received = {auth for path, auth in recorder.seen if path.startswith("/user/k-bob/")}
    assert len(received) == 1, recorder.seen
    credential = received.pop()
    assert credential.startswith("token ") and khub.cull_kernels_token not in credential, (
        "not the culler's token"
    )
    as_bob = {"Authorization": credential}

    def hub(method: str, path: str) -> int:
        return requests.request(method, f"{khub.api_url}{path}", headers=as_bob, timeout=30).status_code

    me = requests.get(f"{khub.api_url}/user", headers=as_bob, timeout=30).json()
    assert me["name"] == "k-bob" and me["kind"] == "user", me
    # bob's server, and what the Hub adds to identify its owner: nothing beyond bob's own.
    assert "access:servers!server=k-bob/" in me["scopes"], me["scopes"]
    assert all(s.endswith(("!server=k-bob/", "!user=k-bob")) for s in me["scopes"]), me["scopes"]
    # Nothing of the Hub's: no listing, no other user, no stop, no deletion, no new token.
    assert hub("GET", "/users") == 403
    assert hub("GET", "/users/k-alice") in (403, 404)
    assert hub("DELETE", "/users/k-alice/server") in (403, 404)
    assert hub("DELETE", "/users/k-bob/server") in (403, 404)
    assert hub("DELETE", "/users/k-alice") in (403, 404)
    assert hub("POST", "/users/k-bob/tokens") in (403, 404)
    assert khub.running("k-alice") and khub.running("k-bob")
    # alice's server refuses it; bob's own accepts it, which bob could do anyway.
    alice = requests.get(
        f"{khub.public_url}/user/k-alice/api/kernels", headers=as_bob, timeout=30, allow_redirects=False
    )
    assert alice.status_code in (302, 403), alice.status_code
    bob = requests.get(f"{khub.public_url}/user/k-bob/api/kernels", headers=as_bob, timeout=30)
    assert bob.status_code == 200, bob.status_code
    # The token is bob's, noted as his server's own (so being asked is not bob's activity).
    tokens = khub.api("GET", "/users/k-bob/tokens").json()["api_tokens"]
    notes = [t["note"] for t in tokens if "access:servers!server=k-bob/" in t["scopes"]]
    assert notes and notes[0].startswith("Server at "), tokens
