"""What judging idleness by work costs: `cull-idle --idle-by=work` against the synthetic Hub in
its open-tab mode (`--tabs`), beside the same culler judging by the Hub.

    python bench/work_probes.py [--passes P] [--timeout S] [--every S] [N ...]   (default: 1000 10000)

Every server has a tab open, so the Hub sees all of them active; half have a kernel executing,
the other half have done nothing since they started three hours ago. By work, the idle half is
stopped at the first pass and the busy half kept; by the Hub, nothing is stopped. The culler
runs P passes, `--every` seconds apart, with a `--timeout` short enough that the busy half comes
due again within the run. Prints, per mode: servers asked (probes) in total and per hour, the Hub
requests of the first pass and per pass (listing; stops are counted apart), the pass time, and the
culler's CPU seconds and peak RSS, read from /proc before it is stopped.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from synthetic_hub import start_synthetic_hub

PASS_DONE = re.compile(r"Cull pass done in ([0-9.]+)s")


def counts(url: str) -> dict[str, int]:
    origin = url.split("/hub/api")[0]
    with urllib.request.urlopen(f"{origin}/_bench/counts", timeout=30) as r:
        found: dict[str, int] = json.load(r)
        return found


def proc_usage(pid: int) -> tuple[float, float]:
    """CPU seconds and peak RSS (MiB) of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = Path(f"/proc/{pid}/status").read_text()
    hwm = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    return cpu, hwm / 1024


def run(n: int, by_work: bool, passes: int, timeout: int, every: int) -> dict[str, Any]:
    hub, url = start_synthetic_hub(n, "--tabs")
    assert hub.stdin and hub.stdout
    origin = url.split("/hub/api")[0]
    command = [
        sys.executable,
        "-m",
        "cull_idle",
        f"--timeout={timeout}",
        f"--cull-every={every}",
        "--log-level=info",
        "--page=false",
        "--state-file=:memory:",
    ]
    if by_work:
        command += ["--idle-by=work", f"--server-url={origin}"]
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": "bench", "JUPYTERHUB_API_URL": url}
    culler = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert culler.stderr
    seconds: list[float] = []
    first: dict[str, int] = {}
    started = time.monotonic()
    for line in culler.stderr:
        found = PASS_DONE.search(line)
        if found:
            seconds.append(float(found.group(1)))
            if len(seconds) == 1:
                first = counts(url)
            if len(seconds) == passes:
                break
    elapsed = time.monotonic() - started
    cpu, rss = proc_usage(culler.pid)
    culler.send_signal(signal.SIGTERM)
    culler.wait(60)
    seen = counts(url)
    hub.stdin.close()
    hub.wait(60)
    listing = seen["requests"] - seen["stops"]
    return {
        "servers": n,
        "mode": "work" if by_work else "hub",
        "passes": len(seconds),
        "run_seconds": round(elapsed, 1),
        "probes": seen["probes"],
        "probes_per_hour": round(seen["probes"] * 3600 / elapsed),
        "every_server_every_pass": n * len(seconds),
        # The first pass lists every user in both modes; later ones list fewer by work, as the
        # idle half has been stopped.
        "hub_requests_first_pass": first.get("requests", 0) - first.get("stops", 0),
        "hub_requests_per_pass": round(listing / max(1, len(seconds)), 1),
        "stops": seen["stops"],
        "pass_seconds_first": seconds[0] if seconds else None,
        "pass_seconds_median": sorted(seconds)[len(seconds) // 2] if seconds else None,
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mib": round(rss, 1),
    }


def main() -> None:
    args = sys.argv[1:]

    def option(name: str, default: int) -> int:
        if name in args:
            i = args.index(name)
            value = int(args[i + 1])
            del args[i : i + 2]
            return value
        return default

    passes = option("--passes", 20)
    timeout = option("--timeout", 30)
    every = option("--every", 3)
    sizes = [int(a) for a in args] or [1000, 10000]
    for n in sizes:
        for by_work in (False, True):
            print(json.dumps(run(n, by_work, passes, timeout, every)), flush=True)


if __name__ == "__main__":
    main()
