"""Running as a service: signals, the Hub's process, the scope check, the web server, and
the passes until told to stop."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
from urllib.parse import urlparse

from ._defaults import DEFAULT_API_URL
from ._options import UsageError, api_options, pass_options

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from typing import Any, Optional

    from . import _core

log = logging.getLogger("cull_idle")
#: The process that started this one (for a managed service, the Hub), read at start-up.
STARTED_BY = os.getppid()

#: Where SIGINT/SIGTERM go once the event loop runs: (loop, stop event).
_stop_target: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []


def _on_signal(signum: int, frame: Any) -> None:
    if _stop_target:
        loop, stop = _stop_target[-1]
        loop.call_soon_threadsafe(stop.set)
    else:
        raise KeyboardInterrupt


def install_signal_handlers() -> None:
    """SIGINT (what a Hub sends first) and SIGTERM end the culler quietly with status 0.

    Plain ``signal.signal`` handlers for the life of the process: no window between start-up
    and the event loop where a signal could be lost (asyncio's own SIGINT handling has one).
    """
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _on_signal)


async def serve(settings: dict[str, Any], hub: _core.Connection, scopes: _core.Task) -> int:
    """Run until SIGINT or SIGTERM (exit 0), or one pass with --once. ``scopes`` is the scope
    check, already under way."""
    import asyncio

    stop = asyncio.Event()
    _stop_target.append((asyncio.get_running_loop(), stop))
    watcher = None
    if os.environ.get("JUPYTERHUB_SERVICE_NAME") and STARTED_BY != 1:
        watcher = asyncio.ensure_future(watch_hub_process(STARTED_BY, stop))
    try:
        return await _serve(settings, hub, scopes, stop)
    finally:
        _stop_target.pop()
        if watcher is not None:
            watcher.cancel()


async def watch_hub_process(hub_pid: int, stop: asyncio.Event, every: float = 1.0) -> None:
    """Stop when the Hub that started this managed service is gone.

    A Hub that dies without stopping its services leaves them running (they are in their own
    session), and a restarted Hub starts a second culler; the orphan notices its new parent.
    """
    import asyncio

    while not stop.is_set():
        if os.getppid() != hub_pid:
            log.warning("The Hub that started this culler (pid %s) is gone; exiting", hub_pid)
            stop.set()
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def check_scopes(
    hub: _core.Connection, settings: dict[str, Any], stop: asyncio.Event, started: Optional[_core.Task] = None
) -> bool:
    """Warn about missing scopes; refuse to run (UsageError) where that would be unsafe.

    ``False`` if stopped meanwhile."""
    from ._errors import HubError
    from ._scopes import scope_problems, signals_in_use, token_scopes
    from ._tasks import until_stopped

    try:
        scopes = await until_stopped(token_scopes(hub, started), stop)
    except HubError as e:
        log.warning("Cannot check the token's scopes (%s); the culler will keep users it cannot judge", e)
        return not stop.is_set()
    if stop.is_set():
        return False
    if scopes is None:
        return True
    uses_groups = bool(settings["exclude_groups"] or settings["group_timeout"])
    for fatal, message in scope_problems(
        scopes, cull_users=settings["cull_users"], uses_groups=uses_groups, signals=signals_in_use(settings)
    ):
        if fatal:
            raise UsageError(f"{message}; refusing to run rather than cull servers that should be kept")
        log.warning("%s%s", message[0].upper(), message[1:])
    return True


def check_pass_settings(settings: dict[str, Any]) -> None:
    """Refuse, before any request, pass options the core would refuse at the first pass."""
    from . import _core

    _core.PassOptions(**pass_options(settings))


def check_work_settings(settings: dict[str, Any]) -> None:
    """Refuse kernel-aware settings that cannot work; warn about those that do nothing."""
    from ._scopes import signal_options, signals, signals_in_use

    probing = bool(signals_in_use(settings))
    busy_timeout = settings["busy_timeout"]
    if busy_timeout and not probing:
        log.warning("--busy-timeout does nothing without %s", " or ".join(signal_options(signals())))
    if settings.get("idle_by") == "work":
        if not settings["warn_before"]:
            log.warning(
                "--idle-by=work stops servers whose tabs are still open; consider --warn-before "
                "(for example --warn-before=%d) so that people are told first",
                min(1800, settings["timeout"] // 4),
            )
        return
    if probing and not busy_timeout:
        bound = max(86400, 4 * settings["timeout"])
        log.warning(
            "No --busy-timeout: a server that stays busy (or connected) is kept without bound; "
            "consider --busy-timeout=%d",
            bound,
        )


async def _serve(
    settings: dict[str, Any], hub: _core.Connection, scopes: _core.Task, stop: asyncio.Event
) -> int:
    from . import _api
    from ._core import __version__
    from ._tasks import until_stopped

    options = pass_options(settings)
    inactive_limit = options.pop("inactive_limit")
    # The log and the metrics say what happened; listing every action would make memory
    # grow with the number of servers culled in a pass.
    options.update(
        cull_arbiter=settings["cull_arbiter_hook"],
        cull_user_hook=settings["cull_user_hook"],
        warn_hook=settings["warn_hook"],
        details=False,
    )
    period = _api.default_cull_every(inactive_limit, api_options(settings, "periodic")["cull_every"])

    url = settings["url"] or os.environ.get("JUPYTERHUB_API_URL") or DEFAULT_API_URL
    log.info(
        "cull-idle %s: culling servers idle for %ss at %s%s",
        __version__,
        inactive_limit,
        url,
        " (one pass)" if settings["once"] else f", every {period}s",
    )
    # Listening first: a Hub waits at most 30 s for a managed service with a url to answer.
    web = start_web(settings, hub)

    def observe(report: Optional[_api.CullReport]) -> None:
        # The core counts each pass that reports; only one that raised is left to count here.
        if web is not None and report is None:
            web.pass_raised()

    try:
        if not await check_scopes(hub, settings, stop, scopes):
            return 0
        if settings["once"]:
            report = await until_stopped(_api.run_pass(hub, inactive_limit, **options), stop)
            return 1 if report is not None and not report.complete else 0
        await _api.run_periodically(
            hub, inactive_limit, cull_every=period, stop=stop, on_pass=observe, **options
        )
    finally:
        if web is not None:
            web.close()
    log.info("Stopped")
    return 0


def service_address(service_url: Optional[str], prefix: Optional[str]) -> Optional[tuple[str, int, str]]:
    """Where a Hub-managed service with a ``url`` must listen: ``(host, port, prefix)``.

    A service without ``url`` is given ``http://127.0.0.1:0/``: no address then.
    """
    if not service_url:
        return None
    parsed = urlparse(service_url)
    if not parsed.port:
        return None
    return parsed.hostname or "127.0.0.1", parsed.port, prefix or "/"


def page_settings(settings: dict[str, Any], external: bool) -> Optional[_core.PageSettings]:
    """What the page needs from the Hub's environment: the service's OAuth client (the Hub
    gives a managed service with a url one), and where the browser logs in. ``None`` if it
    cannot be served; with ``--page=false``, the settings of ``api/me`` alone (``html``
    false), or ``None`` outside a managed service."""
    env = os.environ
    if not settings["page"]:
        return notice_settings(settings)
    client_id = env.get("JUPYTERHUB_CLIENT_ID")
    callback = env.get("JUPYTERHUB_OAUTH_CALLBACK_URL")
    if not (client_id and callback):
        if external:
            raise UsageError(
                "--web-bind serves the page behind the Hub's OAuth: set JUPYTERHUB_CLIENT_ID and "
                "JUPYTERHUB_OAUTH_CALLBACK_URL to the service's oauth_client_id and oauth_redirect_uri "
                "(or --page=false)"
            )
        return None
    service = env.get("JUPYTERHUB_SERVICE_NAME") or client_id.removeprefix("service-")
    public_hub = env.get("JUPYTERHUB_PUBLIC_HUB_URL")
    if public_hub:
        authorize = public_hub.rstrip("/") + "/api/oauth2/authorize"
    else:
        base = env.get("JUPYTERHUB_BASE_URL") or "/"
        authorize = env.get("JUPYTERHUB_HOST", "") + base.rstrip("/") + "/hub/api/oauth2/authorize"
    try:
        access_scopes = json.loads(env.get("JUPYTERHUB_OAUTH_ACCESS_SCOPES") or "[]")
    except ValueError:
        access_scopes = []
    if not isinstance(access_scopes, list):
        access_scopes = []
    public = env.get("JUPYTERHUB_PUBLIC_URL") or public_hub or env.get("JUPYTERHUB_HOST") or ""
    from ._core import PageSettings

    return PageSettings(
        **_served(settings, service),
        client_id=client_id,
        callback_url=callback,
        authorize_url=authorize,
        access_scopes=[s for s in access_scopes if isinstance(s, str)],
        max_keep_alive=float(settings["max_keep_alive"]),
        secure_cookies=public.startswith("https:"),
    )


def _served(settings: dict[str, Any], service: str) -> dict[str, Any]:
    """What ``api/me`` needs with or without the page."""
    return {
        "service_name": service,
        "warn_before": float(settings["warn_before"] or 0),
        "admin_groups": list(settings["admin_groups"]),
        "auth_cache_seconds": float(settings["page_auth_cache"]),
    }


def notice_settings(settings: dict[str, Any]) -> Optional[_core.PageSettings]:
    """With ``--page=false``: no page and no login, but ``api/me`` for tokens, so that servers'
    notices still show the warning (without keep-alives, which need the page)."""
    service = os.environ.get("JUPYTERHUB_SERVICE_NAME")
    if not service:
        return None
    from ._core import PageSettings

    return PageSettings(**_served(settings, service), html=False)


def web_address(settings: dict[str, Any]) -> Optional[tuple[str, int, str, bool]]:
    """Where to serve: ``(host, port, prefix, external)``, or ``None`` for nowhere."""
    if settings["web_bind"]:
        host, port = settings["web_bind"]
        service = os.environ.get("JUPYTERHUB_SERVICE_NAME") or "cull-idle"
        return host, port, os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or f"/services/{service}/", True
    if settings["metrics_bind"]:
        host, port = settings["metrics_bind"]
        return host, port, "/", False
    address = service_address(
        os.environ.get("JUPYTERHUB_SERVICE_URL"), os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    )
    return None if address is None else (*address, False)


def check_web_settings(settings: dict[str, Any]) -> Optional[_core.PageSettings]:
    """The page's settings where it is served; UsageError for settings that cannot work."""
    address = web_address(settings)
    if address is None:
        if settings["max_keep_alive"]:
            log.warning("--max-keep-alive does nothing without the page (a service with a url)")
        return None
    _, _, prefix, external = address
    page = None if settings["metrics_bind"] and not external else page_settings(settings, external)
    if page is None or not page.html:
        if settings["max_keep_alive"]:
            log.warning("--max-keep-alive does nothing without the page, which is not served here")
        return page
    if not urlparse(page.callback_url).path.startswith(prefix.rstrip("/") + "/"):
        # The login's state cookie is scoped to the prefix, so the callback must be under it.
        raise UsageError(
            f"the OAuth callback {page.callback_url} is not under the service's prefix {prefix}; "
            "set the service's oauth_redirect_uri to <prefix>oauth_callback"
        )
    return page


def start_web(settings: dict[str, Any], hub: Optional[_core.Connection] = None) -> Optional[_core.WebServer]:
    """Serve metrics and health where asked (--metrics-bind) or where the Hub expects the
    service, with the page where the service is served (or --web-bind)."""
    from ._core import WebServer

    address = web_address(settings)
    if address is None:
        return None
    host, port, prefix, _ = address
    page = check_web_settings(settings) if hub is not None else None
    try:
        server = WebServer(host, port, prefix, hub=hub, page=page)
    except OSError as e:
        raise UsageError(f"cannot serve on {host}:{port}: {e.strerror or e}") from None
    prefix = server.prefix
    log.info("Serving metrics at http://%s:%s%smetrics and health at %shealth", host, port, prefix, prefix)
    if page is not None and not page.html:
        log.info("Serving %sapi/me to servers' tokens, for their notices (--page=false)", prefix)
    elif page is not None:
        keep = f", keep-alives up to {settings['max_keep_alive']}s" if settings["max_keep_alive"] else ""
        log.info("Serving the page at %s (Hub login, OAuth client %s%s)", prefix, page.client_id, keep)
    return server
