"""Logging as JupyterHub formats it, or one JSON object a line."""

from __future__ import annotations

import logging
import sys

from ._options import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

LOG_FORMAT = "[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s %(module)s:%(lineno)d] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

log = logging.getLogger("cull_idle")


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
