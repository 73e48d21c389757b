"""What servers that misbehave on purpose cost everyone else: one `--idle-by=work` pass over the
synthetic Hub's open-tab servers, with and without hostile ones among them.

    python bench/hostile_probes.py [SERVERS] [HOSTILE] [PROBE_TIMEOUT]   (default 1000 50 10)

Every server has a tab open; half have a kernel executing, the other half have done nothing for
three hours, so the culler asks every one and stops the idle half. HOSTILE of the idle servers
answer the probe badly, in turn: `503` with `Retry-After: 30`, a body trickled at a byte a
second, and a connection held open without an answer. The culler runs once at
`--concurrency=10`. Prints, with 0 and with HOSTILE hostile servers: the pass time, the time from
the culler's first Hub request to its first stop (of a well-behaved server: hostile ones are
never stopped in the pass, as a server that cannot be asked is judged by the Hub's count, which
sees the tab), the stops, the servers that did not answer in time, and the probe tokens made and
deleted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from synthetic_hub import start_synthetic_hub
from work_probes import PASS_DONE, counts


def run(n: int, hostile: int, probe_timeout: int) -> dict[str, Any]:
    hub, url = start_synthetic_hub(n, "--tabs", "--hostile", str(hostile))
    assert hub.stdin and hub.stdout
    origin = url.split("/hub/api")[0]
    command = [
        sys.executable,
        "-m",
        "cull_idle",
        "--timeout=3600",
        "--once",
        "--concurrency=10",
        f"--probe-timeout={probe_timeout}",
        "--idle-by=work",
        f"--server-url={origin}",
        "--log-level=info",
        "--page=false",
        "--state-file=:memory:",
    ]
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": "bench", "JUPYTERHUB_API_URL": url}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    found = PASS_DONE.search(done.stderr)
    seen = counts(url)
    hub.stdin.close()
    hub.wait(60)
    first_stop = seen["first_stop_at"] - seen["first_request_at"] if seen["first_stop_at"] else None
    return {
        "servers": n,
        "hostile": hostile,
        "probe_timeout": probe_timeout,
        "pass_seconds": float(found.group(1)) if found else None,
        "first_stop_seconds": round(first_stop, 2) if first_stop is not None else None,
        "stops": seen["stops"],
        "unanswered": done.stderr.count("Cannot ask server"),
        "tokens_made": seen["tokens_made"],
        "tokens_deleted": seen["tokens_deleted"],
        "exit": done.returncode,
    }


def main() -> None:
    args = [int(a) for a in sys.argv[1:]]
    n, hostile, probe_timeout = (args + [1000, 50, 10][len(args) :])[:3]
    for k in (0, hostile):
        print(json.dumps(run(n, k, probe_timeout)), flush=True)


if __name__ == "__main__":
    main()
