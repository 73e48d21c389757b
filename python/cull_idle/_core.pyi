from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any, Callable, Literal, Optional, final

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Action",
    "Connection",
    "CullReport",
    "CullWarning",
    "PageSettings",
    "PassOptions",
    "Reason",
    "Scope",
    "Signal",
    "Skip",
    "Task",
    "TokenScopes",
    "WebServer",
    "__version__",
    "reasons",
    "scopes",
    "signals",
]
__version__: str

DEFAULT_CONCURRENCY: int

@final
class Reason:
    @property
    def kind(self) -> Literal["cull", "keep"]: ...
    @property
    def label(self) -> str: ...
    @property
    def operators(self) -> str: ...
    @property
    def people(self) -> str: ...
    @property
    def metric(self) -> bool: ...

@final
class Signal:
    @property
    def label(self) -> str: ...
    @property
    def option(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def for_operators(self) -> str: ...

@final
class Scope:
    @property
    def name(self) -> str: ...
    @property
    def needed_when(self) -> Literal["always", "cull-users", "groups"]: ...
    @property
    def fatal(self) -> bool: ...
    @property
    def needed_for(self) -> str: ...
    @property
    def doc(self) -> str: ...

def reasons() -> list[Reason]: ...
def signals() -> list[Signal]: ...
def scopes() -> list[Scope]: ...

@final
class PassOptions:
    def __new__(cls, **options: Any) -> PassOptions: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class Action:
    @property
    def user(self) -> str: ...
    @property
    def server(self) -> Optional[str]: ...
    @property
    def reason(self) -> str: ...
    @property
    def inactive(self) -> Optional[timedelta]: ...
    @property
    def outcome(self) -> str: ...
    @property
    def detail(self) -> Optional[str]: ...
    @property
    def probe(self) -> Optional[dict[str, Any]]: ...

@final
class Skip:
    @property
    def user(self) -> str: ...
    @property
    def server(self) -> Optional[str]: ...
    @property
    def reason(self) -> str: ...
    @property
    def detail(self) -> Optional[str]: ...
    @property
    def probe(self) -> Optional[dict[str, Any]]: ...

@final
class CullWarning:
    @property
    def kind(self) -> str: ...
    @property
    def user(self) -> str: ...
    @property
    def server(self) -> Optional[str]: ...
    @property
    def reason(self) -> str: ...
    @property
    def inactive(self) -> Optional[timedelta]: ...
    @property
    def cull_at(self) -> datetime: ...
    @property
    def delivered(self) -> bool: ...

@final
class CullReport:
    @property
    def complete(self) -> bool: ...
    @property
    def hub_version(self) -> Optional[str]: ...
    @property
    def users_seen(self) -> int: ...
    @property
    def servers_seen(self) -> int: ...
    @property
    def actions(self) -> list[Action]: ...
    @property
    def skipped(self) -> list[Skip]: ...
    @property
    def kept_active(self) -> int: ...
    @property
    def kept_not_selected(self) -> int: ...
    @property
    def warned(self) -> list[CullWarning]: ...
    @property
    def warning_failures(self) -> int: ...
    @property
    def errors(self) -> list[str]: ...
    @property
    def errors_total(self) -> int: ...
    @property
    def request_errors(self) -> dict[str, int]: ...
    @property
    def totals(self) -> dict[str, Any]: ...
    @property
    def seconds(self) -> float: ...
    @property
    def dry_run(self) -> bool: ...
    @property
    def stopped(self) -> list[Action]: ...
    @property
    def stopping(self) -> list[Action]: ...
    @property
    def deleted(self) -> list[Action]: ...
    @property
    def failed(self) -> list[Action]: ...

@final
class Connection:
    def __new__(
        cls,
        url: str,
        token: str,
        *,
        request_timeout: float = 60.0,
        concurrency: Optional[int] = None,
        ca_file: Optional[str] = None,
        cert_file: Optional[str] = None,
        key_file: Optional[str] = None,
        retries: int = 3,
        backoff: float = 0.5,
        probe_timeout: float = 10.0,
        state_file: Optional[str] = None,
        warn_webhook: Optional[str] = None,
        state_read_only: bool = False,
    ) -> Connection: ...
    def start_pass(
        self,
        options: PassOptions,
        *,
        now: float,
        arbiter: Optional[Callable[[float, float, str, str], Awaitable[bool]]] = None,
        user_arbiter: Optional[Callable[[float, float, str, str], Awaitable[bool]]] = None,
        warn_hook: Optional[Callable[[CullWarning, str, Optional[str]], Awaitable[bool]]] = None,
        act_after: Optional[int] = None,
    ) -> Task: ...
    def start_token_scopes(self) -> Task: ...

@final
class Task:
    def fileno(self) -> int: ...
    def cancel(self) -> None: ...
    def result(self) -> Optional[object]: ...

@final
class TokenScopes:
    @property
    def reported(self) -> Optional[list[str]]: ...

@final
class PageSettings:
    def __new__(
        cls,
        *,
        service_name: str,
        auth_cache_seconds: float,
        client_id: str = ...,
        callback_url: str = ...,
        authorize_url: str = ...,
        access_scopes: list[str] = ...,
        max_keep_alive: float = 0.0,
        warn_before: float = 0.0,
        html: bool = True,
        admin_groups: list[str] = ...,
        secure_cookies: bool = False,
    ) -> PageSettings: ...
    @property
    def html(self) -> bool: ...
    @property
    def client_id(self) -> str: ...
    @property
    def callback_url(self) -> str: ...

@final
class WebServer:
    def __new__(
        cls,
        host: str,
        port: int,
        prefix: str = "/",
        *,
        hub: Optional[Connection] = None,
        page: Optional[PageSettings] = None,
    ) -> WebServer: ...
    @property
    def port(self) -> int: ...
    @property
    def prefix(self) -> str: ...
    def pass_raised(self) -> None: ...
    def close(self) -> None: ...
