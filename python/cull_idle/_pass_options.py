"""The options ``run_pass`` takes as keywords, generated from ``_options.OPTIONS`` by
``python -m cull_idle._options_docs``: do not edit (a test checks that it is current).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, Optional, TypedDict


class PassOptions(TypedDict, total=False):
    """Each is the option of the same name, with its default when left out."""

    #: --api-page-size: Users per page when listing (0: the Hub's largest page).
    api_page_size: int
    #: --max-age: Also cull servers (and with --cull-users, users) older than this, even if active (0:
    #: off).
    max_age: float
    #: --cull-users: Also delete users that have no running server and are idle for --timeout (or older
    #: than --max-age).
    cull_users: bool
    #: --cull-admin-users: With --cull-users, delete idle admin users too (max-age applies to admins
    #: either way).
    cull_admin_users: bool
    #: --remove-named-servers: Remove named servers when culling them, not only stop them.
    remove_named_servers: bool
    #: --remove-stopped-named-servers: Remove named servers that have been stopped (by anyone) for
    #: longer than this many seconds, judged by their last activity (JupyterHub 3.0+). 0: off.
    remove_stopped_named_servers: float
    #: --cull-default-servers: Cull idle default servers.
    cull_default_servers: bool
    #: --cull-named-servers: Cull idle named servers.
    cull_named_servers: bool
    #: --dry-run: Decide and log what would be stopped or deleted, but send no DELETE.
    dry_run: bool
    #: --user-timeout: With --cull-users, delete users idle for this many seconds.
    user_timeout: Optional[float]
    #: --exclude-users: Never cull or delete these users: NAME[,NAME...], shell-style globs allowed
    #: (repeatable).
    exclude_users: Iterable[str]
    #: --exclude-groups: Never cull or delete members of these Hub groups: GROUP[,GROUP...]
    #: (repeatable; the token needs read:users:groups).
    exclude_groups: Iterable[str]
    #: --group-timeout: GROUP=SECONDS: the idle limit for servers of this group's members; the largest
    #: of a user's groups applies (repeatable; the token needs read:users:groups).
    group_timeouts: Mapping[str, float]
    #: --profile-timeout: PROFILE=SECONDS: the idle limit for servers started with this profile
    #: (user_options['profile'], KubeSpawner's profile_list slug); it wins over --group-timeout and
    #: --timeout (repeatable).
    profile_timeouts: Mapping[str, float]
    #: --max-culls-per-pass: Stop at most this many servers and users in one pass, the longest idle
    #: first; the rest wait for the next pass (0: no cap).
    max_culls_per_pass: int
    #: --idle-by: What a server's idle time counts from: hub, the Hub's last activity (which an open
    #: browser tab keeps fresh), or work, the last kernel or terminal activity or what the cull-idle-
    #: sensor in the server saw (the token needs the tokens scope).
    idle_by: Literal["hub", "work"]
    #: --keep-busy-kernels: Before stopping an idle server, ask it for its kernels and terminals; keep
    #: it while a kernel is busy or a terminal was used within the timeout (the token needs the tokens
    #: scope).
    keep_busy_kernels: bool
    #: --keep-connected: Likewise keep idle servers whose kernels have open connections (a notebook tab
    #: left open).
    keep_connected: bool
    #: --keep-cpu-above: Likewise keep idle servers using more than this percentage of a CPU, as
    #: jupyter-resource-usage (with track_cpu_percent) reports it: a script in a terminal, a nohup job.
    #: 0: off.
    keep_cpu_above: int
    #: --busy-timeout: Cull a server idle (by the Hub) this long even if it is busy or connected, so
    #: that a runaway kernel cannot hold a server forever (0: no bound).
    busy_timeout: float
    #: --server-url: Where to reach single-user servers for those questions: the proxy's address, e.g.
    #: http://proxy-public; the server's path is appended.
    server_url: Optional[str]
    #: --warn-before: Warn this many seconds before a server is culled (once per idle stretch; the cull
    #: then waits at least this long after the warning). 0: no warnings.
    warn_before: float
    #: --warn-users-before: The same before a user is deleted (--cull-users).
    warn_users_before: Optional[float]
