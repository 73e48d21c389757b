"""Pieces loaded *inside* the test JupyterHub process.

- ``NoProcessSpawner``: servers that are a route to one shared in-process HTTP responder, so
  hundreds of them cost nothing. User/server names choose behaviour: ``pending*`` never finish
  spawning, ``slow*`` take ``TEST_SLOW_STOP`` seconds to stop (longer than the Hub's
  ``slow_stop_timeout``, so the Hub answers 202), ``sleep*`` take ``TEST_SLEEP_STOP`` seconds.
- ``InMemoryProxy``: a proxy that only remembers routes (no configurable-http-proxy process).
- ``TestingHandler``: test-only API that writes activity times straight into the Hub's ORM,
  makes the Hub read the proxy's activity now, reports how many stops ran at once, and gives
  a running server's own API token (``?server_token=user/server``).
  Guarded by the test admin token.
"""

import asyncio
import json
import os
from datetime import datetime, timedelta, timezone

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.proxy import Proxy
from jupyterhub.spawner import Spawner
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from traitlets import Bool

_responder_port = None
STOPS = {"running": 0, "max": 0, "total": 0}
#: Each running server's $JUPYTERHUB_API_TOKEN, by "user/server", for tests of what it may do.
SERVER_TOKENS: dict = {}


class _Ok(web.RequestHandler):
    def get(self, *args):
        self.write({"ok": True})

    post = put = head = get


def _responder() -> int:
    global _responder_port
    if _responder_port is None:
        sockets = bind_sockets(0, "127.0.0.1")
        HTTPServer(web.Application([(r".*", _Ok)])).add_sockets(sockets)
        _responder_port = sockets[0].getsockname()[1]
    return _responder_port


def _behaviour(spawner, prefix):
    return spawner.user.name.startswith(prefix) or spawner.name.startswith(prefix)


class NoProcessSpawner(Spawner):
    running = False

    async def start(self):
        port = _responder()
        if _behaviour(self, "pending"):
            await asyncio.sleep(3600)
        self.running = True
        SERVER_TOKENS[f"{self.user.name}/{self.name}"] = self.api_token
        return f"http://127.0.0.1:{port}"

    async def stop(self, now=False):
        STOPS["running"] += 1
        STOPS["total"] += 1
        STOPS["max"] = max(STOPS["max"], STOPS["running"])
        try:
            if _behaviour(self, "slow"):
                await asyncio.sleep(float(os.environ.get("TEST_SLOW_STOP", "4")))
            elif _behaviour(self, "sleep"):
                await asyncio.sleep(float(os.environ.get("TEST_SLEEP_STOP", "1")))
        finally:
            STOPS["running"] -= 1
        self.running = False

    async def poll(self):
        return None if self.running else 0


class InMemoryProxy(Proxy):
    should_start = Bool(False)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.routes = {}

    async def add_route(self, routespec, target, data):
        self.routes[routespec] = {"routespec": routespec, "target": target, "data": data}

    async def delete_route(self, routespec):
        self.routes.pop(routespec, None)

    async def get_all_routes(self):
        return dict(self.routes)


def _ago(seconds):
    if seconds is None:
        return None
    return datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=seconds)


class TestingHandler(APIHandler):
    def check_xsrf_cookie(self):
        pass

    def _check(self):
        if self.request.headers.get("Authorization") != "token " + os.environ["TEST_ADMIN_TOKEN"]:
            raise web.HTTPError(403)

    def get(self):
        self._check()
        server = self.get_argument("server_token", None)
        if server is not None:
            self.write(json.dumps({"token": SERVER_TOKENS.get(server)}))
            return
        self.write(json.dumps(STOPS))

    def delete(self):
        self._check()
        STOPS.update(max=0, total=0)
        self.set_status(204)

    async def post(self):
        """Body: ``{"items": [{"user", "server"?, "last_activity_ago"?, "started_ago"?,
        "user_last_activity_ago"?, "user_created_ago"?}], "poll_proxy"?: true}``; ``null`` values
        clear the time. ``poll_proxy`` first copies the proxy's route activity into the Hub, as
        the Hub does every ``last_activity_interval``."""
        self._check()
        body = json.loads(self.request.body)
        if body.get("poll_proxy"):
            from jupyterhub.app import JupyterHub

            await JupyterHub.instance().update_last_activity()
        for item in body.get("items", []):
            user = self.find_user(item["user"])
            if user is None:
                raise web.HTTPError(404, "no user " + item["user"])
            if "user_last_activity_ago" in item:
                user.orm_user.last_activity = _ago(item["user_last_activity_ago"])
            if "user_created_ago" in item:
                user.orm_user.created = _ago(item["user_created_ago"])
            if "server" in item:
                orm_spawner = user.orm_spawners[item["server"]]
                if "last_activity_ago" in item:
                    orm_spawner.last_activity = _ago(item["last_activity_ago"])
                if "started_ago" in item:
                    orm_spawner.started = _ago(item["started_ago"])
        self.db.commit()
        self.set_status(204)
