"""Peak RSS and CPU of one `cull-idle --once` pass over N ready users, none of them idle.

    python bench/scan_memory.py [N ...]      (default: 10000 100000 1000000)

What listing alone costs the culler: with nothing to cull, memory must not depend on N.
`bench/suite.py --sections scale` measures the same with 10% idle, against the reference.
"""

from __future__ import annotations

import os
import sys

from suite import run_measured
from synthetic_hub import start_synthetic_hub


def main() -> None:
    for n in [int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000]:
        hub, url = start_synthetic_hub(n, "--idle-every", "0")
        assert hub.stdin
        env = {**os.environ, "JUPYTERHUB_API_TOKEN": "bench", "JUPYTERHUB_API_URL": url}
        command = [sys.executable, "-m", "cull_idle", "--once", "--log-level=warning"]
        wall, cpu, rss = run_measured(command, env)
        hub.stdin.close()
        hub.wait()
        print(f"{n:>9} users: wall {wall:6.2f}s  culler CPU {cpu:6.2f}s  peak RSS {rss:6.1f} MiB")


if __name__ == "__main__":
    main()
