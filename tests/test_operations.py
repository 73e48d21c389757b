"""Operator options against a real JupyterHub: dry runs, exemptions, group and user timeouts,
the per-pass cap, the hook's user model, JSON logs and the scope self-check."""

import json
import logging
import os
import re
import signal
import sys
import urllib.error
import urllib.request

import pytest

from cull_idle import _options_docs
from cull_idle import cull_idle as cull

from culler_process import Culler, run
from helpers import ACTIVE, IDLE, http_get, outcomes, sample, setup_servers
from hubharness.launcher import TestHub, free_port


def idle(*names, **times):
    """Default servers for ``names``, idle (or as ``times`` say)."""
    return {(n, ""): {"last_activity_ago": IDLE, **times} for n in names}


def once(hub, token, *args):
    return run(["--once", f"--url={hub.api_url}", *args], {"JUPYTERHUB_API_TOKEN": token})


async def test_dry_run_sends_no_delete(hub, caplog):
    setup_servers(hub, {("dry1", ""): {"last_activity_ago": IDLE, "user_last_activity_ago": IDLE}})
    with caplog.at_level(logging.INFO, logger="cull_idle"):
        report = await cull(hub.api_url, hub.cull_users_token, 600, cull_users=True, dry_run=True)
    assert outcomes(report) == {("dry1", ""): "would-stop", ("dry1", None): "would-delete"}
    assert hub.running("dry1") and hub.user("dry1") is not None
    assert "Would cull server dry1 (inactive for" in caplog.text
    assert "Would delete user dry1" in caplog.text
    assert "DRY RUN, nothing was stopped" in caplog.text


def test_dry_run_once_from_the_command_line(hub):
    setup_servers(hub, idle("dry2"))
    code, out = once(hub, hub.cull_token, "--dry-run")
    assert code == 0 and "1 servers would be stopped" in out
    assert hub.running("dry2")


async def test_excluded_users_by_glob_are_never_culled(hub):
    setup_servers(hub, idle("staff-ann", "bob", "cat", user_last_activity_ago=IDLE))
    report = await cull(
        hub.api_url, hub.cull_users_token, 600, cull_users=True, exclude_users=["staff-*", "bob"], max_age=1
    )
    assert {a.user for a in report.actions} == {"cat"}
    assert hub.running("staff-ann") and hub.running("bob")
    assert {(s.user, s.reason) for s in report.skipped} >= {("staff-ann", "exempt"), ("bob", "exempt")}


async def test_excluded_groups_are_never_culled(hub):
    setup_servers(hub, idle("ta1", "student1"))
    hub.create_group("teaching-assistants", ["ta1"])
    report = await cull(hub.api_url, hub.cull_groups_token, 600, exclude_groups=["teaching-assistants"])
    assert outcomes(report) == {("student1", ""): "stopped"}
    assert hub.running("ta1")


async def test_group_rules_keep_users_whose_groups_are_not_visible(hub):
    """A token without read:users:groups cannot tell who is exempt: nobody is culled."""
    setup_servers(hub, idle("ta2", "student2"))
    hub.create_group("teaching-assistants", ["ta2"])
    report = await cull(hub.api_url, hub.cull_token, 600, exclude_groups=["teaching-assistants"])
    assert report.actions == []
    assert {(s.user, s.reason) for s in report.skipped} == {("ta2", "no-groups"), ("student2", "no-groups")}
    assert hub.running("ta2") and hub.running("student2")


def test_group_rules_without_the_scope_refuse_to_start(hub):
    setup_servers(hub, idle("student3"))
    code, out = once(hub, hub.cull_token, "--exclude-groups=staff")
    assert code == 2 and "read:users:groups" in out and "refusing to run" in out
    assert out.count("cull-idle: error:") == 1 and "Traceback" not in out
    assert hub.running("student3")


async def test_group_timeouts_take_the_largest(hub):
    setup_servers(
        hub,
        {
            ("gpu1", ""): {"last_activity_ago": 3000},
            ("plain1", ""): {"last_activity_ago": 3000},
            ("workshop1", ""): {"last_activity_ago": 400},
            ("both1", ""): {"last_activity_ago": 3000},
        },
    )
    hub.create_group("gpu", ["gpu1", "both1"])
    hub.create_group("workshop", ["workshop1", "both1"])
    report = await cull(
        hub.api_url, hub.cull_groups_token, 600, group_timeouts={"gpu": 7200, "workshop": 300}
    )
    # gpu keeps a server the default would cull; workshop culls one the default would keep;
    # a member of both gets the larger limit.
    assert {a.user for a in report.stopped} == {"plain1", "workshop1"}
    assert hub.running("gpu1") and hub.running("both1")


async def test_a_profile_s_timeout_wins_over_groups_and_the_timeout(hub):
    """--profile-timeout reads user_options["profile"], which read:servers shows; no hook, and
    no admin:server_state."""
    hub.create_users(["prof-gpu", "prof-gpu-long", "prof-cpu", "prof-none"])
    hub.create_group("long", ["prof-gpu-long"])
    hub.start_server("prof-gpu", user_options={"profile": "gpu"})
    hub.start_server("prof-gpu-long", user_options={"profile": "gpu"})
    hub.start_server("prof-cpu", user_options={"profile": "cpu"})
    hub.start_server("prof-none")
    names = ["prof-gpu", "prof-gpu-long", "prof-cpu", "prof-none"]
    hub.set_times([{"user": n, "server": "", "last_activity_ago": 1200} for n in names])
    assert hub.user("prof-gpu")["servers"][""]["user_options"] == {"profile": "gpu"}
    report = await cull(
        hub.api_url,
        hub.cull_groups_token,
        3600,
        group_timeouts={"long": 86400},
        profile_timeouts={"gpu": 900},
    )
    # The gpu profile's limit binds its servers, even for a member of a group with a longer one;
    # other profiles, and servers with none, keep --timeout.
    assert {a.user for a in report.stopped} == {"prof-gpu", "prof-gpu-long"}
    assert hub.running("prof-cpu") and hub.running("prof-none")


async def test_user_timeout_separates_user_deletion(hub):
    hub.create_users(["recent-user", "old-user"])
    hub.start_servers([("recent-user", ""), ("old-user", "")])
    hub.set_times(
        [
            {"user": "recent-user", "server": "", "last_activity_ago": IDLE, "user_last_activity_ago": IDLE},
            {"user": "old-user", "server": "", "last_activity_ago": 5000, "user_last_activity_ago": 5000},
        ]
    )
    report = await cull(hub.api_url, hub.cull_users_token, 600, cull_users=True, user_timeout=3600)
    assert {a.user for a in report.stopped} == {"recent-user", "old-user"}
    assert [a.user for a in report.deleted] == ["old-user"]
    assert hub.user("recent-user") is not None and hub.user("old-user") is None


async def test_the_cap_stops_the_idlest_first(hub, caplog):
    spec = {(f"capped{i}", ""): {"last_activity_ago": 1000 + 100 * i} for i in range(5)}
    setup_servers(hub, spec)
    with caplog.at_level(logging.WARNING, logger="cull_idle"):
        report = await cull(hub.api_url, hub.cull_token, 600, max_culls_per_pass=2)
    assert {a.user for a in report.stopped} == {"capped4", "capped3"}
    assert sorted(s.user for s in report.skipped if s.reason == "cap") == ["capped0", "capped1", "capped2"]
    assert sum(hub.running(f"capped{i}") for i in range(5)) == 3
    assert "Cull cap reached: 2 of 5" in caplog.text
    report = await cull(hub.api_url, hub.cull_token, 600, max_culls_per_pass=2)
    assert {a.user for a in report.stopped} == {"capped2", "capped1"}


async def test_the_cap_still_stops_the_idlest_when_the_pass_acts_between_pages(hub, caplog):
    """Acting in batches, a capped pass keeps only the idlest jobs so far between pages (memory
    bounded by the cap); the choice is the one a pass that lists everything first makes."""
    idle_for = list(range(1000, 1000 + 24 * 50, 50))
    __import__("random").Random(5).shuffle(idle_for)
    spec = {(f"cap{i:02d}", ""): {"last_activity_ago": t} for i, t in enumerate(idle_for)}
    setup_servers(hub, spec)
    idlest = {f"cap{i:02d}" for i, t in enumerate(idle_for) if t >= sorted(idle_for)[-5]}
    with caplog.at_level(logging.WARNING, logger="cull_idle"):
        report = await cull(
            hub.api_url, hub.cull_token, 600, max_culls_per_pass=5, api_page_size=3, _act_after=1
        )
    assert {a.user for a in report.stopped} == idlest
    assert len([s for s in report.skipped if s.reason == "cap"]) == 19
    assert "Cull cap reached: 5 of 24" in caplog.text
    assert sum(hub.running(u) for u, _ in spec) == 19


async def test_hooks_that_take_user_receive_the_user_model(hub):
    setup_servers(hub, idle("hook-a", "hook-b"))
    hub.create_group("protected", ["hook-a"])
    seen = {}

    def by_group(*, inactive, inactive_limit, server, user):
        seen[user["name"]] = user
        return "protected" not in user["groups"]

    report = await cull(hub.api_url, hub.cull_groups_token, 600, cull_arbiter=by_group)
    assert {a.user for a in report.stopped} == {"hook-b"}
    assert seen["hook-a"]["groups"] == ["protected"] and seen["hook-b"]["admin"] is False


def test_json_logs_parse_line_by_line(hub):
    setup_servers(hub, {**idle("json1"), **idle("json2", last_activity_ago=ACTIVE)})
    code, out = once(hub, hub.cull_token, "--log-format=json", "--log-level=debug")
    assert code == 0
    entries = [json.loads(line) for line in out.splitlines()]
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in entries)
    decision = next(e for e in entries if e["message"].startswith("Culling server json1"))
    assert decision["server"] == "" and decision["action"] == "stop-server" and decision["reason"] == "idle"
    assert decision["idle_seconds"] >= IDLE
    assert any(e["message"].startswith("Cull pass done") for e in entries)


def test_missing_scopes_are_named_at_start_up(hub):
    code, out = once(hub, hub.cull_token, "--cull-users")
    assert code == 0
    assert "lacks the scope delete:users" in out and "lacks the scope read:users" in out
    code, out = once(hub, hub.cull_users_token, "--cull-users")
    assert code == 0 and "lacks the scope" not in out


def test_metrics_count_exactly_what_a_pass_did(hub):
    setup_servers(hub, {**idle("m-idle1", "m-idle2", "m-exempt"), **idle("m-busy", last_activity_ago=ACTIVE)})
    port = free_port()
    args = [
        f"--url={hub.api_url}",
        f"--metrics-bind=127.0.0.1:{port}",
        "--cull-every=3600",
        "--exclude-users=m-exempt",
        "--log-level=debug",
    ]
    culler = Culler(args, {"JUPYTERHUB_API_TOKEN": hub.cull_token})
    try:
        culler.wait_for("Next pass in")  # logged once the pass is counted
        code, kind, text = http_get(f"http://127.0.0.1:{port}/metrics")
        assert code == 200 and kind.startswith("text/plain; version=0.0.4")
        assert sample(text, "cull_idle_passes_total") == 1
        assert sample(text, "cull_idle_passes_failed_total") == 0
        assert sample(text, 'cull_idle_servers_stopped_total{reason="idle"}') == 2
        assert sample(text, 'cull_idle_skipped_total{reason="exempt"}') == 1
        assert sample(text, "cull_idle_last_success_timestamp_seconds") > 0
        # The README's metrics table is generated from the core's reasons: it names every
        # metric served and every reason counted.
        documented = _options_docs.metrics_table()
        for family in re.findall(r"^# TYPE (cull_idle_\w+) ", text, flags=re.M):
            assert f"`{family}" in documented, family
        for reason in re.findall(r'\{reason="([^"]+)"\}', text):
            assert f"`{reason}`" in documented, reason
        code, _, body = http_get(f"http://127.0.0.1:{port}/health")
        assert code == 200 and json.loads(body)["status"] == "ok" and json.loads(body)["passes"] == 1
        assert http_get(f"http://127.0.0.1:{port}/nope")[0] == 404
        code = culler.signal_and_wait(signal.SIGTERM)
    finally:
        culler.kill()
    assert code == 0


def test_health_fails_and_errors_are_counted_while_the_hub_is_down(no_hub_env):
    port = free_port()
    url = f"http://127.0.0.1:{free_port()}/hub/api"
    args = [f"--url={url}", f"--metrics-bind=127.0.0.1:{port}", "--cull-every=3600", "--log-level=debug"]
    culler = Culler(args, {"JUPYTERHUB_API_TOKEN": "t"})
    try:
        culler.wait_for("Next pass in")  # logged once the pass is counted
        code, _, body = http_get(f"http://127.0.0.1:{port}/health")
        assert code == 503 and json.loads(body)["status"] == "failing"
        text = http_get(f"http://127.0.0.1:{port}/metrics")[2]
        assert sample(text, "cull_idle_passes_failed_total") == 1
        # GET /user at start-up, then GET / in the pass: each 1 try + 3 retries.
        assert sample(text, 'cull_idle_hub_request_errors_total{status="connect"}') == 8
    finally:
        culler.kill()


@pytest.mark.slow
def test_managed_service_with_url_serves_metrics_under_its_prefix(no_hub_env):
    """The Hub exits if a managed service with a url does not answer; this one does."""
    port = free_port()
    command = "\x1f".join([sys.executable, "-m", "cull_idle", "--timeout=3600"])
    managed = TestHub(
        extra_env={"TEST_MANAGED_CULLER": command, "TEST_MANAGED_URL": f"http://127.0.0.1:{port}"}
    )
    managed.start()
    try:
        base = f"http://127.0.0.1:{port}/services/culler-managed"

        def passed():
            try:
                code, _, body = http_get(base + "/health")
            except urllib.error.URLError:  # not listening yet
                return False
            # "starting" (200) until the first pass is counted, then "ok".
            return code == 200 and json.loads(body)["status"] == "ok"

        managed.wait_for(passed, "the culler's first pass, through its health endpoint")
        text = http_get(base + "/metrics")[2]
        assert sample(text, "cull_idle_passes_total") >= 1
        assert managed.proc.poll() is None
    finally:
        managed.stop()


def culler_pid_of(hub):
    """The pid of the Hub's managed culler (a child of the Hub running `-m cull_idle`)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if ppid == hub.proc.pid and b"cull_idle" in argv:
            return int(entry)
    return None


@pytest.mark.slow
def test_an_orphaned_managed_culler_exits(no_hub_env):
    """A Hub killed outright leaves its services running; the culler notices and exits."""
    command = "\x1f".join([sys.executable, "-m", "cull_idle", "--timeout=3600"])
    managed = TestHub(extra_env={"TEST_MANAGED_CULLER": command})
    managed.start()
    try:
        managed.wait_for(lambda: "Cull pass done" in managed.log_path.read_text(), "the culler's first pass")
        pid = culler_pid_of(managed)
        assert pid is not None
        managed.proc.kill()  # the Hub only: the service runs in a session of its own
        managed.proc.wait()
        managed.wait_for(lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid), "the orphan to exit")
        assert "is gone; exiting" in managed.log_path.read_text()
    finally:
        managed.stop()


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.slow
def test_a_hub_down_for_ten_passes_then_back_is_culled_normally(no_hub_env):
    later = TestHub()  # its port is chosen now; nothing listens on it yet
    culler = Culler([f"--url={later.api_url}", "--cull-every=1"], {"JUPYTERHUB_API_TOKEN": later.cull_token})
    try:
        for _ in range(10):
            culler.wait_for("Cull pass INCOMPLETE", timeout=60)
        assert culler.proc.poll() is None
        later.start()
        setup_servers(later, idle("back1"))
        culler.wait_for(r"Cull pass done .* 1 servers stopped", timeout=60)
        assert not later.running("back1")
        code = culler.signal_and_wait(signal.SIGTERM)
        assert code == 0 and "Traceback" not in culler.output
    finally:
        culler.kill()
        later.stop()


@pytest.mark.slow
def test_the_hub_restarting_in_the_middle_of_a_pass(no_hub_env):
    """Requests in flight fail, are retried, and are reported; the culler carries on, and the
    next pass is a complete one against the restarted Hub."""
    slow_stops = {"TEST_SLEEP_STOP": "2", "TEST_SLOW_STOP_TIMEOUT": "60"}
    hub = TestHub(extra_env={**slow_stops, "TEST_KEEP_SERVERS": "1"}).start()
    culler = None
    try:
        names = [f"sleep-restart{i}" for i in range(6)]
        setup_servers(hub, idle(*names))
        culler = Culler(
            [f"--url={hub.api_url}", "--timeout=600", "--cull-every=1", "--concurrency=2"],
            {"JUPYTERHUB_API_TOKEN": hub.cull_token},
        )
        culler.wait_for("Culling server sleep-restart")  # stops of 2 s each are in flight
        hub.restart()
        interrupted = culler.wait_for("Cull pass", timeout=60)
        assert "errors" in interrupted
        culler.wait_for(r"Cull pass done", timeout=60)  # the next pass, complete
        assert culler.proc.poll() is None
        code = culler.signal_and_wait(signal.SIGTERM)
        assert code == 0 and "Traceback" not in culler.output, culler.output
        assert "retrying" in culler.output
    finally:
        if culler is not None:
            culler.kill()
        hub.stop()


def test_a_name_cannot_forge_a_log_line(hub):
    # The Hub accepts control characters in user names (not in server names).
    # (Lower case, as the Hub's authenticator normalises names.)
    forged = "mallory\n[w 2026-01-01 00:00:00.000 cull_idle act:1] culling server victim"
    setup_servers(hub, idle(forged))
    code, output = once(hub, hub.cull_token, "--timeout=600", "--log-level=debug")
    assert code == 0, output
    assert "Culling server mallory\\n[w 2026-01-01" in output, output
    assert not any(line.startswith("[w 2026-01-01") for line in output.splitlines()), output
    assert not hub.running(forged)
