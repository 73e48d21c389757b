"""The suite's check that no token ever reaches a log: every token the tests hand out is
registered here, and after each test (see ``conftest.py``) the output of every culler process it
ran and every record of the ``cull_idle`` loggers, captured at DEBUG, are searched for them."""

from __future__ import annotations

import logging
from typing import Callable

SECRETS: set[str] = set()
#: Output of the culler processes started so far, each read when called.
OUTPUTS: list[Callable[[], str]] = []


def secret(value: str) -> str:
    """Register ``value`` as a token that must never be printed; returns it."""
    SECRETS.add(value)
    return value


class Recorder(logging.Handler):
    """Keeps the text of every record, whatever handlers and levels the test sets up."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.texts.append(text)


def leaked(texts: list[str]) -> list[str]:
    """The registered tokens found in ``texts``, shortened so the failure does not print them."""
    joined = "\n".join(texts)
    return [s[:4] + "..." for s in SECRETS if s in joined]
