"""A misbehaving Hub: warnings and retries, never a crash, never a cull on data that did not parse.

The HTTP layer's own retries (statuses, `Retry-After`, hung and reset connections, replies too
large) are tested in Rust against a stub, in `tests/http_retries.rs`."""

import logging

import pytest

from cull_idle import cull_idle as cull

from fakehub import VERSION, FakeHub, page, user
from secret_guard import secret

TOKEN = secret("fault-test-s3cret-token")


@pytest.fixture
def fake(no_hub_env):
    hubs = []

    def make(routes):
        hub = FakeHub({**VERSION, **routes})
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    yield caplog
    assert TOKEN not in caplog.text


async def test_server_errors_are_retried_then_succeed(fake, logs):
    hub = fake(
        {
            "GET /users": [(500, "<html>oops</html>"), (503, {"message": "busy"}), (200, page([user("a")]))],
            "DELETE /users/a/server": [(204, b"")],
        }
    )
    report = await cull(hub.url, TOKEN, 600)
    assert report.complete and [a.outcome for a in report.actions] == ["stopped"]
    assert len(hub.calls("GET", "/users")) == 3
    retries = [r for r in logs.records if "retrying in" in r.getMessage()]
    assert len(retries) == 2 and all(r.levelno == logging.WARNING for r in retries)
    assert "503: busy" in retries[1].getMessage()


async def test_broken_json_fails_the_pass_without_any_delete(fake, logs):
    for body in ['{"items": [', "<html>502 Bad Gateway</html>", '{"items": 7}', "null"]:
        hub = fake({"GET /users": [(200, body)]})
        report = await cull(hub.url, TOKEN, 600)
        assert not report.complete and hub.calls("DELETE") == []
        assert "not what the Hub API sends" in report.errors[0]


async def test_bad_user_models_are_skipped_alone(fake, logs):
    items = [
        user("good"),
        {"name": "typed", "admin": "yes", "servers": {}},
        {"admin": False},
        user("badtime", last_activity="last tuesday"),
        {**user("badserver"), "servers": {"": {"ready": "yes", "last_activity": "2000-01-01T00:00:00Z"}}},
        user("future", last_activity="2999-01-01T00:00:00Z"),
    ]
    hub = fake({"GET /users": [(200, page(items))], "DELETE /users/good/server": [(204, b"")]})
    report = await cull(hub.url, TOKEN, 600)
    assert report.complete
    assert hub.calls("DELETE") == ["/users/good/server"]
    assert {s.reason for s in report.skipped} >= {"bad-model", "bad-timestamp"}


async def test_a_failed_page_keeps_what_earlier_pages_decided(fake, logs):
    hub = fake(
        {
            "GET /users?state=ready&limit": [(200, page([user("p1")], next_offset=2))],
            "GET /users?state=ready&offset=2": [(500, "no")],
            "DELETE /users/p1/server": [(204, b"")],
        }
    )
    report = await cull(hub.url, TOKEN, 600)
    assert not report.complete and [a.user for a in report.stopped] == ["p1"]
    # Next pages are built from offset/limit against our URL, not the Hub's next.url.
    assert hub.calls("GET", "/users?state=ready&offset=2&limit=2")


async def test_a_next_page_that_does_not_advance_stops_the_listing(fake, logs):
    hub = fake({"GET /users": [(200, page([user("x")], next_offset=0))], "DELETE": [(204, b"")]})
    report = await cull(hub.url, TOKEN, 600)
    assert not report.complete and "does not move forward" in report.errors[0]


async def test_delete_failures_are_reported_per_server(fake, logs):
    hub = fake(
        {
            "GET /users": [(200, page([user("a"), user("b"), user("c")]))],
            "DELETE /users/a/server": [(500, {"message": "spawner exploded"})],
            "DELETE /users/b/server": [(400, {"status": 400, "message": "Cannot stop while renaming"})],
            "DELETE /users/c/server": [(404, {"status": 404, "message": None})],
        }
    )
    report = await cull(hub.url, TOKEN, 600)
    assert report.complete
    assert {a.user: a.outcome for a in report.actions} == {"a": "failed", "b": "failed", "c": "gone"}
    assert len(hub.calls("DELETE", "/users/a/")) == 4  # first try + 3 retries
    assert len(hub.calls("DELETE", "/users/b/")) == 1  # 4xx is not retried
    assert "Cannot stop while renaming" in {a.user: a.detail for a in report.actions}["b"]


async def test_old_hub_bare_list_without_state_filter(fake, logs):
    hub = fake(
        {
            "GET /": [(200, {"version": "1.1.0"})],
            "GET /users": [
                (200, [{"name": "old", "server": "/user/old/", "last_activity": "2000-01-01T00:00:00"}])
            ],
            "DELETE /users/old/server": [(204, b"")],
        }
    )
    report = await cull(hub.url, TOKEN, 600)
    assert report.complete and [a.user for a in report.stopped] == ["old"]
    assert hub.calls("GET", "/users") == ["/users?limit=1000000"]


async def test_requests_carry_the_token_header_and_json_body(fake, logs):
    hub = fake(
        {
            "GET /users": [(200, page([{**user("n"), "servers": {"gpu": user("n")["servers"][""]}}]))],
            "DELETE /users/n/servers/gpu": [(204, b"")],
        }
    )
    await cull(hub.url, TOKEN, 600, remove_named_servers=True)
    _, _, _, headers, body = next(r for r in hub.requests if r[1] == "DELETE")
    assert headers["authorization"] == f"token {TOKEN}"
    assert headers["content-type"] == "application/json" and body == b'{"remove": true}'
    listing = next(r for r in hub.requests if r[2].startswith("/users"))
    assert listing[3]["accept"] == "application/jupyterhub-pagination+json"


async def test_a_user_listed_on_two_pages_is_stopped_once(fake, logs):
    """Offset pages shift when users come and go; a user seen twice is culled once."""
    hub = fake(
        {
            "GET /users?state=ready&limit": [(200, page([user("a"), user("b")], next_offset=2))],
            "GET /users?state=ready&offset=2": [(200, page([user("b"), user("c")]))],
            "DELETE": [(204, b"")],
        }
    )
    report = await cull(hub.url, TOKEN, 600)
    assert report.complete
    assert sorted(hub.calls("DELETE")) == ["/users/a/server", "/users/b/server", "/users/c/server"]
