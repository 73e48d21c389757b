"""Soak: the culler running pass after pass against a misbehaving Hub, watched from outside.

    python bench/soak.py [--minutes 30] [--users 5000] [--faults 40] [--out docs]

A synthetic Hub (bench/synthetic_hub.py) with --users users, 10% idle, answers every
--faults-th request 503 and drops every 7*--faults-th without an answer. `python -m cull_idle`
runs with --cull-every=1 and serves its metrics; every 5 s the soak reads its RSS and open file
descriptors from /proc and its pass counters from /metrics. Writes docs/reliability.md with
the figures and a chart. It passes if the process never exited, every pass ran, and RSS and
descriptors stayed flat (the last quarter's maximum within 10% of the first quarter's).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def metric(text: str, name: str) -> float:
    total = 0.0
    for match in re.finditer(rf"^cull_idle_{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M):
        total += float(match.group(1))
    return total


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--faults", type=int, default=40)
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    hub = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "synthetic_hub.py"),
            str(args.users),
            "--stable",  # stops change nothing, so every pass finds the same idle users to cull
            "--faults",
            str(args.faults),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert hub.stdin and hub.stdout
    url = hub.stdout.readline().strip()
    port = free_port()
    log_path = out / "soak-culler.log"
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": "soak-token", "JUPYTERHUB_API_URL": url}
    with open(log_path, "w") as log:
        culler = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cull_idle",
                "--timeout=600",
                "--cull-every=1",
                f"--metrics-bind=127.0.0.1:{port}",
                "--log-level=warning",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    samples: list[tuple[float, float, int, float, float, float]] = []
    started = time.monotonic()
    deadline = started + args.minutes * 60
    try:
        while time.monotonic() < deadline:
            time.sleep(5)
            assert culler.poll() is None, f"the culler exited with {culler.returncode}"
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            except OSError:
                continue
            samples.append(
                (
                    time.monotonic() - started,
                    rss_mib(culler.pid),
                    len(os.listdir(f"/proc/{culler.pid}/fd")),
                    metric(text, "passes_total"),
                    metric(text, "passes_failed_total"),
                    metric(text, "hub_request_errors_total"),
                )
            )
            t, rss, fds, passes, failed, errors = samples[-1]
            print(
                f"{t:7.0f}s RSS {rss:6.1f} MiB  fds {fds:3d}  passes {passes:5.0f}  failed {failed:4.0f}  "
                f"request errors {errors:6.0f}",
                flush=True,
            )
    finally:
        culler.send_signal(2)
        code = culler.wait(10)
        hub.stdin.close()
        hub.wait()
    quarter = max(1, len(samples) // 4)
    first, last = samples[:quarter], samples[-quarter:]
    rss_first, rss_last = max(s[1] for s in first), max(s[1] for s in last)
    fd_first, fd_last = max(s[2] for s in first), max(s[2] for s in last)
    t, _, _, passes, failed, errors = samples[-1]
    flat = rss_last <= rss_first * 1.1 and fd_last <= fd_first * 1.1
    log_text = log_path.read_text()
    tracebacks = log_text.count("Traceback")
    leaked = "soak-token" in log_text
    ok = flat and code == 0 and not tracebacks and not leaked
    version = __import__("cull_idle").__version__
    lines = [
        "# Reliability: a soak against a misbehaving Hub",
        "",
        f"`python bench/soak.py --minutes {args.minutes:g} --users {args.users} --faults {args.faults}`",
        f"(cull-idle {version}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores).",
        "",
        f"A synthetic Hub with {args.users} users, 10% of them idle, answered every {args.faults}th request",
        f"503 and dropped every {7 * args.faults}th without answering. The culler ran with `--cull-every=1`",
        "for the whole time; every 5 s its RSS and open file descriptors were read from /proc and its",
        "counters from its own /metrics.",
        "",
        "| | |",
        "| --- | --- |",
        f"| duration | {t / 60:.1f} min |",
        f"| passes | {passes:.0f} ({failed:.0f} could not list every user; the next pass tried again) |",
        f"| failed requests to the Hub (injected 503s and drops, and their retries) | {errors:.0f} |",
        f"| RSS, max of the first / last quarter | {rss_first:.1f} / {rss_last:.1f} MiB |",
        f"| open file descriptors, max of the first / last quarter | {fd_first} / {fd_last} |",
        f"| tracebacks in the culler's log | {tracebacks} |",
        f"| the token in the culler's log | {'YES' if leaked else 'no'} |",
        f"| exit status after SIGINT | {code} |",
        f"| verdict | {'flat, no crash' if ok else 'FAILED'} |",
        "",
        "![RSS and descriptors over time](soak.png)",
        "",
        "## What else stands behind this",
        "",
        "- `tests/test_faults.py`: a scripted fake Hub answering 5xx, 429 with and without `Retry-After`,",
        "  hanging, resetting mid-body, truncated, malformed and HTML bodies, wrong types and absurd",
        "  timestamps, a 2 GB body, duplicates across pages, next pages that do not advance. The process",
        "  never exits, nothing is stopped on data that did not parse, and the next pass culls normally.",
        "- `tests/test_operations.py`: a real Hub down for ten passes and back; a managed culler whose Hub",
        "  dies exits instead of running on as an orphan; SIGINT/SIGTERM mid-pass exit 0 at once.",
        "- `tests/test_internal_ssl.py`: a real Hub with `internal_ssl = True`.",
        "- `tests/policy_properties.rs` (proptest), and `fuzz/` (cargo fuzz; its corpus is replayed by",
        "  `cargo test`).",
        "- `tests/conftest.py`: every test's culler output, and every record at DEBUG, is searched for the",
        "  suite's tokens.",
        "",
    ]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.plot([s[0] / 60 for s in samples], [s[1] for s in samples], label="RSS (MiB)")
        ax.plot([s[0] / 60 for s in samples], [s[2] for s in samples], label="open descriptors")
        ax.set_xlabel("minutes")
        ax.set_ylim(bottom=0)
        ax.legend()
        ax.set_title(f"cull-idle, one pass a second, {args.users} users, faults every {args.faults} requests")
        fig.tight_layout()
        fig.savefig(out / "soak.png", dpi=110)
    except ImportError:
        lines.remove("![RSS and descriptors over time](soak.png)")
    (out / "reliability.md").write_text("\n".join(lines))
    log_path.unlink()
    print("\n".join(lines))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
