"""What the notice in JupyterLab costs the Hub and the culler: N servers, each with two open
tabs, for an hour.

    python bench/notice_cost.py [SERVERS] [SECONDS] [SPEEDUP]   (default 1000 servers, 120 s, 5)

SECONDS are measured once every server has had the culler's answer, at the speed-up pace: each
server's first question costs a check with the Hub, within the page's budget (20 a second, which
the speed-up does not divide), and the figures before that are given apart.

The culler serves its page (``--web-bind``) over the synthetic Hub, where every user has a
running server. Each server is played by cull-idle-sensor's own ``CullerLink`` (the code that
answers the tabs in a real server), with the server's own token; its two tabs ask it as the notice
does, every 60 s, and the link asks the culler's ``api/me`` once its answer is
``notice_interval`` (300 s) old. Servers started at different times, so their first tabs open
spread over one interval.

An hour takes too long, so time runs SPEEDUP times faster: the interval, the tabs' poll and the
culler's ``--page-auth-cache`` (30 s) are all divided by it, and the figures are given per real
hour. The synthetic Hub counts the token checks the culler makes for these questions: the only
Hub requests the notice causes (a tab's own requests reach its server, which checks the
person's cookie with the Hub as it does for every JupyterLab request).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import time
from typing import Any

from auth_flood import cpu_seconds
from cull_idle_sensor.notice import TAB_POLL_SECONDS, CullerLink
from page_latency import PREFIX, counts, start_page_culler, wait_for_first_pass
from synthetic_hub import start_synthetic_hub
from tornado.httpclient import AsyncHTTPClient

from hubharness.launcher import free_port

INTERVAL = 300.0  # CullIdleSensor.notice_interval's default
AUTH_CACHE = 30.0  # --page-auth-cache's default
TABS = 2


async def play(port: int, n: int, seconds: float, speedup: float, mark: Any) -> dict[str, int]:
    """``n`` servers' links and their tabs: ``mark()`` is called as the tabs open (over one
    interval), again once every server has had the culler's answer, and ``seconds`` later; what
    the tabs and links asked between the last two."""
    AsyncHTTPClient.configure(None, max_clients=64)
    interval = INTERVAL / speedup
    poll = TAB_POLL_SECONDS / speedup
    quiet = logging.getLogger("bench-sensor")
    quiet.setLevel(logging.ERROR)
    url = f"http://127.0.0.1:{port}{PREFIX}"
    tally = {"tab_questions": 0, "culler_questions": 0, "answered": 0}
    links = []
    answered_once: set[int] = set()
    for i in range(n):
        link = CullerLink(url, f"server-user-{i:07d}", "", interval, quiet)
        ask_me = link._ask_me

        async def counted(ask_me: Any = ask_me, i: int = i) -> dict[str, Any]:
            tally["culler_questions"] += 1
            answer: dict[str, Any] = await ask_me()
            if answer.get("culler"):
                tally["answered"] += 1
                answered_once.add(i)
            return answer

        link._ask_me = counted  # type: ignore[method-assign]
        links.append(link)
    running = True

    async def tab(link: CullerLink, start: float) -> None:
        await asyncio.sleep(start)
        while running:
            await link.current()
            tally["tab_questions"] += 1
            await asyncio.sleep(poll)

    async def window() -> dict[str, int]:
        nonlocal running
        mark()
        # Every server's first question costs one check with the Hub, within the page's budget
        # of them (20 a second, not sped up): the hour is measured once all have been answered.
        while len(answered_once) < n:
            await asyncio.sleep(0.5)
        first = dict(tally)
        mark()
        await asyncio.sleep(seconds)
        mark()
        running = False
        return {k: tally[k] - first[k] for k in tally}

    starts = [(link, interval * i / n + poll * t / TABS) for i, link in enumerate(links) for t in range(TABS)]
    tabs = [tab(link, start) for link, start in starts]
    measured, *_ = await asyncio.gather(window(), *tabs)
    assert isinstance(measured, dict)
    return measured


def measure(n: int = 1000, seconds: float = 120, speedup: float = 5) -> dict[str, Any]:
    hub, api_url = start_synthetic_hub(n, "--idle-every", "10", "--stable", "--page", "1000")
    port = free_port()
    with tempfile.TemporaryDirectory() as cwd:
        cache = max(1, round(AUTH_CACHE / speedup))
        culler = start_page_culler(api_url, port, cwd, f"--page-auth-cache={cache}")
        try:
            wait_for_first_pass(port)
            marks: list[tuple[dict[str, int], float, float]] = []

            def mark() -> None:
                marks.append((counts(api_url), cpu_seconds(culler.pid), time.monotonic()))

            tally = asyncio.run(play(port, n, seconds, speedup, mark))
            (opened, _, opening), (before, cpu_before, began), (after, cpu_after, ended) = marks
            elapsed = ended - began
        finally:
            culler.terminate()
            culler.wait(30)
            assert hub.stdin is not None
            hub.stdin.close()
            hub.wait(30)
    real_hours = elapsed * speedup / 3600
    checks = after["visitor_checks"] - before["visitor_checks"]
    requests = after["requests"] - before["requests"]
    cpu = cpu_after - cpu_before
    return {
        "servers": n,
        "tabs": n * TABS,
        # Until every server had its first answer: one check each.
        "first_answers_seconds": round(began - opening, 1),
        "first_answers_hub_requests": before["requests"] - opened["requests"],
        "seconds": round(elapsed, 1),
        "speedup": speedup,
        **tally,
        # Questions the culler did not answer (a 503 when its budget of Hub checks is spent).
        "unanswered": tally["culler_questions"] - tally["answered"],
        "hub_requests": requests,
        "token_checks": checks,
        "hub_requests_per_hour": round(requests / real_hours),
        "hub_requests_per_server_hour": round(requests / real_hours / n, 2),
        "tab_questions_per_hour": round(tally["tab_questions"] / real_hours),
        "culler_cpu_seconds_per_hour": round(cpu / real_hours, 2),
    }


def main() -> None:
    args = [float(a) for a in sys.argv[1:]]
    n = int(args[0]) if args else 1000
    seconds = args[1] if len(args) > 1 else 120
    speedup = args[2] if len(args) > 2 else 5
    result = measure(n, seconds, speedup)
    print(json.dumps(result))
    print(
        f"{result['servers']:,} servers, {result['tabs']:,} tabs: "
        f"{result['hub_requests_per_hour']:,} Hub requests an hour "
        f"({result['hub_requests_per_server_hour']} per server; {result['unanswered']:,} unanswered) after "
        f"{result['first_answers_hub_requests']:,} for the first answers, "
        f"{result['tab_questions_per_hour']:,} tab questions answered by the servers, "
        f"culler CPU {result['culler_cpu_seconds_per_hour']} s an hour"
    )


if __name__ == "__main__":
    main()
