"""Every option, declared once: name, parser, default, help, group, config key and Python API
keyword. The command line, config files, ``--generate-config``, the Python API's keywords and
the README's table all follow this declaration (tests check the last two against it).

Values are parsed here (text to numbers, names, addresses); their ranges are checked once, by
the core, for every caller.
"""

from __future__ import annotations

import argparse
import collections
import logging
from typing import Literal, get_args

from . import _core
from ._defaults import DEFAULT_API_URL

#: The default of every pass option: the core's, which holds them; the declaration restates none.
FROM_CORE = object()

# Not typing.TYPE_CHECKING, nor dataclasses: together they would double the time `--help` takes.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, NamedTuple, Optional

DEFAULT_CONFIG_FILE = "idle_culler_config.py"
#: Config classes whose settings apply (jupyterhub-idle-culler's, ours, traitlets' base).
CONFIG_SECTIONS = ("IdleCuller", "CullIdle", "Application")


class UsageError(Exception):
    """Bad input: reported as one line, exit status 2."""


class BadValue(argparse.ArgumentTypeError, ValueError):
    """A value that does not parse; argparse shows its message as it is."""


def parse_bool(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "y", "t", "on"):
        return True
    if value in ("false", "0", "no", "n", "f", "off"):
        return False
    raise BadValue(f"expected true or false, not {text!r}")


def parse_seconds(text: Any) -> int:
    if isinstance(text, bool):
        raise BadValue(f"expected a whole number of seconds, not {text!r}")
    try:
        value = text if isinstance(text, int) else int(str(text).strip(), 10)
    except ValueError:
        raise BadValue(f"expected a whole number of seconds, not {text!r}") from None
    if value < 0:
        raise BadValue(f"must not be negative, not {value}")
    return value


def parse_count(text: Any) -> int:
    try:
        return parse_seconds(text)
    except ValueError as e:
        raise BadValue(str(e).replace("a whole number of seconds", "a whole number")) from None


def parse_text(text: Any) -> str:
    if not isinstance(text, str):
        raise BadValue(f"expected text, not {text!r}")
    return text


def parse_names(value: Any) -> list[str]:
    """``a,b`` (or a list of such) as a list of names."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise BadValue(f"expected comma-separated names, not {value!r}")
    names = [n.strip() for item in items for n in item.split(",") if n.strip()]
    if isinstance(value, str) and not names:
        raise BadValue(f"expected comma-separated names, not {value!r}")
    return names


def _parse_limits(value: Any, what: str) -> dict[str, int]:
    """``NAME=SECONDS`` (or a dict, or a list of such) as ``{name: seconds}``."""
    if isinstance(value, dict):
        pairs = list(value.items())
    else:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise BadValue(f"expected {what}=SECONDS, not {value!r}")
        pairs = []
        for item in items:
            name, eq, seconds = str(item).partition("=")
            if not eq or not name.strip():
                raise BadValue(f"expected {what}=SECONDS, not {item!r}")
            pairs.append((name.strip(), seconds))
    return {name: parse_seconds(seconds) for name, seconds in pairs}


def parse_group_timeouts(value: Any) -> dict[str, int]:
    """``GROUP=SECONDS`` (or a dict, or a list of such) as ``{group: seconds}``."""
    return _parse_limits(value, "GROUP")


def parse_profile_timeouts(value: Any) -> dict[str, int]:
    """``PROFILE=SECONDS`` (or a dict, or a list of such) as ``{profile: seconds}``."""
    return _parse_limits(value, "PROFILE")


def parse_address(value: Any) -> tuple[str, int]:
    """``HOST:PORT``."""
    host, colon, port = str(value).rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadValue(f"expected HOST:PORT, not {value!r}")
    return host.strip("[]"), int(port)


def parse_url(value: Any) -> str:
    text = parse_text(value).strip()
    if not text.startswith(("http://", "https://")) or len(text.split("://", 1)[1]) == 0:
        raise BadValue(f"expected an http:// or https:// URL, not {value!r}")
    return text


def parse_secret_url(value: Any) -> str:
    """A URL that carries a key (a webhook's): never repeated in an error."""
    text = value.strip() if isinstance(value, str) else ""
    if not text.startswith(("http://", "https://")) or len(text.split("://", 1)[1]) == 0:
        raise BadValue("expected an http:// or https:// URL (not shown: it is a secret)")
    return text


#: What a server's idle time counts from, as the core's ``IdleBy`` names it.
IdleBy = Literal["hub", "work"]


def parse_idle_by(value: Any) -> IdleBy:
    for known in get_args(IdleBy):
        if value == known:
            return known  # type: ignore[no-any-return]
    raise BadValue(f"expected hub or work, not {value!r}")


def parse_log_format(value: Any) -> str:
    if value not in ("text", "json"):
        raise BadValue(f"expected text or json, not {value!r}")
    return str(value)


LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "none": logging.CRITICAL + 10,
}


def parse_level(text: Any) -> int:
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in LEVELS:
        return LEVELS[value]
    if value.isdigit():
        return int(value)
    raise BadValue(f"expected one of {', '.join(n for n in LEVELS if n != 'warn')}, not {text!r}")


if TYPE_CHECKING:

    class _OptionFields(NamedTuple):
        name: str
        parse: Callable[[Any], Any]
        default: Any
        help: str
        group: str
        #: Where the default comes from, when it is not a constant.
        default_text: Optional[str] = None
        #: May be given several times on the command line; the values are combined.
        repeat: bool = False
        #: The keyword it is in the Python API: of ``run_pass`` (pass options), ``connect``
        #: (``connect:...``), ``run_periodically`` (``periodic:...``); ``None``: command line only.
        api: Optional[str] = None
        #: What the README's options table says (Markdown); ``help`` when ``None``.
        doc: Optional[str] = None
        #: Other names it is accepted by on the command line (``logging`` for ``log-level``).
        aliases: tuple[str, ...] = ()
else:
    _OptionFields = collections.namedtuple(
        "_OptionFields",
        "name parse default help group default_text repeat api doc aliases",
        defaults=(None, False, None, None, ()),
    )


class Option(_OptionFields):
    __slots__ = ()

    @property
    def key(self) -> str:
        return self.name.replace("-", "_")

    @property
    def is_bool(self) -> bool:
        return self.parse is parse_bool

    @property
    def pass_keyword(self) -> Optional[str]:
        """Its keyword in ``run_pass``, if it is a pass option."""
        return self.api if self.api and ":" not in self.api else None


HUB, POLICY, WORK, RUN = "Hub connection", "Policy", "Kernel-aware culling", "Output and running"
WARN = "Warnings before culling"
PAGE = "The page and keep-alives"
OPTIONS = [
    Option(
        "url",
        parse_text,
        None,
        "The Hub API URL.",
        HUB,
        f"$JUPYTERHUB_API_URL, else {DEFAULT_API_URL}",
        api="connect:url",
        doc="the Hub API URL (`http://` or `https://`)",
    ),
    Option(
        "concurrency",
        parse_count,
        _core.DEFAULT_CONCURRENCY,
        "At most this many requests to the Hub at once, across all users (0 means the default, 10).",
        HUB,
        api="connect:concurrency",
        doc=(
            "at most this many requests to the Hub at once, across all users (`0` means 10, as "
            "tornado capped the reference)"
        ),
    ),
    Option(
        "api-page-size",
        parse_count,
        FROM_CORE,
        "Users per page when listing (0: the Hub's largest page).",
        HUB,
        api="api_page_size",
        doc="users per page when listing; `0` asks for the Hub's largest page (`api_page_max_limit`)",
    ),
    Option(
        "ssl-enabled",
        parse_bool,
        False,
        "Use the Hub's internal SSL certificates under --internal-certs-location (with internal_ssl the "
        "JUPYTERHUB_SSL_* variables a managed service is given are used without this flag).",
        HUB,
        api="connect:ssl_enabled",
        doc="use JupyterHub's `internal_ssl` certificates under `--internal-certs-location`",
    ),
    Option(
        "internal-certs-location",
        parse_text,
        "internal-ssl",
        "Where JupyterHub's internal_ssl certificates are (JupyterHub.internal_certs_location).",
        HUB,
        api="connect:internal_certs_location",
        doc=(
            "where those are: `hub-ca/hub-ca.crt` (CA), `hub-internal/hub-internal.{crt,key}` (client"
            " certificate)"
        ),
    ),
    Option(
        "timeout",
        parse_seconds,
        FROM_CORE,
        "Cull servers idle for at least this many seconds.",
        POLICY,
        api="inactive_limit",
        doc="cull servers idle for at least this many seconds; with `--cull-users`, also users",
    ),
    Option(
        "cull-every",
        parse_seconds,
        0,
        "Seconds between passes (0: half the timeout, at least 1).",
        POLICY,
        "0, i.e. timeout // 2",
        api="periodic:cull_every",
        doc="seconds between the starts of passes; the first pass runs at once; passes never overlap",
    ),
    Option(
        "max-age",
        parse_seconds,
        FROM_CORE,
        "Also cull servers (and with --cull-users, users) older than this, even if active (0: off).",
        POLICY,
        api="max_age",
        doc=(
            "also cull servers, and with `--cull-users` users, older than this, even if active, and "
            "whatever the hook, the default/named selection or `--cull-admin-users` say (as the "
            "reference); `0` turns it off"
        ),
    ),
    Option(
        "cull-users",
        parse_bool,
        FROM_CORE,
        "Also delete users that have no running server and are idle for --timeout (or older than --max-age).",
        POLICY,
        api="cull_users",
        doc=(
            "also delete users with no active server, idle for `--timeout` (from `last_activity`, "
            "else `created`) or older than `--max-age`"
        ),
    ),
    Option(
        "cull-admin-users",
        parse_bool,
        FROM_CORE,
        "With --cull-users, delete idle admin users too (max-age applies to admins either way).",
        POLICY,
        api="cull_admin_users",
        doc="with `--cull-users`, delete idle admins too (`--max-age` applies to admins either way)",
    ),
    Option(
        "remove-named-servers",
        parse_bool,
        FROM_CORE,
        "Remove named servers when culling them, not only stop them.",
        POLICY,
        api="remove_named_servers",
        doc=(
            'remove culled named servers (`{"remove": true}`), not only stop them; never applies to '
            "the default server"
        ),
    ),
    Option(
        "remove-stopped-named-servers",
        parse_seconds,
        FROM_CORE,
        "Remove named servers that have been stopped (by anyone) for longer than this many "
        "seconds, judged by their last activity (JupyterHub 3.0+). 0: off.",
        POLICY,
        api="remove_stopped_named_servers",
        doc=(
            "remove named servers stopped (by anyone) for longer than this many seconds, by their "
            "`last_activity`, else `started`; never the default server; needs JupyterHub 3.0 "
            "(`include_stopped_servers`); `0`: off"
        ),
    ),
    Option(
        "cull-default-servers",
        parse_bool,
        FROM_CORE,
        "Cull idle default servers.",
        POLICY,
        api="cull_default_servers",
        doc="cull idle default servers",
    ),
    Option(
        "cull-named-servers",
        parse_bool,
        FROM_CORE,
        "Cull idle named servers.",
        POLICY,
        api="cull_named_servers",
        doc="cull idle named servers",
    ),
    Option(
        "dry-run",
        parse_bool,
        FROM_CORE,
        "Decide and log what would be stopped or deleted, but send no DELETE.",
        POLICY,
        api="dry_run",
        doc=(
            "decide and log `Would cull server …` / `Would delete user …`, but send no DELETE; the "
            "summary line says DRY RUN"
        ),
    ),
    Option(
        "user-timeout",
        parse_seconds,
        FROM_CORE,
        "With --cull-users, delete users idle for this many seconds.",
        POLICY,
        "--timeout",
        api="user_timeout",
        doc="with `--cull-users`, delete users idle this long (servers still go by `--timeout`)",
    ),
    Option(
        "exclude-users",
        parse_names,
        FROM_CORE,
        "Never cull or delete these users: NAME[,NAME...], shell-style globs allowed (repeatable).",
        POLICY,
        "none",
        repeat=True,
        api="exclude_users",
        doc=(
            "`NAME[,NAME...]`, shell-style globs (`staff-*`), repeatable: never cull or delete these "
            "users, not even by `--max-age`"
        ),
    ),
    Option(
        "exclude-groups",
        parse_names,
        FROM_CORE,
        "Never cull or delete members of these Hub groups: GROUP[,GROUP...] (repeatable; the token "
        "needs read:users:groups).",
        POLICY,
        "none",
        repeat=True,
        api="exclude_groups",
        doc="`GROUP[,GROUP...]`, repeatable: never cull or delete members of these Hub groups",
    ),
    Option(
        "group-timeout",
        parse_group_timeouts,
        FROM_CORE,
        "GROUP=SECONDS: the idle limit for servers of this group's members; the largest of a user's "
        "groups applies (repeatable; the token needs read:users:groups).",
        POLICY,
        "none",
        repeat=True,
        api="group_timeouts",
        doc=(
            "`GROUP=SECONDS`, repeatable: the idle limit for the servers of this group's members; a "
            "user in several such groups gets the largest"
        ),
    ),
    Option(
        "profile-timeout",
        parse_profile_timeouts,
        FROM_CORE,
        "PROFILE=SECONDS: the idle limit for servers started with this profile (user_options['profile'], "
        "KubeSpawner's profile_list slug); it wins over --group-timeout and --timeout (repeatable).",
        POLICY,
        "none",
        repeat=True,
        api="profile_timeouts",
        doc=(
            "`PROFILE=SECONDS`, repeatable: the idle limit for servers started with this profile "
            '(`user_options["profile"]`, the slug KubeSpawner\'s `profile_list` stores); it wins over '
            "`--group-timeout` and `--timeout` for that server. Deleting users is not affected"
        ),
    ),
    Option(
        "max-culls-per-pass",
        parse_count,
        FROM_CORE,
        "Stop at most this many servers and users in one pass, the longest idle first; the rest wait "
        "for the next pass (0: no cap).",
        POLICY,
        api="max_culls_per_pass",
        doc=(
            "at most this many stops and deletions in one pass, the longest idle first; the rest wait"
            " for the next pass, and a warning says the cap was hit; `0`: no cap"
        ),
    ),
    Option(
        "idle-by",
        parse_idle_by,
        FROM_CORE,
        "What a server's idle time counts from: hub, the Hub's last activity (which an open "
        "browser tab keeps fresh), or work, the last kernel or terminal activity or what the "
        "cull-idle-sensor in the server saw (the token needs the tokens scope).",
        WORK,
        api="idle_by",
        doc=(
            "`hub` (the reference's way): idle since the Hub's `last_activity`, which an open "
            "JupyterLab tab keeps fresh forever; `work`: idle since the last kernel or terminal "
            "activity, or what the [sensor](docs/idleness.md) inside the server counts. A server "
            "that cannot be asked is judged by the Hub. See [Idle by work](docs/idleness.md)"
        ),
    ),
    Option(
        "keep-busy-kernels",
        parse_bool,
        FROM_CORE,
        "Before stopping an idle server, ask it for its kernels and terminals; keep it while a kernel "
        "is busy or a terminal was used within the timeout (the token needs the tokens scope).",
        WORK,
        api="keep_busy_kernels",
        doc=(
            "before stopping an idle server, ask it for its kernels and terminals; keep it while a "
            "kernel is busy (or starting/restarting), or a terminal was used within the server's idle"
            " limit. See [Kernel-aware culling](#kernel-aware-culling)"
        ),
    ),
    Option(
        "keep-connected",
        parse_bool,
        FROM_CORE,
        "Likewise keep idle servers whose kernels have open connections (a notebook tab left open).",
        WORK,
        api="keep_connected",
        doc=("likewise keep idle servers whose kernels have open connections (a notebook tab left open)"),
    ),
    Option(
        "keep-cpu-above",
        parse_count,
        FROM_CORE,
        "Likewise keep idle servers using more than this percentage of a CPU, as "
        "jupyter-resource-usage (with track_cpu_percent) reports it: a script in a terminal, a "
        "nohup job. 0: off.",
        WORK,
        api="keep_cpu_above",
        doc=(
            "likewise keep idle servers whose processes use more than this percentage of a CPU "
            "(summed over cores), as jupyter-resource-usage reports it with `track_cpu_percent`; a "
            "server without it is judged by the other signals; `0`: off"
        ),
    ),
    Option(
        "busy-timeout",
        parse_seconds,
        FROM_CORE,
        "Cull a server idle (by the Hub) this long even if it is busy or connected, so that a "
        "runaway kernel cannot hold a server forever (0: no bound).",
        WORK,
        api="busy_timeout",
        doc=(
            "cull a server idle (by the Hub) this long even if busy or connected, so that a runaway "
            "kernel cannot hold a server (or a GPU) forever; must exceed `--timeout`; `0`: no bound"
        ),
    ),
    Option(
        "server-url",
        parse_url,
        FROM_CORE,
        "Where to reach single-user servers for those questions: the proxy's address, e.g. "
        "http://proxy-public; the server's path is appended.",
        WORK,
        "the full_url the Hub gives each server (set with JupyterHub.public_url)",
        api="server_url",
        doc=(
            "where to ask servers: the proxy's address (`http://proxy-public` in z2jh), to which each"
            " server's path is appended"
        ),
    ),
    Option(
        "probe-timeout",
        parse_seconds,
        10,
        "Seconds a single-user server has to answer a probe, all of it: connecting, every request, "
        "retries and any Retry-After it asks for; past it, it is judged unanswered.",
        WORK,
        api="connect:probe_timeout",
        doc=(
            "seconds a server has for the whole probe: connecting, every request, retries (3, with "
            "backoff, on timeouts, connection errors and `5xx`) and any `Retry-After`; past it the "
            "server is unanswered"
        ),
    ),
    Option(
        "warn-before",
        parse_seconds,
        FROM_CORE,
        "Warn this many seconds before a server is culled (once per idle stretch; the cull then "
        "waits at least this long after the warning). 0: no warnings.",
        WARN,
        api="warn_before",
        doc=(
            "warn this many seconds before a server is culled, once per idle stretch; no server is "
            "stopped (nor user deleted) until at least this long after its warning; `0`: off"
        ),
    ),
    Option(
        "warn-users-before",
        parse_seconds,
        FROM_CORE,
        "The same before a user is deleted (--cull-users).",
        WARN,
        "--warn-before",
        api="warn_users_before",
        doc="the same before a user is deleted with `--cull-users` (user timeouts are often days)",
    ),
    Option(
        "warn-webhook",
        parse_secret_url,
        None,
        "POST each warning as JSON to this URL (Slack, Mattermost and Rocket.Chat incoming "
        "webhooks post its text). A secret: set it in the config file or the environment, "
        "not on the command line, which the Hub logs.",
        WARN,
        "$CULL_IDLE_WARN_WEBHOOK, if set",
        api="connect:warn_webhook",
        doc=(
            "POST each warning as JSON (`text`, `user`, `server`, `reason`, `inactive_seconds`, "
            "`cull_at`) to this URL; a secret, never logged: set it in the config file or "
            "`$CULL_IDLE_WARN_WEBHOOK`, as the Hub logs a service's command line"
        ),
    ),
    Option(
        "state-file",
        parse_text,
        "cull_idle_state.sqlite",
        "The SQLite file that remembers the warnings given, the keep-alives set and the work seen "
        "(--idle-by=work), across restarts (:memory: keeps them in memory). Used only with "
        "those on.",
        WARN,
        api="connect:state_file",
        doc=(
            "the SQLite file that remembers warnings, keep-alives and the work seen (`--idle-by=work`) "
            "across restarts, in the working directory (a managed service's is the Hub's); "
            "`:memory:` keeps them in memory; only with those on"
        ),
    ),
    Option(
        "page",
        parse_bool,
        True,
        "Serve the page (behind the Hub's login) where users see when their servers will be "
        "stopped, and operators what the culler will do. Needs a Hub-managed service with a url, "
        "or --web-bind.",
        PAGE,
        doc=(
            "serve the page at the service's prefix, behind the Hub's OAuth: each user's servers "
            "and when they will be stopped, and for operators everything (see docs/page.md)"
        ),
    ),
    Option(
        "max-keep-alive",
        parse_seconds,
        0,
        "Let users keep a server of theirs running for up to this many seconds from the page or "
        "its API (--max-age and --busy-timeout still apply). 0: no keep-alives.",
        PAGE,
        doc=(
            "let users keep one of their servers running for up to this long from the page or "
            "`api/keep-alive`; `--max-age` and `--busy-timeout` still cull; `0`: off, no control"
        ),
    ),
    Option(
        "admin-groups",
        parse_names,
        [],
        "Members of these Hub groups see the operators' view, as Hub admins do: GROUP[,GROUP...] "
        "(repeatable).",
        PAGE,
        "none",
        repeat=True,
        doc="`GROUP[,GROUP...]`, repeatable: members see the operators' view, as Hub admins do",
    ),
    Option(
        "page-auth-cache",
        parse_seconds,
        30,
        "Seconds the Hub's answer about a visitor's token is trusted before it is asked again "
        "(a revoked token works at most this long).",
        PAGE,
        doc=(
            "seconds a visitor's token is trusted after the Hub vouched for it (`GET /user`), so "
            "a class reloading the page costs the Hub one request per user per this long"
        ),
    ),
    Option(
        "web-bind",
        parse_address,
        None,
        "Serve the page, metrics and health on HOST:PORT, at $JUPYTERHUB_SERVICE_PREFIX, for an "
        "external service (give it the OAuth client's $JUPYTERHUB_CLIENT_ID and "
        "$JUPYTERHUB_OAUTH_CALLBACK_URL).",
        PAGE,
        doc=(
            "`HOST:PORT` to serve the page, `/metrics` and `/health` on, at "
            "`$JUPYTERHUB_SERVICE_PREFIX`, for an external service (see docs/page.md)"
        ),
    ),
    Option(
        "once",
        parse_bool,
        False,
        "Run one pass and exit: 0 if the pass completed, 1 if the Hub could not be read.",
        RUN,
        doc="run one pass and exit: 0 if every page was listed, 1 if the Hub could not be read",
    ),
    Option(
        "log-level",
        parse_level,
        logging.INFO,
        "debug, info, warning, error or critical (alias --logging).",
        RUN,
        "info",
        doc="`debug`, `info`, `warning`, `error`, `critical` (or a number)",
        aliases=("logging",),
    ),
    Option(
        "metrics-bind",
        parse_address,
        None,
        "Serve Prometheus metrics at /metrics and a health check at /health on HOST:PORT. As a "
        "Hub-managed service with a url, they are served there without this option.",
        RUN,
        "$JUPYTERHUB_SERVICE_URL, if any",
        doc="`HOST:PORT` to serve `/metrics` (Prometheus) and `/health` (JSON) on",
    ),
    Option(
        "log-format",
        parse_log_format,
        "text",
        "text (JupyterHub's format) or json (one object a line, for log shippers).",
        RUN,
        doc="`text` (JupyterHub's format) or `json` (one object a line)",
    ),
    Option(
        "log-file-prefix",
        parse_text,
        None,
        "Also write the log to this file (as tornado's option did).",
        RUN,
        doc="also write the log to this file (tornado's 1.x option)",
    ),
    Option(
        "config",
        parse_text,
        DEFAULT_CONFIG_FILE,
        "A Python config file setting c.IdleCuller.<option> (and c.IdleCuller.cull_arbiter_hook); "
        "the default is read only if it exists.",
        RUN,
        doc=(
            "a Python (or JSON) config file setting `c.IdleCuller.<option>`; the default file is read"
            " only if it exists"
        ),
    ),
]
BY_NAME = {o.name: o for o in OPTIONS}
BY_KEY = {o.key: o for o in OPTIONS}
#: Settings only a config file can hold, or only the command line.
CONFIG_ONLY = {"cull_arbiter_hook", "cull_user_hook", "warn_hook"}
#: Other spellings of an option name (after dashes replace underscores).
ALIASES = {alias: o.name for o in OPTIONS for alias in o.aliases}
#: tornado.options flags of 1.x and the old script that no longer do anything: accepted, then ignored.
IGNORED = {
    "log-to-stderr",
    "log-file-max-size",
    "log-file-num-backups",
    "log-rotate-mode",
    "log-rotate-when",
    "log-rotate-interval",
}


def _core_defaults(options: list[Option]) -> list[Option]:
    core = _core.PassOptions().to_dict()
    return [o._replace(default=core[o.api]) if o.default is FROM_CORE and o.api else o for o in options]


OPTIONS = _core_defaults(OPTIONS)


def pass_options(settings: dict[str, Any]) -> dict[str, Any]:
    """The ``run_pass`` keywords that ``settings`` (by option key) give."""
    return {o.pass_keyword: settings[o.key] for o in OPTIONS if o.pass_keyword}


def api_options(settings: dict[str, Any], face: str) -> dict[str, Any]:
    """The keywords of ``connect`` (``face="connect"``) or ``run_periodically`` (``"periodic"``)."""
    prefix = face + ":"
    return {o.api[len(prefix) :]: settings[o.key] for o in OPTIONS if o.api and o.api.startswith(prefix)}
