"""Pass time for N idle servers whose stop takes S seconds, cull-idle against the reference.

    python bench/stop_concurrency.py [--servers 20] [--stop 1] [--concurrency 10] [--runs 3]

Needs the test dependencies (scripts/setup-dev.sh) and, for the comparison,
``pip install jupyterhub-idle-culler==2.0.0``. Each run starts N fresh servers on one real
JupyterHub (the test harness's process-free spawner, whose ``sleep*`` servers take
``TEST_SLEEP_STOP`` seconds to stop) and times one pass of each culler.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import cull_idle

from hubharness.launcher import TestHub


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--stop", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    try:
        import jupyterhub_idle_culler
    except ImportError:
        jupyterhub_idle_culler = None
    quiet = logging.getLogger("bench")
    quiet.setLevel(logging.ERROR)
    logging.getLogger("cull_idle").setLevel(logging.ERROR)
    hub = TestHub(extra_env={"TEST_SLEEP_STOP": str(args.stop), "TEST_SLOW_STOP_TIMEOUT": "60"}).start()
    names = [f"sleep{i:04d}" for i in range(args.servers)]
    hub.create_users(names)
    results: dict[str, list[float]] = {"cull-idle": [], "jupyterhub-idle-culler": []}
    try:
        for _ in range(args.runs):
            for label in results:
                if label == "jupyterhub-idle-culler" and jupyterhub_idle_culler is None:
                    continue
                hub.start_servers([(n, "") for n in names])
                hub.set_times([{"user": n, "server": "", "last_activity_ago": 7200} for n in names])
                started = time.monotonic()
                if label == "cull-idle":
                    report = cull_idle.cull_idle_blocking(
                        hub.api_url, hub.cull_token, 600, concurrency=args.concurrency
                    )
                    assert len(report.stopped) == args.servers, report
                else:
                    asyncio.run(
                        jupyterhub_idle_culler.cull_idle(
                            hub.api_url, hub.cull_token, 600, quiet, concurrency=args.concurrency
                        )
                    )
                results[label].append(time.monotonic() - started)
                assert not any(hub.running(n) for n in names)
    finally:
        hub.stop()
    limit = math.ceil(args.servers / args.concurrency) * args.stop
    print(
        f"{args.servers} idle servers, stop {args.stop}s each, concurrency {args.concurrency}; "
        f"limit ceil(N/C)*S = {limit:.1f}s; {args.runs} runs"
    )
    for label, times in results.items():
        if times:
            print(
                f"  {label:24s} median {statistics.median(times):6.2f}s  "
                f"(min {min(times):.2f}, max {max(times):.2f})"
            )
    if all(results.values()):
        ratio = statistics.median(results["jupyterhub-idle-culler"]) / statistics.median(results["cull-idle"])
        print(f"  reference / cull-idle: {ratio:.1f}x")


if __name__ == "__main__":
    main()
