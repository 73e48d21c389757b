"""Helpers shared by the test modules (a test module never imports another test module)."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any, Optional

IDLE = 700  # seconds; the limit in most tests is 600
ACTIVE = 10


def setup_servers(hub: Any, spec: dict[tuple[str, str], Optional[dict[str, Any]]]) -> None:
    """spec: {(user, server): {"last_activity_ago": s, "started_ago": s}} — creates and starts all."""
    users = sorted({u for u, _ in spec})
    hub.create_users(users)
    hub.start_servers(list(spec))
    hub.set_times([{"user": u, "server": s, **times} for (u, s), times in spec.items() if times])


def outcomes(report: Any) -> dict[tuple[str, Optional[str]], str]:
    return {(a.user, a.server): a.outcome for a in report.actions}


def settled(hub: Any, action: Any, timeout: float = 120) -> str:
    """An action's outcome once the Hub has finished with it.

    A real single-user server can take longer to stop than the Hub's ``slow_stop_timeout``; the
    Hub then answers 202 and the culler reports ``stopping``. That is a stop all the same, so
    wait until the Hub reports the server gone and call it ``stopped``.
    """
    if action.outcome != "stopping":
        return str(action.outcome)
    hub.wait_for(
        lambda: not hub.running(action.user, action.server or ""),
        f"the Hub to finish stopping {action.user}/{action.server}",
        timeout=timeout,
    )
    return "stopped"


def http_get(url: str) -> tuple[int, Optional[str], str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def sample(text: str, name: str) -> Optional[float]:
    """The value of one Prometheus sample, e.g. ``cull_idle_passes_total``."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None
