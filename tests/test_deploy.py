"""The recipes of docs/deploy.md, applied to the services the chart and TLJH build, on a real Hub.

Each recipe file under ``deploy/`` is what docs/deploy.md shows. The chart's and TLJH's own
configuration is rebuilt here in the shape their code gives it (zero-to-jupyterhub 4.4.0's
``jupyterhub_config.py`` from ``cull.*``, TLJH's ``configurer.set_cull_idle_service`` from
``services.cull.*``), the recipe is applied the way each applies it (the chart ``exec``s
``hub.extraConfig``; TLJH ``load_subconfig``s ``jupyterhub_config.d``), and the Hub that results
must run ``cull_idle`` with the original flags and cull.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from helpers import setup_servers
from hubharness.launcher import TestHub

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
RECIPES = ["z2jh/values.yaml", "z2jh/Dockerfile", "tljh/cull-idle.py", "jupyterhub/jupyterhub_config.py"]
HEALTH = "http://127.0.0.1:10101/health"
IDLE_FOR = 7200  # past the chart's default timeout, and the README's


def fenced_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```$", markdown, re.S | re.M)


def test_the_docs_show_each_recipe_as_the_tests_run_it():
    blocks = fenced_blocks((ROOT / "docs" / "deploy.md").read_text())
    for recipe in RECIPES:
        assert (DEPLOY / recipe).read_text() in blocks, recipe
    assert (DEPLOY / "jupyterhub" / "jupyterhub_config.py").read_text() in fenced_blocks(
        (ROOT / "README.md").read_text()
    )


def chart_culler(hub_port: int, cull: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The service and role the chart builds from its ``cull.*`` values (chart 4.4.0)."""
    role = {
        "name": "jupyterhub-idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["jupyterhub-idle-culler"],
    }
    command = ["python3", "-m", "jupyterhub_idle_culler", f"--url=http://localhost:{hub_port}/hub/api"]
    for key, flag in [("timeout", "timeout"), ("every", "cull-every"), ("concurrency", "concurrency")]:
        if cull[key]:
            command.append(f"--{flag}={cull[key]}")
    if cull["users"]:
        command.append("--cull-users")
        role["scopes"].append("admin:users")
    if not cull["adminUsers"]:
        command.append("--cull-admin-users=false")
    if cull["removeNamedServers"]:
        command.append("--remove-named-servers")
    if cull["maxAge"]:
        command.append(f"--max-age={cull['maxAge']}")
    return {"name": "jupyterhub-idle-culler", "command": command}, role


def tljh_culler(cull: dict[str, Any]) -> dict[str, Any]:
    """The service TLJH builds from ``services.cull.*`` (its ``set_cull_idle_service``)."""
    command = [sys.executable, "-m", "jupyterhub_idle_culler"]
    command += [f"--timeout={cull['timeout']}", f"--cull-every={cull['every']}"]
    command += [f"--concurrency={cull['concurrency']}", f"--max-age={cull['max_age']}"]
    if cull["users"]:
        command.append("--cull-users")
    if cull["remove_named_servers"]:
        command.append("--remove-named-servers")
    return {"name": "cull-idle", "admin": True, "command": command}


class Deployment:
    """A Hub started with a deployment's configuration on top of the suite's."""

    def __init__(self, tmp_path: Path) -> None:
        self.config = tmp_path / "deployment_config.py"
        # The chart's command runs `python3`: the Hub's own, as in its image.
        path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
        self.hub = TestHub(extra_env={"TEST_EXTRA_CONFIG": str(self.config), "PATH": path})

    def start(self, config: str) -> TestHub:
        self.config.write_text(config)
        return self.hub.start()

    def started_command(self, service: str) -> str:
        pattern = rf"Starting service '{re.escape(service)}': (\[.*\])"
        log = self.hub.log_path
        self.hub.wait_for(lambda: re.search(pattern, log.read_text()), f"the Hub to start {service}")
        match = re.search(pattern, log.read_text())
        assert match
        return match.group(1)

    def culls_the_idle_and_keeps_the_active(self) -> None:
        hub = self.hub
        setup_servers(
            hub,
            {
                ("idle", ""): {"last_activity_ago": IDLE_FOR, "user_last_activity_ago": IDLE_FOR},
                ("active", ""): {"last_activity_ago": 10},
            },
        )
        hub.wait_for(lambda: not hub.running("idle"), "the culler to stop idle's server")
        assert hub.running("active")
        assert requests.get(HEALTH, timeout=10).json()["status"] == "ok"


@pytest.fixture
def deployment(tmp_path):
    d = Deployment(tmp_path)
    yield d
    d.hub.stop()


def test_z2jh_extra_config_runs_the_chart_s_culler_as_cull_idle(deployment):
    # The chart's defaults, with the flags its other values add, and passes every 2 s rather
    # than 600 s: the first pass, at the culler's start, comes before the servers do.
    cull = {"timeout": 3600, "every": 2, "concurrency": 10, "maxAge": 0}
    cull.update(users=True, adminUsers=False, removeNamedServers=True)
    service, role = chart_culler(deployment.hub.port, cull)
    extra = yaml.safe_load((DEPLOY / "z2jh" / "values.yaml").read_text())["hub"]["extraConfig"]
    deployment.start(
        f"c.JupyterHub.services.append({service!r})\n"
        f"c.JupyterHub.load_roles.append({role!r})\n"
        f"for key, config_py in sorted({extra!r}.items()):\n"
        "    exec(config_py)\n"
    )
    command = deployment.started_command("jupyterhub-idle-culler")
    assert "'-m', 'cull_idle'" in command and "jupyterhub_idle_culler" not in command
    for flag in ["--timeout=3600", "--cull-every=2", "--cull-users", "--cull-admin-users=false"]:
        assert f"'{flag}'" in command
    deployment.culls_the_idle_and_keeps_the_active()
    # --cull-users works with the chart's admin:users, and --cull-admin-users=false holds.
    hub = deployment.hub
    hub.wait_for(lambda: hub.user("idle") is None, "the culler to delete the idle user")
    assert hub.user("admin-user") is not None


def test_tljh_config_d_runs_tljh_s_culler_as_cull_idle(deployment):
    cull = {"timeout": 3600, "every": 2, "concurrency": 5, "users": False, "max_age": 0}
    cull["remove_named_servers"] = False
    deployment.start(
        f"c.JupyterHub.services.append({tljh_culler(cull)!r})\n"
        f"load_subconfig({str(DEPLOY / 'tljh' / 'cull-idle.py')!r})\n"
    )
    command = deployment.started_command("cull-idle")
    assert "'-m', 'cull_idle'" in command and "'--cull-every=2'" in command
    deployment.culls_the_idle_and_keeps_the_active()


def test_the_plain_hub_recipe_starts_with_its_scopes(deployment):
    recipe = DEPLOY / "jupyterhub" / "jupyterhub_config.py"
    deployment.start(
        # The recipe sets the services and roles; the suite's own (its admin token) stay too.
        "suite = c.JupyterHub.services, c.JupyterHub.load_roles\n"
        f"exec(open({str(recipe)!r}).read())\n"
        "c.JupyterHub.services = suite[0] + c.JupyterHub.services\n"
        "c.JupyterHub.load_roles = suite[1] + c.JupyterHub.load_roles\n"
    )
    assert "'-m', 'cull_idle', '--timeout=3600'" in deployment.started_command("idle-culler")
    # Its first pass (every 1800 s after that) checks the role's scopes and lists the Hub.
    log = deployment.hub.log_path
    deployment.hub.wait_for(lambda: "Cull pass done" in log.read_text(), "the recipe's first pass")
    assert re.search(r"Cull pass done .* 0 errors", log.read_text())


@pytest.mark.parametrize("recipe", ["z2jh", "tljh"])
def test_without_cull_idle_installed_the_reference_keeps_running(recipe, monkeypatch, capsys):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "cull_idle" else find_spec(name, *a)
    )
    from traitlets.config import Config

    c = Config()
    cull = {"timeout": 3600, "every": 600, "concurrency": 10, "maxAge": 0}
    cull.update(users=False, adminUsers=True, removeNamedServers=False)
    c.JupyterHub.services = [chart_culler(8081, cull)[0]]
    if recipe == "z2jh":
        code = yaml.safe_load((DEPLOY / "z2jh" / "values.yaml").read_text())["hub"]["extraConfig"][
            "cull-idle"
        ]
    else:
        code = (DEPLOY / "tljh" / "cull-idle.py").read_text()
    exec(code, {"c": c})
    assert c.JupyterHub.services[0]["command"][2] == "jupyterhub_idle_culler"
    assert "keeping jupyterhub-idle-culler" in capsys.readouterr().out
