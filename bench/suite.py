"""The benchmark suite: cull-idle against jupyterhub-idle-culler 2.0.0, side by side, on this
machine, in one run. Writes docs/benchmarks.md, its charts and the raw figures.

    python bench/suite.py                       # everything (about an hour and a half on 2 cores)
    python bench/suite.py --sections scale      # one part; the report keeps the other parts' figures
    python bench/suite.py --quick --out /tmp/b  # small sizes, one run: checks that the suite works

Needs the test dependencies (scripts/setup-dev.sh; they include jupyterhub-idle-culler 2.0.0 and
matplotlib) and a release build for real figures (`maturin develop --release`).

Sections:
- throughput: a real JupyterHub with N idle servers whose stop takes S seconds (the harness's
  process-free spawner), concurrency C; one pass of each culler, against ceil(N/C)*S.
- scan: a real JupyterHub with N ready users, none idle; one pass of each culler and a bare
  paginated listing, each through a counting relay: pass time, the Hub's CPU seconds (from
  /proc/<pid>/stat), requests and bytes.
- scale: a synthetic Hub (bench/synthetic_hub.py, pages served from memory, 10% idle) with 10k,
  100k and 1M users; one pass of each culler as a process of its own: CPU, wall time, peak RSS.
- startup: `--help`, and the time from exec to the first request to the Hub.
- page: the page's latency with 10k running servers listed, and the Hub requests its views make
  (bench/page_latency.py; cull-idle only, as the reference has no page).
- flood: a pass's duration alone and under floods of made-up tokens sent to the page, with a
  control, and the Hub requests the floods caused (bench/auth_flood.py).
- notice: the Hub requests and the culler's CPU an hour for 1,000 servers with two open
  JupyterLab tabs each, showing the notice (bench/notice_cost.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import requests
from relay import CountingRelay
from synthetic_hub import SyntheticHub, start_synthetic_hub

import cull_idle

from hubharness.launcher import TestHub

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

try:
    import jupyterhub_idle_culler as reference
except ImportError:  # the report then shows cull-idle alone
    reference = None

CULL_IDLE, REFERENCE = "cull-idle", "jupyterhub-idle-culler"
QUIET = logging.getLogger("bench.reference")
QUIET.setLevel(logging.ERROR)
#: The real Hub's default pagination (the test harness uses smaller pages on purpose).
HUB_PAGES = {"TEST_PAGE_DEFAULT": "50", "TEST_PAGE_MAX": "200"}


def cullers() -> list[str]:
    return [CULL_IDLE, REFERENCE] if reference is not None else [CULL_IDLE]


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def one_pass(label: str, url: str, token: str, concurrency: int = 10, limit: int = 600) -> Any:
    if label == CULL_IDLE:
        return cull_idle.cull_idle_blocking(url, token, limit, concurrency=concurrency)
    assert reference is not None
    return asyncio.run(reference.cull_idle(url, token, limit, QUIET, concurrency=concurrency))


# -- throughput ----------------------------------------------------------------------------------


def throughput(cases: list[tuple[int, float, int]], runs: int, reference_runs: int) -> list[dict[str, Any]]:
    results = []
    for n, stop, concurrency in cases:
        log(f"throughput: N={n} S={stop} C={concurrency}")
        hub = TestHub(extra_env={"TEST_SLEEP_STOP": str(stop), "TEST_SLOW_STOP_TIMEOUT": "600", **HUB_PAGES})
        hub.start()
        names = [f"sleep{i:05d}" for i in range(n)]
        hub.create_users(names)
        times: dict[str, list[float]] = {label: [] for label in cullers()}
        try:
            for run in range(max(runs, reference_runs)):
                for label in cullers():
                    if run >= (runs if label == CULL_IDLE else reference_runs):
                        continue
                    hub.start_servers([(name, "") for name in names])
                    hub.set_times([{"user": name, "server": "", "last_activity_ago": 7200} for name in names])
                    started = time.monotonic()
                    one_pass(label, hub.api_url, hub.cull_token, concurrency)
                    times[label].append(time.monotonic() - started)
                    log(f"  {label}: {times[label][-1]:.2f}s")
                    still = [name for name in names if hub.running(name)]
                    assert not still, f"{label} left {len(still)} servers running"
        finally:
            hub.stop()
        results.append(
            {
                "servers": n,
                "stop_seconds": stop,
                "concurrency": concurrency,
                "limit": math.ceil(n / concurrency) * stop,
                "seconds": {label: summary(values) for label, values in times.items() if values},
            }
        )
    return results


# -- scan cost on a real Hub -----------------------------------------------------------------------


def hub_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare_listing(url: str, token: str) -> int:
    """GET every page of state=ready users, 200 at a time, as simply as it can be done."""
    session = requests.Session()
    session.headers.update(
        {"Authorization": f"token {token}", "Accept": "application/jupyterhub-pagination+json"}
    )
    offset, users = 0, 0
    while True:
        page = session.get(f"{url}/users?state=ready&offset={offset}&limit=200", timeout=60).json()
        users += len(page["items"])
        nxt = page["_pagination"]["next"]
        if not nxt:
            return users
        offset = nxt["offset"]


def scan(sizes: list[int], runs: int) -> list[dict[str, Any]]:
    results = []
    for n in sizes:
        log(f"scan: {n} ready users, none idle")
        hub = TestHub(extra_env=HUB_PAGES).start()
        try:
            names = [f"scan{i:06d}" for i in range(n)]
            hub.create_users(names)
            hub.start_servers([(name, "") for name in names])
            assert hub.proc is not None
            relay = CountingRelay(hub.port)
            url = f"http://127.0.0.1:{relay.port}/hub/api"
            labels = ["bare listing", *cullers()]
            measured: dict[str, dict[str, list[float]]] = {
                label: {"seconds": [], "hub_cpu": [], "requests": [], "bytes": []} for label in labels
            }
            for _ in range(runs):
                for label in labels:
                    relay.reset()
                    cpu = hub_cpu_seconds(hub.proc.pid)
                    started = time.monotonic()
                    if label == "bare listing":
                        assert bare_listing(url, hub.cull_token) == n
                    else:
                        # A week: spawning many servers takes minutes, and none may become idle.
                        one_pass(label, url, hub.cull_token, limit=7 * 86400)
                    figures = measured[label]
                    figures["seconds"].append(time.monotonic() - started)
                    figures["hub_cpu"].append(hub_cpu_seconds(hub.proc.pid) - cpu)
                    figures["requests"].append(relay.requests)
                    figures["bytes"].append(relay.bytes_up + relay.bytes_down)
                    log(f"  {label}: {figures['seconds'][-1]:.2f}s, Hub CPU {figures['hub_cpu'][-1]:.2f}s")
            assert all(hub.running(name) for name in names[:: max(1, n // 50)]), "an active server was culled"
        finally:
            hub.stop()
        results.append(
            {
                "users": n,
                "figures": {
                    label: {k: summary(v) for k, v in figures.items()} for label, figures in measured.items()
                },
            }
        )
    return results


# -- the culler's own cost at scale ----------------------------------------------------------------

REFERENCE_ONCE = (
    "import asyncio, logging, sys, jupyterhub_idle_culler as j; "
    "logging.basicConfig(level=logging.WARNING); "
    "asyncio.run(j.cull_idle(sys.argv[1], 'bench', 600, logging.getLogger('ref')))"
)


#: Runs a command and writes its own rusage to a file. A child's peak RSS starts from what its
#: parent held when it forked (even with posix_spawn), so the bench, which holds a lot, does not
#: fork the cullers itself: this small launcher does.
LAUNCHER = (
    "import json, os, sys; pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ); "
    "_, status, ru = os.wait4(pid, 0); open(sys.argv[1], 'w').write(json.dumps("
    "[os.waitstatus_to_exitcode(status), ru.ru_utime + ru.ru_stime, ru.ru_maxrss]))"
)


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MiB) of one command, from wait4."""
    usage_file = Path(f"/tmp/cull-idle-bench-{os.getpid()}.json")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(usage_file), *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    wall = time.monotonic() - started
    code, cpu, rss_kib = json.loads(usage_file.read_text())
    usage_file.unlink()
    assert code == 0 and done.returncode == 0, done.stderr.decode()[-2000:]
    return wall, cpu, rss_kib / 1024


def scale(sizes: list[int], runs: int, big_runs: int) -> list[dict[str, Any]]:
    results = []
    for n in sizes:
        log(f"scale: {n} users, 10% idle")
        figures: dict[str, dict[str, list[float]]] = {
            label: {"seconds": [], "cpu": [], "rss_mib": [], "stops": [], "listed": []} for label in cullers()
        }
        for run in range(runs if n < 1_000_000 else big_runs):
            for label in cullers():
                if n >= 1_000_000 and label == REFERENCE and run > 0:
                    continue  # one reference pass over a million users takes minutes
                # A fresh synthetic Hub (its own process) per pass, so its counts are this pass's.
                server, url = start_synthetic_hub(n)
                assert server.stdin and server.stdout
                env = {**os.environ, "JUPYTERHUB_API_TOKEN": "bench", "JUPYTERHUB_API_URL": url}
                if label == CULL_IDLE:
                    command = [sys.executable, "-m", "cull_idle", "--once", "--log-level=warning"]
                else:
                    command = [sys.executable, "-c", REFERENCE_ONCE, url]
                wall, cpu, rss = run_measured(command, env)
                server.stdin.close()
                counts = json.loads(server.stdout.readline())
                server.wait()
                assert counts["stops"] == (n + 9) // 10, counts
                for key, value in (
                    ("seconds", wall),
                    ("cpu", cpu),
                    ("rss_mib", rss),
                    ("stops", counts["stops"]),
                    ("listed", counts["items"]),
                ):
                    figures[label][key].append(value)
                log(f"  {label}: wall {wall:.2f}s, CPU {cpu:.2f}s, peak RSS {rss:.1f} MiB")
        results.append(
            {"users": n, "figures": {k: {m: summary(v) for m, v in f.items()} for k, f in figures.items()}}
        )
    return results


# -- start-up ------------------------------------------------------------------------------------


def startup(runs: int) -> dict[str, Any]:
    log("startup")
    commands = {
        CULL_IDLE: [sys.executable, "-m", "cull_idle"],
        REFERENCE: [sys.executable, "-m", "jupyterhub_idle_culler"],
    }
    out: dict[str, Any] = {}
    # As installed packages run: with bytecode caches (this machine sets PYTHONDONTWRITEBYTECODE,
    # which would make both cullers compile their sources at every start).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["JUPYTERHUB_API_TOKEN"] = "bench"
    for label in cullers():
        subprocess.run([*commands[label], "--help"], check=True, capture_output=True, env=env)  # warm-up
        helps, firsts = [], []
        for _ in range(runs):
            started = time.monotonic()
            subprocess.run([*commands[label], "--help"], check=True, capture_output=True, env=env)
            helps.append(time.monotonic() - started)

            hub = SyntheticHub(10)
            threading.Thread(target=hub.server.serve_forever, daemon=True).start()
            spawned = time.time()
            child = subprocess.Popen(
                [*commands[label], f"--url={hub.url}", "--timeout=600"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 30
            while hub.first_request is None and time.monotonic() < deadline:
                time.sleep(0.002)
            child.kill()
            child.wait()
            hub.server.shutdown()
            hub.server.server_close()
            assert hub.first_request is not None, f"{label} sent no request"
            firsts.append(hub.first_request - spawned)
        out[label] = {"help": summary(helps), "first_request": summary(firsts)}
        log(
            f"  {label}: --help {statistics.median(helps):.3f}s, "
            f"first request {statistics.median(firsts):.3f}s"
        )
    return out


# -- the report ------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    versions = {}
    for module in ("jupyterhub", "jupyterhub_idle_culler"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = "not installed"
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip() or "unknown"
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "cpu": f"{model} ({os.cpu_count()} cores)",
        "memory": f"{mem_kib / 1024**2:.0f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "rustc": rustc,
        "cull-idle": cull_idle.__version__,
        "jupyterhub": versions["jupyterhub"],
        "jupyterhub-idle-culler": versions["jupyterhub_idle_culler"],
        "date": time.strftime("%Y-%m-%d"),
    }


def fmt(s: dict[str, float], unit: str = "s", digits: int = 2) -> str:
    return f"{s['median']:.{digits}f}{unit} ({s['min']:.{digits}f}-{s['max']:.{digits}f}, {s['runs']} runs)"


def ratio(a: Optional[dict[str, float]], b: Optional[dict[str, float]]) -> str:
    if not a or not b or not b["median"]:
        return "-"
    return f"{a['median'] / b['median']:.1f}x"


def charts(results: dict[str, Any], out: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    if results.get("throughput"):
        fig, axes = plt.subplots(1, len(results["throughput"]), figsize=(5 * len(results["throughput"]), 4))
        axes = axes if hasattr(axes, "__len__") else [axes]
        for ax, case in zip(axes, results["throughput"]):
            labels = list(case["seconds"])
            values = [case["seconds"][label]["median"] for label in labels]
            errors = [
                [v - case["seconds"][label]["min"] for v, label in zip(values, labels)],
                [case["seconds"][label]["max"] - v for v, label in zip(values, labels)],
            ]
            ax.bar(labels, values, yerr=errors, color=["#3b7dd8", "#d8783b"][: len(labels)], capsize=4)
            ax.axhline(
                case["limit"], color="black", linestyle="--", label=f"limit ceil(N/C)·S = {case['limit']:g}s"
            )
            ax.set_yscale("log")
            ax.set_ylabel("pass time (s, log scale)")
            ax.set_title(f"N={case['servers']}, S={case['stop_seconds']:g}s, C={case['concurrency']}")
            ax.legend(loc="upper left", fontsize=8)
        fig.suptitle("Time to cull N idle servers (median, min-max)")
        fig.tight_layout()
        fig.savefig(out / "bench-throughput.png", dpi=110)
        plt.close(fig)
        made.append("bench-throughput.png")
    if results.get("scale"):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        for label, color in ((CULL_IDLE, "#3b7dd8"), (REFERENCE, "#d8783b")):
            points = [(r["users"], r["figures"][label]) for r in results["scale"] if label in r["figures"]]
            if not points:
                continue
            xs = [p[0] for p in points]
            left.plot(xs, [p[1]["rss_mib"]["median"] for p in points], "o-", color=color, label=label)
            right.plot(xs, [p[1]["cpu"]["median"] for p in points], "o-", color=color, label=label)
        for ax, title in ((left, "peak RSS (MiB)"), (right, "CPU seconds per pass")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("users on the Hub (10% idle)")
            ax.set_title(title)
            ax.legend()
            ax.grid(True, which="both", alpha=0.3)
        fig.suptitle("The culler's own cost per pass")
        fig.tight_layout()
        fig.savefig(out / "bench-scale.png", dpi=110)
        plt.close(fig)
        made.append("bench-scale.png")
    return made


def report(results: dict[str, Any], out: Path, images: list[str]) -> str:
    m = results["machine"]
    lines = [
        "# Benchmarks: cull-idle against jupyterhub-idle-culler",
        "",
        "Generated by `python bench/suite.py` (the command for each part is below). Every figure is the",
        "median of the runs shown, with min-max; each ratio compares two figures from the same run of the",
        "suite on the same machine. Nothing here is a test: the test suite only checks that the suite runs.",
        "",
        "## Machine and versions",
        "",
        "| | |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in m.items()],
        "",
    ]
    if results.get("throughput"):
        lines += [
            "## 1. Cull throughput",
            "",
            "`python bench/suite.py --sections throughput`: a real JupyterHub whose process-free servers",
            "take S seconds to stop, N of them idle; one pass of each culler with `--concurrency` C. The",
            "limit is `ceil(N/C)*S`. Targets: cull-idle within 1.1x of the limit, and at least 0.9*C times",
            "faster than the reference.",
            "",
            "| N | S | C | limit | cull-idle | vs limit | jupyterhub-idle-culler | reference / cull-idle |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for case in results["throughput"]:
            ours = case["seconds"].get(CULL_IDLE)
            theirs = case["seconds"].get(REFERENCE)
            lines.append(
                f"| {case['servers']} | {case['stop_seconds']:g}s | {case['concurrency']} | "
                f"{case['limit']:g}s | "
                f"{fmt(ours) if ours else '-'} | {ours['median'] / case['limit']:.2f}x | "
                f"{fmt(theirs) if theirs else '-'} | {ratio(theirs, ours)} |"
            )
        lines.append("")
        if "bench-throughput.png" in images:
            lines += ["![pass time against N](bench-throughput.png)", ""]
    if results.get("scan"):
        lines += [
            "## 2. Scan cost on a real Hub",
            "",
            "`python bench/suite.py --sections scan`: N ready users on a real JupyterHub (default pages",
            "of 50, largest 200), none idle. Each pass goes through a counting relay; the Hub's CPU",
            "comes from `/proc/<hub pid>/stat`. The baseline is a bare listing of `state=ready` in pages",
            "of 200.",
            "Targets: pass time within 1.1x of the bare listing; Hub CPU no higher than the reference's.",
            "",
            "| users | who | pass time | Hub CPU | requests | bytes |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in results["scan"]:
            for label, f in r["figures"].items():
                lines.append(
                    f"| {r['users']} | {label} | {fmt(f['seconds'])} | {fmt(f['hub_cpu'])} | "
                    f"{f['requests']['median']:.0f} | {f['bytes']['median'] / 1e6:.2f} MB |"
                )
            base, ours, theirs = (r["figures"].get(k) for k in ("bare listing", CULL_IDLE, REFERENCE))
            time_ratio = f"cull-idle / bare listing: **{ratio(ours['seconds'], base['seconds'])}**"
            if theirs:
                time_ratio += f"; reference / cull-idle: {ratio(theirs['seconds'], ours['seconds'])}"
            cpu_ratio = ratio(ours["hub_cpu"], theirs["hub_cpu"]) if theirs else "-"
            lines.append(
                f"| {r['users']} | **ratios** | {time_ratio} | cull-idle / reference: **{cpu_ratio}** | | |"
            )
        lines.append("")
    if results.get("scale"):
        lines += [
            "## 3. The culler's own cost at scale",
            "",
            "`python bench/suite.py --sections scale`: a synthetic Hub (`bench/synthetic_hub.py`, its own",
            "process, pages of 200 rendered from memory) with N users, 10% of them idle; one",
            "pass of each culler as a process of its own (`python -m cull_idle --once`; the reference's",
            "`cull_idle()` under `asyncio.run`), measured with `wait4`. Every idle server is stopped in",
            "each pass (checked). As on a real Hub, a stopped user leaves `state=ready`, so later users",
            'move to lower offsets; "users listed" counts the users the Hub sent, read again included.',
            "Targets: CPU at most 1/10 of the reference's, peak RSS at most 1/3, and RSS flat within 20%",
            "from 10,000 to 1,000,000 users.",
            "",
            "| users | who | wall | CPU | peak RSS | users listed |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in results["scale"]:
            for label, f in r["figures"].items():
                listed = f"{f['listed']['median']:,.0f}" if "listed" in f else "n/a"
                lines.append(
                    f"| {r['users']:,} | {label} | {fmt(f['seconds'])} | {fmt(f['cpu'])} | "
                    f"{fmt(f['rss_mib'], ' MiB', 1)} | {listed} |"
                )
            ours, theirs = r["figures"].get(CULL_IDLE), r["figures"].get(REFERENCE)
            if theirs:
                wall, cpu = ratio(theirs["seconds"], ours["seconds"]), ratio(theirs["cpu"], ours["cpu"])
                rss_ratio = ratio(theirs["rss_mib"], ours["rss_mib"])
                lines.append(
                    f"| {r['users']:,} | **reference / cull-idle** | {wall} | **{cpu}** | **{rss_ratio}** | |"
                )
        rss = [r["figures"][CULL_IDLE]["rss_mib"]["median"] for r in results["scale"]]
        lines += [
            "",
            f"cull-idle's peak RSS from the smallest to the largest Hub: {rss[0]:.1f} → {rss[-1]:.1f} MiB "
            f"({(rss[-1] / rss[0] - 1) * 100:+.0f}%).",
            "",
        ]
        if "bench-scale.png" in images:
            lines += ["![RSS and CPU against users](bench-scale.png)", ""]
    if results.get("startup"):
        lines += [
            "## 4. Start-up",
            "",
            "`python bench/suite.py --sections startup`: `python -m <culler> --help`, and the time from",
            "starting `python -m <culler> --url=... --timeout=600` to its first request to a synthetic Hub.",
            "Target: at most 1/3 of the reference's.",
            "",
            "| who | `--help` | first request |",
            "| --- | --- | --- |",
        ]
        s = results["startup"]
        for label, f in s.items():
            lines.append(f"| {label} | {fmt(f['help'], 's', 3)} | {fmt(f['first_request'], 's', 3)} |")
        if REFERENCE in s:
            lines.append(
                f"| **cull-idle / reference** | **{ratio(s[CULL_IDLE]['help'], s[REFERENCE]['help'])}** | "
                f"**{ratio(s[CULL_IDLE]['first_request'], s[REFERENCE]['first_request'])}** |"
            )
        lines.append("")
    if results.get("page"):
        p = results["page"]
        lines += [
            "## 5. The page",
            "",
            "`python bench/suite.py --sections page` (or `python bench/page_latency.py N VIEWS`): the",
            f"culler with `--web-bind` over a synthetic Hub with {p['servers']:,} running servers, after",
            f"its first pass; {p['views']:,} views of each kind, one after another, then a class of 100",
            "visitors at once (a first view each, then 10 reloads each). Each visitor sends its own",
            "token, which the synthetic Hub checks and counts. Targets: p99 under 50 ms; no Hub",
            "requests beyond the cached token check.",
            "",
            "| view | p50 | p99 | max |",
            "| --- | --- | --- | --- |",
        ]
        for label in [
            "user page",
            "api/me",
            "operators' view",
            "api/admin",
            "class first views",
            "class reloads",
        ]:
            f = p[label]
            lines.append(f"| {label} | {f['p50']:.2f} ms | {f['p99']:.2f} ms | {f['max']:.2f} ms |")
        lines += [
            "",
            f"Hub requests: {p['sequential_hub_requests']} for {p['sequential_views']:,} views by two",
            f"visitors (one token check each per `--page-auth-cache`, 30 s), and {p['class_hub_requests']}",
            f"for the class's 1,100 views ({p['class_token_checks']} token checks, one per visitor;",
            f"{p.get('class_busy_answers', 0)} first views were answered 503 and reloaded a second later).",
            f"The culler's RSS after the first pass: {p['culler_rss_mib']:.1f} MiB.",
            "",
        ]
        if p.get("machine") and p["machine"] != m:
            lines += [
                f"Measured on its own: {p['machine'].get('cpu')}, {p['machine'].get('date')}.",
                "",
            ]
    if results.get("flood"):
        f = results["flood"]
        alone = f["alone"]["median"]

        def row(label: str, key: str) -> str:
            r = f.get(key)
            if not r:
                return f"| {label} | - | - | - |"
            return (
                f"| {label} | {r['median']:.3f} s | {r['max']:.3f} s | "
                f"{100 * (r['median'] / alone - 1):+.1f}% ({r['n']} passes) |"
            )

        lines += [
            "## 6. A flood of made-up tokens",
            "",
            "`python bench/suite.py --sections flood` (or `python bench/auth_flood.py N M`): the culler",
            f"with `--web-bind` and `--cull-every=1` over a synthetic Hub of {f['users']:,} users. Pass",
            f"durations alone, while floods of {f['tokens']:,} random tokens each go to `api/me` (32",
            "connections), and while the same floods go to an unrelated server (the control: what the",
            "flood's client costs the machine). The culler and the Hub run on one CPU, the flood on",
            "the other. Target: a pass no more than 10% slower.",
            "",
            "| passes | median | max | vs alone |",
            "| --- | --- | --- | --- |",
            row("alone", "alone"),
            row("under the flood", "flooded"),
            row("control", "control"),
            "",
            f"Hub requests each flood caused: {f['flood_hub_requests']:.0f} (answers: {f['answers']});",
            "the rest were answered 503 at once, or from the remembered refusals.",
            "",
        ]
    if results.get("notice"):
        n = results["notice"]
        lines += [
            "## 7. The notice in JupyterLab",
            "",
            "`python bench/suite.py --sections notice` (or `python bench/notice_cost.py N SECONDS SPEEDUP`):",
            f"{n['servers']:,} servers with {n['tabs']:,} open tabs, each server played by the sensor's own",
            "`CullerLink` with the server's own token, over the culler's page on a synthetic Hub. Tabs ask",
            "their server every 60 s, the server asks the culler every 300 s, and the culler checks a",
            "server's token with the Hub once, until the server is seen stopped. Time ran "
            f"{n['speedup']:g} times",
            f"faster. Every server's first answer took {n['first_answers_hub_requests']:,} Hub requests and",
            f"{n['first_answers_seconds']:g} s (the page's budget of 20 checks a second is not sped up);",
            "the figures after that are per real hour.",
            "Target: at most one Hub request per server, and no question unanswered.",
            "",
            "| per hour, after every server's first answer | figure |",
            "| --- | --- |",
            f"| questions the tabs asked their servers | {n['tab_questions_per_hour']:,} |",
            f"| Hub requests (token checks) | {n['hub_requests_per_hour']:,} "
            f"({n['hub_requests_per_server_hour']:g} per server) |",
            f"| questions the culler did not answer (503) | {n['unanswered']:,} |",
            f"| the culler's CPU | {n['culler_cpu_seconds_per_hour']:g} s |",
            "",
        ]
    notes = HERE / "benchmark-notes.md"
    if notes.exists():
        lines += [notes.read_text().strip(), ""]
    return "\n".join(lines)


def page_section(quick: bool) -> dict[str, Any]:
    import page_latency

    return page_latency.measure(300, 200) if quick else page_latency.measure(10_000, 2000)


def flood_section(quick: bool) -> dict[str, Any]:
    import auth_flood

    return auth_flood.measure(1000, 2000, 3) if quick else auth_flood.measure(10_000, 20_000)


def notice_section(quick: bool) -> dict[str, Any]:
    import notice_cost

    return notice_cost.measure(100, 6, 60) if quick else notice_cost.measure(10_000, 360, 10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sections", default="throughput,scan,scale,startup,page,flood,notice")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--reference-runs", type=int, default=None, help="runs of the reference (default --runs)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument("--scan-users", default="2000,10000", help="Hub sizes for the scan section")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report only")
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "benchmarks.json"
    results: dict[str, Any] = json.loads(raw.read_text()) if raw.exists() and not args.quick else {}
    runs = 1 if args.quick else args.runs
    reference_runs = runs if args.reference_runs is None else args.reference_runs
    logging.getLogger("cull_idle").setLevel(logging.ERROR)
    sections: dict[str, Callable[[], Any]] = {
        "throughput": lambda: throughput(
            [(6, 0.2, 3)] if args.quick else [(200, 1.0, 10), (1000, 0.5, 20)], runs, reference_runs
        ),
        "scan": lambda: scan([30] if args.quick else [int(n) for n in args.scan_users.split(",")], runs),
        "scale": lambda: scale(
            [1000, 5000] if args.quick else [10_000, 100_000, 1_000_000], runs, 1 if args.quick else 3
        ),
        "startup": lambda: startup(2 if args.quick else 10),
        "page": lambda: page_section(args.quick),
        "flood": lambda: flood_section(args.quick),
        "notice": lambda: notice_section(args.quick),
    }
    for name in [] if args.report_only else args.sections.split(","):
        results[name.strip()] = sections[name.strip()]()
        if name.strip() in ("page", "flood", "notice"):
            # Its own machine: measured alone, and may be re-run on another one.
            results[name.strip()]["machine"] = machine()
        if name.strip() not in ("page", "flood", "notice") or "machine" not in results:
            results["machine"] = machine()
        raw.write_text(json.dumps(results, indent=1))
    images = charts(results, out)
    (out / "benchmarks.md").write_text(report(results, out, images))
    log(f"wrote {out / 'benchmarks.md'}")


if __name__ == "__main__":
    main()
