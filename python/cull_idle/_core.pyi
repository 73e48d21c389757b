from collections.abc import Awaitable
from typing import Callable, Optional, final

__all__ = ["Hub", "Task", "__version__"]
__version__: str

@final
class Hub:
    def __new__(
        cls,
        url: str,
        token: str,
        *,
        request_timeout: float = 60.0,
        concurrency: int = 10,
        ca_file: Optional[str] = None,
        cert_file: Optional[str] = None,
        key_file: Optional[str] = None,
        retries: int = 3,
        backoff: float = 0.5,
        probe_timeout: float = 10.0,
    ) -> Hub: ...
    def start_pass(
        self,
        *,
        now: float,
        inactive_limit: float,
        max_age: float = 0.0,
        cull_users: bool = False,
        cull_admin_users: bool = True,
        cull_default_servers: bool = True,
        cull_named_servers: bool = True,
        remove_named_servers: bool = False,
        page_size: Optional[int] = None,
        arbiter: Optional[Callable[[float, float, str, str], Awaitable[bool]]] = None,
        user_inactive_limit: Optional[float] = None,
        exclude_users: list[str] = ...,
        exclude_groups: list[str] = ...,
        group_limits: list[tuple[str, float]] = ...,
        dry_run: bool = False,
        max_culls: Optional[int] = None,
        keep_busy_kernels: bool = False,
        keep_connected: bool = False,
        busy_timeout: float = 0.0,
        server_url: Optional[str] = None,
        details: bool = True,
        act_after: Optional[int] = None,
    ) -> Task: ...
    def start_token_scopes(self) -> Task: ...

@final
class Task:
    def fileno(self) -> int: ...
    def cancel(self) -> None: ...
    def result(self) -> Optional[str]: ...
