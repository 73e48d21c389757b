"""What the sensor records, and the endpoint that tells it."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from traitlets import Float, List, Unicode, default
from traitlets.config import Configurable

from .notice import ENDPOINT as NOTICE_ENDPOINT
from .notice import CullerLink, NoticeHandler
from .polls import IDLE_POLLS, Poll, PollMatcher

ENDPOINT = "api/cull-idle/work"


class CullIdleSensor(Configurable):
    """Options of the sensor (``c.CullIdleSensor.…`` in jupyter_server_config.py)."""

    extra_idle_polls = List(
        Unicode(),
        default_value=[],
        help=(
            "More requests that are idle polls, not work, as 'METHOD path-regex' (the path after "
            "the server's base URL), for extensions that poll: for example 'POST git/.*/status'."
        ),
    ).tag(config=True)

    culler_url = Unicode(
        help=(
            "The culler's service address as this server reaches it, for the notice in JupyterLab: "
            "'http://127.0.0.1:10101/services/idle-culler/'. Default: $CULL_IDLE_URL; empty "
            "turns the notice off."
        ),
    ).tag(config=True)

    notice_interval = Float(
        help=(
            "Seconds between the sensor's questions to the culler, whatever the number of open "
            "tabs; each costs the Hub one token check. Default: $CULL_IDLE_NOTICE_INTERVAL or 300."
        ),
    ).tag(config=True)

    @default("culler_url")
    def _culler_url(self) -> str:
        return os.environ.get("CULL_IDLE_URL", "")

    @default("notice_interval")
    def _notice_interval(self) -> float:
        try:
            return max(1.0, float(os.environ.get("CULL_IDLE_NOTICE_INTERVAL") or 300))
        except ValueError:
            return 300.0


def _parse_extra(entries: list[str]) -> list[Poll]:
    polls = []
    for entry in entries:
        method, _, pattern = entry.strip().partition(" ")
        if not pattern:
            raise ValueError(f"CullIdleSensor.extra_idle_polls: expected 'METHOD path-regex', not {entry!r}")
        polls.append(Poll(method.upper(), pattern.strip(), "CullIdleSensor.extra_idle_polls"))
    return polls


def _stamp(seconds: Optional[float]) -> Optional[str]:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds(value: Any) -> Optional[float]:
    return value.timestamp() if isinstance(value, datetime) else None


class WorkSensor:
    """The time of the last request that was work, and the account the culler reads."""

    def __init__(self, serverapp: Any, matcher: PollMatcher, version: str) -> None:
        self.serverapp = serverapp
        self.matcher = matcher
        self.version = version
        self.base_url: str = serverapp.base_url
        self.last_request: Optional[float] = None

    def saw(self, handler: Any) -> None:
        """Called for every request the server answered."""
        request = handler.request
        # Only a signed-in person or program: not a scanner, not the Hub's readiness check.
        if getattr(handler, "_current_user", None) is None:
            return
        # The culler's own probes ask not to be counted; so does anything else that asks.
        if "no_track_activity" in request.query_arguments:
            return
        path = request.path
        if path.startswith(self.base_url):
            path = path[len(self.base_url) :]
        if self.matcher.is_idle_poll(request.method or "GET", path.lstrip("/")):
            return
        self.last_request = time.time()

    def saw_app_input(self) -> None:
        """A message from the browser to an app behind jupyter-server-proxy (its websocket)."""
        self.last_request = time.time()

    def account(self) -> dict[str, Any]:
        kernels = self._kernels()
        terminals = self._terminals()
        stamps = [s for s in [self.last_request, *(k[0] for k in kernels), *terminals] if s is not None]
        return {
            "sensor": "cull-idle-sensor",
            "version": self.version,
            "last_activity": _stamp(max(stamps) if stamps else None),
            "last_request": _stamp(self.last_request),
            "kernels": len(kernels),
            "busy_kernels": sum(1 for _, state, _ in kernels if state == "busy"),
            "connections": sum(c for _, _, c in kernels),
            "terminals": len(terminals),
        }

    def _kernels(self) -> list[tuple[Optional[float], Optional[str], int]]:
        manager = getattr(self.serverapp, "kernel_manager", None)
        if manager is None:
            return []
        found = []
        for kernel_id in list(manager.list_kernel_ids()):
            try:
                kernel = manager.get_kernel(kernel_id)
                model = manager.kernel_model(kernel_id)
            except (KeyError, web.HTTPError):
                continue  # shut down meanwhile
            found.append(
                (
                    _seconds(getattr(kernel, "last_activity", None)),
                    getattr(kernel, "execution_state", None),
                    int(model.get("connections", 0) or 0),
                )
            )
        return found

    def _terminals(self) -> list[Optional[float]]:
        manager = self.serverapp.web_app.settings.get("terminal_manager")
        terminals = getattr(manager, "terminals", None) or {}
        return [_seconds(getattr(t, "last_activity", None)) for t in list(terminals.values())]


class WorkHandler(APIHandler):
    """``GET api/cull-idle/work``: the sensor's account, itself never counted as activity."""

    _track_activity = False
    auth_resource = "api"

    @property
    def sensor(self) -> WorkSensor:
        sensor: WorkSensor = self.settings["cull_idle_sensor"]
        return sensor

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(self.sensor.account()))


def _watch_requests(web_app: Any, sensor: WorkSensor) -> None:
    """See every request as tornado logs it. The application's own ``log_request`` is wrapped,
    not ``settings["log_function"]``, which JupyterHub's single-user extension replaces after
    extensions load."""
    logged: Callable[[Any], None] = web_app.log_request

    def log_request(handler: Any) -> None:
        try:
            sensor.saw(handler)
        finally:
            logged(handler)

    web_app.log_request = log_request


def _watch_proxied_apps(sensor: WorkSensor) -> None:
    """Apps behind jupyter-server-proxy (RStudio, code-server) have no kernels: their users'
    typing reaches them as websocket messages, which the request log does not see."""
    try:
        from jupyter_server_proxy.handlers import ProxyHandler  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return
    original = ProxyHandler.on_message
    if getattr(original, "_cull_idle_sensor", False):
        return

    def on_message(self: Any, message: Any) -> Any:
        sensor_now: Optional[WorkSensor] = self.settings.get("cull_idle_sensor")
        if sensor_now is not None:
            sensor_now.saw_app_input()
        return original(self, message)

    on_message._cull_idle_sensor = True  # type: ignore[attr-defined]
    ProxyHandler.on_message = on_message


def load(serverapp: Any, version: str) -> None:
    config = CullIdleSensor(parent=serverapp)
    matcher = PollMatcher([*IDLE_POLLS, *_parse_extra(list(config.extra_idle_polls))])
    sensor = WorkSensor(serverapp, matcher, version)
    web_app = serverapp.web_app
    web_app.settings["cull_idle_sensor"] = sensor
    _watch_requests(web_app, sensor)
    _watch_proxied_apps(sensor)
    link = CullerLink.from_environment(config.culler_url, config.notice_interval, serverapp.log)
    web_app.settings["cull_idle_notice"] = link
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(serverapp.base_url, ENDPOINT), WorkHandler),
            (url_path_join(serverapp.base_url, NOTICE_ENDPOINT), NoticeHandler),
        ],
    )
    notice = f", the notice from {link.url}" if link.configured else ""
    serverapp.log.info("cull-idle-sensor %s: serving %s%s%s", version, serverapp.base_url, ENDPOINT, notice)
