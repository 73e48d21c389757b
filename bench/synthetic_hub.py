"""A fast synthetic Hub API for measuring cullers at scale, run as its own process.

    python bench/synthetic_hub.py USERS [--idle-every 10] [--page 200] [--faults K] [--stable] [--tabs]
                                        [--hostile K]

Users are rendered once, up front, and pages of ``GET /hub/api/users?state=ready`` are served
from memory for any offset and limit (up to ``--page``), so the Hub is never the bottleneck.
Every ``--idle-every``-th user has been idle for two hours; the rest are active now. With
``--faults K``, every K-th request is answered 503 and every 7K-th is dropped unanswered.
Stops (``DELETE .../server``) answer 204 and, as on a real Hub, take the user out of
``state=ready``, so later users move to lower offsets; with ``--stable`` they change nothing,
and every pass finds the same idle users. Prints its API URL on the first line, then serves
until its stdin closes; on exit it prints a JSON line with the counts of requests, stops and
users listed ("items"), page visitors' tokens checked ("visitor_checks": a token
``visitor-NAME`` is user NAME's, and ``visitor-admin`` an admin's), and the time of the first
request. ``GET /_bench/counts`` gives the counts so far. A token ``server-NAME`` is the own
token of user NAME's server.

With ``--tabs`` every server has a browser tab open: the Hub sees it active now, and it started
three hours ago. Each server also answers cull-idle-sensor's ``GET /user/NAME/api/cull-idle/work``
(counted as "probes", not as Hub requests): every other server has a kernel executing, the rest
have done nothing since they started. The culler reaches them with ``--server-url`` set to this
Hub's origin, after making each a token (``POST /users/NAME/tokens``, counted as "tokens_made";
deletions as "tokens_deleted"). With ``--hostile K``, K of the idle servers misbehave when asked
(see ``SyntheticHub.misbehave``). Any other token that starts with
``made-up-`` is refused (403), as the Hub refuses a token it does not know ("refused_checks").
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


TAB_STARTED = timedelta(hours=3)
#: With --tabs, stands for the time a page is served: an open tab keeps the Hub's count fresh.
NOW = "2000-01-01T00:00:00.000000Z"


def render_users(n: int, idle_every: int, tabs: bool = False) -> list[bytes]:
    now = datetime.now(timezone.utc)
    active, idle = iso(now), iso(now - timedelta(hours=2))
    users = []
    for i in range(n):
        last = NOW if tabs else idle if idle_every and i % idle_every == 0 else active
        name = f"user-{i:07d}"
        server = {
            "name": "",
            "full_name": f"{name}/",
            "ready": True,
            "pending": None,
            "stopped": False,
            "url": f"/user/{name}/",
            "started": iso(now - TAB_STARTED) if tabs else last,
            "last_activity": last,
            "user_options": {},
            "progress_url": f"/hub/api/users/{name}/server/progress",
        }
        user = {
            "kind": "user",
            "name": name,
            "admin": False,
            "groups": [],
            "server": f"/user/{name}/",
            "pending": None,
            "created": iso(now - TAB_STARTED) if tabs else last,
            "last_activity": last,
            "servers": {"": server},
        }
        users.append(json.dumps(user).encode())
    return users


class ReadyUsers:
    """Which users are still in state=ready: a Fenwick tree over 0/1, so that the user at an
    offset is found in O(log n) however many users have left."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.ready = bytearray([1]) * n
        self.count = n
        self.tree = [0] * (n + 1)
        for i in range(1, n + 1):
            self.tree[i] += 1
            parent = i + (i & -i)
            if parent <= n:
                self.tree[parent] += self.tree[i]

    def remove(self, index: int) -> bool:
        if not 0 <= index < self.n or not self.ready[index]:
            return False
        self.ready[index] = 0
        self.count -= 1
        i = index + 1
        while i <= self.n:
            self.tree[i] -= 1
            i += i & -i
        return True

    def index_at(self, offset: int) -> int:
        """The index of the ready user at ``offset`` (``n`` past the end)."""
        if offset >= self.count:
            return self.n
        position, remaining = 0, offset + 1
        step = 1 << self.n.bit_length()
        while step:
            if position + step <= self.n and self.tree[position + step] < remaining:
                position += step
                remaining -= self.tree[position]
            step >>= 1
        return position

    def page(self, offset: int, limit: int) -> list[int]:
        out: list[int] = []
        index = self.index_at(offset)
        while index < self.n and len(out) < limit:
            if self.ready[index]:
                out.append(index)
            index += 1
        return out


class Listener(ThreadingHTTPServer):
    # The socketserver default of 5 drops connections when a culler asks 128 servers at once,
    # and a dropped SYN waits a second or more to be sent again: a real server's backlog is 128.
    request_queue_size = 1024


class SyntheticHub:
    def __init__(
        self,
        n: int,
        idle_every: int = 10,
        page: int = 200,
        faults: int = 0,
        stable: bool = False,
        tabs: bool = False,
        hostile: int = 0,
    ) -> None:
        self.users = render_users(n, idle_every, tabs)
        self.tabs = tabs
        #: Every this-many-th server (an idle one) misbehaves when asked; 0: none does.
        self.hostile_every = n // hostile if hostile else 0
        self.started = iso(datetime.now(timezone.utc) - TAB_STARTED)
        self.ready = ReadyUsers(n)
        self.stable = stable
        self.page = page
        self.faults = faults
        self.counts = {
            "requests": 0,
            "stops": 0,
            "faults": 0,
            "items": 0,
            "visitor_checks": 0,
            "refused_checks": 0,
            "probes": 0,
            "tokens_made": 0,
            "tokens_deleted": 0,
            "first_request_at": 0.0,
            "first_stop_at": 0.0,
        }
        self.first_request: float | None = None
        self.lock = threading.Lock()
        self._pages: dict[tuple[int, int], tuple[bytes, int]] = {}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Single-user servers (tornado, behind the proxy) answer without Nagle's delay; the
            # other benchmarks keep the setting their published figures were measured with.
            disable_nagle_algorithm = tabs

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def fault(self) -> bool:
                kind = hub.fault()
                if kind == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                elif kind == "503":
                    self._reply(503, b'{"status": 503, "message": "injected"}')
                return kind is not None

            def do_GET(self) -> None:
                if self.path.startswith("/user/"):
                    if hub.misbehave(self):
                        return None
                    return self._reply(200, hub.sensor(self.path))
                if self.path != "/_bench/counts":
                    hub.count(stop=False)
                if self.fault():
                    return
                url = urlsplit(self.path)
                if url.path in ("/hub/api", "/hub/api/"):
                    return self._reply(200, b'{"version": "6.1.1"}')
                if url.path == "/hub/api/user":
                    token = (self.headers.get("Authorization") or "").partition(" ")[2]
                    if token.startswith(("visitor-", "server-")):
                        # A page visitor's own token (bench/page_latency.py), or a server's
                        # (bench/notice_cost.py): who it is.
                        hub.count_visitor_check()
                        kind, _, name = token.partition("-")
                        model = {"kind": "user", "name": name, "admin": name == "admin", "groups": []}
                        # An admin's token with its default scopes may list users; a server's
                        # has the scopes of the page recipe's server_token_scopes.
                        scopes = ["access:services", *(["list:users"] if name == "admin" else [])]
                        if kind == "server":
                            scopes += [f"access:servers!server={name}/", f"users:activity!user={name}"]
                        return self._reply(200, json.dumps({**model, "scopes": scopes}).encode())
                    if token.startswith("made-up-"):
                        hub.count_refused_check()
                        return self._reply(403, b'{"status": 403, "message": "unknown token"}')
                    scopes = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
                    if hub.tabs:
                        scopes.append("tokens")  # to make each server's probe token
                    return self._reply(200, json.dumps({"name": "bench", "scopes": scopes}).encode())
                if url.path == "/_bench/counts":
                    with hub.lock:
                        return self._reply(200, json.dumps(hub.counts).encode())
                if url.path == "/hub/api/users":
                    query = parse_qs(url.query)
                    offset = int(query.get("offset", ["0"])[0])
                    limit = min(int(query.get("limit", [str(hub.page)])[0]), hub.page)
                    base = f"http://{self.headers.get('Host')}/hub/api/users"
                    return self._reply(200, hub.serve_page(offset, limit, base))
                self._reply(404, b'{"status": 404, "message": "not found"}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if self.fault():
                    return
                hub.count(stop=False)
                parts = urlsplit(self.path).path.split("/")
                if len(parts) == 6 and parts[-1] == "tokens":
                    # A probe token for one server (POST /users/NAME/tokens).
                    with hub.lock:
                        hub.counts["tokens_made"] += 1
                        made = hub.counts["tokens_made"]
                    body = {"token": f"probe-{parts[-2]}-{made}", "id": f"a{made}", "expires_at": None}
                    return self._reply(201, json.dumps(body).encode())
                self._reply(404, b'{"status": 404, "message": "not found"}')

            def do_DELETE(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if self.fault():
                    return
                parts = urlsplit(self.path).path.split("/")
                if len(parts) == 7 and parts[-2] == "tokens":
                    hub.count(stop=False)
                    with hub.lock:
                        hub.counts["tokens_deleted"] += 1
                    return self._reply(204)
                hub.count(stop=True)
                if not hub.stable and len(parts) > 4 and parts[-1] == "server":
                    hub.stop(parts[-2])
                self._reply(204)

        self.server = Listener(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # Cullers killed mid-request (the start-up bench) are expected: no tracebacks.
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub/api"

    def fault(self) -> str | None:
        """The fault to inject into this request, if any."""
        if not self.faults:
            return None
        with self.lock:
            n = self.counts["requests"] + self.counts["faults"]
            kind = "drop" if n % (7 * self.faults) == 0 else "503" if n % self.faults == 0 else None
            self.counts["faults"] += kind is not None
        return kind

    def count(self, stop: bool) -> None:
        with self.lock:
            if self.first_request is None:
                self.first_request = time.time()
                self.counts["first_request_at"] = self.first_request
            if stop and not self.counts["stops"]:
                self.counts["first_stop_at"] = time.time()
            self.counts["requests"] += 1
            self.counts["stops"] += stop

    def misbehave(self, handler: BaseHTTPRequestHandler) -> bool:
        """With ``--hostile``, what a user who runs their server against the culler does: in turn,
        ``503`` with ``Retry-After: 30``, a body trickled at a byte a second, or a connection held
        open without an answer. ``False`` for a server that answers as it should."""
        index = int(handler.path.split("/")[2].rpartition("-")[2])
        if not self.hostile_every or index % self.hostile_every != 1:
            return False
        with self.lock:
            self.counts["probes"] += 1
        kind = (index // self.hostile_every) % 3
        handler.close_connection = True
        try:
            if kind == 0:
                handler.send_response(503)
                handler.send_header("Retry-After", "30")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
            elif kind == 1:
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", "60")
                handler.end_headers()
                for _ in range(60):
                    handler.wfile.write(b" ")
                    handler.wfile.flush()
                    time.sleep(1)
            else:
                time.sleep(60)
        except OSError:
            pass  # the culler gave up on it
        return True

    def sensor(self, path: str) -> bytes:
        """cull-idle-sensor's answer for the server at ``path``: even users compute."""
        with self.lock:
            self.counts["probes"] += 1
        name = path.split("/")[2]
        busy = int(name.rpartition("-")[2]) % 2 == 0
        now = iso(datetime.now(timezone.utc))
        work = {"kernels": 1, "busy_kernels": int(busy), "connections": 1, "terminals": 0}
        return json.dumps({**work, "last_activity": now if busy else self.started}).encode()

    def count_visitor_check(self) -> None:
        with self.lock:
            self.counts["visitor_checks"] += 1

    def count_refused_check(self) -> None:
        with self.lock:
            self.counts["refused_checks"] += 1

    def stop(self, name: str) -> None:
        """Take user-NNNNNNN out of state=ready, as a real Hub does when its server stops."""
        with self.lock:
            if self.ready.remove(int(name.rpartition("-")[2])):
                self._pages.clear()

    def serve_page(self, offset: int, limit: int, base: str) -> bytes:
        body, items = self.render_page(offset, limit, base)
        if self.tabs:
            body = body.replace(NOW.encode(), iso(datetime.now(timezone.utc)).encode())
        with self.lock:
            self.counts["items"] += items
        return body

    def render_page(self, offset: int, limit: int, base: str) -> tuple[bytes, int]:
        """The page's body and number of users; cached until a user leaves state=ready."""
        key = (offset, limit)
        with self.lock:
            cached = self._pages.get(key)
            if cached is not None:
                return cached
            indices = self.ready.page(offset, limit)
            total = self.ready.count
        items = b",".join(self.users[i] for i in indices)
        end = offset + limit
        nxt = (
            json.dumps(
                {"offset": end, "limit": limit, "url": f"{base}?state=ready&offset={end}&limit={limit}"}
            )
            if end < total
            else "null"
        )
        pagination = f'{{"offset": {offset}, "limit": {limit}, "total": {total}, "next": {nxt}}}'
        body = b'{"items": [' + items + b'], "_pagination": ' + pagination.encode() + b"}"
        with self.lock:
            if total == self.ready.count:
                self._pages[key] = (body, len(indices))
        return body, len(indices)

    def prerender(self) -> None:
        for offset in range(0, len(self.users), self.page):
            self.render_page(offset, self.page, f"{self.url}/users")


def start_synthetic_hub(users: int, *args: str) -> tuple[subprocess.Popen[str], str]:
    """bench/synthetic_hub.py in a process of its own, and its API URL; closing its stdin ends it."""
    hub = subprocess.Popen(
        [sys.executable, __file__, str(users), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert hub.stdout is not None
    return hub, hub.stdout.readline().strip()


def main() -> None:
    args = sys.argv[1:]
    n = int(args[0])
    idle_every = int(args[args.index("--idle-every") + 1]) if "--idle-every" in args else 10
    page = int(args[args.index("--page") + 1]) if "--page" in args else 200
    faults = int(args[args.index("--faults") + 1]) if "--faults" in args else 0
    hostile = int(args[args.index("--hostile") + 1]) if "--hostile" in args else 0
    hub = SyntheticHub(
        n, idle_every, page, faults, stable="--stable" in args, tabs="--tabs" in args, hostile=hostile
    )
    hub.prerender()
    threading.Thread(target=hub.server.serve_forever, daemon=True).start()
    print(hub.url, flush=True)
    sys.stdin.read()
    hub.server.shutdown()
    print(json.dumps({**hub.counts, "first_request": hub.first_request}), flush=True)


if __name__ == "__main__":
    main()
