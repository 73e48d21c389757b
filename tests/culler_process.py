"""Run ``python -m cull_idle`` as a subprocess and wait on its log lines (events, not sleeps)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Optional

import secret_guard


class Culler:
    def __init__(self, args: list[str], env: dict[str, str], cwd: Optional[str] = None) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[Optional[str]] = queue.Queue()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
        full_env.update(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cull_idle", *args],
            env=full_env,
            # Never the checkout: a culler with warnings and no --state-file writes its default
            # state file in its working directory.
            cwd=cwd or tempfile.mkdtemp(prefix="culler-cwd-"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        secret_guard.OUTPUTS.append(lambda: self.drain())

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 30) -> str:
        """The first new log line matching ``pattern``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines)) from None
            if line is None:
                raise AssertionError(f"exited before {pattern!r}:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if re.search(pattern, line):
                return line

    def finish(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        while True:
            try:
                line = self._queue.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return code

    def signal_and_wait(self, signum: int) -> int:
        """Signal the culler and wait for it to exit. A culler that ignored the signal would
        sleep until its next pass (minutes) and never exit: the wait only guards against that
        hang, and is not a bound on how fast it stops."""
        self.proc.send_signal(signum)
        return self.proc.wait(60)

    def drain(self) -> str:
        """Everything the process printed so far, including lines no one waited for."""
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return self.output
            if line is not None:
                self.lines.append(line)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def signal_after(args: list[str], env: dict[str, str], pattern: str, signum: int) -> tuple[Culler, int]:
    """Start a culler and send ``signum`` once a line matches ``pattern``.

    Returns the culler and its exit status."""
    culler = Culler(args, env)
    try:
        culler.wait_for(pattern)
        code = culler.signal_and_wait(signum)
    finally:
        culler.kill()
    return culler, code


def run(
    args: list[str], env: dict[str, str], timeout: float = 60, cwd: Optional[str] = None
) -> tuple[int, str]:
    culler = Culler(args, env, cwd)
    try:
        code = culler.finish(timeout)
    finally:
        culler.kill()
    return code, culler.output


SIGNALS = [signal.SIGINT, signal.SIGTERM]
