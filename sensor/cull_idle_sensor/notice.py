"""What the culler plans for this server, for the notice in JupyterLab.

The browser asks only its own server (``api/cull-idle/notice``), so the notice needs nothing
more in a Hub with ``subdomain_host`` than without. The sensor asks the culler's API with the
server's own token (``$JUPYTERHUB_API_TOKEN``, which the page recipe lets reach the culler),
at most once per ``CullIdleSensor.notice_interval`` however many tabs are open, and every
tab shares that answer. The culler checks the token with the Hub, so that interval is also the
bound on the Hub requests the notice causes: one per server per 5 minutes by default.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
from typing import Any, Optional, Union

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

ENDPOINT = "api/cull-idle/notice"

#: The durations a notice offers to keep a server running, as far as --max-keep-alive allows.
KEEP_CHOICES = (3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600)
MAX_BUTTONS = 3
#: How often an open tab asks this server, at most (it stands by while hidden).
TAB_POLL_SECONDS = 60.0


def keep_choices(max_keep_alive: float) -> list[int]:
    """The buttons' durations: whole hours up to the bound, or the bound itself if under an hour."""
    if max_keep_alive <= 0:
        return []
    choices = [c for c in KEEP_CHOICES if c <= max_keep_alive][:MAX_BUTTONS]
    return choices or [int(max_keep_alive)]


def _server_of(me: dict[str, Any], server: str) -> Optional[dict[str, Any]]:
    for entry in me.get("servers") or []:
        if isinstance(entry, dict) and entry.get("server") == server:
            return entry
    return None


def notice_from(me: dict[str, Any], server: str, asked_at: float, poll: float) -> dict[str, Any]:
    """The tab's view of the culler's ``api/me`` answer: this server's plan, and what to offer."""
    entry = _server_of(me, server) or {}
    return {
        "culler": True,
        "server": server,
        "asked_at": asked_at,
        "poll_seconds": poll,
        "as_of": me.get("as_of"),
        "verdict": entry.get("verdict"),
        "reason": entry.get("reason"),
        "stop_at": entry.get("stop_at"),
        "stop_reason": entry.get("stop_reason"),
        "warned_at": entry.get("warned_at"),
        "kept_until": entry.get("kept_until"),
        "idle_by": entry.get("idle_by"),
        "warn_before": float(me.get("warn_before") or 0),
        "page": bool(me.get("page", True)),
        "keep_seconds": keep_choices(float(me.get("max_keep_alive") or 0)),
    }


def absent(poll: float) -> dict[str, Any]:
    """No culler to ask, or none that answers: the notice shows nothing."""
    return {"culler": False, "poll_seconds": poll}


class CullerLink:
    """This server's questions to the culler, one at a time, with the last answer shared."""

    def __init__(self, url: str, token: str, server: str, interval: float, log: logging.Logger) -> None:
        self.url = url.rstrip("/") + "/" if url else ""
        self.token = token
        self.server = server
        self.interval = interval
        self.poll = min(TAB_POLL_SECONDS, interval)
        self.log = log
        self._answer: Optional[dict[str, Any]] = None
        self._asked = float("-inf")
        self._kept_since = float("-inf")  # when the shared answer was last replaced
        self._lock = asyncio.Lock()
        self._complained = False

    @classmethod
    def from_environment(cls, url: str, interval: float, log: logging.Logger) -> CullerLink:
        return cls(
            url,
            os.environ.get("JUPYTERHUB_API_TOKEN", ""),
            os.environ.get("JUPYTERHUB_SERVER_NAME", ""),
            interval,
            log,
        )

    @property
    def configured(self) -> bool:
        return bool(self.url and self.token)

    async def current(self) -> dict[str, Any]:
        """The last answer, asked again once it is ``interval`` old: tabs waiting meanwhile get
        the one answer the first of them asked for."""
        if not self.configured:
            return absent(self.poll)
        async with self._lock:
            if self._answer is None or time.monotonic() - self._asked >= self.interval:
                answer = await self._ask_me()
                # A culler restarting or busy (503) for a moment does not take a warning away:
                # the last answer stands for up to two more intervals.
                stale = time.monotonic() - self._kept_since > 3 * self.interval
                if answer["culler"] or self._answer is None or stale:
                    self._answer = answer
                    self._kept_since = time.monotonic()
                self._asked = time.monotonic()
            return self._answer

    async def _ask_me(self) -> dict[str, Any]:
        me = await self._call("GET", "api/me")
        if me is None:
            return absent(self.poll)
        return notice_from(me, self.server, time.time(), self.poll)

    async def keep(self, seconds: float) -> tuple[int, dict[str, Any]]:
        """Ask the culler to keep this server running; the shared answer then says until when."""
        if not self.configured:
            return 404, {"error": "no culler to ask"}
        body = json.dumps({"server": self.server, "seconds": seconds})
        response = await self._fetch("POST", "api/keep-alive", body)
        if isinstance(response, str):
            self.log.warning("cull-idle-sensor: no answer from the culler to a keep-alive: %s", response)
            return 502, {"error": "the culler cannot be reached; try again"}
        answer = _json(response.body)
        if response.code != 200:
            error = answer.get("error") or f"the culler answered {response.code}"
            # The culler's refusal of the server's token is not the person's: a 401 or 403
            # here would read as their own session failing.
            return (response.code if response.code in (400, 404) else 502), {"error": str(error)}
        async with self._lock:
            if self._answer is not None and self._answer.get("culler"):
                kept = {"kept_until": answer.get("until"), "verdict": "keep", "reason": "kept-alive"}
                self._answer = {**self._answer, **kept}
        return 200, answer

    async def _fetch(self, method: str, path: str, body: Optional[str] = None) -> Union[HTTPResponse, str]:
        """The culler's answer, or why there is none (the error's name)."""
        request = HTTPRequest(
            self.url + path,
            method=method,
            body=body,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            request_timeout=10,
            follow_redirects=False,
        )
        try:
            return await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError, asyncio.TimeoutError) as e:
            return type(e).__name__

    async def _call(self, method: str, path: str) -> Optional[dict[str, Any]]:
        response = await self._fetch(method, path)
        if isinstance(response, str):
            # No culler here (or not yet): the notice shows nothing, and the log stays quiet.
            self.log.debug("cull-idle-sensor: the culler does not answer: %s", response)
            return None
        if response.code == 200:
            return _json(response.body)
        if response.code in (401, 403) and not self._complained:
            # Once: a setup that cannot work, not a passing fault.
            self._complained = True
            self.log.warning(
                "cull-idle-sensor: the culler refuses this server's token (%s); give servers its "
                "access scope (c.Spawner.server_token_scopes, docs/page.md)",
                response.code,
            )
        else:
            self.log.debug("cull-idle-sensor: the culler answered %s", response.code)
        return None


def _json(body: Optional[bytes]) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class NoticeHandler(APIHandler):
    """``GET api/cull-idle/notice``: the culler's plan for this server, shared between tabs;
    ``POST`` with ``{"seconds": N}``: keep it running. Neither is activity, for jupyter_server
    (``_track_activity``) or for the sensor (its idle polls)."""

    _track_activity = False
    auth_resource = "api"

    @property
    def link(self) -> CullerLink:
        link: CullerLink = self.settings["cull_idle_notice"]
        return link

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(await self.link.current()))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        seconds = _json(self.request.body).get("seconds")
        # Python reads NaN and Infinity in JSON, which the culler (and JSON itself) does not.
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not math.isfinite(seconds)
            or seconds <= 0
        ):
            raise web.HTTPError(400, "give seconds, a positive number")
        code, answer = await self.link.keep(float(seconds))
        self.set_status(code)
        self.finish(json.dumps(answer))
