"""The public Python API: one pass, the periodic loop, and their blocking counterparts.

What raises what:

- :func:`connect` raises :class:`~cull_idle.ConfigError` (a ``ValueError``) for bad settings,
  and ``OSError`` (with ``filename``) for a certificate or key file that cannot be read.
- :func:`run_pass`, :func:`cull_idle` and the periodic functions raise
  :class:`~cull_idle.ConfigError` for bad options, before any request. Hub failures never raise
  from a pass: they are logged, retried where that helps, and recorded in the report
  (``report.complete``, ``report.errors``).
- :func:`cull_idle_blocking` and :func:`cull_idle_periodically_blocking` raise
  :class:`~cull_idle.BlockingCallInEventLoop` (a ``RuntimeError``) inside a running event loop.
- ``cull_idle._scopes.token_scopes`` raises :class:`~cull_idle.HubUnreachable` (a
  ``ConnectionError``), :class:`~cull_idle.HubAuthError` (401/403) or :class:`~cull_idle.HubError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Iterator
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from . import _core

if TYPE_CHECKING:
    from typing_extensions import Unpack

# Re-exported: part of this module's API since before they moved.
from ._connect import connect as connect
from ._connect import request_timeout_from_env as request_timeout_from_env
from ._connect import tls_files as tls_files
from ._defaults import DEFAULT_API_URL as DEFAULT_API_URL
from ._errors import BlockingCallInEventLoop, ConfigError
from ._pass_options import PassOptions
from ._tasks import finished as _finished
from ._tasks import until_stopped as until_stopped

log = logging.getLogger("cull_idle")

#: An arbiter hook: ``hook(inactive=timedelta, inactive_limit=int, server=dict) -> bool`` (or awaitable).
CullArbiter = Callable[..., Union[bool, Awaitable[bool]]]
#: A user hook: ``hook(user=dict, inactive=timedelta, inactive_limit=int) -> bool`` (or awaitable).
CullUserHook = Callable[..., Union[bool, Awaitable[bool]]]
#: A warning hook: ``hook(user=dict, server=dict | None, reason=str, inactive=timedelta,
#: cull_at=datetime)``, plain or async; what it returns is ignored.
WarnHook = Callable[..., Any]


def utcnow() -> datetime:
    """The time a pass takes as "now"; looked up at every pass so tests can patch it."""
    return datetime.now(timezone.utc)


def default_cull_arbiter(
    *, inactive: timedelta, inactive_limit: int, server: dict[str, Any], **kwargs: Any
) -> bool:
    """The reference's rule: cull when idle for at least the limit."""
    return inactive is not None and inactive.total_seconds() >= inactive_limit


#: A stop or delete the pass attempted: ``user``, ``server`` (``None`` for a user deletion),
#: ``reason``, ``inactive`` (a ``timedelta``), ``outcome`` (``stopped``, ``stopping``, ``gone``,
#: ``deleted``, ``kept``, ``failed``, ``would-stop``, ``would-delete``), ``detail`` and ``probe``.
Action = _core.Action
#: A server or user the pass kept: ``user``, ``server``, ``reason`` (see the README's
#: Troubleshooting), ``detail`` and ``probe``.
Skip = _core.Skip
#: A warning given before a cull: ``kind``, ``user``, ``server``, ``reason``, ``inactive``,
#: ``cull_at`` (an aware ``datetime``) and ``delivered``.
CullWarning = _core.CullWarning
#: What one pass saw and did, made by the core.
CullReport = _core.CullReport


def _user_hook_adapter(
    hook: CullUserHook, logger: logging.Logger
) -> Callable[[float, float, str, str], Awaitable[bool]]:
    async def arbitrate(inactive: float, inactive_limit: float, _server: str, user_json: str) -> bool:
        user = json.loads(user_json)
        keywords = dict(
            user=user, inactive=timedelta(seconds=inactive), inactive_limit=_limit(inactive_limit)
        )
        try:
            return bool(await _ask(hook, keywords))
        except Exception:
            logger.exception("cull_user_hook failed for user %s; not deleting it", _shown(user.get("name")))
            return False

    return arbitrate


def _warn_hook_adapter(
    hook: WarnHook, logger: logging.Logger
) -> Callable[[CullWarning, str, Optional[str]], Awaitable[bool]]:
    async def warn(warning: CullWarning, user_json: str, server_json: Optional[str]) -> bool:
        keywords = dict(
            user=json.loads(user_json) if user_json else {"name": warning.user},
            server=None if server_json is None else json.loads(server_json),
            reason=warning.reason,
            inactive=warning.inactive,
            cull_at=warning.cull_at,
        )
        try:
            await _ask(hook, keywords)
            return True
        except Exception:
            logger.exception(
                "warn_hook failed for user %s; the cull goes ahead on schedule", _shown(warning.user)
            )
            return False

    return warn


def _shown(name: object) -> str:
    """A user or server name for a log line, with control characters escaped (``\\n``), so that a
    name from the Hub cannot start a line of its own; the core escapes its own lines alike."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(name))


def _accepts_user(hook: CullArbiter) -> bool:
    """Whether the hook takes ``user=`` (by name or through ``**kwargs``)."""
    try:
        parameters = inspect.signature(hook).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "user" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


async def _ask(hook: Callable[..., Any], keywords: dict[str, Any]) -> Any:
    """A hook's answer, awaited if it is a coroutine."""
    answer = hook(**keywords)
    if inspect.isawaitable(answer):
        answer = await answer
    return answer


def _limit(seconds: float) -> Union[int, float]:
    return int(seconds) if seconds.is_integer() else seconds


def _arbiter_adapter(
    hook: CullArbiter, logger: logging.Logger
) -> Callable[[float, float, str, str], Awaitable[bool]]:
    with_user = _accepts_user(hook)

    async def arbitrate(inactive: float, inactive_limit: float, server_json: str, user_json: str) -> bool:
        server = json.loads(server_json)
        extra = {"user": json.loads(user_json)} if with_user else {}
        keywords = dict(
            inactive=timedelta(seconds=inactive), inactive_limit=_limit(inactive_limit), server=server
        )
        try:
            return bool(await _ask(hook, {**keywords, **extra}))
        except Exception:
            logger.exception(
                "cull_arbiter failed for server %s; not culling it",
                _shown(server.get("full_name") or server.get("name")),
            )
            return False

    return arbitrate


class _Forward(logging.Handler):
    def __init__(self, target: logging.Logger) -> None:
        super().__init__()
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        if self.target.isEnabledFor(record.levelno):
            self.target.handle(record)


@contextlib.contextmanager
def _logging_to(logger: Optional[logging.Logger]) -> Iterator[logging.Logger]:
    """Send the records of the ``cull_idle`` loggers to ``logger`` for the time of a pass."""
    if logger is None or logger is log or logger.name.startswith("cull_idle"):
        yield logger or log
        return
    handler = _Forward(logger)
    saved = (log.level, log.propagate)
    log.addHandler(handler)
    log.setLevel(logger.getEffectiveLevel())
    log.propagate = False
    try:
        yield logger
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]


async def run_pass(
    hub: _core.Connection,
    inactive_limit: float,
    logger: Optional[logging.Logger] = None,
    *,
    cull_arbiter: Optional[CullArbiter] = None,
    cull_user_hook: Optional[CullUserHook] = None,
    warn_hook: Optional[WarnHook] = None,
    details: bool = True,
    _act_after: Optional[int] = None,
    **options: Unpack[PassOptions],
) -> CullReport:
    """One pass over an existing connection (see :func:`connect`).

    ``options`` are the pass options of the command line, by their Python names (see
    :class:`~cull_idle._pass_options.PassOptions`, generated from the declaration), each with
    the command line's default: ``cull_users``, ``max_age``, ``dry_run``, ``exclude_users``,
    ``group_timeouts``, ``max_culls_per_pass``, ``keep_busy_kernels``, ``server_url``, …

    With ``details=False`` the report only counts what was done (``totals``) and lists no
    actions or skips, so that its size does not grow with the number of servers culled.

    With ``keep_busy_kernels`` (or ``keep_connected``), each server the idle rule selected is
    asked for its kernels (and terminals) first, and kept while one is busy (or connected);
    ``busy_timeout`` (seconds, 0 for none) is the idle time past which it is culled anyway.
    Servers are reached at ``server_url`` (the proxy's address) plus their path, or else at the
    ``full_url`` the Hub gives them. The token needs the ``tokens`` scope: each server is asked
    with a token of its own user that opens that server alone.

    With ``cull_users``, ``cull_user_hook`` is asked before an idle user is deleted, with
    ``user`` (the Hub's model), ``inactive`` and ``inactive_limit``; plain or async. ``False``
    or an exception keeps the user. ``max_age`` deletes whatever it says, as with the arbiter.

    With ``warn_before`` (seconds), a server the policy will cull within that time is warned
    once per idle stretch: an INFO line, ``warn_hook`` (called with ``user``, ``server``,
    ``reason``, ``inactive`` and ``cull_at`` keywords) and the connection's webhook. No server
    is stopped, nor user deleted (``warn_users_before``), until at least that long after its
    warning. ``cull_arbiter`` is not asked for warnings: it cannot be predicted.

    Bad or unknown options raise :class:`~cull_idle.ConfigError` before any request; the core
    checks them all. ``_act_after`` is for tests: act once this many culls are planned.
    """
    checked = _core.PassOptions(inactive_limit=inactive_limit, details=details, **options)
    # Looked up through the package at each pass, so patching ``cull_idle.utcnow`` moves time.
    import cull_idle

    now_function = cull_idle.utcnow

    with _logging_to(logger) as target:
        hook = None
        if cull_arbiter is not None and cull_arbiter is not default_cull_arbiter:
            hook = _arbiter_adapter(cull_arbiter, target)
        warn = None if warn_hook is None else _warn_hook_adapter(warn_hook, target)
        user_hook = None if cull_user_hook is None else _user_hook_adapter(cull_user_hook, target)
        handle = hub.start_pass(
            checked,
            now=now_function().timestamp(),
            arbiter=hook,
            user_arbiter=user_hook,
            warn_hook=warn,
            act_after=_act_after,
        )
        report = await _finished(handle)
    assert isinstance(report, CullReport)
    return report


async def cull_idle(
    url: Optional[str],
    api_token: str,
    inactive_limit: float,
    logger: Optional[logging.Logger] = None,
    *,
    cull_users: bool = False,
    remove_named_servers: bool = False,
    max_age: float = 0,
    concurrency: Optional[int] = None,
    ssl_enabled: bool = False,
    internal_certs_location: str = "internal-ssl",
    cull_admin_users: bool = True,
    api_page_size: int = 0,
    cull_default_servers: bool = True,
    cull_named_servers: bool = True,
    cull_arbiter: Optional[CullArbiter] = None,
    probe_timeout: float = 10,
    state_file: Optional[str] = None,
    warn_webhook: Optional[str] = None,
    **extensions: Any,
) -> CullReport:
    """One culling pass, with jupyterhub-idle-culler's arguments and meanings.

    cull-idle's own options are keyword-only extensions: ``dry_run``, ``user_timeout``,
    ``exclude_users``, ``exclude_groups``, ``group_timeouts``, ``max_culls_per_pass``,
    ``keep_busy_kernels``, ``keep_connected``, ``busy_timeout``, ``idle_by``, ``server_url``,
    ``warn_before``, ``warn_users_before`` and ``warn_hook`` (see :func:`run_pass`), and ``probe_timeout``,
    ``state_file`` and ``warn_webhook`` (see :func:`connect`).

    Hub errors never raise: they are logged, retried where that helps, and recorded in the
    returned report (``report.complete`` is false when the users could not all be listed).
    Bad arguments raise :class:`~cull_idle.ConfigError` (a ``ValueError``).

    Warnings (``warn_before``, ``warn_users_before``) need ``state_file``: each call is a new
    connection, so without a file the warning given by one call would be unknown to the next,
    which would warn again and never cull. Without it they raise ``ConfigError`` (a dry run
    gives no warnings, and needs none). Use :func:`connect` and :func:`run_pass` to keep
    warnings in memory across passes instead.
    """
    warns = extensions.get("warn_before") or extensions.get("warn_users_before")
    if warns and state_file is None and not extensions.get("dry_run"):
        raise ConfigError(
            "warn_before needs state_file in cull_idle(): each call starts afresh, so without it "
            "a warning would be given again at every call and no server ever culled"
        )
    hub = connect(
        url,
        api_token,
        concurrency=concurrency,
        ssl_enabled=ssl_enabled,
        internal_certs_location=internal_certs_location,
        probe_timeout=probe_timeout,
        state_file=state_file,
        warn_webhook=warn_webhook,
    )
    return await run_pass(
        hub,
        inactive_limit,
        logger,
        cull_users=cull_users,
        remove_named_servers=remove_named_servers,
        max_age=max_age,
        cull_admin_users=cull_admin_users,
        api_page_size=api_page_size,
        cull_default_servers=cull_default_servers,
        cull_named_servers=cull_named_servers,
        cull_arbiter=cull_arbiter,
        **extensions,
    )


def default_cull_every(inactive_limit: float, cull_every: float = 0) -> float:
    """``cull_every`` as the reference reads it: 0 (or unset) means half the timeout, at least 1 s."""
    return cull_every if cull_every > 0 else max(1, int(inactive_limit) // 2)


async def pass_unless_stopped(
    hub: _core.Connection,
    inactive_limit: float,
    logger: Optional[logging.Logger],
    stop: asyncio.Event,
    **options: Any,
) -> Optional[CullReport]:
    """One pass, abandoned (``None``) as soon as ``stop`` is set."""
    return await until_stopped(run_pass(hub, inactive_limit, logger, **options), stop)


async def run_periodically(
    hub: _core.Connection,
    inactive_limit: float,
    logger: Optional[logging.Logger] = None,
    *,
    cull_every: float = 0,
    stop: Optional[asyncio.Event] = None,
    on_pass: Optional[Callable[[Optional[CullReport]], None]] = None,
    **options: Any,
) -> None:
    """Pass after pass over an existing connection; see :func:`cull_idle_periodically`.

    ``on_pass`` is called after each pass with its report (``None`` if the pass raised).
    """
    period = default_cull_every(inactive_limit, cull_every)
    stop = stop or asyncio.Event()
    while not stop.is_set():
        started = time.monotonic()
        try:
            report = await pass_unless_stopped(hub, inactive_limit, logger, stop, **options)
        except Exception:
            # Not a Hub error (those are in the report): a bug. Keep culling all the same.
            (logger or log).exception("The cull pass failed; the next pass will try again")
            if on_pass:
                on_pass(None)
        else:
            if report is not None and on_pass:
                on_pass(report)
        delay = period - (time.monotonic() - started)
        log.debug("Next pass in %.1fs", max(delay, 0))
        if delay > 0 and not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)


async def cull_idle_periodically(
    url: Optional[str],
    api_token: str,
    inactive_limit: float,
    logger: Optional[logging.Logger] = None,
    *,
    cull_every: float = 0,
    stop: Optional[asyncio.Event] = None,
    concurrency: Optional[int] = None,
    ssl_enabled: bool = False,
    internal_certs_location: str = "internal-ssl",
    probe_timeout: float = 10,
    state_file: Optional[str] = None,
    warn_webhook: Optional[str] = None,
    **options: Any,
) -> None:
    """Cull at once, then every ``cull_every`` seconds, until ``stop`` is set (or forever).

    ``cull_every`` 0 means half of ``inactive_limit`` (at least 1 s). Passes never overlap: one
    that overruns the period is followed at once by the next. Setting ``stop`` abandons a pass
    in flight immediately. Other keyword arguments are those of :func:`cull_idle`.
    """
    hub = connect(
        url,
        api_token,
        concurrency=concurrency,
        ssl_enabled=ssl_enabled,
        internal_certs_location=internal_certs_location,
        probe_timeout=probe_timeout,
        state_file=state_file,
        warn_webhook=warn_webhook,
    )
    await run_periodically(hub, inactive_limit, logger, cull_every=cull_every, stop=stop, **options)


def _no_running_loop(name: str, instead: str) -> None:
    """Refuse, before any coroutine exists, to block inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise BlockingCallInEventLoop(
        f"{name}() cannot run inside a running event loop; use `await {instead}(...)` there instead"
    )


def cull_idle_blocking(
    url: Optional[str], api_token: str, inactive_limit: float, **kwargs: Any
) -> CullReport:
    """:func:`cull_idle` for code without an event loop."""
    _no_running_loop("cull_idle_blocking", "cull_idle")
    return asyncio.run(cull_idle(url, api_token, inactive_limit, **kwargs))


def cull_idle_periodically_blocking(
    url: Optional[str], api_token: str, inactive_limit: float, **kwargs: Any
) -> None:
    """:func:`cull_idle_periodically` for code without an event loop; Ctrl-C ends it."""
    _no_running_loop("cull_idle_periodically_blocking", "cull_idle_periodically")
    asyncio.run(cull_idle_periodically(url, api_token, inactive_limit, **kwargs))
