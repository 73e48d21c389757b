# jupyterhub_config.py
import sys

c.JupyterHub.services = [
    {"name": "idle-culler", "command": [sys.executable, "-m", "cull_idle", "--timeout=3600"]}
]
c.JupyterHub.load_roles = [
    {
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }
]
