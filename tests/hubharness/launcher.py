"""Start a throw-away JupyterHub on loopback and talk to it as an admin.

Used by the test suite and by the demo. The Hub runs as a subprocess with its own temporary
directory and free ports; its log goes to ``hub.log`` in that directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

import requests

try:
    from secret_guard import secret
except ImportError:  # used by the demo and the benches, outside the test suite

    def secret(value: str) -> str:
        return value


HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Debian's node-configurable-http-proxy: the proxy JupyterHub users run (the PyPI port sends
#: the browser's binary websocket frames on as text, which breaks jupyter-collaboration).
NODE_PROXY_MODULES = "/usr/share/nodejs"
NODE_PROXY = f"{NODE_PROXY_MODULES}/configurable-http-proxy/bin/configurable-http-proxy"


def proxy_env() -> dict[str, str]:
    """The Hub's environment for the real proxy, for ``TestHub(extra_env=...)``."""
    node = shutil.which("node") or shutil.which("nodejs")
    assert node and os.path.exists(NODE_PROXY), (
        "Debian's node-configurable-http-proxy is not installed (scripts/install-system.sh)"
    )
    # Its modules are Debian's; a node from elsewhere (nodesource) finds them by NODE_PATH.
    modules = os.pathsep.join(p for p in [NODE_PROXY_MODULES, os.environ.get("NODE_PATH", "")] if p)
    return {
        "TEST_CHP_COMMAND": "\x1f".join([node, NODE_PROXY]),
        "TEST_CHP_API_PORT": str(free_port()),
        "NODE_PATH": modules,
    }


def real_servers_env(**extra: str) -> dict[str, str]:
    """The environment of a Hub that spawns real jupyter_server processes behind the real
    configurable-http-proxy, for ``TestHub(extra_env=...)``."""
    return {"TEST_REAL_SERVERS": "1", **proxy_env(), **extra}


class TestHub:
    __test__ = False  # not a test class, for pytest

    def __init__(self, extra_env: Optional[dict[str, str]] = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cull-idle-hub-"))
        self.port = free_port()
        self.internal_ssl = bool((extra_env or {}).get("TEST_INTERNAL_SSL"))
        scheme = "https" if self.internal_ssl else "http"
        self.api_url = f"{scheme}://127.0.0.1:{self.port}/hub/api"
        self.admin_token = secrets.token_hex(16)
        self.cull_token = secret(secrets.token_hex(16))
        self.cull_users_token = secret(secrets.token_hex(16))
        self.cull_groups_token = secret(secrets.token_hex(16))
        self.cull_kernels_token = secret(secrets.token_hex(16))
        self.env = {
            **os.environ,
            "TEST_HUB_DIR": str(self.dir),
            "TEST_HUB_PORT": str(self.port),
            "TEST_PROXY_PORT": str(free_port()),
            "TEST_ADMIN_TOKEN": self.admin_token,
            "TEST_CULL_TOKEN": self.cull_token,
            "TEST_CULL_USERS_TOKEN": self.cull_users_token,
            "TEST_CULL_GROUPS_TOKEN": self.cull_groups_token,
            "TEST_CULL_KERNELS_TOKEN": self.cull_kernels_token,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            **(extra_env or {}),
        }
        self.proc: Optional[subprocess.Popen] = None
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.admin_token}"

    @property
    def public_url(self) -> str:
        """The proxy's address (where single-user servers are reached)."""
        return f"http://127.0.0.1:{self.env['TEST_PROXY_PORT']}"

    @property
    def log_path(self) -> Path:
        return self.dir / "hub.log"

    def _spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(HERE / "jupyterhub_config.py")],
                cwd=self.dir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(self, timeout: float = 60) -> TestHub:
        self._spawn()
        try:
            self._wait_up(timeout)
        except BaseException:
            log = self.log_path.read_text()[-3000:]
            self.stop()
            raise RuntimeError(f"JupyterHub did not start:\n{log}") from None
        return self

    def _wait_up(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("JupyterHub exited")
            if self.internal_ssl and not self._use_internal_certs():
                time.sleep(0.1)
                continue
            try:
                if self.session.get(self.api_url + "/", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError("timed out")

    @property
    def certs(self) -> Path:
        """Where an ``internal_ssl`` Hub keeps the certificates it generated."""
        return self.dir / "internal-ssl"

    def _use_internal_certs(self) -> bool:
        """Talk to the Hub as its own components do: trusting its CA, with its client pair."""
        internal = self.certs / "hub-internal"
        pair = (internal / "hub-internal.crt", internal / "hub-internal.key")
        ca = self.certs / "hub-ca" / "hub-ca.crt"
        if not (ca.exists() and all(p.exists() for p in pair)):
            return False
        self.session.verify = str(ca)
        self.session.cert = (str(pair[0]), str(pair[1]))
        # Or $REQUESTS_CA_BUNDLE, where set, would replace the Hub's CA.
        self.session.trust_env = False
        return True

    def restart(self, timeout: float = 60) -> None:
        """Stop the Hub process and start it again, on the same port with the same database."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)
        self._spawn()
        self._wait_up(timeout)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- admin helpers --------------------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.api_url + path, timeout=60, **kwargs)

    def create_users(self, names: list[str], admin: bool = False) -> None:
        for start in range(0, len(names), 100):
            r = self.api("POST", "/users", json={"usernames": names[start : start + 100], "admin": admin})
            assert r.status_code == 201, r.text

    def create_group(self, name: str, users: list[str]) -> None:
        r = self.api("POST", f"/groups/{quote(name, safe='')}", json={"users": users})
        assert r.status_code == 201, r.text

    def delete_all_groups(self) -> None:
        for group in self.api("GET", "/groups").json():
            self.api("DELETE", f"/groups/{quote(group['name'], safe='')}")

    def start_server(
        self, user: str, server: str = "", user_options: Optional[dict[str, Any]] = None, timeout: float = 30
    ) -> None:
        """Start a server; ``user_options`` is the body KubeSpawner's form would send
        (``{"profile": "gpu"}``), which the Hub keeps in the server's model."""
        path = f"/users/{quote(user, safe='')}/server"
        if server:
            path = f"/users/{quote(user, safe='')}/servers/{quote(server, safe='')}"
        r = self.api("POST", path, json=user_options) if user_options else self.api("POST", path)
        assert r.status_code in (201, 202), (user, server, r.status_code, r.text)
        if r.status_code == 202 and not (user.startswith("pending") or server.startswith("pending")):
            self.wait_for(lambda: self.running(user, server), f"{user}/{server} to be ready", timeout)

    def wait_for(self, condition: Any, what: str, timeout: float = 30) -> None:
        """Poll the Hub until ``condition()`` holds (the Hub offers no event to wait on)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def start_servers(self, pairs: list[tuple[str, str]], timeout: float = 30) -> None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda p: self.start_server(*p, timeout=timeout), pairs))

    def set_times(self, items: list[dict[str, Any]]) -> None:
        r = self.api("POST", "/testing", json={"items": items})
        assert r.status_code == 204, r.text

    def user(self, name: str, stopped: bool = False) -> Optional[dict[str, Any]]:
        query = "?include_stopped_servers" if stopped else ""
        r = self.api("GET", f"/users/{quote(name, safe='')}{query}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    def running(self, name: str, server: str = "") -> bool:
        user = self.user(name)
        model = (user or {}).get("servers", {}).get(server)
        return bool(model and model.get("ready"))

    def stop_stats(self) -> dict[str, int]:
        return self.api("GET", "/testing").json()

    def reset_stop_stats(self) -> None:
        self.api("DELETE", "/testing")

    def all_user_names(self) -> list[str]:
        names, offset = [], 0
        while True:
            r = self.api(
                "GET", f"/users?offset={offset}", headers={"Accept": "application/jupyterhub-pagination+json"}
            )
            r.raise_for_status()
            page = r.json()
            names += [u["name"] for u in page["items"]]
            if not page["_pagination"]["next"]:
                return names
            offset = page["_pagination"]["next"]["offset"]

    def delete_all_users(self, timeout: float = 60) -> None:
        """Delete every user (and so every server), waiting out slow stops."""
        deadline = time.monotonic() + timeout
        while True:
            names = self.all_user_names()
            if not names:
                return
            for name in names:
                user = self.user(name) or {}
                for server, model in user.get("servers", {}).items():
                    if model.get("pending") != "stop":
                        path = f"/users/{quote(name, safe='')}/server"
                        if server:
                            path = f"/users/{quote(name, safe='')}/servers/{quote(server, safe='')}"
                        self.api("DELETE", path)
                self.api("DELETE", f"/users/{quote(name, safe='')}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not delete users: {self.all_user_names()}")
            time.sleep(0.2)
