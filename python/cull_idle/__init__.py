"""cull-idle: a fast, drop-in idle culler for JupyterHub with a Rust core.

``from cull_idle import cull_idle`` replaces ``from jupyterhub_idle_culler import cull_idle``.
"""

from ._api import (
    Action,
    CullArbiter,
    CullReport,
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

__all__ = [
    "Action",
    "CullArbiter",
    "CullReport",
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
