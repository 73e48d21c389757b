"""A real Hub, behind the real proxy, running the culler as a managed service with a url, so
that its page is reached as users reach it: through the proxy, after the Hub's login and OAuth."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import quote

import requests

import secret_guard
from hubharness.launcher import TestHub, free_port, proxy_env, real_servers_env

SERVICE = "culler-managed"
TIMEOUT = 3600  # --timeout of the culler under test
MAX_KEEP_ALIVE = 7200
AUTH_CACHE = 2  # --page-auth-cache: short, so that revoked tokens are refused within the tests

#: The recipe docs/page.md gives, applied as an operator applies it.
RECIPE = Path(__file__).resolve().parents[1] / "deploy" / "jupyterhub" / "page.py"


def start(
    tmp: Path, *extra_args: str, extra_scopes: tuple[str, ...] = (), lab_env: Optional[dict[str, str]] = None
) -> TestHub:
    """``lab_env``: real JupyterLab servers with cull-idle-sensor, and this in the Hub's
    environment (see ``real_servers_env``)."""
    port = free_port()
    defaults = [
        f"--timeout={TIMEOUT}",
        "--cull-every=1",
        f"--max-keep-alive={MAX_KEEP_ALIVE}",
        "--admin-groups=staff",
        f"--page-auth-cache={AUTH_CACHE}",
        f"--state-file={tmp / 'state.sqlite'}",
        "--log-level=debug",
    ]
    # A setting given is not also given its default: the command line reads as it runs.
    given = {arg.split("=", 1)[0] for arg in extra_args}
    command = [
        sys.executable,
        "-m",
        "cull_idle",
        *(arg for arg in defaults if arg.split("=", 1)[0] not in given),
        *extra_args,
    ]
    hub = TestHub(
        extra_env={
            **proxy_env(),
            "TEST_MANAGED_CULLER": "\x1f".join(command),
            "TEST_MANAGED_URL": f"http://127.0.0.1:{port}",
            "TEST_EXTRA_CONFIG": str(RECIPE),
            "TEST_MANAGED_EXTRA_SCOPES": " ".join(extra_scopes),
            **({} if lab_env is None else real_servers_env(TEST_LAB="1", **lab_env)),
        }
    ).start()
    secret_guard.OUTPUTS.append(lambda: hub.log_path.read_text() if hub.log_path.exists() else "")
    try:
        eventually(lambda: requests.get(page_url(hub, "health"), timeout=5).ok, "the culler to listen")
    except AssertionError:
        # The culler refused to run, and said why in the Hub's log (gone once the Hub stops).
        said = [line for line in hub.log_path.read_text().splitlines() if "cull-idle: error" in line]
        hub.stop()
        raise AssertionError(f"the culler did not start: {said}") from None
    return hub


def culler_command(hub: TestHub) -> list[str]:
    """The culler's command line, as the Hub runs it."""
    return hub.env["TEST_MANAGED_CULLER"].split("\x1f")


def server_token(hub: TestHub, user: str, server: str = "") -> str:
    """The $JUPYTERHUB_API_TOKEN the Hub gave a running server (registered as a secret)."""
    r = hub.api("GET", "/testing", params={"server_token": f"{user}/{server}"})
    r.raise_for_status()
    token = r.json()["token"]
    assert token, f"no token recorded for {user}/{server}"
    return secret_guard.secret(token)


def page_url(hub: TestHub, path: str = "") -> str:
    return f"{hub.public_url}/services/{SERVICE}/{path}"


def hub_login(hub: TestHub, name: str) -> requests.Session:
    """A browser-like session logged in to the Hub with its real login form."""
    session = requests.Session()
    form = session.get(f"{hub.public_url}/hub/login", timeout=30)
    form.raise_for_status()
    data = {"username": name, "password": "any"}
    match = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
    if match:
        data["_xsrf"] = match.group(1)
    r = session.post(
        f"{hub.public_url}/hub/login?next={quote('/hub/home')}", data=data, timeout=30, allow_redirects=False
    )
    assert r.status_code == 302, (r.status_code, r.text[:300])
    return session


def page_login(hub: TestHub, name: str) -> requests.Session:
    """Logged in to the Hub, then to the page through the Hub's OAuth."""
    session = hub_login(hub, name)
    r = session.get(page_url(hub), timeout=30)
    assert r.status_code == 200, (r.status_code, r.url, r.text[:500])
    assert r.url == page_url(hub), r.url
    # The session cookie holds the user's token (encrypted): it must never be printed either.
    secret_guard.secret(session.cookies.get("cull-idle-session", path=f"/services/{SERVICE}/"))
    return session


def csrf_of(html: str) -> str:
    match = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert match, "no CSRF token in the page's form"
    return match.group(1)


def user_token(hub: TestHub, name: str, scopes: Optional[list[str]] = None, **extra: Any) -> tuple[str, str]:
    """A Hub API token of ``name``'s (registered as a secret); ``(token, id)``."""
    body: dict[str, Any] = {"note": "page test", **extra}
    if scopes is not None:
        body["scopes"] = scopes
    r = hub.api("POST", f"/users/{quote(name, safe='')}/tokens", json=body)
    assert r.status_code == 201, r.text
    model = r.json()
    return secret_guard.secret(model["token"]), model["id"]


def with_token(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def eventually(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll until ``condition()`` is truthy (a culler pass, or the Hub, has done something)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def me(hub: TestHub, token: str) -> dict[str, Any]:
    r = requests.get(page_url(hub, "api/me"), headers=with_token(token), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


Answer = dict[str, Any]


def seen_after(hub: TestHub, token: str, moment: str, condition: Callable[[Answer], bool]) -> Answer:
    """``api/me`` once a pass that began after ``moment`` (ISO UTC) shows what ``condition`` wants."""

    def check() -> Optional[dict[str, Any]]:
        answer = me(hub, token)
        if answer["as_of"] and answer["as_of"] > moment and condition(answer):
            return answer
        return None

    return eventually(check, "a pass to show it on the page")


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
