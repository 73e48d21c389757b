"""What the page costs: latency of the user page, `api/me` and the operators' view with N
running servers listed, and the Hub requests that page views make.

    python bench/page_latency.py [N] [VIEWS]      (default: 10000 servers, 2000 views)

The culler runs with `--web-bind` against the synthetic Hub (every user has a running server,
a tenth of them idle for two hours, none due: `--timeout` is a day). After its first pass,
views are made one after another on one keep-alive connection, then by a class of 100
visitors at once (their first views, then ten reloads each). A first view that finds the page's
budget of Hub requests spent is answered 503 and reloaded a second later, as a browser does.
Visitors send their own token (`visitor-NAME`), which the synthetic Hub checks and counts, so
"Hub requests" counts exactly what the page asked of the Hub.
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
from typing import Any, Optional
from urllib.parse import urlsplit

from synthetic_hub import start_synthetic_hub

from hubharness.launcher import free_port

PREFIX = "/services/cull-idle/"


def counts(api_url: str) -> dict[str, int]:
    parts = urlsplit(api_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", "/_bench/counts")
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body


def timed_views(port: int, path: str, token: str, n: int, busy: Optional[list[int]] = None) -> list[float]:
    """Milliseconds of each of ``n`` GETs of ``path`` on one connection. A 503 (the page's
    budget of Hub requests in use) is tried again after its Retry-After, as the browser does
    on its own (the page sends `Refresh`); the time counts, and ``busy`` counts the 503s."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for _ in range(n):
        began = time.perf_counter()
        while True:
            conn.request("GET", PREFIX + path, headers={"Authorization": f"token {token}"})
            response = conn.getresponse()
            response.read()
            if response.status != 503 or busy is None:
                break
            busy.append(1)
            time.sleep(float(response.getheader("Retry-After") or 1))
        assert response.status == 200, (path, response.status)
        times.append((time.perf_counter() - began) * 1000)
    conn.close()
    return times


def percentiles(times: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(times, n=100)
    return {"p50": statistics.median(times), "p99": cuts[98], "max": max(times), "n": len(times)}


def shown(p: dict[str, float]) -> str:
    return f"p50 {p['p50']:.2f} ms, p99 {p['p99']:.2f} ms, max {p['max']:.2f} ms"


def page_env(api_url: str) -> dict[str, str]:
    """The environment of a culler serving the page at PREFIX for the synthetic Hub."""
    return {
        **os.environ,
        "JUPYTERHUB_API_TOKEN": "bench",
        "JUPYTERHUB_API_URL": api_url,
        "JUPYTERHUB_SERVICE_NAME": "cull-idle",
        "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
        "JUPYTERHUB_CLIENT_ID": "service-cull-idle",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": PREFIX + "oauth_callback",
    }


def start_page_culler(api_url: str, port: int, cwd: str, *extra: str) -> subprocess.Popen[bytes]:
    """The culler serving its page at ``port`` for the synthetic Hub, with a pass an hour and
    nothing due (``--timeout`` is a day)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cull_idle",
            "--timeout=86400",
            "--cull-every=3600",
            *extra,
            f"--web-bind=127.0.0.1:{port}",
            f"--state-file={cwd}/state.sqlite",
            "--log-level=warning",
        ],
        env=page_env(api_url),
        cwd=cwd,
    )


def measure(n: int = 10_000, views: int = 2000) -> dict[str, Any]:
    """Every figure the module docstring names, as a dict (bench/suite.py's "page" section)."""
    results: dict[str, Any] = {"servers": n, "views": views}
    hub, api_url = start_synthetic_hub(n, "--idle-every", "10", "--stable", "--page", "1000")
    port = free_port()
    with tempfile.TemporaryDirectory() as cwd:
        culler = start_page_culler(api_url, port, cwd, "--max-keep-alive=7200")
        try:
            wait_for_first_pass(port)
            status = Path(f"/proc/{culler.pid}/status").read_text()
            results["culler_rss_mib"] = int(status.split("VmRSS:")[1].split()[0]) / 1024
            before = counts(api_url)
            for label, path, token in [
                ("user page", "", "visitor-user-0000042"),
                ("api/me", "api/me", "visitor-user-0000042"),
                ("operators' view", "admin", "visitor-admin"),
                ("api/admin", "api/admin", "visitor-admin"),
            ]:
                timed_views(port, path, token, 20)  # warm the connection and the auth cache
                results[label] = percentiles(timed_views(port, path, token, views))
            after = counts(api_url)
            results["sequential_views"] = 4 * (views + 20)
            results["sequential_hub_requests"] = after["requests"] - before["requests"]

            # A class of 100 at once, each with their own token: first views (each checks its
            # token with the Hub, at most --concurrency at a time), then 10 reloads each.
            before = counts(api_url)

            busy: list[int] = []

            def first(i: int) -> list[float]:
                return timed_views(port, "", f"visitor-user-{i:07d}", 1, busy)

            def reloads(i: int) -> list[float]:
                return timed_views(port, "", f"visitor-user-{i:07d}", 10)

            with ThreadPoolExecutor(100) as pool:
                cold = [t for ts in pool.map(first, range(100)) for t in ts]
                warm = [t for ts in pool.map(reloads, range(100)) for t in ts]
            after = counts(api_url)
            results["class first views"] = percentiles(cold)
            results["class reloads"] = percentiles(warm)
            results["class_hub_requests"] = after["requests"] - before["requests"]
            results["class_token_checks"] = after["visitor_checks"] - before["visitor_checks"]
            results["class_busy_answers"] = len(busy)
        finally:
            culler.terminate()
            culler.wait(30)
            assert hub.stdin
            hub.stdin.close()
            hub.wait()
    return results


def wait_for_first_pass(port: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", PREFIX + "health")
            if json.loads(conn.getresponse().read())["status"] == "ok":
                return
        except (OSError, ValueError):
            pass
        assert time.monotonic() < deadline, "the culler's first pass did not end"
        time.sleep(0.2)


LABELS = ["user page", "api/me", "operators' view", "api/admin", "class first views", "class reloads"]


def main() -> None:
    args = [int(a) for a in sys.argv[1:]]
    r = measure(*args)
    print(
        f"{r['servers']} running servers listed; "
        f"culler RSS after its first pass {r['culler_rss_mib']:.1f} MiB"
    )
    for label in LABELS:
        print(f"{label:18} {r[label]['n']} views: {shown(r[label])}")
    print(f"Hub requests for {r['sequential_views']} views by two visitors: {r['sequential_hub_requests']}")
    print(
        f"Hub requests for the class's 1100 views: {r['class_hub_requests']} "
        f"({r['class_token_checks']} token checks, one per visitor); "
        f"{r['class_busy_answers']} first views answered 503 and reloaded after 1 s"
    )


if __name__ == "__main__":
    main()
