"""Waiting on the core's tasks from asyncio, and abandoning work when told to stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Optional, TypeVar

from . import _core

T = TypeVar("T")


async def finished(handle: _core.Task) -> object:
    """Wait for a core task; on cancellation, abort it and wait until the core has let go of it."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    fd = handle.fileno()

    def readable() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            handle.cancel()
            await asyncio.shield(done)
            raise
    finally:
        loop.remove_reader(fd)
    result = handle.result()
    if result is None:
        raise RuntimeError("a core task ended without a result (an internal error in cull-idle)")
    return result


async def until_stopped(work: Awaitable[T], stop: asyncio.Event) -> Optional[T]:
    """``await work``, abandoned (``None``) as soon as ``stop`` is set."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return None if task.cancelled() else task.result()
