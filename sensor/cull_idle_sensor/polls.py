"""The requests an open, untouched browser tab makes by itself: never evidence of a person.

Each entry is a method and a path pattern (after the server's base URL), with where it comes
from. JupyterLab 4 and Notebook 7 share these services; their pollers stand by while the tab is
hidden, and poll while it is visible, whether anyone is there or not. Read at JupyterLab 4.6
(``packages/*/src``) and measured from a visible idle tab (docs/idleness.md). Operators add
their extensions' polls with ``CullIdleSensor.extra_idle_polls``.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Poll(NamedTuple):
    method: str
    pattern: str
    source: str


IDLE_POLLS: tuple[Poll, ...] = (
    Poll(
        "GET",
        r"api/kernels/?",
        "@jupyterlab/services kernel/manager.ts: Poll of the running kernels, every 10 s",
    ),
    Poll(
        "GET", r"api/sessions/?", "@jupyterlab/services session/manager.ts: Poll of the sessions, every 10 s"
    ),
    Poll(
        "GET",
        r"api/terminals/?",
        "@jupyterlab/services terminal/manager.ts: Poll of the terminals, every 10 s",
    ),
    Poll(
        "GET",
        r"api/kernelspecs/?",
        "@jupyterlab/services kernelspec/manager.ts: Poll of the kernel specs, every 61 s",
    ),
    Poll("GET", r"api/me/?", "@jupyterlab/services user/manager.ts: Poll of the identity, every 61 s"),
    Poll(
        "GET",
        r"api/contents(/.*)?",
        "@jupyterlab/filebrowser model.ts: polls the open directory every 10 s; reading is not work",
    ),
    Poll(
        "GET",
        r"lab/api/workspaces/?",
        "@jupyterlab/workspaces model.ts: Poll of the workspace list, every 10 s",
    ),
    Poll(
        "PUT",
        r"lab/api/workspaces/.+",
        "@jupyterlab/application-extension: the layout, saved on each layoutModified (~10 s idle)",
    ),
    Poll(
        "GET",
        r"api/events/subscribe",
        "@jupyterlab/services event/index.ts: the events websocket, reconnected by a Poll",
    ),
    Poll(
        "GET",
        r"api/kernels/[^/]+/channels",
        "the notebook's kernel websocket, reconnected by itself; execution is the kernel's own activity",
    ),
    Poll(
        "GET",
        r"terminals/websocket/[^/]+",
        "a terminal's websocket, reconnected by itself; input and output are the terminal's own activity",
    ),
    Poll("GET", r"api/status/?", "jupyter_server's status, which it does not count as activity either"),
    # What a page loads to show itself: never the person's doing, even after the page has loaded,
    # since some of it loads only when first needed. Showing the culler's own warning is such a
    # moment (the first notification loads its code), and must not undo that warning.
    Poll(
        "GET",
        r"static/.+",
        "the application's and jupyter_server's assets (static/lab/, static/notebook/): scripts "
        "loaded when first needed, such as a notification's on the first one shown",
    ),
    Poll("GET", r"lab/extensions/.+", "the prebuilt extensions' assets (jupyterlab_server's extensions url)"),
    Poll("GET", r"lab/api/themes/.+", "a theme's CSS, fonts and icons (jupyterlab_server's themes_url)"),
    Poll("GET", r"custom/custom\.css", "jupyter_server's custom CSS, which every page loads"),
    Poll(
        "GET",
        r"api/metrics/v1(/.*)?",
        "jupyter-resource-usage: memory and CPU every 5 s; its kernel panel, kernel_usage/get_usage/ID",
    ),
    Poll("GET", r"api/cull-idle/.*", "this sensor's own endpoint, read by the culler and the notice"),
    Poll("POST", r"api/cull-idle/notice", "the notice's keep button: a keep-alive, not work"),
    Poll(
        "POST",
        r"api/cull-idle/input",
        "this sensor's extension: a person's input, recorded by its own handler",
    ),
    # The extensions real single-user images carry (docs/idleness.md, measured with
    # bench/tab_requests.py and read in their sources).
    Poll(
        "POST",
        r"git/(.+/)?(status|branch|tags|changed_files|show_top_level|show_prefix|remote/fetch)",
        "jupyterlab-git 0.55 model.ts: _statusPoll every 3 s while its panel is open (19/min each, "
        "measured), _fetchPoll where the repository has remotes, the repository lookup on cd",
    ),
    Poll(
        "GET",
        r"git/(.+/)?(stash|remote/show)",
        "jupyterlab-git 0.55 model.ts: the same _statusPoll (refreshStash, refreshRemotes)",
    ),
    Poll(
        "GET",
        r"api/collaboration/room/.+",
        "jupyter-collaboration: a document's or the awareness websocket, reconnected by itself; "
        "edits count by their messages",
    ),
    Poll("GET", r"dask/clusters/?", "dask-labextension clusters.tsx: Poll of the clusters, every 5 s"),
    Poll(
        "GET",
        r"dask/dashboard-check/.+",
        "dask-labextension dashboard.tsx: Poll of the dashboard's address, every 4 s",
    ),
    Poll(
        "GET",
        r"proxy/[^/]+/individual-plots\.json",
        "dask-labextension dashboard.tsx: the same Poll, for a dashboard behind jupyter-server-proxy",
    ),
)


class PollMatcher:
    """Whether a request is an idle poll, by its method and its path after the base URL."""

    def __init__(self, polls: tuple[Poll, ...] | list[Poll]) -> None:
        self._by_method: dict[str, re.Pattern[str]] = {}
        for method in {p.method for p in polls}:
            alternatives = "|".join(f"(?:{p.pattern})" for p in polls if p.method == method)
            self._by_method[method] = re.compile(f"(?:{alternatives})")

    def is_idle_poll(self, method: str, path: str) -> bool:
        pattern = self._by_method.get(method.upper())
        return pattern is not None and pattern.fullmatch(path) is not None
