"""The option declaration (``cull_idle._options``) is the one source: the core's defaults, the
Python API's keywords and the README's table must agree with it. And errors are of the declared
types."""

from __future__ import annotations

import asyncio
import inspect
import re
import warnings
from typing import get_type_hints

import pytest

import cull_idle
from cull_idle import _api, _core, _options, _options_docs
from cull_idle._pass_options import PassOptions


def test_the_declaration_takes_every_pass_option_s_default_from_the_core():
    core = _core.PassOptions().to_dict()
    source = inspect.getsource(_options)
    for option in _options.OPTIONS:
        if option.pass_keyword:
            assert option.default == core[option.pass_keyword], option.name
            # Written once, in the core: the declaration says FROM_CORE, not a value.
            block = source[source.index(f'"{option.name}",') :]
            assert block.split("\n")[2].strip() == "FROM_CORE,", option.name
    assert _core.PassOptions(max_age=60, dry_run=True).to_dict()["max_age"] == 60


def test_run_pass_takes_the_declared_pass_options():
    declared = {o.pass_keyword for o in _options.OPTIONS if o.pass_keyword} - {"inactive_limit"}
    assert set(get_type_hints(PassOptions)) == declared
    parameters = inspect.signature(_api.run_pass).parameters
    assert parameters["options"].kind is inspect.Parameter.VAR_KEYWORD
    assert "inactive_limit" in parameters


def test_connect_and_the_periodic_loop_take_the_declared_options():
    for face, function in (("connect", cull_idle.connect), ("periodic", _api.run_periodically)):
        parameters = inspect.signature(function).parameters
        for option in _options.OPTIONS:
            if option.api and option.api.startswith(face + ":"):
                assert option.api.split(":", 1)[1] in parameters, option.name


def test_the_generated_readme_table_and_keywords_are_current():
    """After changing an option, run `python -m cull_idle._options_docs`."""
    readme = _options_docs.README.read_text(encoding="utf-8")
    assert _options_docs.readme_with_table(readme) == readme
    assert _options_docs.PASS_OPTIONS.read_text(encoding="utf-8") == _options_docs.pass_options_source()


def test_every_reason_the_core_has_is_in_the_readme_with_its_words():
    readme = _options_docs.README.read_text(encoding="utf-8")
    reasons = _core.reasons()
    labels = {r.label for r in reasons}
    expected = {"idle", "max-age", "long-stopped", "active", "busy", "cpu", "kept-alive", "warned"}
    assert expected <= labels
    for reason in reasons:
        assert f"{reason.kind}: `{reason.label}`" in readme, reason
        assert reason.people in readme


def test_the_signals_name_their_options_and_scopes():
    from cull_idle._scopes import scope_problems, signals_in_use

    signals = _core.signals()
    declared = {o.name for o in _options.OPTIONS}
    assert {s.option.partition("=")[0] for s in signals} <= declared
    used = signals_in_use({"keep_cpu_above": 50.0, "keep_busy_kernels": False, "idle_by": "hub"})
    assert [s.option for s in used] == ["keep-cpu-above"]
    by_work = signals_in_use({"keep_cpu_above": 0, "keep_busy_kernels": False, "idle_by": "work"})
    assert [s.option for s in by_work] == ["idle-by=work"]
    [(fatal, message)] = scope_problems(
        ["list:users", "read:servers", "read:users:activity", "delete:servers"], signals=used
    )
    assert fatal and "the scope tokens" in message and "--keep-cpu-above" in message
    # A token that still has access:servers, which opens every user's server, is told so.
    needless = scope_problems(
        ["list:users", "read:servers", "read:users:activity", "delete:servers", "tokens", "access:servers"],
        signals=used,
    )
    assert needless == [(False, needless[0][1])] and "remove it" in needless[0][1], needless


def test_the_readme_table_lists_every_declared_option_in_order():
    text = _options_docs.README.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `--([a-z-]+)`", text, flags=re.M)
    assert [name for name in rows if name != "generate-config"] == [o.name for o in _options.OPTIONS]


async def test_bad_options_raise_config_errors_that_are_value_errors():
    hub = cull_idle.connect("http://127.0.0.1:9/hub/api", "t")
    with pytest.raises(cull_idle.ConfigError, match="group_timeouts"):
        await cull_idle.run_pass(hub, 600, group_timeouts={"gpu": -1})
    with pytest.raises(ValueError, match="exclude_users must be a list of names"):
        await cull_idle.run_pass(hub, 600, exclude_users="alice")
    with pytest.raises(cull_idle.ConfigError, match="http://"):
        cull_idle.connect("ftp://hub/api", "t")
    # Cross-option checks are the core's, so the API refuses what the command line refuses.
    with pytest.raises(cull_idle.ConfigError, match=r"busy_timeout \(600s\) must be longer than the timeout"):
        await cull_idle.run_pass(hub, 3600, keep_busy_kernels=True, busy_timeout=600)
    assert issubclass(cull_idle.HubUnreachable, (cull_idle.HubError, ConnectionError))
    assert issubclass(cull_idle.HubAuthError, cull_idle.CullIdleError)


def test_an_unreadable_ca_file_is_an_os_error_with_its_path(tmp_path):
    missing = tmp_path / "nope" / "ca.pem"
    with pytest.raises(FileNotFoundError) as excinfo:
        cull_idle._core.Connection("https://hub/api", "t", ca_file=str(missing))
    assert excinfo.value.filename == str(missing)
    assert str(missing) in excinfo.value.strerror


async def test_an_unreachable_hub_and_a_refused_token_are_told_apart(hub):
    from cull_idle._scopes import token_scopes

    nowhere = cull_idle._core.Connection("http://127.0.0.1:9/hub/api", "t", retries=0)
    with pytest.raises(cull_idle.HubUnreachable):
        await token_scopes(nowhere)
    refused = cull_idle.connect(hub.api_url, "not-a-token")
    with pytest.raises(cull_idle.HubAuthError, match="list:users"):
        await token_scopes(refused)


async def test_blocking_calls_inside_a_running_loop_name_the_function_to_await():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a never-awaited coroutine would warn
        with pytest.raises(cull_idle.BlockingCallInEventLoop, match="await cull_idle"):
            cull_idle.cull_idle_blocking("http://127.0.0.1:9/hub/api", "t", 600)
        with pytest.raises(RuntimeError, match="await cull_idle_periodically"):
            cull_idle.cull_idle_periodically_blocking("http://127.0.0.1:9/hub/api", "t", 600)
    await asyncio.sleep(0)
