"""What the culler's token may do: its scopes as the Hub reports them, and which are missing
for the features in use."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

from . import _core
from ._tasks import finished


async def token_scopes(hub: _core.Connection, started: Optional[_core.Task] = None) -> Optional[list[str]]:
    """The token's scopes as the Hub reports them (``None`` for Hubs that report none);
    ``started`` is the task of a ``hub.start_token_scopes()`` already under way.

    Raises :class:`~cull_idle.HubUnreachable` when the Hub cannot be reached,
    :class:`~cull_idle.HubAuthError` when it refuses the token, and :class:`~cull_idle.HubError`
    for other failures.
    """
    result = await finished(started or hub.start_token_scopes())
    if not isinstance(result, _core.TokenScopes):
        raise TypeError(f"the scope check gave {type(result).__name__} (an internal error in cull-idle)")
    return result.reported


def signals() -> list[_core.Signal]:
    """The core's signals (ways of seeing work inside servers), each with its ``option``,
    ``scope`` and ``label``."""
    return _core.signals()


def signals_in_use(settings: Mapping[str, Any]) -> list[_core.Signal]:
    """The signals that the settings turn on."""

    def on(option: str) -> bool:
        name, _, value = option.partition("=")
        setting = settings.get(name.replace("-", "_"))
        return bool(setting) and (not value or setting == value)

    return [s for s in signals() if on(s.option)]


def signal_options(some: Sequence[_core.Signal], scope: Optional[str] = None) -> list[str]:
    """The options (``--keep-busy-kernels``) of these signals, once each; of those needing
    ``scope``, if given."""
    return list(dict.fromkeys(f"--{s.option}" for s in some if scope in (None, s.scope)))


def scope_problems(
    scopes: Iterable[str],
    *,
    cull_users: bool = False,
    uses_groups: bool = False,
    signals: Sequence[_core.Signal] = (),
) -> list[tuple[bool, str]]:
    """Missing scopes for the features in use: ``(fatal, message)`` pairs, where ``fatal`` says
    that running without the scope is unsafe."""
    have = {s.split("!", 1)[0] for s in scopes}
    # Hubs expand implied scopes in GET /user; these cover the case where one does not.
    if "admin:users" in have:
        have |= {"read:users", "delete:users", "list:users"}
    if "read:users" in have:
        have |= {"read:users:groups", "read:users:activity"}
    if "servers" in have or "admin:servers" in have:
        have |= {"read:servers", "delete:servers"}
    wanted = {"always": True, "cull-users": cull_users, "groups": uses_groups}
    needed = [(s.fatal, s.name, s.needed_for) for s in _core.scopes() if wanted[s.needed_when]]
    for scope in dict.fromkeys(s.scope for s in signals):
        options = "/".join(signal_options(signals, scope))
        needed.append((True, scope, f"{options} (asking servers about their work)"))
    problems = [
        (fatal, f"the token lacks the scope {scope}, needed for {what}")
        for fatal, scope, what in needed
        if scope not in have
    ]
    if "access:servers" in scopes:
        problems.append(
            (
                False,
                "the token has access:servers, which opens every user's server and which cull-idle does not "
                "use (it asks servers with tokens of their own users, made with the tokens scope): remove it "
                "from the culler's role",
            )
        )
    return problems
