"""A throw-away JupyterHub on loopback that shows a person the whole of cull-idle.

The Hub runs behind configurable-http-proxy, with real JupyterLab servers that have
cull-idle-sensor (and its notice) installed, and the culler as a Hub-managed service with its
page, warnings and keep-alives, judging idleness by the work done in each server
(``--idle-by=work``: an open tab is not work). alice and bob get servers at once; nobody works
in them, so within two minutes:

- JupyterLab shows alice (and bob) "Stops in … min" in the status bar, then the warning with
  "Keep running 1 h" and "Keep running 2 h";
- a click keeps alice's server; bob's, left alone, is culled;
- admin-user sees both on the operators' view.

Their idle time starts when the URL is printed (the demo saves a note in each home then), and
Ctrl-C stops every server the Hub runs, admin-user's included.

    python demo/run_demo.py [--timeout S] [--warn-before S]   until Ctrl-C
    python demo/run_demo.py --check                           the same, checked, then exits

``--check`` plays alice through her server's notice endpoint (what the button calls), and
exits 0 once alice was warned and kept, bob culled, and the operators' view shows it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

import pagehub
import requests
from pagehub import eventually, page_url, server_token

from hubharness.launcher import TestHub

USERS = ["alice", "bob"]
ADMIN = "admin-user"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--timeout", type=int, default=90, help="the culler's --timeout (default 90)")
    parser.add_argument("--warn-before", type=int, default=60, help="the culler's --warn-before (default 60)")
    parser.add_argument("--check", action="store_true", help="play it through without a person, then exit")
    parser.add_argument("--limit", type=float, default=300, help="--check gives up after (default 300 s)")
    args = parser.parse_args()
    if not 0 < args.warn_before < args.timeout:
        parser.error("--warn-before must be between 0 and --timeout")
    return args


def start_hub(args: argparse.Namespace, state: Path) -> TestHub:
    """The page tests' Hub (tests/pagehub.py: the recipe, the real proxy, the culler as a
    managed service with a url) with JupyterLab servers, and the demo's settings on top."""
    settings = [
        f"--timeout={args.timeout}",
        f"--warn-before={args.warn_before}",
        "--idle-by=work",
        "--max-keep-alive=7200",
        "--cull-every=2",
    ]
    print("Starting JupyterHub, configurable-http-proxy and the culler ...")
    hub = pagehub.start(
        state,
        *settings,
        # --idle-by=work asks each server's sensor.
        extra_scopes=("tokens",),
        # The sensor asks the culler every 5 s here, where a deployment's default is 300 s.
        lab_env={"TEST_NOTICE_INTERVAL": "5"},
    )
    try:
        # As the Hub runs it (its service's command), which the demo's settings complete.
        print("The culler runs as:\n  " + shlex.join(pagehub.culler_command(hub)))
        hub.create_users(USERS)
        hub.start_servers([(user, "") for user in USERS], timeout=120)
    except BaseException:
        stop(hub)
        raise
    return hub


def welcome(hub: TestHub) -> float:
    """A note in each demo user's home, written as the URL is printed: a save is work, so
    their idle time starts when a person can first act, not when their servers started."""
    for user in USERS:
        model = {"type": "file", "format": "text", "content": WELCOME.format(user=user)}
        r = hub.session.put(f"{hub.public_url}/user/{user}/api/contents/welcome.md", json=model, timeout=30)
        r.raise_for_status()
    return time.time()


WELCOME = """# cull-idle's demo

{user}'s server was started by `scripts/demo.sh`. The culler stops it once nothing has been
done in it for the demo's timeout: run a cell, type, or save to keep it, or click
"Keep running 1 h" when the warning comes.
"""


def stop(hub: TestHub) -> None:
    """Every server the demo's Hub runs (admin-user's too, started by logging in), then the Hub."""
    try:
        users = [hub.user(name) for name in hub.all_user_names()]
        running = [(u["name"], name) for u in users if u for name in (u.get("servers") or {})]
        for user, server in running:
            who = quote(user, safe="")
            path = f"/users/{who}/servers/{quote(server, safe='')}" if server else f"/users/{who}/server"
            hub.api("DELETE", path)
        still = lambda: [(u, s) for u, s in running if hub.running(u, s)]  # noqa: E731
        hub.wait_for(lambda: not still(), "the demo's servers to stop", timeout=60)
    except (AssertionError, requests.RequestException, ValueError) as e:
        print(f"Not every server stopped before the Hub: {e}")
    finally:
        hub.stop()


def tell(hub: TestHub, args: argparse.Namespace) -> None:
    quiet = args.timeout - args.warn_before
    print(
        f"""
JupyterHub is at {hub.public_url}/hub/login
  log in as alice (any password): JupyterLab opens
  log in as {ADMIN}, in a private window: the operators' view is at {page_url(hub, "admin")}
  anyone's own page: {page_url(hub)}

The culler judges idleness by work: an open tab is not work, a running cell or a save is.
About {quiet} s after your last action, alice's status bar shows "Stops in … min" and a
warning with "Keep running 1 h". Click it: her server is kept. bob's, left alone, is culled
{args.warn_before} s after its warning. Ctrl-C stops everything.
"""
    )


class LogTail:
    """The culler's lines from the Hub's log, as they come."""

    WANTED = ("Warning user", "Culling server", "Keep-alive", "Serving")

    def __init__(self, hub: TestHub) -> None:
        self.hub = hub
        self.done = 0
        self.printed: list[str] = []

    def print_new(self) -> None:
        lines = self.hub.log_path.read_text(errors="replace").splitlines()
        for line in lines[self.done :]:
            if any(w in line for w in self.WANTED):
                print(line)
                self.printed.append(line)
        self.done = len(lines)


def check(hub: TestHub, args: argparse.Namespace, tail: LogTail, ready_at: float) -> None:
    """What a person would see, asked where the notice asks, with alice's server's token."""
    # The operators' login starts admin-user's server, as a person's does: Ctrl-C stops it too.
    hub.start_server(ADMIN, timeout=120)  # the Hub made admin-user at start, as an admin_users entry
    alice = {"Authorization": f"token {server_token(hub, 'alice')}"}
    notice_url = f"{hub.public_url}/user/alice/api/cull-idle/notice"

    def warned() -> Optional[dict[str, Any]]:
        tail.print_new()
        notice: dict[str, Any] = requests.get(notice_url, headers=alice, timeout=10).json()
        return notice if notice.get("warned_at") else None

    notice = eventually(warned, "alice's notice to show the warning", args.limit)
    # Her idle time began when the URL was printed (the clock's second, at worst, earlier).
    assert time_of(notice["stop_at"]) >= ready_at - 1 + args.timeout, (notice["stop_at"], ready_at)
    left = time_of(notice["stop_at"]) - time.time()
    countdown = f"{left / 60:.0f} min" if left >= 60 else "under a minute"
    buttons = ", ".join(f"Keep running {s // 3600} h" for s in notice["keep_seconds"])
    print(f"\nalice's JupyterLab: 'Stops in {countdown}', a warning, and buttons: {buttons}")
    r = requests.post(notice_url, headers=alice, json={"seconds": notice["keep_seconds"][0]}, timeout=10)
    r.raise_for_status()
    print(f"alice clicked '{buttons.split(', ')[0]}': kept running until {r.json()['until']}\n")

    def bob_culled() -> bool:
        tail.print_new()
        # The culler's line can reach the Hub's log after the Hub has stopped the server.
        logged = any("Culling server bob" in line for line in tail.printed)
        return logged and not hub.running("bob")

    eventually(bob_culled, "bob's server to be culled", args.limit)
    assert hub.running("alice"), "alice's server was culled although kept"
    admin_token = hub.api("POST", f"/users/{ADMIN}/tokens", json={"note": "demo check"}).json()["token"]
    as_admin = {"Authorization": f"token {admin_token}"}
    view = requests.get(page_url(hub, "api/admin"), headers=as_admin, timeout=10)
    view.raise_for_status()
    admin = view.json()
    kept = [k["user"] for k in admin["keep_alives"]]
    print(f"\nThe operators' view: {len(admin['passes'])} passes, keep-alives in force: {kept}")
    assert kept == ["alice"], admin["keep_alives"]
    print("The demo check passed: alice was warned in JupyterLab and kept, bob was culled.")


def time_of(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main() -> int:
    args = arguments()
    with tempfile.TemporaryDirectory(prefix="cull-idle-demo-") as state:
        return run(args, Path(state))


def run(args: argparse.Namespace, state: Path) -> int:
    try:
        hub = start_hub(args, state)
    except (AssertionError, RuntimeError) as e:
        print(f"The demo did not start: {e}")
        return 1
    tail = LogTail(hub)
    try:
        ready_at = welcome(hub)
        if args.check:
            check(hub, args, tail, ready_at)
            return 0
        tell(hub, args)
        while True:
            tail.print_new()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping.")
        return 0
    except AssertionError as e:
        tail.print_new()
        print(f"\nThe demo check failed: {e}; see {hub.log_path}")
        return 1
    finally:
        stop(hub)


if __name__ == "__main__":
    sys.exit(main())
