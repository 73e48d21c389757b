"""A scripted stand-in for the Hub API, only for faults a real Hub cannot be made to produce."""

from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Union

Reply = tuple[int, Union[bytes, str, dict, list], dict[str, str]]
Route = Callable[["FakeHub", str, str], Optional[Reply]]


def user(name: str, last_activity: str = "2000-01-01T00:00:00Z", **extra: Any) -> dict:
    server = {
        "name": "",
        "ready": True,
        "pending": None,
        "url": f"/user/{name}/",
        "started": "2000-01-01T00:00:00Z",
        "last_activity": last_activity,
    }
    return {"name": name, "admin": False, "last_activity": last_activity, "servers": {"": server}, **extra}


def page(items: list, next_offset: Optional[int] = None) -> dict:
    nxt = None if next_offset is None else {"offset": next_offset, "limit": 2, "url": "http://unreachable/x"}
    return {"items": items, "_pagination": {"offset": 0, "limit": 2, "total": 99, "next": nxt}}


class FakeHub:
    """``routes`` maps ``"METHOD /path?query"`` prefixes to a list of replies served in turn
    (the last one repeats). Every request is recorded in ``requests``."""

    def __init__(self, routes: dict[str, list[Any]], ssl_context: Optional[ssl.SSLContext] = None) -> None:
        self.routes = {k: list(v) for k, v in routes.items()}
        self.requests: list[tuple[float, str, str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.removeprefix("/hub/api")
                with hub.lock:
                    hub.requests.append(
                        (
                            time.monotonic(),
                            self.command,
                            path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                        )
                    )
                    reply = hub._next(f"{self.command} {path}")
                if reply == "hang":
                    time.sleep(30)
                    return
                if reply == "huge":
                    # Claims 2 GB and keeps sending until the client gives up.
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(2 * 1024**3))
                    self.end_headers()
                    chunk = b" " * (1024 * 1024)
                    try:
                        for _ in range(2048):
                            self.wfile.write(chunk)
                    except OSError:
                        pass
                    return
                if reply == "reset":
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b'{"items": [')
                    self.wfile.flush()
                    self.connection.close()
                    return
                status, payload, headers = reply
                data = (
                    payload
                    if isinstance(payload, bytes)
                    else (payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
                )
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_DELETE = do_POST = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.client_certs: list[Any] = []
        scheme = "http"
        if ssl_context is not None:
            scheme = "https"
            self.server.socket = _RecordingSocket(
                ssl_context.wrap_socket(self.server.socket, server_side=True), self
            )
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/hub/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _next(self, key: str) -> Any:
        for prefix in sorted(self.routes, key=len, reverse=True):
            if key.startswith(prefix):
                replies = self.routes[prefix]
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
                if isinstance(reply, tuple) and len(reply) == 2:
                    reply = (*reply, {})
                return reply
        return (404, {"status": 404, "message": "not found"}, {})

    def calls(self, method: str, path_prefix: str = "") -> list[str]:
        return [p for _, m, p, _, _ in self.requests if m == method and p.startswith(path_prefix)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _RecordingSocket:
    """A TLS listening socket that records each client's certificate (the handshake runs in
    accept(); a failed handshake drops that connection only)."""

    def __init__(self, sock: ssl.SSLSocket, hub: FakeHub) -> None:
        self._sock, self._hub = sock, hub

    def accept(self) -> Any:
        conn, addr = self._sock.accept()
        self._hub.client_certs.append(conn.getpeercert())
        return conn, addr

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


VERSION = {"GET /": [(200, {"version": "6.1.1"})]}
