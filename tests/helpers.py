"""Helpers shared by the test modules (a test module never imports another test module)."""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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


SECRET_PATH = "/services/T000/B000/webhook-secret-key"


class Receiver:
    """An incoming webhook: records each POST; answers 200, 500 (``fail``) or never (``hang``)."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.posts: queue.Queue[tuple[dict[str, str], dict[str, Any]]] = queue.Queue()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.put((dict(self.headers), json.loads(body)))
                if receiver.mode == "hang":
                    time.sleep(30)
                self.send_response(500 if receiver.mode == "fail" else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"

    def all(self) -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(self.posts.get_nowait()[1])
            except queue.Empty:
                return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def single_user_servers() -> set[int]:
    """The process ids of the single-user servers running on this machine (any Hub's)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        if b"jupyterhub.singleuser" in command or any(c.endswith(b"jupyterhub-singleuser") for c in command):
            pids.add(int(entry.name))
    return pids
