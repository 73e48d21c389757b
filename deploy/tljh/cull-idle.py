# /opt/tljh/config/jupyterhub_config.d/cull-idle.py
# Run TLJH's idle culler (its cull-idle service) with cull_idle instead of
# jupyterhub_idle_culler. The service keeps its name, its admin role and every services.cull.*
# setting, enabled included.
import importlib.util
import sys

# TLJH loads this file with load_subconfig, which gives it a config object of its own; the
# services TLJH built are in the config of the file that loads this one.
hub_config = c
frame = sys._getframe()
while frame is not None:
    outer = frame.f_globals.get("c")
    if isinstance(outer, type(c)) and outer is not c:
        hub_config = outer
        break
    frame = frame.f_back

if importlib.util.find_spec("cull_idle") is None:
    print("cull-idle is not installed in the hub environment; keeping jupyterhub-idle-culler")
else:
    for service in hub_config.JupyterHub.get("services") or []:
        command = service.get("command") or []
        if "jupyterhub_idle_culler" in command:
            command[command.index("jupyterhub_idle_culler")] = "cull_idle"
            # /health and /metrics on loopback, for a check from the hub's host.
            command.append("--metrics-bind=127.0.0.1:10101")
