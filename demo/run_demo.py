"""A throw-away JupyterHub on loopback with cull-idle as a Hub-managed service.

Five demo users get servers: two look idle for an hour, three are fresh. With ``--timeout=30``
the culler stops the idle two at its first pass and the fresh three about 30 s later. The
culler's own log lines (from the Hub's log) are printed as they come. Exits 0 once every demo
server was culled, 1 if that did not happen within the time limit.

    python demo/run_demo.py [--timeout SECONDS] [--limit SECONDS]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hubharness.launcher import TestHub, free_port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=int, default=30, help="the culler's --timeout (default 30)")
    parser.add_argument(
        "--limit", type=float, default=90, help="give up after this many seconds (default 90)"
    )
    args = parser.parse_args()

    culler = [
        sys.executable,
        "-m",
        "cull_idle",
        f"--timeout={args.timeout}",
        "--cull-every=5",
        "--cull-users",
    ]
    env = {"TEST_MANAGED_CULLER": "\x1f".join(culler)}
    chp = shutil.which("configurable-http-proxy", path=os.path.dirname(sys.executable)) or shutil.which(
        "configurable-http-proxy"
    )
    if chp:
        env.update(TEST_CHP_COMMAND=chp, TEST_CHP_API_PORT=str(free_port()))
    print(f"Starting JupyterHub ({'configurable-http-proxy' if chp else 'in-memory proxy'}) with the culler:")
    print("  " + " ".join(["python", *culler[1:]]))
    hub = TestHub(extra_env=env).start()
    try:
        users = [f"demo-{i}" for i in range(1, 6)]
        hub.create_users(users)
        hub.start_servers([(u, "") for u in users])
        hub.set_times([{"user": u, "server": "", "last_activity_ago": 3600} for u in users[:2]])
        print(
            f"Hub at {hub.api_url}: {len(users)} servers running, "
            f"{users[0]} and {users[1]} idle for an hour\n"
        )
        started = time.monotonic()
        printed = 0
        culled_at = None

        def print_new_lines() -> list[str]:
            nonlocal printed
            lines = hub.log_path.read_text(errors="replace").splitlines()
            new = [line for line in lines[printed:] if "cull_idle" in line or "culler-managed" in line]
            for line in new:
                print(line)
            printed = len(lines)
            return new

        while time.monotonic() - started < args.limit:
            new = print_new_lines()
            if culled_at is not None and any("Cull pass done" in line for line in new):
                # The Hub reports a server gone while the pass that stopped it is still
                # logging; its summary line ends what the demo shows.
                print(f"\nAll demo servers were culled within {culled_at:.0f}s.")
                return 0
            if culled_at is None and not any(hub.running(u) for u in users):
                culled_at = time.monotonic() - started
            time.sleep(0.5)
        print(f"\nNot every demo server was culled within {args.limit:.0f}s; see {hub.log_path}")
        return 1
    finally:
        hub.stop()


if __name__ == "__main__":
    sys.exit(main())
