"""A flood of made-up tokens beside real visitors, on a real Hub and proxy: the flood spends the
page's budget of Hub checks, and meanwhile a person logged in to the page keeps it, and a
server's own token (the notice's) keeps being answered, each past the auth cache's lifetime."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from pagehub import AUTH_CACHE, eventually, me, page_login, page_url, server_token, start, with_token

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def flood_hub(tmp_path_factory):
    hub = start(tmp_path_factory.mktemp("flood"))
    yield hub
    hub.stop()


def test_a_flood_turns_away_no_one_the_hub_approved(flood_hub):
    hub = flood_hub
    hub.create_users(["f-alice", "f-bob"])
    hub.start_server("f-bob")
    alice = page_login(hub, "f-alice")
    bob_server = server_token(hub, "f-bob")
    # Each approved once, and f-bob's server seen running by a pass, before the flood.
    eventually(lambda: me(hub, bob_server)["servers"], "a pass to see f-bob's server")
    assert alice.get(page_url(hub), timeout=30).status_code == 200

    stop = threading.Event()
    spent = threading.Event()
    flood_codes: list[int] = []

    def flood() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                token = uuid.uuid4().hex
                code = session.get(page_url(hub, "api/me"), headers=with_token(token), timeout=30).status_code
                flood_codes.append(code)
                if code == 503:
                    spent.set()

    visitors: list[tuple[str, int]] = []
    with ThreadPoolExecutor(12) as pool:
        floods = [pool.submit(flood) for _ in range(10)]
        try:
            assert spent.wait(60), "the flood never spent the page's budget"
            # Past the auth cache's lifetime, during the flood: each must be served without a
            # new check with the Hub, which the spent budget would refuse.
            until = time.monotonic() + 3 * AUTH_CACHE
            while time.monotonic() < until:
                visitors.append(("alice's page", alice.get(page_url(hub), timeout=30).status_code))
                answer = requests.get(page_url(hub, "api/me"), headers=with_token(bob_server), timeout=30)
                visitors.append(("f-bob's server", answer.status_code))
            still_spent = flood_codes[-20:]
        finally:
            stop.set()
            for f in floods:
                f.result()
    assert 503 in still_spent, "the budget must still be spent at the end, or this proves nothing"
    refused = [(who, code) for who, code in visitors if code != 200]
    assert not refused, refused
    assert {code for code in flood_codes} <= {401, 503}, set(flood_codes)
