"""Keep-alives hold from the moment they are granted, on a real Hub and proxy: while a pass is
in flight (held there by a probe that the test stalls), for a server the pass judged without
one, and for a server started after the last pass."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from pagehub import eventually, me, page_url, start, user_token, with_token

from helpers import sample

pytestmark = pytest.mark.timeout(180)


class StallingServers:
    """Stands in for every single-user server the probes reach (``--server-url``): answers
    ``api/kernels`` with no kernels, but only once ``release`` is set, and says when a probe
    has arrived."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        servers = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if "/api/kernels" in self.path:
                    servers.arrived.set()
                    servers.release.wait(60)
                body = json.dumps([]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def servers():
    s = StallingServers()
    yield s
    s.close()


@pytest.fixture(scope="module")
def probing_hub(tmp_path_factory, servers):
    hub = start(
        tmp_path_factory.mktemp("promises"),
        "--keep-busy-kernels",
        "--busy-timeout=90000",
        f"--server-url={servers.url}",
        "--probe-timeout=120",
        # Long enough that the flood test's refusals are remembered for the whole test, however
        # slow the machine (the last of the same option wins).
        "--page-auth-cache=120",
        extra_scopes=("tokens",),
    )
    yield hub
    hub.stop()


def keep(hub, token: str, seconds: float = 1800) -> requests.Response:
    return requests.post(
        page_url(hub, "api/keep-alive"),
        json={"server": "", "seconds": seconds},
        headers=with_token(token),
        timeout=30,
    )


def hold_a_pass(hub, servers, user: str) -> str:
    """Give ``user`` a server idle past --timeout, so that the next pass judges it due (without a
    keep-alive) and asks it what it runs; the question hangs, holding that pass in flight.
    Returns the ``as_of`` of the last pass to have ended."""
    servers.arrived.clear()
    servers.release.clear()
    hub.create_users([user])
    hub.start_server(user)
    token, _ = user_token(hub, user)
    # Seen running by a pass first, so that the page knows it without asking the Hub.
    before = eventually(lambda: (a := me(hub, token))["servers"] and a["as_of"], "a pass to see it")
    hub.set_times([{"user": user, "server": "", "last_activity_ago": 4000, "started_ago": 4000}])
    assert servers.arrived.wait(60), "no pass asked the server"
    return str(before)


def test_a_keep_alive_granted_mid_pass_stops_the_stop_and_outlives_the_pass(probing_hub, servers):
    hub = probing_hub
    before = hold_a_pass(hub, servers, "ruth")
    token, _ = user_token(hub, "ruth")
    # Ruth clicks "keep it running" while the pass that judged her server is under way.
    r = keep(hub, token)
    assert r.status_code == 200, r.text
    assert me(hub, token)["as_of"] == before, "the pass was still in flight"
    servers.release.set()
    # That pass ends, and the next: the server was not stopped, and the keep-alive is kept.
    eventually(lambda: me(hub, token)["as_of"] != before, "the held pass to end")
    moment = me(hub, token)["as_of"]
    answer = eventually(lambda: (a := me(hub, token))["as_of"] != moment and a, "another pass")
    assert hub.running("ruth")
    assert answer["servers"][0]["kept_until"] is not None, answer
    assert answer["servers"][0]["reason"] == "kept-alive", answer


def test_a_server_started_since_the_last_pass_can_be_kept_at_once(probing_hub, servers):
    hub = probing_hub
    hold_a_pass(hub, servers, "tom")
    try:
        hub.create_users(["sam"])
        hub.start_server("sam")
        sam, _ = user_token(hub, "sam")
        assert me(hub, sam)["servers"] == [], "no pass has seen Sam's server"
        r = keep(hub, sam)
        assert r.status_code == 200, r.text
        # A server that does not exist is still refused.
        r = requests.post(
            page_url(hub, "api/keep-alive"),
            json={"server": "nothing", "seconds": 60},
            headers=with_token(sam),
            timeout=30,
        )
        assert r.status_code == 404, r.text
    finally:
        servers.release.set()
    eventually(
        lambda: (a := me(hub, sam))["servers"] and a["servers"][0]["kept_until"],
        "Sam's keep-alive on the page",
    )


def test_a_keep_alive_of_a_server_not_ready_is_not_forgotten(probing_hub, servers):
    """A server still starting, or one a restarted Hub is still checking, is not in the passes'
    listing (``state=ready``); it is not gone, and its keep-alive stays."""
    hub = probing_hub
    servers.release.set()
    hub.create_users(["pending-pat"])
    hub.start_server("pending-pat")  # the harness's pending* servers never finish starting
    token, _ = user_token(hub, "pending-pat")
    r = keep(hub, token)
    assert r.status_code == 200, r.text
    admin, _ = user_token(hub, "admin-user")

    def kept() -> list[str]:
        r = requests.get(page_url(hub, "api/admin"), headers=with_token(admin), timeout=30)
        return [k["user"] for k in r.json()["keep_alives"]]

    assert "pending-pat" in kept()
    # Complete passes that do not list it come and go.
    for _ in range(3):
        moment = me(hub, admin)["as_of"]
        eventually(lambda m=moment: me(hub, admin)["as_of"] != m, "a pass to end")
    assert "pending-pat" in kept()


def test_a_flood_of_made_up_tokens_costs_the_passes_nothing(probing_hub, servers):
    hub = probing_hub
    servers.release.set()

    def counters() -> tuple[float, float, float]:
        text = requests.get(page_url(hub, "metrics"), timeout=30).text
        errors = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("cull_idle_hub_request_errors_total")
        )
        checks = sample(text, "cull_idle_page_auth_checks_total") or 0.0
        return sample(text, "cull_idle_passes_total") or 0.0, errors, checks

    passes, errors, checks = counters()
    tokens = [uuid.uuid4().hex for _ in range(60)]

    def ask(token: str) -> int:
        return requests.get(page_url(hub, "api/me"), headers=with_token(token), timeout=30).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(ask, tokens * 2))
    assert set(codes) <= {401, 503}, set(codes)
    after_passes, after_errors, after_checks = counters()
    # Each made-up token cost the Hub one request at most, however often it was sent.
    assert after_checks - checks <= len(tokens)
    assert after_errors == errors, "the flood is not in the passes' error counts"
    eventually(lambda: counters()[0] > after_passes, "passes to go on")
    assert passes <= after_passes
