"""cull-idle's sensor: when a person or a program last did real work in this Jupyter server.

A jupyter_server extension, enabled by installing it. It keeps the time of the last work it
saw: a person's input that an open tab reports (``POST api/cull-idle/input``), a document edited
over jupyter-collaboration's websocket, and a request that is work (not one of the idle polls
of :mod:`.polls`, nor a tab's own when that tab reports input). It serves
``GET api/cull-idle/work``: those times, with the kernels' and terminals' own activity, for the
culler (``cull-idle --idle-by=work``). The endpoint is not counted as
activity, by jupyter_server or by the sensor.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .activity import WorkSensor, load

try:
    # cull-idle's version, written once (its Cargo.toml) and given to the package when built.
    __version__ = version("cull-idle-sensor")
except PackageNotFoundError:  # imported from a source tree, not installed
    __version__ = "0+unknown"
__all__ = ["WorkSensor", "__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "cull_idle_sensor"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    load(serverapp, __version__)
