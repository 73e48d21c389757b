"""The page and its API on a real Hub: the Hub's login and OAuth, who may see and keep what,
keep-alives in the passes, and what a page view costs the Hub."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from pagehub import (
    AUTH_CACHE,
    MAX_KEEP_ALIVE,
    RECIPE,
    SERVICE,
    TIMEOUT,
    csrf_of,
    eventually,
    hub_login,
    me,
    page_login,
    page_url,
    seen_after,
    server_token,
    user_token,
    utc_now,
    with_token,
)

from helpers import sample
from hubharness.launcher import free_port

pytestmark = pytest.mark.timeout(180)


def fresh(prefix: str) -> str:
    """A user name no other test uses: keep-alives of deleted users are only forgotten later."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def auth_checks(hub) -> float:
    text = requests.get(page_url(hub, "metrics"), timeout=30).text
    return sample(text, "cull_idle_page_auth_checks_total") or 0.0


def with_server(hub, name: str, idle: float, server: str = "") -> None:
    hub.create_users([name])
    hub.start_server(name, server)
    hub.set_times([{"user": name, "server": server, "last_activity_ago": idle, "started_ago": idle}])


def test_without_login_html_goes_to_the_hub_and_json_gets_401(page_hub):
    r = requests.get(page_url(page_hub), allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303)
    target = r.headers["Location"]
    assert "/hub/api/oauth2/authorize?" in target and "state=" in target and "client_id=service-" in target
    assert "cull-idle-oauth-state" in r.headers.get("Set-Cookie", "")
    r = requests.get(page_url(page_hub, "api/me"), timeout=30)
    assert r.status_code == 401 and "error" in r.json()
    r = requests.post(page_url(page_hub, "api/keep-alive"), json={"server": "", "seconds": 60}, timeout=30)
    assert r.status_code == 401
    # Metrics and health stay open, as before.
    assert requests.get(page_url(page_hub, "metrics"), timeout=30).status_code == 200
    assert requests.get(page_url(page_hub, "health"), timeout=30).status_code == 200


def test_a_user_logged_in_through_the_hub_sees_only_their_own_servers(page_hub):
    alice, bob = fresh("alice"), fresh("bob")
    with_server(page_hub, alice, 3000)
    with_server(page_hub, bob, 3000)
    session = page_login(page_hub, alice)
    moment = utc_now()
    token, _ = user_token(page_hub, alice)
    seen_after(page_hub, token, moment, lambda a: len(a["servers"]) == 1)
    html = session.get(page_url(page_hub), timeout=30).text
    assert alice in html and bob not in html
    assert "Will be stopped" in html and ("in 10 minutes" in html or "in 9 minutes" in html)
    answer = session.get(page_url(page_hub, "api/me"), timeout=30).json()
    assert answer["user"] == alice and [s["user"] for s in answer["servers"]] == [alice]
    server = answer["servers"][0]
    assert server["verdict"] == "keep" and server["reason"] == "active"
    assert server["stop_reason"] == "idle" and server["stop_at"].endswith("Z")
    assert 2900 < server["inactive_seconds"] < 3100 and server["limit_seconds"] == TIMEOUT
    # Not an operator: no admin view.
    assert session.get(page_url(page_hub, "admin"), timeout=30).status_code == 403
    assert session.get(page_url(page_hub, "api/admin"), timeout=30).status_code == 403


def test_the_oauth_state_is_checked(page_hub):
    name = fresh("mallory")
    page_hub.create_users([name])
    session = hub_login(page_hub, name)
    start_login = session.get(page_url(page_hub), allow_redirects=False, timeout=30)
    authorize = start_login.headers["Location"]
    if authorize.startswith("/"):
        authorize = page_hub.public_url + authorize
    to_callback = session.get(authorize, allow_redirects=False, timeout=30)
    callback = to_callback.headers["Location"]
    assert "oauth_callback?" in callback and "code=" in callback
    if callback.startswith("/"):
        callback = page_hub.public_url + callback
    forged = callback.replace("state=", "state=forged")
    r = session.get(forged, allow_redirects=False, timeout=30)
    assert r.status_code == 400
    # And without the browser's state cookie, the real state does not work either.
    r = requests.get(callback, allow_redirects=False, timeout=30)
    assert r.status_code == 400
    assert session.get(page_url(page_hub, "api/me"), timeout=30).status_code == 401


def test_keep_alive_from_the_page_needs_its_csrf_token_and_origin(page_hub):
    name = fresh("carla")
    with_server(page_hub, name, 3000)
    session = page_login(page_hub, name)
    token, _ = user_token(page_hub, name)
    seen_after(page_hub, token, utc_now(), lambda a: len(a["servers"]) == 1)
    html = session.get(page_url(page_hub), timeout=30).text
    csrf = csrf_of(html)
    form = {"server": "", "seconds": "3600", "action": "keep"}
    # A cross-site form post carries the cookie but not the token, or comes from elsewhere.
    for data, headers in [
        (form, {}),
        ({**form, "_csrf": "wrong"}, {}),
        ({**form, "_csrf": csrf}, {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}),
        ({**form, "_csrf": csrf}, {"Origin": "https://evil.example"}),
    ]:
        r = session.post(page_url(page_hub, "keep-alive"), data=data, headers=headers, timeout=30)
        assert r.status_code == 403, (data, headers, r.status_code)
    r = session.post(page_url(page_hub, "api/keep-alive"), json={"server": "", "seconds": 60}, timeout=30)
    assert r.status_code == 403, "a script with only the cookie needs the page's X-CSRF-Token"
    assert me(page_hub, token)["servers"][0]["kept_until"] is None
    # The page's own form works.
    r = session.post(page_url(page_hub, "keep-alive"), data={**form, "_csrf": csrf}, timeout=30)
    assert r.status_code == 200 and "kept alive" in r.text
    moment = utc_now()
    # Still active by the Hub's count, so that is the reason; the keep-alive is shown beside it.
    server = seen_after(page_hub, token, moment, lambda a: a["servers"][0]["kept_until"] is not None)[
        "servers"
    ][0]
    assert server["reason"] == "active"
    assert "Kept alive" in session.get(page_url(page_hub), timeout=30).text
    # A hand-made form asking for far more than --max-keep-alive gets the bound.
    r = session.post(
        page_url(page_hub, "keep-alive"), data={**form, "seconds": "1e12", "_csrf": csrf}, timeout=30
    )
    assert r.status_code == 200 and "for as long as the culler allows" in r.text
    until = seen_after(page_hub, token, utc_now(), lambda a: a["servers"][0]["kept_until"] is not None)
    kept_until = time.mktime(time.strptime(until["servers"][0]["kept_until"], "%Y-%m-%dT%H:%M:%SZ"))
    assert kept_until - time.mktime(time.gmtime()) <= MAX_KEEP_ALIVE + 5
    # Cancelled from the page.
    r = session.post(
        page_url(page_hub, "keep-alive"), data={"server": "", "action": "cancel", "_csrf": csrf}, timeout=30
    )
    assert r.status_code == 200 and "no longer kept alive" in r.text
    seen_after(page_hub, token, utc_now(), lambda a: a["servers"][0]["kept_until"] is None)


def test_the_api_with_a_users_own_token_is_bounded_and_reaches_only_their_servers(page_hub):
    dora, eve = fresh("dora"), fresh("eve")
    with_server(page_hub, dora, 3000, server="lab")
    with_server(page_hub, eve, 3000)
    dora_token, _ = user_token(page_hub, dora, scopes=[f"access:services!service={'culler-managed'}"])
    eve_token, _ = user_token(page_hub, eve)
    seen_after(page_hub, dora_token, utc_now(), lambda a: len(a["servers"]) == 1)
    url = page_url(page_hub, "api/keep-alive")
    # Past --max-keep-alive: granted up to the bound, and the answer says so.
    r = requests.post(
        url, json={"server": "lab", "seconds": 10**9}, headers=with_token(dora_token), timeout=30
    )
    assert r.status_code == 200, r.text
    granted = r.json()
    assert granted["bounded"] is True and granted["seconds"] == MAX_KEEP_ALIVE
    assert granted["until"].endswith("Z") and granted["server"] == "lab"
    r = requests.post(url, json={"server": "lab", "seconds": 600}, headers=with_token(dora_token), timeout=30)
    assert r.json()["bounded"] is False and r.json()["seconds"] == 600
    bad_requests = [
        {"server": "lab", "seconds": -5},
        {"server": "lab", "seconds": 0},
        {"server": "lab"},
        "nonsense",
    ]
    for bad in bad_requests:
        r = requests.post(url, json=bad, headers=with_token(dora_token), timeout=30)
        assert r.status_code == 400, bad
    # Eve can neither keep nor cancel Dora's server: only her own are hers to name.
    r = requests.post(url, json={"server": "lab", "seconds": 600}, headers=with_token(eve_token), timeout=30)
    assert r.status_code == 404
    r = requests.delete(url, json={"server": "lab"}, headers=with_token(eve_token), timeout=30)
    assert r.status_code == 404
    assert [s["user"] for s in me(page_hub, eve_token)["servers"]] == [eve]
    moment = utc_now()
    seen_after(page_hub, dora_token, moment, lambda a: a["servers"][0]["kept_until"] is not None)
    r = requests.delete(url, json={"server": "lab"}, headers=with_token(dora_token), timeout=30)
    assert r.status_code == 200 and r.json()["cancelled"] is True
    metrics = requests.get(page_url(page_hub, "metrics"), timeout=30).text
    assert sample(metrics, "cull_idle_keep_alives_total") >= 2


def test_unknown_expired_revoked_and_scopeless_tokens_are_refused(page_hub):
    name = fresh("fay")
    with_server(page_hub, name, 100)
    url = page_url(page_hub, "api/me")
    r = requests.get(url, headers=with_token("0" * 32), timeout=30)
    assert r.status_code == 401
    # A token without access to the service.
    scoped, _ = user_token(page_hub, name, scopes=[f"read:users:activity!user={name}"])
    assert requests.get(url, headers=with_token(scoped), timeout=30).status_code == 403
    # Expired: once the Hub refuses it, so does the page.
    expiring, _ = user_token(page_hub, name, expires_in=1)
    eventually(
        lambda: (
            page_hub.session.get(
                page_hub.api_url + "/user", headers={"Authorization": f"token {expiring}"}, timeout=30
            ).status_code
            == 403
        ),
        "the Hub to expire the token",
    )
    assert requests.get(url, headers=with_token(expiring), timeout=30).status_code == 401
    # Revoked while cached: refused once the cache's lifetime is over.
    token, token_id = user_token(page_hub, name)
    assert requests.get(url, headers=with_token(token), timeout=30).status_code == 200
    assert page_hub.api("DELETE", f"/users/{name}/tokens/{token_id}").status_code == 204
    eventually(
        lambda: requests.get(url, headers=with_token(token), timeout=30).status_code == 401,
        "the revoked token to be refused",
        timeout=AUTH_CACHE + 20,
    )


def test_a_kept_server_survives_the_pass_that_culls_another_users_idle_server(page_hub):
    kept, culled = fresh("gina"), fresh("hal")
    with_server(page_hub, kept, 3000)
    with_server(page_hub, culled, 3000)
    token, _ = user_token(page_hub, kept)
    seen_after(page_hub, token, utc_now(), lambda a: len(a["servers"]) == 1)
    r = requests.post(
        page_url(page_hub, "api/keep-alive"),
        json={"server": "", "seconds": 3600},
        headers=with_token(token),
        timeout=30,
    )
    assert r.status_code == 200
    long_ago = TIMEOUT + 600
    page_hub.set_times(
        [
            {"user": u, "last_activity_ago": long_ago, "started_ago": long_ago, "server": ""}
            for u in (kept, culled)
        ]
    )
    page_hub.wait_for(lambda: not page_hub.running(culled), "the culler to stop the other idle server")
    moment = utc_now()
    server = seen_after(page_hub, token, moment, lambda a: a["servers"][0]["reason"] == "kept-alive")[
        "servers"
    ][0]
    assert page_hub.running(kept)
    assert server["inactive_seconds"] > TIMEOUT
    metrics = requests.get(page_url(page_hub, "metrics"), timeout=30).text
    assert sample(metrics, 'cull_idle_skipped_total{reason="kept-alive"}') >= 1
    assert sample(metrics, "cull_idle_keep_alives_in_force") >= 1
    log = page_hub.log_path.read_text()
    assert f"Keep-alive: server {kept} kept running until" in log
    assert f"Culling server {culled} " in log and f"Culling server {kept} " not in log


def test_operators_see_every_server_and_a_page_view_costs_the_hub_only_the_cached_check(page_hub):
    staff, student = fresh("ivy"), fresh("jon")
    with_server(page_hub, student, 3300)
    page_hub.create_users([staff])
    page_hub.create_group("staff", [staff])
    session = page_login(page_hub, staff)
    token, _ = user_token(page_hub, staff)
    seen_after(page_hub, token, utc_now(), lambda a: True)
    html = session.get(page_url(page_hub, "admin"), timeout=30).text
    assert "What the culler will do" in html and student in html
    assert "Stopped within the hour" in html and "Last passes" in html
    admin = session.get(page_url(page_hub, "api/admin"), timeout=30).json()
    assert student in [s["user"] for s in admin["servers"]]
    assert student in [s["user"] for s in admin["due_next_hour"]]
    assert 1 <= len(admin["passes"]) <= 20
    # Hub admins are operators too.
    assert page_login(page_hub, "admin-user").get(page_url(page_hub, "admin"), timeout=30).status_code == 200
    before = auth_checks(page_hub)
    began = time.monotonic()
    for _ in range(100):
        assert session.get(page_url(page_hub), timeout=30).status_code == 200
    elapsed = time.monotonic() - began
    after = auth_checks(page_hub)
    assert after - before <= elapsed / AUTH_CACHE + 1, (before, after, elapsed)


def test_a_servers_own_token_may_keep_it_alive_as_the_docs_configure(page_hub):
    """curl from a terminal in the server, with its $JUPYTERHUB_API_TOKEN, per docs/page.md."""
    name = fresh("kim")
    with_server(page_hub, name, 3000)
    token = server_token(page_hub, name)
    answer = seen_after(page_hub, token, utc_now(), lambda a: len(a["servers"]) == 1)
    assert answer["user"] == name
    r = requests.post(
        page_url(page_hub, "api/keep-alive"),
        json={"server": "", "seconds": 1800},
        headers=with_token(token),
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["bounded"] is False, r.text


def test_the_docs_show_the_recipe_the_tests_run():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "page.md").read_text()
    assert RECIPE.read_text() in docs


def test_web_bind_without_the_oauth_client_is_a_one_line_error():
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    env["JUPYTERHUB_API_TOKEN"] = "t" * 32
    done = subprocess.run(
        [sys.executable, "-m", "cull_idle", f"--web-bind=127.0.0.1:{free_port()}", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "JUPYTERHUB_CLIENT_ID" in lines[0], lines


def test_every_answer_forbids_framing_sniffing_referrers_and_caching(page_hub):
    name = fresh("olga")
    page_hub.create_users([name])
    session = page_login(page_hub, name)
    answers = {
        "page": session.get(page_url(page_hub), timeout=30),
        "json": session.get(page_url(page_hub, "api/me"), timeout=30),
        "refused json": requests.get(page_url(page_hub, "api/me"), timeout=30),
        "error page": session.get(page_url(page_hub, "admin"), timeout=30),
        "not found": requests.get(page_url(page_hub, "nowhere"), timeout=30),
    }
    for what, r in answers.items():
        h = r.headers
        assert h.get("X-Frame-Options") == "DENY", what
        csp = h.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, (what, csp)
        assert h.get("X-Content-Type-Options") == "nosniff", what
        assert h.get("Referrer-Policy") == "no-referrer", what
        assert h.get("Cache-Control") == "no-store", what
    assert answers["error page"].status_code == 403


def test_the_operators_view_needs_the_pages_login_or_a_token_that_lists_users(page_hub):
    page_hub.start_server("admin-user")
    try:
        # The admin's server token reaches the page (the recipe), but is not an operator's.
        own = server_token(page_hub, "admin-user")
        assert (
            requests.get(page_url(page_hub, "api/admin"), headers=with_token(own), timeout=30).status_code
            == 403
        )
        assert me(page_hub, own)["operator"] is False
        narrow, _ = user_token(page_hub, "admin-user", scopes=["access:services!service=culler-managed"])
        r = requests.get(page_url(page_hub, "admin"), headers=with_token(narrow), timeout=30)
        assert r.status_code == 403
        # An admin's token that may list users, or the page's own login, gets in.
        full, _ = user_token(page_hub, "admin-user")
        assert (
            requests.get(page_url(page_hub, "api/admin"), headers=with_token(full), timeout=30).status_code
            == 200
        )
        assert (
            page_login(page_hub, "admin-user").get(page_url(page_hub, "api/admin"), timeout=30).status_code
            == 200
        )
        # Refusals are told apart: no credentials is 401, a made-up token too.
        assert requests.get(page_url(page_hub, "api/admin"), timeout=30).status_code == 401
    finally:
        page_hub.api("DELETE", "/users/admin-user/server")


def test_logging_out_ends_the_session_for_every_copy_of_its_cookie(page_hub):
    name = fresh("lou")
    page_hub.create_users([name])
    session = page_login(page_hub, name)
    cookie = session.cookies.get("cull-idle-session", path=f"/services/{SERVICE}/")
    copy = {"Cookie": f"cull-idle-session={cookie}"}
    assert requests.get(page_url(page_hub, "api/me"), headers=copy, timeout=30).status_code == 200
    page = session.get(page_url(page_hub), timeout=30).text
    assert f'action="/services/{SERVICE}/logout"' in page, "logging out is a form that posts"
    # Another site can make a browser follow a link, or post without the page's CSRF token:
    # neither logs anyone out.
    assert session.get(page_url(page_hub, "logout"), timeout=30).status_code == 405
    forged = session.post(page_url(page_hub, "logout"), data={"_csrf": "guess"}, timeout=30)
    assert forged.status_code == 403, forged.status_code
    cross = session.post(
        page_url(page_hub, "logout"),
        data={"_csrf": csrf_of(page)},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        timeout=30,
    )
    assert cross.status_code == 403, cross.status_code
    assert requests.get(page_url(page_hub, "api/me"), headers=copy, timeout=30).status_code == 200
    out = session.post(page_url(page_hub, "logout"), data={"_csrf": csrf_of(page)}, timeout=30)
    assert out.status_code == 200, out.status_code
    assert requests.get(page_url(page_hub, "api/me"), headers=copy, timeout=30).status_code == 401


def test_a_login_link_works_once_and_the_hubs_error_is_not_echoed(page_hub):
    name = fresh("rey")
    page_hub.create_users([name])
    session = hub_login(page_hub, name)
    authorize = session.get(page_url(page_hub), allow_redirects=False, timeout=30).headers["Location"]
    state_cookie = session.cookies.get("cull-idle-oauth-state", path=f"/services/{SERVICE}/")
    if authorize.startswith("/"):
        authorize = page_hub.public_url + authorize
    callback = session.get(authorize, allow_redirects=False, timeout=30).headers["Location"]
    if callback.startswith("/"):
        callback = page_hub.public_url + callback
    assert session.get(callback, allow_redirects=False, timeout=30).status_code in (302, 303)
    # The same link with the same state cookie, replayed: refused by the culler itself (400),
    # before the Hub is asked about its code.
    replay = requests.get(
        callback,
        headers={"Cookie": f"cull-idle-oauth-state={state_cookie}"},
        allow_redirects=False,
        timeout=30,
    )
    assert replay.status_code == 400, replay.text
    r = requests.get(
        page_url(page_hub, "oauth_callback") + "?error=%3Cb%3Eyour-account-is-locked-call-555%3C/b%3E",
        timeout=30,
    )
    assert r.status_code == 403 and "555" not in r.text and "locked" not in r.text
