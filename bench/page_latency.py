"""What the page costs: latency of the user page, `api/me` and the operators' view with N
running servers listed, and the Hub requests that page views make.

    python bench/page_latency.py [N] [VIEWS]      (default: 10000 servers, 2000 views)

The culler runs with `--web-bind` against the synthetic Hub (every user has a running server,
a tenth of them idle for two hours, none due: `--timeout` is a day). After its first pass,
views are made one after another on one keep-alive connection, then by a class of 100
visitors at once. Visitors send their own token (`visitor-NAME`), which the synthetic Hub
checks and counts, so "Hub requests" counts exactly what the page asked of the Hub.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from suite import start_synthetic_hub  # noqa: E402

from hubharness.launcher import free_port  # noqa: E402

PREFIX = "/services/cull-idle/"


def counts(api_url: str) -> dict[str, int]:
    parts = urlsplit(api_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", "/_bench/counts")
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body


def timed_views(port: int, path: str, token: str, n: int) -> list[float]:
    """Milliseconds of each of ``n`` GETs of ``path`` on one connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for _ in range(n):
        began = time.perf_counter()
        conn.request("GET", PREFIX + path, headers={"Authorization": f"token {token}"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, (path, response.status)
        times.append((time.perf_counter() - began) * 1000)
    conn.close()
    return times


def percentiles(times: list[float]) -> str:
    cuts = statistics.quantiles(times, n=100)
    return f"p50 {statistics.median(times):.2f} ms, p99 {cuts[98]:.2f} ms, max {max(times):.2f} ms"


def main() -> None:
    args = [int(a) for a in sys.argv[1:]]
    n = args[0] if args else 10_000
    views = args[1] if len(args) > 1 else 2000
    hub, api_url = start_synthetic_hub(n, "--idle-every", "10", "--stable", "--page", "1000")
    port = free_port()
    env = {
        **os.environ,
        "JUPYTERHUB_API_TOKEN": "bench",
        "JUPYTERHUB_API_URL": api_url,
        "JUPYTERHUB_SERVICE_NAME": "cull-idle",
        "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
        "JUPYTERHUB_CLIENT_ID": "service-cull-idle",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": PREFIX + "oauth_callback",
    }
    with tempfile.TemporaryDirectory() as cwd:
        culler = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cull_idle",
                "--timeout=86400",
                "--cull-every=3600",
                "--max-keep-alive=7200",
                f"--web-bind=127.0.0.1:{port}",
                f"--state-file={cwd}/state.sqlite",
                "--log-level=warning",
            ],
            env=env,
            cwd=cwd,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", PREFIX + "health")
                    if json.loads(conn.getresponse().read())["status"] == "ok":
                        break
                except (OSError, ValueError):
                    pass
                assert time.monotonic() < deadline, "the culler's first pass did not end"
                time.sleep(0.2)
            rss = int(Path(f"/proc/{culler.pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024
            print(f"{n} running servers listed; culler RSS after its first pass {rss:.1f} MiB")
            before = counts(api_url)
            for label, path, token in [
                ("user page", "", "visitor-user-0000042"),
                ("api/me", "api/me", "visitor-user-0000042"),
                ("operators' view", "admin", "visitor-admin"),
                ("api/admin", "api/admin", "visitor-admin"),
            ]:
                timed_views(port, path, token, 20)  # warm the connection and the auth cache
                times = timed_views(port, path, token, views)
                print(f"{label:16} {views} views: {percentiles(times)}")
            after = counts(api_url)
            same = after["requests"] - before["requests"]
            print(f"Hub requests for {4 * (views + 20)} views by two visitors: {same}")

            # A class of 100 at once, each with their own token, each reloading 10 times.
            before = counts(api_url)

            def visitor(i: int) -> list[float]:
                return timed_views(port, "", f"visitor-user-{i:07d}", 10)

            with ThreadPoolExecutor(100) as pool:
                times = [t for ts in pool.map(visitor, range(100)) for t in ts]
            after = counts(api_url)
            print(f"class of 100, 1000 views at once: {percentiles(times)}")
            print(
                f"Hub requests for those 1000 views: {after['requests'] - before['requests']} "
                f"({after['visitor_checks'] - before['visitor_checks']} token checks, one per visitor)"
            )
        finally:
            culler.terminate()
            culler.wait(30)
            assert hub.stdin
            hub.stdin.close()
            hub.wait()


if __name__ == "__main__":
    main()
