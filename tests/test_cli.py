"""The command line: every accepted spelling, bad input, signals, and the deployments' exact lines."""

import logging
import signal
import subprocess
import sys
import textwrap

import pytest

from cull_idle import _cli

from culler_process import SIGNALS, Culler, run, signal_after

IDLE, ACTIVE = 700, 10


def settings(*argv):
    return _cli.parse_settings(list(argv))


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = settings()
    assert (s["timeout"], s["cull_every"], s["max_age"], s["concurrency"], s["api_page_size"]) == (
        600,
        0,
        0,
        10,
        0,
    )
    assert (s["cull_users"], s["cull_admin_users"], s["remove_named_servers"]) == (False, True, False)
    assert (s["cull_default_servers"], s["cull_named_servers"], s["once"]) == (True, True, False)
    assert s["url"] is None and s["log_level"] == logging.INFO


@pytest.mark.parametrize(
    "argv",
    [
        ["--cull-users"],
        ["--cull_users"],
        ["--cull-users=true"],
        ["--cull-users=True"],
        ["--cull-users=1"],
        ["--cull-users", "true"],
        ["--IdleCuller.cull_users=True"],
        ["--IdleCuller.cull-users=yes"],
    ],
)
def test_true_spellings(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert settings(*argv)["cull_users"] is True


@pytest.mark.parametrize(
    "argv",
    [
        ["--cull-users=false"],
        ["--cull-users=False"],
        ["--cull-users=0"],
        ["--cull_users=f"],
        ["--cull-users", "no"],
    ],
)
def test_false_spellings(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert settings("--cull-users", *argv)["cull_users"] is False


@pytest.mark.parametrize(
    ("argv", "key", "value"),
    [
        (["--cull-every=60"], "cull_every", 60),
        (["--cull_every=60"], "cull_every", 60),
        (["--cull-every", "60"], "cull_every", 60),
        (["--IdleCuller.cull_every=60"], "cull_every", 60),
        (["--timeout", "100"], "timeout", 100),
        (["--max_age=86400"], "max_age", 86400),
        (["--api-page-size=50"], "api_page_size", 50),
        (["--url=http://hub:8081/hub/api"], "url", "http://hub:8081/hub/api"),
        (["--internal_certs_location=/srv/ssl"], "internal_certs_location", "/srv/ssl"),
        (["--logging=debug"], "log_level", logging.DEBUG),
        (["--log-level=WARNING"], "log_level", logging.WARNING),
        (["--IdleCuller.log_level=DEBUG"], "log_level", logging.DEBUG),
        (["--Application.log_level=10"], "log_level", 10),
        (["--once"], "once", True),
        (["--log-to-stderr"], "timeout", 600),  # tornado leftovers are accepted and ignored
    ],
)
def test_value_spellings(argv, key, value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert settings(*argv)[key] == value


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus=1"], "unrecognized arguments: --bogus=1"),
        (["--timeout=-5"], "must not be negative"),
        (["--timeout", "-5"], "must not be negative"),
        (["--max-age=-1"], "must not be negative"),
        (["--concurrency=-2"], "must not be negative"),
        (["--timeout=1h"], "whole number of seconds"),
        (["--timeout=10.5"], "whole number of seconds"),
        (["--cull-users=maybe"], "expected true or false"),
        (["--log-level=loud"], "expected one of"),
        (["--timeout"], "expected one argument"),
        (["--config=/nonexistent/culler.py"], "does not exist"),
        (["--IdleCuller.cull_arbiter_hook=x"], "only be set in a config file"),
        (["stray"], "unrecognized arguments: stray"),
        (["--group-timeout=gpu"], "expected GROUP=SECONDS"),
        (["--group-timeout=gpu=-5"], "must not be negative"),
        (["--profile-timeout=gpu"], "expected PROFILE=SECONDS"),
        (["--exclude-users="], "expected comma-separated names"),
        (["--metrics-bind=9101"], "expected HOST:PORT"),
        (["--metrics-bind=localhost:70000"], "expected HOST:PORT"),
        (["--log-format=xml"], "expected text or json"),
        (["--max-culls-per-pass=-1"], "must not be negative"),
        (["--server-url=proxy-public"], "expected an http:// or https:// URL"),
        (["--busy-timeout=-1"], "must not be negative"),
        (["--probe-timeout=soon"], "whole number of seconds"),
    ],
)
def test_bad_input_is_a_usage_error(argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(_cli.UsageError, match=message):
        settings(*argv)


def test_config_file_with_priority_to_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "idle_culler_config.py").write_text(
        textwrap.dedent(
            """
            c = get_config()
            c.IdleCuller.timeout = 3600
            c.IdleCuller.cull_users = True
            c.IdleCuller.max_age = 7200
            def hook(inactive, inactive_limit, server):
                return False
            c.IdleCuller.cull_arbiter_hook = hook
            """
        )
    )
    s = settings("--max-age=60")
    assert (s["timeout"], s["cull_users"], s["max_age"]) == (3600, True, 60)
    assert callable(s["cull_arbiter_hook"])
    (tmp_path / "other.json").write_text('{"IdleCuller": {"timeout": 99, "cull_users": "true"}}')
    s = settings("--config", "other.json")
    assert (s["timeout"], s["cull_users"]) == (99, True)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("c.IdleCuller.timout = 5", "unknown setting c.IdleCuller.timout"),
        ("c.IdleCuller.timeout = -5", "must not be negative"),
        ("c.IdleCuller.cull_arbiter_hook = 5", "must be callable"),
        ("raise SystemError('boom')", "SystemError: boom"),
        ("c.IdleCuller.timeout = (", "SyntaxError"),
    ],
)
def test_bad_config_files(body, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "idle_culler_config.py").write_text(body)
    with pytest.raises(_cli.UsageError, match=message):
        settings()


def test_generate_config_round_trips(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _cli.main(["--generate-config"]) == 0
    text = capsys.readouterr().out
    assert "# c.IdleCuller.timeout = 600" in text and "cull_arbiter_hook" in text
    uncommented = "\n".join(
        line[2:] if line.startswith("# c.") and "hook" not in line else line for line in text.splitlines()
    )
    (tmp_path / "gen.py").write_text(uncommented)
    assert settings("--config=gen.py")["timeout"] == 600


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--timeout=-1"], {"JUPYTERHUB_API_TOKEN": "x"}, "must not be negative"),
        (["--once"], {}, "JUPYTERHUB_API_TOKEN is not set"),
        (
            ["--once"],
            {"JUPYTERHUB_API_TOKEN": "x", "JUPYTERHUB_REQUEST_TIMEOUT": "soon"},
            "JUPYTERHUB_REQUEST_TIMEOUT",
        ),
        (["--once", "--url=ftp://hub/api"], {"JUPYTERHUB_API_TOKEN": "x"}, "http:// or https://"),
        (
            ["--once", "--ssl-enabled", "--internal-certs-location=/nope"],
            {"JUPYTERHUB_API_TOKEN": "x"},
            "/nope/hub-ca",
        ),
        (
            ["--once", "--timeout=3600", "--keep-busy-kernels", "--busy-timeout=600"],
            {"JUPYTERHUB_API_TOKEN": "x"},
            "busy_timeout (600s) must be longer than the timeout (3600s)",
        ),
        (["--once", "--idle-by=tabs"], {"JUPYTERHUB_API_TOKEN": "x"}, "expected hub or work"),
        (
            ["--once", "--idle-by=work", "--keep-connected"],
            {"JUPYTERHUB_API_TOKEN": "x"},
            "keep_connected keeps every server with an open notebook tab",
        ),
        (
            ["--once", "--idle-by=work", "--busy-timeout=86400"],
            {"JUPYTERHUB_API_TOKEN": "x"},
            "busy_timeout bounds servers by the Hub's count",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, env, message, tmp_path):
    code, output = run(argv, env, cwd=str(tmp_path))
    assert code == 2
    assert output.count("\n") == 0 and output.startswith("cull-idle: error: ") and message in output
    assert "Traceback" not in output


def test_help_exits_0():
    code, output = run(["--help"], {})
    assert code == 0
    for name in [o.name for o in _cli.OPTIONS] + ["generate-config"]:
        assert f"--{name}" in output
    assert "Hub connection:" in output and "Policy:" in output and "(default: 600)" in output


@pytest.fixture
def idle_and_active(hub):
    hub.create_users(["idle-a", "idle-b", "active-c"])
    # The Hub makes admin-user at its start; a test before this one may have deleted it.
    if hub.user("admin-user") is None:
        hub.create_users(["admin-user"], admin=True)
    hub.start_servers([("idle-a", ""), ("idle-b", "lab"), ("active-c", "")])
    hub.set_times(
        [
            {"user": "idle-a", "server": "", "last_activity_ago": 4000, "user_last_activity_ago": 4000},
            {"user": "idle-b", "server": "lab", "last_activity_ago": 4000, "user_last_activity_ago": 4000},
            {"user": "active-c", "server": "", "last_activity_ago": ACTIVE},
            {"user": "admin-user", "user_last_activity_ago": 4000, "user_created_ago": 4000},
        ]
    )
    return hub


def test_zero_to_jupyterhub_line(idle_and_active):
    hub = idle_and_active
    line = (
        f"--url={hub.api_url} --timeout=3600 --cull-every=600 --concurrency=10 --cull-users "
        "--cull-admin-users=false --remove-named-servers --max-age=86400"
    ).split()
    env = {"JUPYTERHUB_API_TOKEN": hub.cull_users_token}
    culler, code = signal_after(line, env, r"Cull pass done", signal.SIGTERM)
    assert code == 0
    assert hub.user("idle-a") is None and hub.user("idle-b") is None
    assert hub.user("active-c") is not None and hub.running("active-c")
    assert hub.user("admin-user") is not None  # --cull-admin-users=false
    assert hub.cull_users_token not in culler.output


def test_littlest_jupyterhub_line(idle_and_active):
    hub = idle_and_active
    line = [
        "--timeout=600",
        "--cull-every=60",
        "--concurrency=5",
        "--max-age=0",
        "--cull-users",
        "--remove-named-servers",
    ]
    env = {"JUPYTERHUB_API_TOKEN": hub.cull_users_token, "JUPYTERHUB_API_URL": hub.api_url}
    culler, code = signal_after(line, env, r"Cull pass done", signal.SIGINT)
    assert code == 0
    # TLJH keeps admins deletable: the default --cull-admin-users is true.
    assert {n for n in ["idle-a", "idle-b", "admin-user"] if hub.user(n) is None} == {
        "idle-a",
        "idle-b",
        "admin-user",
    }
    assert hub.running("active-c")
    assert "Traceback" not in culler.output


@pytest.mark.parametrize("signum", SIGNALS)
def test_signals_end_a_pass_in_flight(hub, signum):
    names = [f"slow{i}" for i in range(3)]
    hub.create_users(names)
    hub.start_servers([(n, "") for n in names])
    hub.set_times([{"user": n, "server": "", "last_activity_ago": IDLE} for n in names])
    args, env = [f"--url={hub.api_url}", "--log-level=debug"], {"JUPYTERHUB_API_TOKEN": hub.cull_token}
    # Sent while the stops are in flight (each takes seconds inside the Hub).
    culler, code = signal_after(args, env, r"DELETE /users/slow\d/server", signum)
    assert code == 0
    assert "Cull pass done" not in culler.output
    assert "Traceback" not in culler.output


def test_once_exits_0_after_a_complete_pass(idle_and_active):
    hub = idle_and_active
    code, output = run(["--once", f"--url={hub.api_url}"], {"JUPYTERHUB_API_TOKEN": hub.cull_token})
    assert code == 0
    assert "Cull pass done" in output and "2 servers stopped" in output


def test_config_file_hook_from_the_command_line(idle_and_active, tmp_path):
    hub = idle_and_active
    (tmp_path / "idle_culler_config.py").write_text(
        "c.IdleCuller.cull_arbiter_hook = lambda inactive, inactive_limit, server: server['name'] == 'lab'\n"
    )
    code, output = run(
        ["--once", f"--url={hub.api_url}"], {"JUPYTERHUB_API_TOKEN": hub.cull_token}, cwd=str(tmp_path)
    )
    assert code == 0, output
    assert hub.running("idle-a") and not hub.running("idle-b", "lab")


def test_config_file_user_hook_keeps_users(hub, tmp_path):
    hub.create_users(["stay", "go"])
    hub.set_times(
        [{"user": u, "user_last_activity_ago": 4000, "user_created_ago": 4000} for u in ["stay", "go"]]
    )
    (tmp_path / "idle_culler_config.py").write_text(
        "c.IdleCuller.cull_user_hook = lambda user, inactive, inactive_limit: user['name'] != 'stay'\n"
    )
    code, output = run(
        ["--once", f"--url={hub.api_url}", "--cull-users", "--exclude-users=admin-user"],
        {"JUPYTERHUB_API_TOKEN": hub.cull_users_token},
        cwd=str(tmp_path),
    )
    assert code == 0, output
    assert hub.user("stay") is not None and hub.user("go") is None


@pytest.mark.slow
def test_unreachable_hub_keeps_the_process_up(no_hub_env):
    from hubharness.launcher import free_port

    url = f"http://127.0.0.1:{free_port()}/hub/api"
    culler = Culler([f"--url={url}", "--cull-every=1"], {"JUPYTERHUB_API_TOKEN": "t0ken-value"})
    try:
        culler.wait_for("Cull pass INCOMPLETE")
        culler.wait_for("Cull pass INCOMPLETE")
        assert culler.proc.poll() is None
        code = culler.signal_and_wait(signal.SIGTERM)
    finally:
        culler.kill()
    assert code == 0
    assert "cannot reach the Hub" in culler.output and "the next pass will try again" in culler.output
    assert "Traceback" not in culler.output
    code, output = run(["--once", f"--url={url}"], {"JUPYTERHUB_API_TOKEN": "t0ken-value"})
    assert code == 1 and "t0ken-value" not in output


def test_blocking_loop_ends_on_ctrl_c_without_a_crash(hub):
    """A script's Ctrl-C raises KeyboardInterrupt out of the blocking loop; the process ends
    normally, with no runtime thread left inside the interpreter as it finalizes."""
    script = (
        "import logging, sys, cull_idle\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "try:\n"
        "    cull_idle.cull_idle_periodically_blocking(\n"
        f"        {hub.api_url!r}, {hub.cull_token!r}, 600, cull_every=1\n"
        "    )\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout
    passes = 0
    for line in proc.stdout:
        if "Cull pass done" in line:
            passes += 1
            if passes == 2:
                break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "interrupted" in out, out
    assert "Fatal Python error" not in out


def test_operator_options_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = settings(
        "--dry-run",
        "--exclude-users=staff-*,bob",
        "--exclude_users",
        "carol",
        "--exclude-groups=tas",
        "--group-timeout=gpu=7200",
        "--group-timeout",
        "workshop=300",
        "--user-timeout=86400",
        "--profile-timeout=gpu=900",
        "--profile-timeout",
        "big-mem=1800",
        "--max-culls-per-pass=50",
        "--metrics-bind=127.0.0.1:9101",
        "--log-format=json",
    )
    assert s["dry_run"] is True and s["exclude_users"] == ["staff-*", "bob", "carol"]
    assert s["exclude_groups"] == ["tas"] and s["group_timeout"] == {"gpu": 7200, "workshop": 300}
    assert (s["user_timeout"], s["max_culls_per_pass"]) == (86400, 50)
    assert s["profile_timeout"] == {"gpu": 900, "big-mem": 1800}
    assert s["metrics_bind"] == ("127.0.0.1", 9101) and s["log_format"] == "json"


def test_operator_options_from_a_config_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "idle_culler_config.py").write_text(
        textwrap.dedent(
            """
            c.IdleCuller.dry_run = True
            c.IdleCuller.exclude_users = ["staff-*"]
            c.IdleCuller.exclude_groups = "tas,admins"
            c.IdleCuller.group_timeout = {"gpu": 7200}
            c.IdleCuller.user_timeout = 3600
            c.IdleCuller.max_culls_per_pass = 5
            c.IdleCuller.metrics_bind = "0.0.0.0:9101"
            """
        )
    )
    s = settings("--group-timeout=gpu=60")
    assert s["dry_run"] is True and s["exclude_users"] == ["staff-*"]
    assert s["exclude_groups"] == ["tas", "admins"]
    assert s["group_timeout"] == {"gpu": 60}  # the command line wins
    assert (s["user_timeout"], s["max_culls_per_pass"], s["metrics_bind"]) == (3600, 5, ("0.0.0.0", 9101))
