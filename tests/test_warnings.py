"""Warnings before culling, on a real Hub, with a webhook receiver that the suite runs.

Times are the Hub's and the culler's own: a server past its limit is warned at a pass and
culled at the first pass at least ``--warn-before`` later; tests wait for those log lines and
check the order and spacing that the guarantee promises, never a fixed sleep.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

import pytest

import cull_idle

from culler_process import Culler, run
from helpers import ACTIVE, IDLE, SECRET_PATH, Receiver, http_get, sample, setup_servers
from hubharness.launcher import free_port

STAMP = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})")


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def stamp(line: str) -> datetime:
    match = STAMP.match(line)
    assert match, line
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f")


def culler(hub: Any, tmp_path: Any, *args: str, token: Optional[str] = None, **env: str) -> Culler:
    return Culler(
        [
            f"--url={hub.api_url}",
            "--timeout=600",
            "--cull-every=1",
            f"--state-file={tmp_path / 'state.sqlite'}",
            *args,
        ],
        {"JUPYTERHUB_API_TOKEN": token or hub.cull_users_token, **env},
        cwd=str(tmp_path),
    )


def test_a_server_past_its_limit_is_warned_then_culled_a_window_later(hub, receiver, tmp_path):
    setup_servers(
        hub, {("late", ""): {"last_activity_ago": IDLE}, ("busy", ""): {"last_activity_ago": ACTIVE}}
    )
    c = culler(hub, tmp_path, "--warn-before=2", f"--warn-webhook={receiver.url}", "--log-level=debug")
    try:
        warned = c.wait_for(
            r"Warning user late: server late will be culled at .* \(inactive for 00:1\d:\d\d\)"
        )
        culled = c.wait_for(r"Culling server late")
        assert (stamp(culled) - stamp(warned)).total_seconds() >= 2
        hub.wait_for(lambda: not hub.running("late"), "late's server to stop")
        assert hub.running("busy")
    finally:
        c.kill()
    (headers, body), *rest = [receiver.posts.get_nowait() for _ in range(receiver.posts.qsize())]
    assert rest == [], "one warning for one idle stretch"
    assert body["user"] == "late" and body["server"] == "" and body["reason"] == "idle"
    assert IDLE <= body["inactive_seconds"] < IDLE + 60
    cull_at = datetime.strptime(body["cull_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs(cull_at - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert body["text"].startswith("late's server will be stopped at ") and body["text"].endswith(".")
    # The Hub's token goes to the Hub only; the webhook's URL is a secret too, at DEBUG as well.
    assert not any(k.lower() == "authorization" for k in headers)
    assert hub.cull_users_token not in json.dumps(headers)
    assert SECRET_PATH not in c.output and "webhook-secret" not in c.output


def test_warned_once_inside_the_window_never_when_active_and_a_group_timeout_moves_it(
    hub, receiver, tmp_path
):
    # timeout 600 s, window 300 s: "soon" (idle 500 s) is due in 100 s, so warned; "busy" is
    # due in 590 s and "gpu" (group limit 7200 s) in 6700 s, so neither is.
    setup_servers(
        hub,
        {
            ("soon", ""): {"last_activity_ago": 500},
            ("busy", ""): {"last_activity_ago": ACTIVE},
            ("gpu", ""): {"last_activity_ago": 500},
        },
    )
    hub.create_group("gpu", ["gpu"])
    c = culler(
        hub,
        tmp_path,
        "--warn-before=300",
        "--group-timeout=gpu=7200",
        f"--warn-webhook={receiver.url}",
        token=hub.cull_groups_token,
    )
    try:
        for _ in range(4):
            c.wait_for(r"Cull pass done")
    finally:
        c.kill()
    bodies = receiver.all()
    assert [(b["user"], b["server"]) for b in bodies] == [("soon", "")], bodies
    assert c.output.count("Warning user") == 1
    assert hub.running("soon") and hub.running("busy") and hub.running("gpu")


def test_a_restarted_culler_does_not_warn_again_and_culls_on_time(hub, receiver, tmp_path):
    setup_servers(hub, {("late", ""): {"last_activity_ago": IDLE}})
    args = ("--warn-before=3", f"--warn-webhook={receiver.url}")
    first = culler(hub, tmp_path, *args)
    try:
        warned = first.wait_for(r"Warning user late")
        first.wait_for(r"Cull pass done")
        code = first.signal_and_wait(signal.SIGTERM)
        assert code == 0
    finally:
        first.kill()
    assert hub.running("late")
    second = culler(hub, tmp_path, *args)
    try:
        culled = second.wait_for(r"Culling server late", timeout=60)
    finally:
        second.kill()
    assert (stamp(culled) - stamp(warned)).total_seconds() >= 3
    assert "Warning user" not in second.output
    assert len(receiver.all()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fail", "hang"])
def test_a_broken_webhook_is_counted_and_the_cull_goes_ahead(hub, tmp_path, mode):
    receiver = Receiver(mode)
    port = free_port()
    setup_servers(hub, {("late", ""): {"last_activity_ago": IDLE}})
    c = culler(
        hub,
        tmp_path,
        "--warn-before=1",
        f"--warn-webhook={receiver.url}",
        f"--metrics-bind=127.0.0.1:{port}",
        JUPYTERHUB_REQUEST_TIMEOUT="1",
    )
    try:
        c.wait_for(r"Cannot deliver the warning for server late", timeout=60)
        c.wait_for(r"Culling server late", timeout=60)
        c.wait_for(r"Cull pass done")
        _, _, metrics = http_get(f"http://127.0.0.1:{port}/metrics")
    finally:
        c.kill()
        receiver.close()
    assert sample(metrics, 'cull_idle_warnings_total{kind="server"}') == 1
    assert sample(metrics, "cull_idle_warning_failures_total") == 1
    assert "Traceback" not in c.output and SECRET_PATH not in c.output


def test_users_are_warned_before_deletion(hub, receiver, tmp_path):
    hub.create_users(["leaver"])
    hub.set_times([{"user": "leaver", "user_last_activity_ago": IDLE, "user_created_ago": IDLE}])
    c = culler(hub, tmp_path, "--cull-users", "--warn-users-before=2", f"--warn-webhook={receiver.url}")
    try:
        warned = c.wait_for(r"Warning user leaver: user leaver will be deleted at ")
        deleted = c.wait_for(r"Culling user leaver")
        hub.wait_for(lambda: hub.user("leaver") is None, "leaver to be deleted")
    finally:
        c.kill()
    assert (stamp(deleted) - stamp(warned)).total_seconds() >= 2
    (body,) = receiver.all()
    assert body["server"] is None and body["text"].startswith("The user leaver will be deleted")


def test_a_dry_run_says_what_it_would_warn_and_delivers_nothing(hub, receiver, tmp_path):
    setup_servers(hub, {("late", ""): {"last_activity_ago": IDLE}})
    code, output = run(
        [
            f"--url={hub.api_url}",
            "--timeout=600",
            "--once",
            "--dry-run",
            "--warn-before=60",
            f"--warn-webhook={receiver.url}",
            f"--state-file={tmp_path / 'state.sqlite'}",
        ],
        {"JUPYTERHUB_API_TOKEN": hub.cull_token},
    )
    assert code == 0, output
    assert "Would warn user late: server late will be culled at" in output
    assert receiver.all() == [] and hub.running("late")


async def test_the_hook_gets_the_models_and_its_failure_is_counted(hub):
    setup_servers(
        hub, {("late", ""): {"last_activity_ago": IDLE}, ("late2", "lab"): {"last_activity_ago": IDLE}}
    )
    seen: list[dict[str, Any]] = []

    async def hook(**kwargs: Any) -> None:
        if kwargs["server"] and kwargs["server"]["name"] == "lab":
            raise RuntimeError("mail server down")
        seen.append(kwargs)

    connection = cull_idle.connect(hub.api_url, hub.cull_token)
    report = await cull_idle.run_pass(connection, 600, warn_before=300, warn_hook=hook)
    (given,) = seen
    assert given["user"]["name"] == "late" and given["server"]["name"] == ""
    assert given["reason"] == "idle" and timedelta(seconds=IDLE) <= given["inactive"] < timedelta(
        seconds=IDLE + 60
    )
    assert given["cull_at"].tzinfo is not None
    assert {(w.user, w.delivered) for w in report.warned} == {("late", True), ("late2", False)}
    assert report.warning_failures == 1 and report.stopped == []
    # Warned, so the next pass neither warns again nor culls before the window is up.
    again = await cull_idle.run_pass(connection, 600, warn_before=300, warn_hook=hook)
    assert again.warned == [] and again.stopped == [] and len(seen) == 1


def test_bad_state_files_are_one_line_errors(hub, tmp_path):
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"not a database at all " * 20)
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    for state, message in [
        (corrupt, "is not a cull-idle state database"),
        (newer, "was written by a newer cull-idle (schema 99"),
        (tmp_path, "cannot open the state file"),
    ]:
        code, output = run(
            [f"--url={hub.api_url}", "--once", "--warn-before=60", f"--state-file={state}"],
            {"JUPYTERHUB_API_TOKEN": hub.cull_token},
        )
        assert code == 2, output
        assert output.count("\n") == 0 and message in output and "Traceback" not in output, output
    assert corrupt.read_bytes().startswith(b"not a database"), "never reset"


def test_a_second_culler_on_the_same_state_file_names_the_first(hub, tmp_path):
    first = culler(hub, tmp_path, "--warn-before=60")
    try:
        first.wait_for(r"Cull pass done")
        code, output = run(
            [
                f"--url={hub.api_url}",
                "--once",
                "--warn-before=60",
                f"--state-file={tmp_path / 'state.sqlite'}",
            ],
            {"JUPYTERHUB_API_TOKEN": hub.cull_token},
        )
    finally:
        first.kill()
    assert code == 2 and f"in use by another cull-idle (pid {first.proc.pid})" in output, output


def test_without_warnings_no_state_file_appears(hub, tmp_path):
    code, output = run(
        [f"--url={hub.api_url}", "--once"], {"JUPYTERHUB_API_TOKEN": hub.cull_token}, cwd=str(tmp_path)
    )
    assert code == 0, output
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs, to fill up; the test is skipped where mounting is not allowed."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Any) -> None:
    with open(directory / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass


def test_a_full_disk_stops_new_warnings_and_their_culls_but_not_the_culler(hub, tmp_path, tiny_disk):
    state = f"--state-file={tiny_disk / 'state.sqlite'}"
    setup_servers(hub, {("old", ""): {"last_activity_ago": IDLE}})
    first = culler(hub, tmp_path, "--warn-before=3", state)
    try:
        first.wait_for(r"Warning user old")
        first.wait_for(r"Cull pass done")
        assert first.signal_and_wait(signal.SIGTERM) == 0
    finally:
        first.kill()
    second = culler(hub, tmp_path, "--warn-before=3", state)
    try:
        second.wait_for(r"Cull pass done")
        fill(tiny_disk)
        names = [f"new{i}" for i in range(20)]
        setup_servers(hub, {(n, ""): {"last_activity_ago": IDLE} for n in names})
        second.wait_for(r"Cannot use the state file \(.*full", timeout=60)
        # Warned before the disk filled: culled on time. The new ones: not warned, so kept.
        second.wait_for(r"Culling server old", timeout=60)
        for _ in range(3):
            second.wait_for(r"Cull pass done")
        assert second.proc.poll() is None
    finally:
        second.kill()
    assert all(hub.running(n) for n in names)
    assert "Warning user new" not in second.output and "Traceback" not in second.output


def test_the_config_file_sets_the_hook_and_the_webhook(hub, receiver, tmp_path):
    setup_servers(hub, {("late", ""): {"last_activity_ago": IDLE}})
    (tmp_path / "idle_culler_config.py").write_text(
        f"c.IdleCuller.warn_webhook = {receiver.url!r}\n"
        "def warn_hook(user, server, reason, inactive, cull_at, **more):\n"
        "    line = f\"{user['name']} {server['name']!r} {reason} {cull_at.isoformat()}\\n\"\n"
        "    open('hooked', 'a').write(line)\n"
        "c.IdleCuller.warn_hook = warn_hook\n"
    )
    code, output = run(
        [f"--url={hub.api_url}", "--once", "--warn-before=60"],
        {"JUPYTERHUB_API_TOKEN": hub.cull_token},
        cwd=str(tmp_path),
    )
    assert code == 0, output
    assert (tmp_path / "hooked").read_text().startswith("late '' idle ")
    assert [b["user"] for b in receiver.all()] == ["late"]
    assert hub.running("late") and SECRET_PATH not in output


def test_the_webhook_from_the_environment_and_a_bad_one_not_echoed(hub, receiver, tmp_path):
    setup_servers(hub, {("late", ""): {"last_activity_ago": IDLE}})
    args = [f"--url={hub.api_url}", "--once", "--warn-before=60", f"--state-file={tmp_path / 's.sqlite'}"]
    code, output = run(args, {"JUPYTERHUB_API_TOKEN": hub.cull_token, "CULL_IDLE_WARN_WEBHOOK": receiver.url})
    assert code == 0, output
    assert [b["user"] for b in receiver.all()] == ["late"]
    code, output = run(
        [*args, "--warn-webhook=hooks.example.org/services/secret-abc"],
        {"JUPYTERHUB_API_TOKEN": hub.cull_token},
    )
    assert code == 2 and "secret-abc" not in output and "it is a secret" in output, output


def test_a_culler_killed_while_delivering_leaves_warnings_to_deliver_not_culls(hub, tmp_path):
    # Three servers due; the webhook stalls; the culler is SIGKILLed mid-delivery, as a helm
    # upgrade or an OOM kill would do.
    names = ["k1", "k2", "k3"]
    setup_servers(hub, {(n, ""): {"last_activity_ago": IDLE} for n in names})
    stalled = Receiver("hang")
    first = culler(hub, tmp_path, "--warn-before=3", f"--warn-webhook={stalled.url}")
    try:
        for _ in names:
            stalled.posts.get(timeout=30)
        assert first.proc.poll() is None, "still delivering"
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.kill()
        stalled.close()
    receiver = Receiver()
    second = culler(hub, tmp_path, "--warn-before=3", f"--warn-webhook={receiver.url}")
    try:
        # The warnings were never delivered: the new culler gives them, then waits a window.
        warned = [second.wait_for(rf"Warning user {n}\b") for n in sorted(names)]
        culled = [second.wait_for(r"Culling server k\d", timeout=60) for _ in names]
        for n in names:
            hub.wait_for(lambda n=n: not hub.running(n), f"{n}'s server to stop")
    finally:
        second.kill()
        receiver.close()
    assert sorted(b["user"] for b in receiver.all()) == names
    assert (min(map(stamp, culled)) - max(map(stamp, warned))).total_seconds() >= 3


def test_a_warning_window_as_long_as_a_limit_is_refused_at_start_up(hub, tmp_path):
    for args, limit in [
        (["--timeout=600", "--warn-before=600"], "the timeout (600s)"),
        (["--timeout=3600", "--group-timeout=short=300", "--warn-before=600"], 'group "short" (300s)'),
    ]:
        code, output = run(
            [f"--url={hub.api_url}", "--once", *args, f"--state-file={tmp_path / 's.sqlite'}"],
            {"JUPYTERHUB_API_TOKEN": hub.cull_token},
        )
        assert code == 2, output
        assert output.count("\n") == 0 and limit in output and "Traceback" not in output, output
    assert not (tmp_path / "s.sqlite").exists(), "refused before anything was opened"


async def test_the_one_shot_api_needs_a_state_file_to_warn(hub, tmp_path):
    setup_servers(hub, {("late", ""): {"last_activity_ago": IDLE}})
    with pytest.raises(cull_idle.ConfigError, match="state_file"):
        await cull_idle.cull_idle(hub.api_url, hub.cull_token, 600, warn_before=60)
    # With one, the second call knows the first call's warning, and culls once it is due.
    state = str(tmp_path / "s.sqlite")
    first = await cull_idle.cull_idle(hub.api_url, hub.cull_token, 600, warn_before=1, state_file=state)
    assert [w.user for w in first.warned] == ["late"] and first.stopped == []
    hub.wait_for(
        lambda: cull_idle.utcnow().timestamp() - first.warned[0].cull_at.timestamp() > 0, "the window"
    )
    second = await cull_idle.cull_idle(hub.api_url, hub.cull_token, 600, warn_before=1, state_file=state)
    assert second.warned == [] and [a.user for a in second.stopped] == ["late"]


def test_a_dry_run_neither_creates_nor_holds_the_state_file(hub, tmp_path):
    setup_servers(hub, {("late", ""): {"last_activity_ago": IDLE}})
    state = tmp_path / "state.sqlite"
    dry = [f"--url={hub.api_url}", "--timeout=600", "--dry-run", "--warn-before=60", f"--state-file={state}"]
    code, output = run([*dry, "--once"], {"JUPYTERHUB_API_TOKEN": hub.cull_token})
    assert code == 0 and "Would warn user late" in output, output
    assert list(tmp_path.iterdir()) == [], "no file made"
    # A real culler holds the file: a dry run beside it reads it, and says it was warned.
    real = culler(hub, tmp_path, "--warn-before=60")
    try:
        real.wait_for(r"Warning user late")
        real.wait_for(r"Cull pass done")
        code, output = run([*dry, "--once", "--log-level=debug"], {"JUPYTERHUB_API_TOKEN": hub.cull_token})
        assert code == 0, output
        assert "Would warn" not in output and "in use" not in output, output
    finally:
        real.kill()
    before = state.read_bytes()
    code, output = run([*dry, "--once"], {"JUPYTERHUB_API_TOKEN": hub.cull_token})
    assert code == 0 and state.read_bytes() == before, output
    # A dry run that keeps running does not stop a real culler from starting on the file.
    watcher = Culler([*dry, "--cull-every=1"], {"JUPYTERHUB_API_TOKEN": hub.cull_token}, cwd=str(tmp_path))
    try:
        watcher.wait_for(r"Cull pass done")
        code, output = run(
            [f"--url={hub.api_url}", "--timeout=600", "--once", "--warn-before=60", f"--state-file={state}"],
            {"JUPYTERHUB_API_TOKEN": hub.cull_token},
        )
        assert code == 0, output
        watcher.wait_for(r"Cull pass done")
    finally:
        watcher.kill()
    assert hub.running("late")
