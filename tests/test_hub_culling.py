"""Culling decisions and actions against a real JupyterHub (see conftest and hubharness/)."""

import asyncio
import logging
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest

import cull_idle
from cull_idle import cull_idle as cull

from helpers import ACTIVE, IDLE, outcomes, setup_servers


async def test_idle_servers_are_stopped_and_active_ones_kept(hub):
    setup_servers(
        hub,
        {
            ("idle1", ""): {"last_activity_ago": IDLE},
            ("idle2", ""): {"last_activity_ago": 600},  # exactly the limit: culled (>=)
            ("busy1", ""): {"last_activity_ago": ACTIVE},
            ("busy2", ""): {"last_activity_ago": 590},
        },
    )
    report = await cull(hub.api_url, hub.cull_token, 600)
    assert report.complete and report.hub_version
    assert outcomes(report) == {("idle1", ""): "stopped", ("idle2", ""): "stopped"}
    assert {a.reason for a in report.actions} == {"idle"}
    assert report.actions[0].inactive >= timedelta(seconds=600)
    assert not hub.running("idle1") and not hub.running("idle2")
    assert hub.running("busy1") and hub.running("busy2")
    assert report.users_seen == 4 and report.servers_seen == 4 and report.kept_active == 2


async def test_started_is_used_without_last_activity_and_no_times_means_keep(hub):
    setup_servers(
        hub,
        {
            ("nolast", ""): {"last_activity_ago": None, "started_ago": IDLE},
            ("notimes", ""): {"last_activity_ago": None, "started_ago": None},
        },
    )
    calls = []

    def arbiter(**kwargs):
        calls.append(kwargs)
        return True

    report = await cull(hub.api_url, hub.cull_token, 600, cull_arbiter=arbiter)
    assert outcomes(report) == {("nolast", ""): "stopped"}
    # The reference crashed calling the hook with inactive=None; we never call it then.
    assert [c["server"]["name"] for c in calls] == [""]
    assert all(isinstance(c["inactive"], timedelta) for c in calls)
    assert hub.running("notimes")
    assert [(s.user, s.reason) for s in report.skipped] == [("notimes", "no-activity-data")]


async def test_pending_spawns_are_not_touched(hub):
    # A user with only a pending spawn is not in state=ready; this one also has a ready default
    # server, so it is listed and its pending (and long idle-looking) named server is seen.
    setup_servers(
        hub, {("waiter", ""): {"last_activity_ago": ACTIVE}, ("idle1", ""): {"last_activity_ago": IDLE}}
    )
    hub.start_server("waiter", "pending-lab")
    hub.set_times(
        [{"user": "waiter", "server": "pending-lab", "last_activity_ago": IDLE, "started_ago": IDLE}]
    )
    report = await cull(hub.api_url, hub.cull_token, 600)
    assert outcomes(report) == {("idle1", ""): "stopped"}
    assert ("waiter", "pending-lab", "pending", "spawn") in {
        (s.user, s.server, s.reason, s.detail) for s in report.skipped
    }
    assert hub.user("waiter")["servers"]["pending-lab"]["pending"] == "spawn"


async def test_named_servers_are_stopped_and_removed_on_request(hub):
    setup_servers(
        hub,
        {
            ("ann", ""): {"last_activity_ago": IDLE},
            ("ann", "gpu"): {"last_activity_ago": IDLE},
            ("ann", "keep"): {"last_activity_ago": ACTIVE},
            ("ben", "gpu"): {"last_activity_ago": IDLE},
        },
    )
    report = await cull(hub.api_url, hub.cull_token, 600, remove_named_servers=True, api_page_size=1)
    assert outcomes(report) == {("ann", ""): "stopped", ("ann", "gpu"): "stopped", ("ben", "gpu"): "stopped"}
    ann = hub.user("ann", stopped=True)["servers"]
    # Removed named servers are gone for good; the default server is only stopped.
    assert "gpu" not in ann and ann[""]["stopped"] and ann["keep"]["ready"]
    assert "gpu" not in hub.user("ben", stopped=True)["servers"]


async def test_named_servers_are_kept_without_remove(hub):
    setup_servers(hub, {("cat", "gpu"): {"last_activity_ago": IDLE}})
    report = await cull(hub.api_url, hub.cull_token, 600)
    assert outcomes(report) == {("cat", "gpu"): "stopped"}
    assert hub.user("cat", stopped=True)["servers"]["gpu"]["stopped"] is True


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"cull_default_servers": False}, {("dee", "lab"): "stopped"}),
        ({"cull_named_servers": False}, {("dee", ""): "stopped"}),
    ],
)
async def test_default_and_named_selection(hub, flags, expected):
    setup_servers(
        hub, {("dee", ""): {"last_activity_ago": IDLE}, ("dee", "lab"): {"last_activity_ago": IDLE}}
    )
    report = await cull(hub.api_url, hub.cull_token, 600, **flags)
    assert outcomes(report) == expected
    assert report.kept_not_selected == 1


async def test_max_age_culls_active_servers(hub):
    setup_servers(
        hub,
        {
            ("old", ""): {"last_activity_ago": ACTIVE, "started_ago": 7200},
            ("young", ""): {"last_activity_ago": ACTIVE, "started_ago": 60},
        },
    )
    report = await cull(hub.api_url, hub.cull_token, 600, max_age=3600, cull_default_servers=False)
    assert outcomes(report) == {("old", ""): "stopped"}
    assert report.actions[0].reason == "max-age"
    assert hub.running("young")


async def test_negative_max_age_is_rejected(hub):
    setup_servers(hub, {("eve", ""): {"last_activity_ago": ACTIVE}})
    with pytest.raises(ValueError, match="max_age"):
        await cull(hub.api_url, hub.cull_token, 600, max_age=-5)
    assert hub.running("eve")


async def test_user_culling(hub):
    hub.create_users(["gone-idle", "never-started", "recent", "boss"])
    hub.create_users(["admin-idle"], admin=True)
    hub.start_servers([("gone-idle", ""), ("recent", ""), ("boss", "")])
    hub.set_times(
        [
            {"user": "gone-idle", "server": "", "last_activity_ago": IDLE, "user_last_activity_ago": IDLE},
            {"user": "never-started", "user_last_activity_ago": None, "user_created_ago": IDLE},
            {"user": "admin-idle", "user_last_activity_ago": IDLE},
            {"user": "recent", "server": "", "last_activity_ago": IDLE, "user_last_activity_ago": ACTIVE},
            {"user": "boss", "server": "", "last_activity_ago": ACTIVE, "user_last_activity_ago": IDLE},
        ]
    )
    report = await cull(hub.api_url, hub.cull_users_token, 600, cull_users=True, cull_admin_users=False)
    deleted = {a.user for a in report.deleted}
    assert deleted == {"gone-idle", "never-started"}
    assert hub.user("gone-idle") is None and hub.user("never-started") is None
    # recent's server was idle, the user was not: server stopped, user kept.
    assert outcomes(report)[("recent", "")] == "stopped" and hub.user("recent") is not None
    assert hub.user("admin-idle") is not None and ("admin-idle", "admin") in {
        (s.user, s.reason) for s in report.skipped
    }
    assert hub.running("boss")


async def test_user_culling_rechecks_before_deleting(hub):
    """A user who starts a server between the listing and the delete keeps it."""
    hub.create_users(["comeback"])
    hub.set_times([{"user": "comeback", "user_last_activity_ago": IDLE, "user_created_ago": IDLE}])
    started = []

    def arbiter(**kwargs):
        # Runs during the listing, after 'comeback' was listed as idle and server-less.
        if not started:
            hub.start_server("comeback")
            started.append(True)
        return False

    setup_servers(hub, {("zz-listed-later", ""): {"last_activity_ago": IDLE}})
    report = await cull(hub.api_url, hub.cull_users_token, 600, cull_users=True, cull_arbiter=arbiter)
    assert started and hub.running("comeback")
    kept = [a for a in report.actions if a.user == "comeback"]
    assert kept and kept[0].outcome == "kept"


async def test_slow_stops_are_reported_and_keep_the_user(hub):
    setup_servers(hub, {("slow1", ""): {"last_activity_ago": IDLE, "user_last_activity_ago": IDLE}})
    report = await cull(hub.api_url, hub.cull_users_token, 600, cull_users=True)
    assert outcomes(report) == {("slow1", ""): "stopping", ("slow1", None): "kept"}
    assert [a.user for a in report.stopping] == ["slow1"]
    assert hub.user("slow1") is not None


@pytest.mark.slow
async def test_many_idle_users_across_small_pages(hub):
    """Stops during a pass shrink state=ready; every user listed at the start is still culled."""
    names = [f"u{i:03d}" for i in range(120)]
    spec = {(n, ""): {"last_activity_ago": IDLE if i % 4 else ACTIVE} for i, n in enumerate(names)}
    setup_servers(hub, spec)
    idle = {n for i, n in enumerate(names) if i % 4}
    for page_size in (0, 7):  # 0: the Hub's maximum, 20 here
        report = await cull(hub.api_url, hub.cull_token, 600, api_page_size=page_size)
        assert {a.user for a in report.stopped} == idle, page_size
        assert report.users_seen == 120
        if page_size == 0:
            assert not any(hub.running(n) for n in idle)
            assert all(hub.running(n) for n in set(names) - idle)
            hub.start_servers([(n, "") for n in sorted(idle)])
            hub.set_times([{"user": n, "server": "", "last_activity_ago": IDLE} for n in idle])


async def test_decisions_do_not_depend_on_page_size_or_order(hub):
    """The same Hub, listed in pages of 1, 3, 7 and 20 users (and so in different orders of
    arrival and action), gives the same decisions for every server and user."""
    rng = __import__("random").Random(20261127)
    names = [f"ps{i:02d}" for i in range(30)]
    spec = {}
    for name in names:
        for server in rng.sample(["", "lab", "gpu"], rng.randint(1, 3)):
            spec[(name, server)] = {"last_activity_ago": rng.choice([ACTIVE, 300, IDLE, 5000])}
    setup_servers(hub, spec)
    hub.set_times([{"user": n, "user_last_activity_ago": rng.choice([ACTIVE, IDLE])} for n in names])
    hub.create_group("long", rng.sample(names, 10))

    def decisions(report):
        kept = {(s.user, s.server, s.reason) for s in report.skipped}
        return {(a.user, a.server, a.outcome) for a in report.actions}, kept, report.kept_active

    seen = {}
    for page_size in (1, 3, 7, 0):
        report = await cull(
            hub.api_url,
            hub.cull_groups_token,
            600,
            api_page_size=page_size,
            cull_users=True,
            group_timeouts={"long": 4000},
            dry_run=True,
        )
        assert report.complete and report.users_seen == len(names)
        seen[page_size] = decisions(report)
    assert seen[1] == seen[3] == seen[7] == seen[0]
    stops = {(u, s) for u, s, outcome in seen[0][0] if outcome == "would-stop"}
    assert stops and stops != set(spec), "the mix must have both culled and kept servers"


def mixed_hub(hub):
    """75 users: with servers active, idle, or idle next to an active or idle named one, and
    without servers, idle or not; most users themselves idle."""
    spec = {}
    for i in range(60):
        name = f"mx{i:02d}"
        kind = i % 4
        spec[(name, "")] = {"last_activity_ago": ACTIVE if kind == 0 else IDLE}
        if kind >= 2:
            spec[(name, "lab")] = {"last_activity_ago": ACTIVE if kind == 2 else IDLE}
    setup_servers(hub, spec)
    serverless = [f"ns{i:02d}" for i in range(15)]
    hub.create_users(serverless)
    everyone = [u for u, _ in spec] + serverless
    times = [{"user": n, "user_last_activity_ago": ACTIVE if n.endswith("7") else IDLE} for n in everyone]
    hub.set_times(times)


@pytest.mark.slow
# Pages of one acting after each, and of seven acting after every third: the other pairs, and
# many more, run over the in-memory Hub in cargo test (listing.rs, pass/tests.rs).
@pytest.mark.parametrize(("page_size", "act_after"), [(1, 1), (7, 3)])
async def test_acting_between_pages_neither_misses_nor_repeats_a_user(hub, page_size, act_after):
    """Acting in batches between pages, the pass stops servers and deletes users, which moves
    later users of state=ready and state=inactive to lower offsets. Every user is still seen
    once, and what is done is what a pass that lists everything first does."""

    async def run(act_after):
        hub.delete_all_users()  # including any the Hub made at start-up, so each run sees 75
        mixed_hub(hub)
        report = await cull(
            hub.api_url,
            hub.cull_users_token,
            600,
            cull_users=True,
            api_page_size=page_size,
            _act_after=act_after,
        )
        assert report.complete and report.users_seen == 75, (act_after, report.users_seen)
        done = {(a.user, a.server, a.outcome) for a in report.actions}
        kept = sorted((s.user, s.server, s.reason) for s in report.skipped)
        running = {u for u in (f"mx{i:02d}" for i in range(60)) if hub.user(u) and hub.running(u)}
        return done, kept, report.kept_active, running

    listed_first = await run(None)
    done = listed_first[0]
    assert len({(u, s) for u, s, o in done if s is not None and o == "stopped"}) == 60
    assert len({u for u, s, o in done if s is None and o == "deleted"}) > 20
    assert await run(act_after) == listed_first


@pytest.mark.slow
async def test_a_slow_stop_between_pages_does_not_hide_later_users(hub):
    """The first user's stop is slow (202 after 2 s, done after 4 s), so it leaves state=ready
    while the listing goes on (each later page holds a stop of 1 s). Later pages start early
    enough for that, so no user slides past unseen."""
    groups = [[f"sm{p}{i}" for i in range(9)] + [f"sleep-{p}"] for p in range(6)]
    names = ["slow-a"] + [n for group in groups for n in group]  # created, so listed, in this order
    hub.create_users(names)
    hub.start_servers([(n, "") for n in names])
    hub.set_times([{"user": n, "server": "", "last_activity_ago": IDLE} for n in names])
    report = await cull(hub.api_url, hub.cull_token, 600, api_page_size=10, _act_after=1)
    assert report.complete and report.users_seen == len(names)
    expected = {(n, ""): "stopped" for n in names}
    assert outcomes(report) == {**expected, ("slow-a", ""): "stopping"}


@pytest.mark.parametrize("name", ["sp ace", "plus+sign", "at@example.org", "per%cent", "ünïcødé", "日本語"])
async def test_awkward_user_names(hub, name):
    setup_servers(hub, {(name, ""): {"last_activity_ago": IDLE, "user_last_activity_ago": IDLE}})
    report = await cull(hub.api_url, hub.cull_users_token, 600, cull_users=True)
    assert outcomes(report) == {(name, ""): "stopped", (name, None): "deleted"}, report
    assert hub.user(name) is None


async def test_sync_and_async_arbiters(hub):
    setup_servers(hub, {("ari", ""): {"last_activity_ago": ACTIVE}, ("bea", ""): {"last_activity_ago": IDLE}})

    async def never(**kwargs):
        await asyncio.sleep(0)
        return False

    report = await cull(hub.api_url, hub.cull_token, 600, cull_arbiter=never)
    assert report.actions == [] and ("bea", "arbiter") in {(s.user, s.reason) for s in report.skipped}
    seen = {}

    def everyone(*, inactive, inactive_limit, server, **kwargs):
        seen[server["name"] or server.get("full_name")] = (inactive_limit, server["ready"])
        return True

    report = await cull(hub.api_url, hub.cull_token, 600, cull_arbiter=everyone)
    assert {a.user for a in report.stopped} == {"ari", "bea"}
    assert set(seen.values()) == {(600, True)}


async def test_failing_arbiter_keeps_the_server_and_logs(hub, caplog):
    setup_servers(hub, {("fay", ""): {"last_activity_ago": IDLE}})

    def broken(**kwargs):
        raise RuntimeError("hook bug")

    with caplog.at_level(logging.INFO, logger="cull_idle"):
        report = await cull(hub.api_url, hub.cull_token, 600, cull_arbiter=broken)
    assert report.actions == [] and hub.running("fay")
    assert any("cull_arbiter failed" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_utcnow_can_be_patched_to_move_time(hub):
    setup_servers(hub, {("gus", ""): {}, ("hal", ""): {}})
    assert (await cull(hub.api_url, hub.cull_token, 300)).actions == []
    later = cull_idle.utcnow() + timedelta(seconds=600)
    with mock.patch("cull_idle.utcnow", lambda: later):
        report = await cull(hub.api_url, hub.cull_token, 300)
    assert {a.user for a in report.stopped} == {"gus", "hal"}


async def test_stops_run_concurrently_up_to_the_limit(hub):
    names = [f"sleep{i:02d}" for i in range(24)]
    setup_servers(hub, {(n, ""): {"last_activity_ago": IDLE} for n in names})
    hub.reset_stop_stats()
    report = await cull(hub.api_url, hub.cull_token, 600, concurrency=8)
    assert len(report.stopped) == 24
    stats = hub.stop_stats()
    # Every stop takes 1 s inside the Hub: 8 in flight at once, never more.
    assert stats["total"] == 24 and stats["max"] == 8


async def test_report_and_summary_line(hub, caplog):
    setup_servers(hub, {("ida", ""): {"last_activity_ago": IDLE}, ("jon", ""): {"last_activity_ago": ACTIVE}})
    with caplog.at_level(logging.INFO, logger="cull_idle"):
        await cull(hub.api_url, hub.cull_token, 600)
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Cull pass")]
    assert len(summary) == 1
    assert "2 users and 2 servers seen, 1 servers stopped" in summary[0] and "0 errors" in summary[0]
    assert "Culling server ida (inactive for 00:11:" in caplog.text


async def test_records_go_to_a_given_logger(hub):
    setup_servers(hub, {("kim", ""): {"last_activity_ago": IDLE}})
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    mine = logging.getLogger("my.service")
    mine.setLevel(logging.INFO)
    mine.addHandler(Keep())
    mine.propagate = False
    await cull(hub.api_url, hub.cull_token, 600, logger=mine)
    assert any(m.startswith("Culling server kim") for m in records)


async def test_forbidden_token_names_the_scopes(hub, caplog):
    with caplog.at_level(logging.INFO, logger="cull_idle"):
        report = await cull(hub.api_url, "not-a-valid-token", 600)
    assert not report.complete
    assert "403" in report.errors[0]
    assert "list:users" in caplog.text and "read:servers" in caplog.text


async def test_unreachable_hub_is_a_report_not_an_exception(no_hub_env):
    from hubharness.launcher import free_port

    report = await cull(f"http://127.0.0.1:{free_port()}/hub/api", "t", 600)
    assert not report.complete and "cannot reach the Hub" in report.errors[0]


def test_blocking_variant(hub):
    setup_servers(hub, {("lea", ""): {"last_activity_ago": IDLE}})
    report = cull_idle.cull_idle_blocking(hub.api_url, hub.cull_token, 600)
    assert [a.user for a in report.stopped] == ["lea"]


async def test_periodic_loop_passes_until_stopped(hub):
    setup_servers(hub, {("max", ""): {"last_activity_ago": IDLE}})
    stop = asyncio.Event()
    passes = []

    def arbiter(**kwargs):
        passes.append(1)
        if len(passes) == 2:
            stop.set()
        return False

    await asyncio.wait_for(
        cull_idle.cull_idle_periodically(
            hub.api_url, hub.cull_token, 600, cull_every=1, stop=stop, cull_arbiter=arbiter
        ),
        timeout=20,
    )
    assert len(passes) == 2 and hub.running("max")


async def test_periodic_loop_survives_a_pass_that_raises(hub, caplog):
    setup_servers(hub, {("ned", ""): {"last_activity_ago": IDLE}})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    calls = []
    real = cull_idle.utcnow

    def flaky_now():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("clock exploded")
        return real()

    class StopAfterPass(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("Cull pass done"):
                loop.call_soon_threadsafe(stop.set)  # records come from the core's threads

    handler = StopAfterPass()
    logging.getLogger("cull_idle").addHandler(handler)
    try:
        with mock.patch("cull_idle.utcnow", flaky_now), caplog.at_level(logging.INFO, logger="cull_idle"):
            await asyncio.wait_for(
                cull_idle.cull_idle_periodically(hub.api_url, hub.cull_token, 600, cull_every=1, stop=stop),
                timeout=20,
            )
    finally:
        logging.getLogger("cull_idle").removeHandler(handler)
    assert len(calls) == 2 and not hub.running("ned")
    assert "The cull pass failed" in caplog.text and "clock exploded" in caplog.text


async def test_a_report_without_details_counts_everything_and_lists_nothing(hub):
    spec = {(f"nd{i}", ""): {"last_activity_ago": IDLE} for i in range(3)}
    spec[("nd-active", "")] = {"last_activity_ago": ACTIVE}
    spec[("nd-active", "pendinglab")] = {}
    setup_servers(hub, spec)
    report = await cull(hub.api_url, hub.cull_token, 600, details=False)
    assert report.actions == [] and report.skipped == []
    assert report.totals["servers"] == {"stopped": {"idle": 3}}
    assert report.totals["skipped"] == {"pending": 1}
    assert report.kept_active == 1 and report.errors_total == 0
    detailed = await cull(hub.api_url, hub.cull_token, 600)
    assert detailed.totals["skipped"] == {"pending": 1}
    assert [(s.user, s.server) for s in detailed.skipped] == [("nd-active", "pendinglab")]


async def test_the_user_hook_decides_idle_users_but_not_max_age(hub):
    hub.create_users(["keeper", "boom", "leaver", "ancient"])
    hub.set_times(
        [
            {"user": u, "user_last_activity_ago": 700, "user_created_ago": 700}
            for u in ["keeper", "boom", "leaver"]
        ]
        + [{"user": "ancient", "user_last_activity_ago": 10, "user_created_ago": 90_000}]
    )
    asked: list[tuple[str, float, int]] = []

    async def hook(user: dict, inactive: Any, inactive_limit: int) -> bool:
        asked.append((user["name"], inactive.total_seconds(), inactive_limit))
        if user["name"] == "boom":
            raise RuntimeError("directory down")
        return bool(user["name"] != "keeper")

    connection = cull_idle.connect(hub.api_url, hub.cull_users_token)
    report = await cull_idle.run_pass(
        connection, 600, cull_users=True, max_age=86400, cull_user_hook=hook, exclude_users=["admin-user"]
    )
    assert {a.user for a in report.deleted} == {"leaver", "ancient"}
    assert hub.user("keeper") is not None and hub.user("boom") is not None
    assert sorted(name for name, _, _ in asked) == ["boom", "keeper", "leaver"], "max-age does not ask"
    assert all(700 <= inactive < 760 and limit == 600 for _, inactive, limit in asked)
    assert {(s.user, s.reason) for s in report.skipped if s.server is None} >= {
        ("keeper", "arbiter"),
        ("boom", "arbiter"),
    }


def stopped_servers(hub: Any, pairs: list[tuple[str, str]], ago: dict[tuple[str, str], float]) -> None:
    """Start and stop these servers, then date their last activity ``ago`` seconds back."""
    hub.start_servers(pairs)
    for user, server in pairs:
        path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
        assert hub.api("DELETE", path).status_code in (202, 204)
    hub.wait_for(lambda: not any(hub.running(u, s) for u, s in pairs), "the servers to stop")
    hub.set_times([{"user": u, "server": s, "last_activity_ago": a} for (u, s), a in ago.items()])


async def test_named_servers_stopped_long_ago_are_removed_and_nothing_else(hub):
    days = 3 * 86400
    hub.create_users(["runs", "away", "exempt"])
    hub.start_servers([("runs", "")])
    old = [("runs", "old"), ("runs", "recent"), ("away", "old"), ("away", ""), ("exempt", "old")]
    stopped_servers(hub, old, {p: (3600 if p[1] == "recent" else days) for p in old})
    hub.set_times([{"user": "runs", "server": "", "last_activity_ago": ACTIVE}])
    connection = cull_idle.connect(hub.api_url, hub.cull_token)

    def stopped_names(user: str) -> set[str]:
        return set(hub.user(user, stopped=True)["servers"])

    dry = await cull_idle.run_pass(
        connection, 600, remove_stopped_named_servers=86400, exclude_users=["exempt"], dry_run=True
    )
    assert outcomes(dry) == {("runs", "old"): "would-stop", ("away", "old"): "would-stop"}
    assert {a.reason for a in dry.actions} == {"long-stopped"}
    assert stopped_names("runs") == {"", "old", "recent"}
    report = await cull_idle.run_pass(
        connection, 600, remove_stopped_named_servers=86400, exclude_users=["exempt"]
    )
    assert outcomes(report) == {("runs", "old"): "stopped", ("away", "old"): "stopped"}
    assert stopped_names("runs") == {"", "recent"} and hub.running("runs")
    assert stopped_names("away") == {""}, "never the default server"
    assert "old" in stopped_names("exempt")
    # Without the option, stopped servers are not even listed.
    quiet = await cull_idle.run_pass(connection, 600)
    assert quiet.actions == [] and quiet.errors == []


async def test_a_stopped_server_is_warned_before_it_is_removed(hub):
    hub.create_users(["away"])
    stopped_servers(hub, [("away", "old")], {("away", "old"): 3 * 86400})
    connection = cull_idle.connect(hub.api_url, hub.cull_token)
    report = await cull_idle.run_pass(connection, 600, remove_stopped_named_servers=86400, warn_before=300)
    assert [(w.user, w.server, w.reason) for w in report.warned] == [("away", "old", "long-stopped")]
    assert report.actions == [] and "old" in hub.user("away", stopped=True)["servers"]
