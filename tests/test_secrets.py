"""The API token never appears in any log line, error or traceback, at any level."""

import logging

import pytest

import cull_idle

import secret_guard
from culler_process import Culler, run
from hubharness.launcher import free_port


def test_every_test_s_output_is_searched_for_the_suite_s_tokens(hub):
    """The check run after every test (conftest.py) sees culler output and DEBUG records."""
    assert hub.cull_token in secret_guard.SECRETS
    assert secret_guard.leaked([f"Authorization: token {hub.cull_token}"]) == [hub.cull_token[:4] + "..."]
    assert secret_guard.leaked(["Culling server alice (inactive for 01:00:00)"]) == []
    culler = Culler(["--help"], {})
    assert culler.finish() == 0
    assert secret_guard.OUTPUTS[-1]() == culler.output and "--keep-busy-kernels" in culler.output


def test_cli_debug_output_never_holds_the_token(hub, tmp_path):
    hub.create_users(["tok-a"])
    hub.start_servers([("tok-a", ""), ("tok-a", "lab")])
    hub.set_times(
        [
            {"user": "tok-a", "server": "", "last_activity_ago": 9000, "user_last_activity_ago": 9000},
            {"user": "tok-a", "server": "lab", "last_activity_ago": 9000},
        ]
    )
    env = {"JUPYTERHUB_API_TOKEN": hub.cull_users_token, "JUPYTERHUB_API_URL": hub.api_url}
    outputs = []
    code, out = run(["--once", "--log-level=debug", "--cull-users", "--remove-named-servers"], env)
    assert code == 0 and "Culling user tok-a" in out
    outputs.append(out)
    # Error paths: refused token, unreachable Hub, bad TLS files, a token no header can hold.
    for argv, env_override, expected in [
        (["--once", "--logging=debug"], {"JUPYTERHUB_API_TOKEN": "wrong-" + hub.cull_token}, 1),
        (["--once", "--logging=debug", f"--url=http://127.0.0.1:{free_port()}/hub/api"], {}, 1),
        (["--once", "--ssl-enabled", f"--internal-certs-location={tmp_path}"], {}, 2),
    ]:
        code, out = run(argv, {**env, **env_override}, cwd=str(tmp_path))
        assert code == expected, out
        outputs.append(out)
    code, out = run(["--once"], {**env, "JUPYTERHUB_API_TOKEN": "bad\ntoken-with-newline"})
    assert code == 2 and "cannot be sent in an HTTP header" in out and "token-with-newline" not in out
    joined = "\n".join(outputs)
    for secret in (hub.cull_users_token, hub.cull_token):
        assert secret not in joined
    assert "Traceback" not in joined


async def test_api_debug_logs_never_hold_the_token(hub, caplog):
    hub.create_users(["tok-b"])
    hub.start_servers([("tok-b", "")])
    hub.set_times([{"user": "tok-b", "server": "", "last_activity_ago": 9000}])
    caplog.set_level(logging.DEBUG)
    report = await cull_idle.cull_idle(hub.api_url, hub.cull_token, 600)
    assert report.stopped
    bad = await cull_idle.cull_idle(hub.api_url, hub.cull_token + "x", 600)
    assert not bad.complete
    text = caplog.text + repr(report) + repr(bad) + repr(cull_idle.connect(hub.api_url, hub.cull_token))
    assert hub.cull_token not in text
    with pytest.raises(ValueError) as excinfo:
        cull_idle.connect("ftp://x/api", hub.cull_token)
    assert hub.cull_token not in str(excinfo.value)
