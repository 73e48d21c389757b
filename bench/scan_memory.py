"""Peak RSS and CPU of one `cull-idle --once` pass over a fake Hub with N ready, active users.

    python bench/scan_memory.py [N ...]      (default: 10000 100000)

The fake Hub serves pre-rendered pages of 200 users from memory (tests/fakehub.py), so the
culler, not the Hub, is measured. Nobody is idle: what is held is what listing costs. The fake
Hub runs in its own process: a child's peak RSS counts what it had as a fork of its parent
before `exec`, so a parent holding the pages would inflate the culler's figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakehub import FakeHub, user

PAGE = 200


def pages(n: int) -> dict[str, list]:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    routes: dict[str, list] = {"GET /": [(200, {"version": "6.1.1"})]}
    for offset in range(0, n, PAGE):
        items = [user(f"user-{i:07d}", last_activity=now) for i in range(offset, min(n, offset + PAGE))]
        nxt = offset + PAGE if offset + PAGE < n else None
        body = json.dumps(
            {
                "items": items,
                "_pagination": {
                    "offset": offset,
                    "limit": PAGE,
                    "total": n,
                    "next": None if nxt is None else {"offset": nxt, "limit": PAGE, "url": ""},
                },
            }
        ).encode()
        key = f"GET /users?state=ready&offset={offset}&limit" if offset else "GET /users?state=ready&limit"
        routes[key] = [(200, body)]
    return routes


def serve(n: int) -> None:
    hub = FakeHub(pages(n))
    print(hub.url, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    hub.close()


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
        return
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    for n in sizes:
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout and server.stdin
        url = server.stdout.readline().strip()
        env = {**os.environ, "JUPYTERHUB_API_TOKEN": "bench", "JUPYTERHUB_API_URL": url}
        started = time.monotonic()
        culler = subprocess.Popen(
            [sys.executable, "-m", "cull_idle", "--once", "--log-level=warning"],
            env=env,
            stderr=subprocess.PIPE,
        )
        # wait4: this child's own usage, not that of every child so far (the fake Hubs too).
        _, status, usage = os.wait4(culler.pid, 0)
        wall = time.monotonic() - started
        server.stdin.close()
        server.wait()
        assert os.waitstatus_to_exitcode(status) == 0, culler.stderr.read() if culler.stderr else ""
        cpu = usage.ru_utime + usage.ru_stime
        rss = usage.ru_maxrss / 1024
        print(f"{n:>9} users: wall {wall:6.2f}s  culler CPU {cpu:6.2f}s  peak RSS {rss:6.1f} MiB")


if __name__ == "__main__":
    main()
