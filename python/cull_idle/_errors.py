"""The exceptions cull-idle raises. The core raises them too (from ``_core``), by name."""

from __future__ import annotations


class CullIdleError(Exception):
    """The base class of cull-idle's own errors."""


class ConfigError(CullIdleError, ValueError):
    """Options or settings that cannot work: a bad URL, a negative time, an unknown option."""


class HubError(CullIdleError):
    """The Hub answered, but not with what the culler needs (an error status, a bad reply)."""


class HubUnreachable(HubError, ConnectionError):
    """The Hub could not be reached: refused, timed out, broken connection, or TLS refused."""


class HubAuthError(HubError):
    """The Hub refused the token (401 or 403); the message names the scopes the culler needs."""


class BlockingCallInEventLoop(CullIdleError, RuntimeError):
    """A blocking function was called from inside a running event loop."""
