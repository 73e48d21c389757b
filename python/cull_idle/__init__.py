"""cull-idle: a fast, drop-in idle culler for JupyterHub with a Rust core.

``from cull_idle import cull_idle`` replaces ``from jupyterhub_idle_culler import cull_idle``.
"""

from __future__ import annotations

# Not `typing.TYPE_CHECKING`: importing typing costs `python -m cull_idle --help` a quarter of
# its start-up time.
TYPE_CHECKING = False

__all__ = [
    "Action",
    "BlockingCallInEventLoop",
    "ConfigError",
    "CullArbiter",
    "CullIdleError",
    "CullReport",
    "CullUserHook",
    "CullWarning",
    "HubAuthError",
    "HubError",
    "HubUnreachable",
    "Skip",
    "__version__",
    "connect",
    "cull_idle",
    "cull_idle_blocking",
    "cull_idle_periodically",
    "cull_idle_periodically_blocking",
    "default_cull_arbiter",
    "run_pass",
    "run_periodically",
    "utcnow",
]

if TYPE_CHECKING:
    from typing import Any

    from ._api import (
        Action,
        CullArbiter,
        CullReport,
        CullUserHook,
        CullWarning,
        Skip,
        connect,
        cull_idle,
        cull_idle_blocking,
        cull_idle_periodically,
        cull_idle_periodically_blocking,
        default_cull_arbiter,
        run_pass,
        run_periodically,
        utcnow,
    )
    from ._core import __version__
    from ._errors import (
        BlockingCallInEventLoop,
        ConfigError,
        CullIdleError,
        HubAuthError,
        HubError,
        HubUnreachable,
    )

_ERRORS = {
    "BlockingCallInEventLoop",
    "ConfigError",
    "CullIdleError",
    "HubAuthError",
    "HubError",
    "HubUnreachable",
}


def __getattr__(name: str) -> Any:
    # Loaded on first use, so that `python -m cull_idle` can take over SIGINT and SIGTERM
    # before the slower imports (asyncio, the extension module) run.
    if name == "__version__":
        from ._core import __version__

        return __version__
    if name in _ERRORS:
        from . import _errors

        return getattr(_errors, name)
    if name in __all__:
        from . import _api

        value = getattr(_api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cull_idle' has no attribute {name!r}")
