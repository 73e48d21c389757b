"""Connecting to the Hub, without asyncio: the CLI sends its first request while asyncio loads."""

from __future__ import annotations

import logging
import os

from . import _core
from ._defaults import DEFAULT_API_URL

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

log = logging.getLogger("cull_idle")


def request_timeout_from_env() -> float:
    """``$JUPYTERHUB_REQUEST_TIMEOUT`` in seconds (default 60)."""
    text = os.environ.get("JUPYTERHUB_REQUEST_TIMEOUT") or "60"
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        from ._errors import ConfigError

        raise ConfigError(f"JUPYTERHUB_REQUEST_TIMEOUT must be a positive number of seconds, not {text!r}")
    return value


def tls_files(ssl_enabled: bool, internal_certs_location: str) -> dict[str, Optional[str]]:
    """The CA, certificate and key for the Hub's internal SSL.

    With ``ssl_enabled`` the reference's layout under ``internal_certs_location`` is used when it
    exists; otherwise the ``JUPYTERHUB_SSL_*`` variables a Hub gives its managed services.
    """
    env = {
        "ca_file": os.environ.get("JUPYTERHUB_SSL_CLIENT_CA") or None,
        "cert_file": os.environ.get("JUPYTERHUB_SSL_CERTFILE") or None,
        "key_file": os.environ.get("JUPYTERHUB_SSL_KEYFILE") or None,
    }
    if ssl_enabled:
        location = internal_certs_location or "internal-ssl"
        ca_file = os.path.join(location, "hub-ca", "hub-ca.crt")
        layout: dict[str, Optional[str]] = {
            "ca_file": ca_file,
            "cert_file": os.path.join(location, "hub-internal", "hub-internal.crt"),
            "key_file": os.path.join(location, "hub-internal", "hub-internal.key"),
        }
        if os.path.exists(ca_file) or not any(env.values()):
            log.debug("ssl_enabled: using certificates under %s", location)
            return layout
    return env


def connect(
    url: Optional[str],
    api_token: str,
    *,
    concurrency: Optional[int] = None,
    ssl_enabled: bool = False,
    internal_certs_location: str = "internal-ssl",
    request_timeout: Optional[float] = None,
    probe_timeout: float = 10,
    state_file: Optional[str] = None,
    warn_webhook: Optional[str] = None,
    state_read_only: bool = False,
) -> _core.Connection:
    """A reusable connection to the Hub API.

    ``probe_timeout`` bounds each request to a single-user server (``keep_busy_kernels``).
    Reuse the connection across passes: it also remembers the servers kept for their work,
    and, without ``state_file``, the warnings given (in memory).

    ``state_file`` is the SQLite file where warnings (``warn_before``) are remembered across
    restarts; it is opened, and locked against a second culler, here. ``warn_webhook`` is the
    URL each warning is posted to; it is never logged. With ``state_read_only`` (a dry run) the
    file is only read, into memory: it is neither created, changed nor locked, so a real culler
    can start on it meanwhile.

    Raises :class:`~cull_idle.ConfigError` for bad settings (checked by the core), and
    ``OSError`` with ``filename`` for a certificate or key file that cannot be read.
    """
    files = tls_files(ssl_enabled, internal_certs_location)
    return _core.Connection(
        url or os.environ.get("JUPYTERHUB_API_URL") or DEFAULT_API_URL,
        api_token,
        concurrency=concurrency,
        request_timeout=request_timeout if request_timeout is not None else request_timeout_from_env(),
        ca_file=files["ca_file"],
        cert_file=files["cert_file"],
        key_file=files["key_file"],
        probe_timeout=probe_timeout,
        state_file=state_file,
        warn_webhook=warn_webhook,
        state_read_only=state_read_only,
    )
