"""The command line: the union of jupyterhub-idle-culler 2.0, 1.x and ``cull_idle_servers.py``.

Accepted spellings: ``--opt=value``, ``--opt value``, ``--IdleCuller.opt=value``, underscores
for dashes (``--cull_every=60``), bare booleans (``--cull-users``), ``--x=true|false|1|0``,
``--logging=debug`` and ``--log-level=DEBUG``. Settings come from, in rising priority: defaults,
the config file (``c.IdleCuller.*``), the command line. The token only ever comes from the
environment. The options are declared in ``_options``; this module reads argv and runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ._config import generate_config, load_config_file
from ._options import (
    ALIASES,
    CONFIG_ONLY,
    CONFIG_SECTIONS,
    DEFAULT_CONFIG_FILE,
    HUB,
    IGNORED,
    OPTIONS,
    PAGE,
    POLICY,
    RUN,
    WARN,
    WORK,
    UsageError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn, Optional

__all__ = ["OPTIONS", "UsageError", "main", "parse_settings"]

# asyncio, the API and the extension module are imported where they are used, so that
# `--help` and bad input answer at once (asyncio alone takes longer than the rest); json and
# datetime too, which only a JSON config file or JSON logs need.


class _Version(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from ._core import __version__

        # On stdout, as argparse's own version action prints it.
        sys.stdout.write(f"cull-idle {__version__}\n")
        parser.exit()


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
    groups = {name: parser.add_argument_group(name) for name in (HUB, POLICY, WORK, WARN, PAGE, RUN)}
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
    settings.update(dict.fromkeys(CONFIG_ONLY))
    settings.update(load_config_file(config_path, explicit="config" in cli))
    settings.update(cli)
    return settings


def main(argv: Optional[list[str]] = None) -> int:
    from ._lifecycle import (
        check_pass_settings,
        check_web_settings,
        check_work_settings,
        install_signal_handlers,
        serve,
    )
    from ._logging import configure_logging

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
        # Refusals first: a usage error is one line, with no advice logged before it.
        check_pass_settings(settings)
        check_work_settings(settings)
        if settings["web_bind"]:
            # Before any request: a page that cannot log anyone in is a usage error.
            check_web_settings(settings)
        from ._connect import connect
        from ._options import api_options

        connection = api_options(settings, "connect")
        connection["probe_timeout"] = connection["probe_timeout"] or 10
        if connection["warn_webhook"] is None and os.environ.get("CULL_IDLE_WARN_WEBHOOK"):
            from ._options import parse_secret_url

            connection["warn_webhook"] = parse_secret_url(os.environ["CULL_IDLE_WARN_WEBHOOK"])
        warns = bool(settings["warn_before"] or settings["warn_users_before"])
        if not (warns or settings["max_keep_alive"] or settings["idle_by"] == "work"):
            # Nothing to remember: no file appears beside the Hub's.
            connection["state_file"] = None
        # A dry run beside a real culler must not hold or change that culler's file.
        connection["state_read_only"] = bool(settings["dry_run"])
        if not warns and connection["warn_webhook"]:
            logging.getLogger("cull_idle").warning("--warn-webhook does nothing without --warn-before")
        hub = connect(connection.pop("url"), token, **connection)
        # The first request (the scope check) goes out now, from the core's own threads,
        # while asyncio (the slowest import by far) loads.
        scopes = hub.start_token_scopes()
        import asyncio

        return asyncio.run(serve(settings, hub, scopes))
    except (UsageError, ValueError) as e:
        sys.stderr.write(f"cull-idle: error: {e}\n")
        return 2
    except OSError as e:
        # A file the settings name (a certificate, a key): the core's message names it.
        sys.stderr.write(f"cull-idle: error: {e.strerror or e}\n")
        return 2
    except KeyboardInterrupt:
        return 0
