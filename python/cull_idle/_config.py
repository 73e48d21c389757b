"""Config files: ``c.IdleCuller.<option> = …`` in Python (or JSON), and ``--generate-config``."""

from __future__ import annotations

import os

from ._options import BY_KEY, CONFIG_ONLY, CONFIG_SECTIONS, DEFAULT_CONFIG_FILE, OPTIONS, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


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
        "## A function deciding whether an idle user may be deleted (--cull-users):",
        "#  hook(user=dict, inactive=timedelta, inactive_limit=int) -> bool (or an awaitable of one)",
        "# c.IdleCuller.cull_user_hook = my_function",
        "",
        "## A function told of each warning (with --warn-before), e.g. to send an email:",
        "#  hook(user=dict, server=dict or None, reason=str, inactive=timedelta, cull_at=datetime)",
        "# c.IdleCuller.warn_hook = my_function",
        "",
    ]
    return "\n".join(lines)
