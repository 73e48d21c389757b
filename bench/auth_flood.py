"""Whether a flood of made-up tokens at the page slows culling: a pass's duration on a
synthetic Hub of N users, alone and while M random tokens are sent to `api/me`, and the Hub
requests the flood caused.

    python bench/auth_flood.py [N] [M]      (default: 10000 users, 20000 tokens)

The culler runs with `--web-bind`, `--cull-every=1` and `--timeout=5400` against the synthetic
Hub (a tenth of the users idle for two hours, so each pass lists everyone and stops a thousand
servers that stay listed: `--stable`). Pass durations come from its "Cull pass done in" lines.
A flood is 32 threads, each on its own connection, each of M new tokens sent once; floods
follow one another until 15 passes have run during them, and the same for the control.

On a small machine the flood's own client takes CPU the pass needs, so the culler and the
synthetic Hub run on the first CPU and this process, the flood's client, on the others; and
the same flood is also sent at a trivial server of this process's own (the control), to tell
what the flood costs the machine from what it costs the culler.
"""

from __future__ import annotations

import http.client
import http.server
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from page_latency import PREFIX, counts, page_env, wait_for_first_pass
from synthetic_hub import start_synthetic_hub

from hubharness.launcher import free_port

DONE = re.compile(r"Cull pass done in ([0-9.]+)s")


class Passes:
    """Collects the culler's pass durations from its log, as they come."""

    def __init__(self, stream: Any) -> None:
        self.durations: list[tuple[float, float]] = []  # (when seen, seconds)
        self.lock = threading.Lock()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            match = DONE.search(line)
            if match:
                with self.lock:
                    self.durations.append((time.monotonic(), float(match.group(1))))

    def between(self, start: float, end: float) -> list[float]:
        with self.lock:
            return [d for at, d in self.durations if start <= at <= end]

    def wait_for(self, count: int, after: float) -> None:
        deadline = time.monotonic() + 600
        while len(self.between(after, time.monotonic())) < count:
            assert time.monotonic() < deadline, "passes stopped coming"
            time.sleep(0.1)


def flood(port: int, tokens: list[str]) -> dict[str, int]:
    answers: dict[str, int] = {}
    lock = threading.Lock()

    def worker(chunk: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        seen: dict[str, int] = {}
        for token in chunk:
            conn.request("GET", PREFIX + "api/me", headers={"Authorization": f"token {token}"})
            response = conn.getresponse()
            response.read()
            key = str(response.status)
            seen[key] = seen.get(key, 0) + 1
        conn.close()
        with lock:
            for key, n in seen.items():
                answers[key] = answers.get(key, 0) + n

    threads = 32
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, [tokens[i::threads] for i in range(threads)]))
    return answers


class Control:
    """A trivial server that refuses every token, in this process: the control's target."""

    def __init__(self) -> None:
        class Refuse(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin() -> tuple[list[str], set[int]]:
    """The command prefix that puts the culler on the first CPU, and the CPUs left for the flood."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return [], set(cpus)
    return ["taskset", "-c", str(cpus[0])], set(cpus[1:])


def measure(n: int = 10_000, m: int = 20_000, passes: int = 15) -> dict[str, Any]:
    hub, api_url = start_synthetic_hub(n, "--idle-every", "10", "--stable", "--page", "1000")
    prefix, flood_cpus = pin()
    if prefix:
        os.sched_setaffinity(hub.pid, {int(prefix[-1])})
        os.sched_setaffinity(0, flood_cpus)
    port = free_port()
    env = page_env(api_url)
    results: dict[str, Any] = {"users": n, "tokens": m, "pinned": bool(prefix)}
    with tempfile.TemporaryDirectory() as cwd:
        culler = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                "-m",
                "cull_idle",
                "--timeout=5400",
                "--cull-every=1",
                f"--web-bind=127.0.0.1:{port}",
                "--log-level=info",
            ],
            env=env,
            cwd=cwd,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            seen = Passes(culler.stderr)
            wait_for_first_pass(port)
            began = time.monotonic()
            seen.wait_for(passes, began)
            alone = seen.between(began, time.monotonic())
            control = Control()
            began = time.monotonic()
            while len(seen.between(began, time.monotonic())) < passes:
                flood(control.port, [f"made-up-{uuid.uuid4().hex}" for _ in range(m)])
            controlled = seen.between(began, time.monotonic())
            control.close()
            before = counts(api_url)
            cpu = cpu_seconds(culler.pid)
            began = time.monotonic()
            # Floods of m new tokens each, until enough passes ran during them for a median.
            answers: dict[str, int] = {}
            floods = 0
            while floods == 0 or len(seen.between(began, time.monotonic())) < passes:
                for code, k in flood(port, [f"made-up-{uuid.uuid4().hex}" for _ in range(m)]).items():
                    answers[code] = answers.get(code, 0) + k
                floods += 1
            ended = time.monotonic()
            results["floods"] = floods
            results["culler_cpu_seconds_during_flood"] = cpu_seconds(culler.pid) - cpu
            after = counts(api_url)
            during = seen.between(began, ended)
            results["alone"] = {"median": statistics.median(alone), "max": max(alone), "n": len(alone)}
            for label, durations in [("flooded", during), ("control", controlled)]:
                if durations:
                    results[label] = {
                        "median": statistics.median(durations),
                        "max": max(durations),
                        "n": len(durations),
                    }
            results["flood_seconds"] = ended - began
            results["answers"] = answers
            results["flood_hub_requests"] = (after["refused_checks"] - before["refused_checks"]) / floods
        finally:
            culler.terminate()
            culler.wait(30)
            assert hub.stdin
            hub.stdin.close()
            hub.wait()
    return results


def main() -> None:
    args = [int(a) for a in sys.argv[1:]]
    r = measure(*args)
    alone = r["alone"]
    print(
        f"{r['users']} users: a pass alone takes {alone['median']:.3f}s "
        f"(median of {alone['n']}, max {alone['max']:.3f}s)"
    )
    for label, what in [("flooded", "the culler's page"), ("control", "an unrelated server (control)")]:
        if label in r:
            p = r[label]
            change = 100 * (p["median"] / alone["median"] - 1)
            print(
                f"while {r['tokens']} made-up tokens go to {what}: {p['median']:.3f}s "
                f"(median of {p['n']}, max {p['max']:.3f}s), {change:+.1f}%"
            )
    print(
        f"{r['floods']} floods of {r['tokens']}: answers {r['answers']}; "
        f"Hub requests each flood caused: {r['flood_hub_requests']:.0f}"
    )
    print(
        f"the culler's CPU during the floods: {r['culler_cpu_seconds_during_flood']:.2f}s (passes included)"
    )


if __name__ == "__main__":
    main()
