"""The command line: the union of jupyterhub-idle-culler 2.0, 1.x and ``cull_idle_servers.py``.

Accepted spellings: ``--opt=value``, ``--opt value``, ``--IdleCuller.opt=value``, underscores
for dashes (``--cull_every=60``), bare booleans (``--cull-users``), ``--x=true|false|1|0``,
``--logging=debug`` and ``--log-level=DEBUG``. Settings come from, in rising priority: defaults,
the config file (``c.IdleCuller.*``), the command line. The token only ever comes from the
environment.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
import signal
import sys
import threading

from ._defaults import DEFAULT_API_URL

# Not typing.TYPE_CHECKING, nor dataclasses: together they would double the time `--help` takes.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from typing import Any, Callable, NamedTuple, NoReturn, Optional

    from . import _core, _metrics

# asyncio, the API and the extension module are imported where they are used, so that
# `--help` and bad input answer at once (asyncio alone takes longer than the rest); json and
# datetime too, which only a JSON config file or JSON logs need.

LOG_FORMAT = "[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s %(module)s:%(lineno)d] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
DEFAULT_CONFIG_FILE = "idle_culler_config.py"
#: Config classes whose settings apply (jupyterhub-idle-culler's, ours, traitlets' base).
CONFIG_SECTIONS = ("IdleCuller", "CullIdle", "Application")

log = logging.getLogger("cull_idle")
#: The process that started this one (for a managed service, the Hub), read at start-up.
STARTED_BY = os.getppid()


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


def parse_group_timeouts(value: Any) -> dict[str, int]:
    """``GROUP=SECONDS`` (or a dict, or a list of such) as ``{group: seconds}``."""
    if isinstance(value, dict):
        pairs = list(value.items())
    else:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise BadValue(f"expected GROUP=SECONDS, not {value!r}")
        pairs = []
        for item in items:
            group, eq, seconds = str(item).partition("=")
            if not eq or not group.strip():
                raise BadValue(f"expected GROUP=SECONDS, not {item!r}")
            pairs.append((group.strip(), seconds))
    return {group: parse_seconds(seconds) for group, seconds in pairs}


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
else:
    _OptionFields = collections.namedtuple(
        "_OptionFields", "name parse default help group default_text repeat", defaults=(None, False)
    )


class Option(_OptionFields):
    __slots__ = ()

    @property
    def key(self) -> str:
        return self.name.replace("-", "_")

    @property
    def is_bool(self) -> bool:
        return self.parse is parse_bool


HUB, POLICY, WORK, RUN = "Hub connection", "Policy", "Kernel-aware culling", "Output and running"
OPTIONS = [
    Option("url", parse_text, None, "The Hub API URL.", HUB, f"$JUPYTERHUB_API_URL, else {DEFAULT_API_URL}"),
    Option(
        "concurrency",
        parse_count,
        10,
        "At most this many requests to the Hub at once, across all users (0 means the default, 10).",
        HUB,
    ),
    Option("api-page-size", parse_count, 0, "Users per page when listing (0: the Hub's largest page).", HUB),
    Option(
        "ssl-enabled",
        parse_bool,
        False,
        "Use the Hub's internal SSL certificates under --internal-certs-location (with internal_ssl the "
        "JUPYTERHUB_SSL_* variables a managed service is given are used without this flag).",
        HUB,
    ),
    Option(
        "internal-certs-location",
        parse_text,
        "internal-ssl",
        "Where JupyterHub's internal_ssl certificates are (JupyterHub.internal_certs_location).",
        HUB,
    ),
    Option("timeout", parse_seconds, 600, "Cull servers idle for at least this many seconds.", POLICY),
    Option(
        "cull-every",
        parse_seconds,
        0,
        "Seconds between passes (0: half the timeout, at least 1).",
        POLICY,
        "0, i.e. timeout // 2",
    ),
    Option(
        "max-age",
        parse_seconds,
        0,
        "Also cull servers (and with --cull-users, users) older than this, even if active (0: off).",
        POLICY,
    ),
    Option(
        "cull-users",
        parse_bool,
        False,
        "Also delete users that have no running server and are idle for --timeout (or older than --max-age).",
        POLICY,
    ),
    Option(
        "cull-admin-users",
        parse_bool,
        True,
        "With --cull-users, delete idle admin users too (max-age applies to admins either way).",
        POLICY,
    ),
    Option(
        "remove-named-servers",
        parse_bool,
        False,
        "Remove named servers when culling them, not only stop them.",
        POLICY,
    ),
    Option("cull-default-servers", parse_bool, True, "Cull idle default servers.", POLICY),
    Option("cull-named-servers", parse_bool, True, "Cull idle named servers.", POLICY),
    Option(
        "dry-run",
        parse_bool,
        False,
        "Decide and log what would be stopped or deleted, but send no DELETE.",
        POLICY,
    ),
    Option(
        "user-timeout",
        parse_seconds,
        None,
        "With --cull-users, delete users idle for this many seconds.",
        POLICY,
        "--timeout",
    ),
    Option(
        "exclude-users",
        parse_names,
        [],
        "Never cull or delete these users: NAME[,NAME...], shell-style globs allowed (repeatable).",
        POLICY,
        "none",
        repeat=True,
    ),
    Option(
        "exclude-groups",
        parse_names,
        [],
        "Never cull or delete members of these Hub groups: GROUP[,GROUP...] (repeatable; the token "
        "needs read:users:groups).",
        POLICY,
        "none",
        repeat=True,
    ),
    Option(
        "group-timeout",
        parse_group_timeouts,
        {},
        "GROUP=SECONDS: the idle limit for servers of this group's members; the largest of a user's "
        "groups applies (repeatable; the token needs read:users:groups).",
        POLICY,
        "none",
        repeat=True,
    ),
    Option(
        "max-culls-per-pass",
        parse_count,
        0,
        "Stop at most this many servers and users in one pass, the longest idle first; the rest wait "
        "for the next pass (0: no cap).",
        POLICY,
    ),
    Option(
        "keep-busy-kernels",
        parse_bool,
        False,
        "Before stopping an idle server, ask it for its kernels and terminals; keep it while a kernel "
        "is busy or a terminal was used within the timeout (the token needs access:servers).",
        WORK,
    ),
    Option(
        "keep-connected",
        parse_bool,
        False,
        "Likewise keep idle servers whose kernels have open connections (a notebook tab left open).",
        WORK,
    ),
    Option(
        "busy-timeout",
        parse_seconds,
        0,
        "Cull a server idle (by the Hub) this long even if it is busy or connected, so that a "
        "runaway kernel cannot hold a server forever (0: no bound).",
        WORK,
    ),
    Option(
        "server-url",
        parse_url,
        None,
        "Where to reach single-user servers for those questions: the proxy's address, e.g. "
        "http://proxy-public; the server's path is appended.",
        WORK,
        "the full_url the Hub gives each server (set with JupyterHub.public_url)",
    ),
    Option(
        "probe-timeout",
        parse_seconds,
        10,
        "Seconds to wait for a single-user server's answer (each try; 3 retries on failures).",
        WORK,
    ),
    Option(
        "once",
        parse_bool,
        False,
        "Run one pass and exit: 0 if the pass completed, 1 if the Hub could not be read.",
        RUN,
    ),
    Option(
        "log-level",
        parse_level,
        logging.INFO,
        "debug, info, warning, error or critical (alias --logging).",
        RUN,
        "info",
    ),
    Option(
        "metrics-bind",
        parse_address,
        None,
        "Serve Prometheus metrics at /metrics and a health check at /health on HOST:PORT. As a "
        "Hub-managed service with a url, they are served there without this option.",
        RUN,
        "$JUPYTERHUB_SERVICE_URL, if any",
    ),
    Option(
        "log-format",
        parse_log_format,
        "text",
        "text (JupyterHub's format) or json (one object a line, for log shippers).",
        RUN,
    ),
    Option(
        "log-file-prefix", parse_text, None, "Also write the log to this file (as tornado's option did).", RUN
    ),
    Option(
        "config",
        parse_text,
        DEFAULT_CONFIG_FILE,
        "A Python config file setting c.IdleCuller.<option> (and c.IdleCuller.cull_arbiter_hook); "
        "the default is read only if it exists.",
        RUN,
    ),
]
BY_NAME = {o.name: o for o in OPTIONS}
BY_KEY = {o.key: o for o in OPTIONS}
#: Settings only a config file can hold, or only the command line.
CONFIG_ONLY = {"cull_arbiter_hook"}
#: Other spellings of an option name (after dashes replace underscores).
ALIASES = {"logging": "log-level"}
#: tornado.options flags of 1.x and the old script that no longer do anything: accepted, then ignored.
IGNORED = {
    "log-to-stderr",
    "log-file-max-size",
    "log-file-num-backups",
    "log-rotate-mode",
    "log-rotate-when",
    "log-rotate-interval",
}


class _Version(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from ._core import __version__

        parser.exit(message=f"cull-idle {__version__}\n")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cull-idle",
        description="Stop JupyterHub single-user servers (and optionally delete users) idle for longer "
        "than a timeout. The API token is read from $JUPYTERHUB_API_TOKEN.",
        epilog="Every option is also accepted as --IdleCuller.<option>=VALUE, with underscores for dashes, "
        "and booleans bare (--cull-users) or as =true/=false.",
        allow_abbrev=False,
        add_help=False,
    )
    groups = {name: parser.add_argument_group(name) for name in (HUB, POLICY, WORK, RUN)}
    for option in OPTIONS:
        default = option.default_text or option.default
        if option.is_bool:
            default = str(option.default).lower()
        # A bare boolean flag means true, as in 1.x; `--flag false` and `--flag=false` also work.
        extra: dict[str, Any] = {"nargs": "?", "const": True} if option.is_bool else {}
        if option.repeat:
            extra["action"] = "append"
        groups[option.group].add_argument(
            f"--{option.name}",
            dest=option.key,
            type=option.parse,
            default=argparse.SUPPRESS,
            metavar="true|false" if option.is_bool else option.key.upper(),
            help=f"{option.help} (default: {default})",
            **extra,
        )
    run = groups[RUN]
    run.add_argument(
        "--generate-config",
        action="store_true",
        default=argparse.SUPPRESS,
        help="Print a config file with every option and its default, then exit.",
    )
    for name in sorted(IGNORED):
        run.add_argument(
            f"--{name}", dest=f"ignored_{name}", nargs="?", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    run.add_argument(
        "--version", action=_Version, nargs=0, default=argparse.SUPPRESS, help="Show the version and exit."
    )
    run.add_argument("-h", "--help", action="help", help="Show this help and exit.")
    return parser


def normalise_argv(argv: list[str]) -> list[str]:
    """Rewrite every accepted spelling of an option to its dashed name."""
    out: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--":
            return out + argv[index:]
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            for section in CONFIG_SECTIONS:
                if name.startswith(section + "."):
                    name = name[len(section) + 1 :]
            name = name.replace("_", "-")
            name = ALIASES.get(name, name)
            if name.replace("-", "_") in CONFIG_ONLY:
                raise UsageError(f"--{name} can only be set in a config file")
            arg = f"--{name}{eq}{value}"
        out.append(arg)
    return out


class _Section(dict[str, "Any"]):
    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class _Config(dict[str, "Any"]):
    """Enough of traitlets' ``Config`` for ``c.IdleCuller.timeout = 3600`` files."""

    def __getattr__(self, name: str) -> _Section:
        if name.startswith("__"):
            raise AttributeError(name)
        section: _Section = self.setdefault(name, _Section())
        return section


def load_config_file(path: str, explicit: bool) -> dict[str, Any]:
    """The settings a config file holds, by option key."""
    if not os.path.exists(path):
        if explicit and path != DEFAULT_CONFIG_FILE:
            raise UsageError(f"config file {path} does not exist")
        return {}
    config = _Config()
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        if path.endswith(".json"):
            import json

            config.update({k: _Section(v) for k, v in json.loads(source).items()})
        else:
            namespace = {
                "c": config,
                "get_config": lambda: config,
                "__file__": path,
                "__name__": "__config__",
            }
            exec(compile(source, path, "exec"), namespace)
    except UsageError:
        raise
    except Exception as e:
        raise UsageError(f"error in config file {path}: {type(e).__name__}: {e}") from None
    settings: dict[str, Any] = {}
    for section in CONFIG_SECTIONS:
        for key, value in config.get(section, {}).items():
            if key not in BY_KEY and key not in CONFIG_ONLY:
                raise UsageError(f"config file {path}: unknown setting c.{section}.{key}")
            if key in CONFIG_ONLY:
                if not callable(value):
                    raise UsageError(f"config file {path}: c.{section}.{key} must be callable")
                settings[key] = value
                continue
            try:
                settings[key] = None if value is None else BY_KEY[key].parse(value)
            except ValueError as e:
                raise UsageError(f"config file {path}: c.{section}.{key}: {e}") from None
    return settings


def generate_config() -> str:
    lines = [
        "# Configuration file for cull-idle (and jupyterhub-idle-culler).",
        "",
        "c = get_config()  # noqa",
        "",
    ]
    for option in OPTIONS:
        if option.key in ("config",):
            continue
        lines.append(f"## {option.help}")
        lines.append(f"#  Default: {option.default_text or repr(option.default)}")
        lines.append(f"# c.IdleCuller.{option.key} = {option.default!r}")
        lines.append("")
    lines += [
        "## A function deciding whether an idle server may be culled:",
        "#  hook(inactive=timedelta, inactive_limit=int, server=dict) -> bool (or an awaitable of one)",
        "# c.IdleCuller.cull_arbiter_hook = my_function",
        "",
    ]
    return "\n".join(lines)


def parse_settings(argv: list[str]) -> dict[str, Any]:
    """All settings, from defaults, config file and command line; raises UsageError."""
    try:
        cli = vars(build_parser().parse_args(normalise_argv(argv)))
    except ValueError as e:
        raise UsageError(str(e)) from None
    for key in [k for k in cli if k.startswith("ignored_")]:
        del cli[key]
    for option in OPTIONS:
        if option.repeat and option.key in cli:
            values = cli[option.key]
            cli[option.key] = (
                {k: v for d in values for k, v in d.items()}
                if isinstance(option.default, dict)
                else [n for names in values for n in names]
            )
    if cli.get("generate_config"):
        return {"generate_config": True}
    config_path = cli.get("config", DEFAULT_CONFIG_FILE)
    settings = {o.key: o.default for o in OPTIONS}
    settings["cull_arbiter_hook"] = None
    settings.update(load_config_file(config_path, explicit="config" in cli))
    settings.update(cli)
    return settings


#: Structured fields the core attaches to decision records.
DECISION_FIELDS = ("user", "server", "action", "reason", "idle_seconds")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and a decision's fields."""

    def format(self, record: logging.LogRecord) -> str:
        import json
        from datetime import datetime, timezone

        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in DECISION_FIELDS:
            value = getattr(record, name, None)
            if name == "idle_seconds" and value:
                entry[name] = float(value)
            elif name != "idle_seconds" and value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: int, log_file: Optional[str], log_format: str = "text") -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        try:
            handlers.append(logging.FileHandler(log_file))
        except OSError as e:
            raise UsageError(f"cannot open log file {log_file}: {e.strerror}") from None
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(LOG_FORMAT, DATE_FORMAT)
    for handler in handlers:
        handler.setFormatter(formatter)
    root = logging.getLogger()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING) if level <= logging.CRITICAL else level)
    log.setLevel(level)


#: Where SIGINT/SIGTERM go once the event loop runs: (loop, stop event).
_stop_target: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []


def _on_signal(signum: int, frame: Any) -> None:
    if _stop_target:
        loop, stop = _stop_target[-1]
        loop.call_soon_threadsafe(stop.set)
    else:
        raise KeyboardInterrupt


def install_signal_handlers() -> None:
    """SIGINT (what a Hub sends first) and SIGTERM end the culler quietly with status 0.

    Plain ``signal.signal`` handlers for the life of the process: no window between start-up
    and the event loop where a signal could be lost (asyncio's own SIGINT handling has one).
    """
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _on_signal)


async def serve(settings: dict[str, Any], hub: _core.Hub, scopes: _core.Task) -> int:
    """Run until SIGINT or SIGTERM (exit 0), or one pass with --once. ``scopes`` is the scope
    check, already under way."""
    import asyncio

    stop = asyncio.Event()
    _stop_target.append((asyncio.get_running_loop(), stop))
    watcher = None
    if os.environ.get("JUPYTERHUB_SERVICE_NAME") and STARTED_BY != 1:
        watcher = asyncio.ensure_future(watch_hub_process(STARTED_BY, stop))
    try:
        return await _serve(settings, hub, scopes, stop)
    finally:
        _stop_target.pop()
        if watcher is not None:
            watcher.cancel()


async def watch_hub_process(hub_pid: int, stop: asyncio.Event, every: float = 1.0) -> None:
    """Stop when the Hub that started this managed service is gone.

    A Hub that dies without stopping its services leaves them running (they are in their own
    session), and a restarted Hub starts a second culler; the orphan notices its new parent.
    """
    import asyncio

    while not stop.is_set():
        if os.getppid() != hub_pid:
            log.warning("The Hub that started this culler (pid %s) is gone; exiting", hub_pid)
            stop.set()
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def check_scopes(
    hub: _core.Hub, settings: dict[str, Any], stop: asyncio.Event, started: Optional[_core.Task] = None
) -> bool:
    """Warn about missing scopes; refuse to run (UsageError) where that would be unsafe.

    ``False`` if stopped meanwhile."""
    from . import _api

    try:
        scopes = await _api.until_stopped(_api.token_scopes(hub, started), stop)
    except ValueError as e:
        log.warning("Cannot check the token's scopes (%s); the culler will keep users it cannot judge", e)
        return not stop.is_set()
    if stop.is_set():
        return False
    if scopes is None:
        return True
    uses_groups = bool(settings["exclude_groups"] or settings["group_timeout"])
    probes_servers = bool(settings["keep_busy_kernels"] or settings["keep_connected"])
    for fatal, message in _api.scope_problems(
        scopes, cull_users=settings["cull_users"], uses_groups=uses_groups, probes_servers=probes_servers
    ):
        if fatal:
            raise UsageError(f"{message}; refusing to run rather than cull servers that should be kept")
        log.warning("%s%s", message[0].upper(), message[1:])
    return True


def check_work_settings(settings: dict[str, Any]) -> None:
    """Refuse kernel-aware settings that cannot work; warn about those that do nothing."""
    probing = settings["keep_busy_kernels"] or settings["keep_connected"]
    busy_timeout = settings["busy_timeout"]
    if busy_timeout and not probing:
        log.warning("--busy-timeout does nothing without --keep-busy-kernels or --keep-connected")
    if probing and busy_timeout and busy_timeout <= settings["timeout"]:
        raise UsageError(
            f"--busy-timeout ({busy_timeout}s) must be longer than --timeout ({settings['timeout']}s), "
            "or no busy server would ever be kept"
        )


async def _serve(settings: dict[str, Any], hub: _core.Hub, scopes: _core.Task, stop: asyncio.Event) -> int:
    from . import _api, _metrics
    from ._core import __version__

    options = dict(
        cull_users=settings["cull_users"],
        remove_named_servers=settings["remove_named_servers"],
        max_age=settings["max_age"],
        cull_admin_users=settings["cull_admin_users"],
        api_page_size=settings["api_page_size"],
        cull_default_servers=settings["cull_default_servers"],
        cull_named_servers=settings["cull_named_servers"],
        cull_arbiter=settings["cull_arbiter_hook"],
        dry_run=settings["dry_run"],
        user_timeout=settings["user_timeout"],
        exclude_users=settings["exclude_users"],
        exclude_groups=settings["exclude_groups"],
        group_timeouts=settings["group_timeout"],
        max_culls_per_pass=settings["max_culls_per_pass"],
        keep_busy_kernels=settings["keep_busy_kernels"],
        keep_connected=settings["keep_connected"],
        busy_timeout=settings["busy_timeout"],
        server_url=settings["server_url"],
        # The log and the metrics say what happened; listing every action would make memory
        # grow with the number of servers culled in a pass.
        details=False,
    )
    period = _api.default_cull_every(settings["timeout"], settings["cull_every"])

    url = settings["url"] or os.environ.get("JUPYTERHUB_API_URL") or DEFAULT_API_URL
    log.info(
        "cull-idle %s: culling servers idle for %ss at %s%s",
        __version__,
        settings["timeout"],
        url,
        " (one pass)" if settings["once"] else f", every {period}s",
    )
    # Listening first: a Hub waits at most 30 s for a managed service with a url to answer.
    metrics = _metrics.Metrics()
    server = await start_metrics(metrics, settings)
    try:
        if not await check_scopes(hub, settings, stop, scopes):
            return 0
        if settings["once"]:
            report = await _api.pass_unless_stopped(hub, settings["timeout"], None, stop, **options)
            return 1 if report is not None and not report.complete else 0
        await _api.run_periodically(
            hub, settings["timeout"], cull_every=period, stop=stop, on_pass=metrics.observe, **options
        )
    finally:
        if server is not None:
            server.close()
    log.info("Stopped")
    return 0


async def start_metrics(
    metrics: _metrics.Metrics, settings: dict[str, Any]
) -> Optional[asyncio.AbstractServer]:
    """Serve metrics where asked (--metrics-bind) or where the Hub expects the service."""
    from . import _metrics

    if settings["metrics_bind"]:
        host, port = settings["metrics_bind"]
        prefix = "/"
    else:
        address = _metrics.service_address(
            os.environ.get("JUPYTERHUB_SERVICE_URL"), os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
        )
        if address is None:
            return None
        host, port, prefix = address
    try:
        server = await _metrics.serve(metrics, host, port, prefix)
    except OSError as e:
        raise UsageError(f"cannot serve metrics on {host}:{port}: {e.strerror}") from None
    log.info("Serving metrics at http://%s:%s%smetrics and health at %shealth", host, port, prefix, prefix)
    return server


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    install_signal_handlers()
    try:
        settings = parse_settings(argv)
        if settings.get("generate_config"):
            sys.stdout.write(generate_config())
            return 0
        token = os.environ.get("JUPYTERHUB_API_TOKEN") or os.environ.get("JPY_API_TOKEN")
        if not token:
            raise UsageError(
                "JUPYTERHUB_API_TOKEN is not set: the culler needs an API token from the environment"
            )
        configure_logging(settings["log_level"], settings["log_file_prefix"], settings["log_format"])
        check_work_settings(settings)
        from ._connect import connect

        hub = connect(
            settings["url"],
            token,
            concurrency=settings["concurrency"],
            ssl_enabled=settings["ssl_enabled"],
            internal_certs_location=settings["internal_certs_location"],
            probe_timeout=settings["probe_timeout"] or 10,
        )
        # The first request (the scope check) goes out now, from the core's own threads,
        # while asyncio (the slowest import by far) loads.
        scopes = hub.start_token_scopes()
        import asyncio

        return asyncio.run(serve(settings, hub, scopes))
    except (UsageError, ValueError) as e:
        sys.stderr.write(f"cull-idle: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        return 0
