from collections.abc import Awaitable
from typing import Any, Callable, Optional, final

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Hub",
    "PassOptions",
    "Task",
    "WebServer",
    "__version__",
    "reasons",
    "signals",
]
__version__: str

DEFAULT_CONCURRENCY: int

def reasons() -> str: ...
def signals() -> str: ...

@final
class PassOptions:
    def __new__(cls, **options: Any) -> PassOptions: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class Hub:
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
    ) -> Hub: ...
    def start_pass(
        self,
        options: PassOptions,
        *,
        now: float,
        arbiter: Optional[Callable[[float, float, str, str], Awaitable[bool]]] = None,
        user_arbiter: Optional[Callable[[float, float, str, str], Awaitable[bool]]] = None,
        warn_hook: Optional[Callable[[str, str, Optional[str]], Awaitable[bool]]] = None,
        act_after: Optional[int] = None,
    ) -> Task: ...
    def start_token_scopes(self) -> Task: ...

@final
class Task:
    def fileno(self) -> int: ...
    def cancel(self) -> None: ...
    def result(self) -> Optional[str]: ...

@final
class WebServer:
    def __new__(
        cls, host: str, port: int, prefix: str = "/", *, hub: Optional[Hub] = None, page: Optional[str] = None
    ) -> WebServer: ...
    @property
    def port(self) -> int: ...
    @property
    def prefix(self) -> str: ...
    def pass_raised(self) -> None: ...
    def close(self) -> None: ...
