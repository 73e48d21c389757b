"""What the sensor records, and the endpoint that tells it."""

from __future__ import annotations

import importlib
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
#: Where an open tab reports that a person used it (the sensor's JupyterLab extension).
INPUT_ENDPOINT = "api/cull-idle/input"
#: The header the extension puts on every request its tab makes to this server.
TAB_HEADER = "X-Cull-Idle-Tab"
_WRITES = frozenset({"PUT", "POST", "PATCH", "DELETE"})


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


def _writes_contents(method: str, path: str) -> bool:
    """A file saved, uploaded, renamed or deleted: the person's own data, whoever sends it."""
    return method in _WRITES and (path == "api/contents" or path.startswith("api/contents/"))


class WorkSensor:
    """The times of the last work seen, and the account the culler reads.

    Three kinds of evidence: a request that is not an idle poll (from a program, or from a tab
    without the extension), a person's input that an open tab reports, and a document edited
    over jupyter-collaboration's websocket."""

    def __init__(self, serverapp: Any, matcher: PollMatcher, version: str) -> None:
        self.serverapp = serverapp
        self.matcher = matcher
        self.version = version
        self.base_url: str = serverapp.base_url
        self.last_request: Optional[float] = None
        self.last_input: Optional[float] = None
        self.last_edit: Optional[float] = None

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
        path = path.lstrip("/")
        method = (request.method or "GET").upper()
        # A tab that reports its person's input is judged by that input: whatever it sends by
        # itself (any extension's polls, known or not) is not evidence of anyone, except a
        # file written, which is the person's data even when a timer sends it.
        if request.headers.get(TAB_HEADER) and not _writes_contents(method, path):
            return
        if self.matcher.is_idle_poll(method, path):
            return
        self.last_request = time.time()

    def saw_app_input(self) -> None:
        """A message from the browser to an app behind jupyter-server-proxy (its websocket)."""
        self.last_request = time.time()

    def saw_input(self) -> None:
        """A tab reported that a person used it: keys, pointer, wheel, touch, or coming back
        to it."""
        self.last_input = time.time()

    def saw_edit(self) -> None:
        """A client sent a document update over jupyter-collaboration's websocket."""
        self.last_edit = time.time()

    def account(self) -> dict[str, Any]:
        kernels = self._kernels()
        terminals = self._terminals()
        own = [self.last_request, self.last_input, self.last_edit]
        stamps = [s for s in [*own, *(k[0] for k in kernels), *terminals] if s is not None]
        return {
            "sensor": "cull-idle-sensor",
            "version": self.version,
            "last_activity": _stamp(max(stamps) if stamps else None),
            "last_request": _stamp(self.last_request),
            "last_input": _stamp(self.last_input),
            "last_edit": _stamp(self.last_edit),
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


class InputHandler(APIHandler):
    """``POST api/cull-idle/input``: a person used an open tab of this server. Work for the
    culler, and never jupyter_server activity: the Hub's own count stays what it was."""

    _track_activity = False
    auth_resource = "api"

    @web.authenticated
    @authorized
    def post(self) -> None:
        sensor: WorkSensor = self.settings["cull_idle_sensor"]
        sensor.saw_input()
        self.set_status(204)
        self.finish()


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
    _watch_messages(ProxyHandler, lambda sensor_now, _: sensor_now.saw_app_input())


def _watch_messages(handler_class: Any, saw: Callable[[WorkSensor, Any], None]) -> None:
    """Show the sensor every message a websocket handler class receives from the browser, once
    however often the extension loads. The sensor is looked up per message: the class is shared
    by every application in the process."""
    original = handler_class.on_message
    if getattr(original, "_cull_idle_sensor", False):
        return

    def on_message(self: Any, message: Any) -> Any:
        sensor_now: Optional[WorkSensor] = self.settings.get("cull_idle_sensor")
        if sensor_now is not None:
            saw(sensor_now, message)
        return original(self, message)

    on_message._cull_idle_sensor = True  # type: ignore[attr-defined]
    handler_class.on_message = on_message


def _is_document_update(message: Any) -> bool:
    """A y-protocols sync message (0) that is an update (2), or jupyter-collaboration's own
    request (2, such as "save"). Awareness (1: cursors, and a heartbeat every 15 s) and the sync
    handshake on every (re)connection (sync steps 0 and 1) are not edits."""
    if not isinstance(message, (bytes, bytearray, memoryview)) or len(message) < 1:
        return False
    data = bytes(message[:2])
    return (data[0] == 0 and len(data) > 1 and data[1] == 2) or data[0] == 2


def _watch_collaboration() -> None:
    """With jupyter-collaboration, typing travels over the document's websocket and the server
    saves the file itself: no request tells of it."""
    handler_class: Any = None
    # jupyter-collaboration 3 and later serve it from jupyter_server_ydoc; 1 and 2 from itself.
    for name in ("jupyter_server_ydoc.handlers", "jupyter_collaboration.handlers"):
        # Any failure, not only ImportError: another extension's import must not stop this server.
        try:
            handler_class = importlib.import_module(name).YDocWebSocketHandler
            break
        except Exception:
            continue
    if handler_class is None:
        return

    def saw(sensor_now: WorkSensor, message: Any) -> None:
        if _is_document_update(message):
            sensor_now.saw_edit()

    _watch_messages(handler_class, saw)


def load(serverapp: Any, version: str) -> None:
    config = CullIdleSensor(parent=serverapp)
    matcher = PollMatcher([*IDLE_POLLS, *_parse_extra(list(config.extra_idle_polls))])
    sensor = WorkSensor(serverapp, matcher, version)
    web_app = serverapp.web_app
    web_app.settings["cull_idle_sensor"] = sensor
    _watch_requests(web_app, sensor)
    _watch_proxied_apps(sensor)
    _watch_collaboration()
    link = CullerLink.from_environment(config.culler_url, config.notice_interval, serverapp.log)
    web_app.settings["cull_idle_notice"] = link
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(serverapp.base_url, ENDPOINT), WorkHandler),
            (url_path_join(serverapp.base_url, INPUT_ENDPOINT), InputHandler),
            (url_path_join(serverapp.base_url, NOTICE_ENDPOINT), NoticeHandler),
        ],
    )
    notice = f", the notice from {link.url}" if link.configured else ""
    serverapp.log.info("cull-idle-sensor %s: serving %s%s%s", version, serverapp.base_url, ENDPOINT, notice)
