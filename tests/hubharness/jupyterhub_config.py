"""JupyterHub config for the tests and the demo; everything variable comes from the environment."""

import json
import os
import sys

import testhub

c = get_config()  # noqa: F821
here = os.environ["TEST_HUB_DIR"]

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(os.environ["TEST_PROXY_PORT"])
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ["TEST_HUB_PORT"])
c.JupyterHub.db_url = f"sqlite:///{here}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret = os.urandom(32)
if os.environ.get("TEST_CHP_COMMAND"):
    # The node configurable-http-proxy (Debian's), as a real Hub runs it.
    c.ConfigurableHTTPProxy.command = os.environ["TEST_CHP_COMMAND"].split("\x1f")
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['TEST_CHP_API_PORT']}"
    c.ConfigurableHTTPProxy.auth_token = os.urandom(16).hex()
else:
    c.JupyterHub.proxy_class = testhub.InMemoryProxy
if os.environ.get("TEST_INTERNAL_SSL"):
    # The Hub's API over mutual TLS, with the certificates it generates itself (certipy).
    c.JupyterHub.internal_ssl = True
    c.JupyterHub.internal_certs_location = os.path.join(here, "internal-ssl")
if os.environ.get("TEST_REAL_SERVERS"):
    # Real jupyter_server single-user servers with ipykernel kernels, as local processes,
    # reached through the real proxy at the Hub's public URL (which fills in `full_url`).
    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(here, "home", "{username}")
    c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
    # jupyter-resource-usage reports CPU use only when asked to (--keep-cpu-above).
    c.Spawner.args = ["--ServerApp.allow_root=True", "--ResourceUseDisplay.track_cpu_percent=True"]
    # Only the tests move activity: no activity reports from the servers during a test.
    c.Spawner.environment = {"JUPYTERHUB_ACTIVITY_INTERVAL": "3600"}
    c.JupyterHub.public_url = f"http://127.0.0.1:{os.environ['TEST_PROXY_PORT']}"
    # Many real servers starting at once share 2 cores: the last may take longer than the 30 s
    # the Hub waits by default for a server to answer, and the Hub then gives up on it.
    c.Spawner.http_timeout = 120
    if os.environ.get("TEST_LAB"):
        # JupyterLab in the browser, scriptable by the tests through its own commands.
        c.Spawner.default_url = "/lab"
        c.Spawner.args = [
            *c.Spawner.args,
            "--LabApp.expose_app_in_browser=True",
            "--JupyterNotebookApp.expose_app_in_browser=True",
        ]
        if os.environ.get("TEST_NOTICE_INTERVAL"):
            # How often the sensor asks the culler for the notice (300 s by default).
            c.Spawner.environment["CULL_IDLE_NOTICE_INTERVAL"] = os.environ["TEST_NOTICE_INTERVAL"]

    # The extensions real images carry are installed, for tests/test_real_work.py (users rw-*,
    # nb-* and solo-*, the last without collaborative editing). Everyone else's servers and tabs
    # run without them: their tests are about other things, and every extension costs each
    # server 1.5 s to start and each tab seconds to load, on 2 cores.
    LEAN_LAB_SETTINGS = os.path.join(here, "lean-lab-settings")
    os.makedirs(LEAN_LAB_SETTINGS, exist_ok=True)
    with open(os.path.join(LEAN_LAB_SETTINGS, "page_config.json"), "w") as f:
        # Disabled whole, JupyterLab loads none of their code (and applies none of their own
        # disabling of its plugins).
        real_image_labextensions = [
            "@jupyterlab/git",
            "@jupyter-lsp/jupyterlab-lsp",
            "@jupyter/collaboration-extension",
            "@jupyter/docprovider-extension",
            "@jupyter-widgets/jupyterlab-manager",
            "jupyterlab-execute-time",
            "jupyterlab-jupytext",
            "nbdime-jupyterlab",
        ]
        json.dump({"disabledExtensions": real_image_labextensions}, f)
    real_image_server_extensions = [
        "jupyterlab_git",
        "jupyter_server_ydoc",
        "jupyter_server_fileid",
        "jupyter_lsp",
        "jupytext",
        "jupyterlab_jupytext",
        "nbdime",
    ]

    def per_user(spawner):
        name = spawner.user.name
        # The server's own token, for tests that call the page's API as the server does.
        testhub.SERVER_TOKENS[f"{name}/{spawner.name}"] = spawner.api_token
        # Users named bare-* run a server as it is without cull-idle-sensor installed.
        if name.startswith("bare-"):
            spawner.args = [*spawner.args, "--ServerApp.jpserver_extensions=cull_idle_sensor=False"]
        if not name.startswith(("rw-", "nb-")):
            spawner.args = [*spawner.args, "--YDocExtension.disable_rtc=True"]
        # Users named old-* run the oldest JupyterLab the notice supports (tests/oldest_lab.py).
        if name.startswith("old-"):
            spawner.cmd = [os.environ["TEST_OLDEST_LAB_PYTHON"], "-m", "jupyterhub.singleuser"]
        if not name.startswith(("rw-", "nb-", "solo-")):
            spawner.args = [
                *spawner.args,
                f"--LabApp.app_settings_dir={LEAN_LAB_SETTINGS}",
                *(f"--ServerApp.jpserver_extensions={e}=False" for e in real_image_server_extensions),
            ]

    c.Spawner.pre_spawn_hook = per_user
else:
    c.JupyterHub.spawner_class = testhub.NoProcessSpawner
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin-user"}
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 0
c.JupyterHub.api_page_default_limit = int(os.environ.get("TEST_PAGE_DEFAULT", "5"))
c.JupyterHub.api_page_max_limit = int(os.environ.get("TEST_PAGE_MAX", "20"))
# Only the tests move activity: no proxy polling, no single-user activity reports.
c.JupyterHub.last_activity_interval = 3600
c.JupyterHub.tornado_settings = {
    "slow_stop_timeout": float(os.environ.get("TEST_SLOW_STOP_TIMEOUT", "2")),
    "slow_spawn_timeout": 0.1,
}
c.Spawner.start_timeout = 3600
if not os.environ.get("TEST_REAL_SERVERS"):
    c.Spawner.http_timeout = 30
c.JupyterHub.extra_handlers = [(r"/api/testing", testhub.TestingHandler)]
if os.environ.get("TEST_KEEP_SERVERS"):
    # As in zero-to-jupyterhub: a Hub that restarts leaves its users' servers running.
    c.JupyterHub.cleanup_servers = False

culler_scopes = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
services = [
    {"name": "test-admin", "api_token": os.environ["TEST_ADMIN_TOKEN"], "admin": True},
    {"name": "culler", "api_token": os.environ["TEST_CULL_TOKEN"]},
    {"name": "culler-users", "api_token": os.environ["TEST_CULL_USERS_TOKEN"]},
    {"name": "culler-groups", "api_token": os.environ["TEST_CULL_GROUPS_TOKEN"]},
    {"name": "culler-kernels", "api_token": os.environ["TEST_CULL_KERNELS_TOKEN"]},
]
managed = os.environ.get("TEST_MANAGED_CULLER")
if managed:
    service = {"name": "culler-managed", "command": managed.split("\x1f")}
    if os.environ.get("TEST_MANAGED_URL"):
        # With a url the Hub waits for the service to answer, and exits if it does not.
        service["url"] = os.environ["TEST_MANAGED_URL"]
    services.append(service)
c.JupyterHub.services = services
c.JupyterHub.load_roles = [
    {
        "name": "culler-groups",
        "scopes": [*culler_scopes, "delete:users", "read:users:groups"],
        "services": ["culler-groups"],
    },
    {"name": "culler", "scopes": culler_scopes, "services": ["culler"]},
    {"name": "culler-kernels", "scopes": [*culler_scopes, "tokens"], "services": ["culler-kernels"]},
    {
        "name": "culler-users",
        "scopes": [*culler_scopes, "delete:users", "read:users"],
        "services": ["culler-users", "culler-managed"] if managed else ["culler-users"],
    },
]
if managed and os.environ.get("TEST_MANAGED_EXTRA_SCOPES"):
    # Such as tokens, for a managed culler that asks servers what they run.
    extra = os.environ["TEST_MANAGED_EXTRA_SCOPES"].split()
    c.JupyterHub.load_roles.append(
        {"name": "culler-managed-extra", "scopes": extra, "services": ["culler-managed"]}
    )
if os.environ.get("TEST_EXTRA_CONFIG"):
    # A deployment's own configuration on top, run in this file's namespace as the chart runs
    # hub.extraConfig and TLJH its own config (which then loads jupyterhub_config.d).
    with open(os.environ["TEST_EXTRA_CONFIG"]) as f:
        exec(compile(f.read(), f.name, "exec"))
