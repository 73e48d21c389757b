"""What warnings cost: `cull-idle --once` over N ready users with 10% inside the warning window,
with and without `--warn-before`, against the synthetic Hub.

    python bench/warning_cost.py [N ...]      (default: 100000)

The idle tenth has been idle for two hours and the timeout is 7,500 s, so with
`--warn-before=600` each of them is warned (and none culled). A second pass over the same
state finds them all warned already. Prints wall, CPU and peak RSS of the culler, the Hub
requests it made, and the state file's size.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from suite import run_measured
from synthetic_hub import start_synthetic_hub


def one_pass(n: int, extra: list[str], cwd: str) -> tuple[float, float, float, int]:
    hub, url = start_synthetic_hub(n, "--idle-every", "10", "--stable")
    assert hub.stdin and hub.stdout
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": "bench", "JUPYTERHUB_API_URL": url}
    command = [sys.executable, "-m", "cull_idle", "--once", "--timeout=7500", "--log-level=warning", *extra]
    here = os.getcwd()
    os.chdir(cwd)
    try:
        wall, cpu, rss = run_measured(command, env)
    finally:
        os.chdir(here)
    hub.stdin.close()
    counts = json.loads(hub.stdout.read().strip().splitlines()[-1])
    hub.wait()
    return wall, cpu, rss, counts["requests"]


def main() -> None:
    for n in [int(a) for a in sys.argv[1:]] or [100_000]:
        with tempfile.TemporaryDirectory() as cwd:
            state = Path(cwd) / "state.sqlite"
            runs = [
                ("no warnings", []),
                ("warnings, first pass", ["--warn-before=600", f"--state-file={state}"]),
                ("warnings, next pass", ["--warn-before=600", f"--state-file={state}"]),
            ]
            for label, extra in runs:
                wall, cpu, rss, requests = one_pass(n, extra, cwd)
                size = (
                    state.stat().st_size + sum(p.stat().st_size for p in Path(cwd).glob("state.sqlite-*"))
                    if state.exists()
                    else 0
                )
                print(
                    f"{n:>9} users, {label:<22} wall {wall:6.2f}s  CPU {cpu:6.2f}s  "
                    f"peak RSS {rss:6.1f} MiB  Hub requests {requests:>5}  state {size / 1024:8.0f} KiB"
                )


if __name__ == "__main__":
    main()
