"""Prometheus metrics and a health check, served by the culler's own event loop.

The server only reads counters that the loop updates between passes, so a request never waits
for a pass and a pass never waits for a request. Stdlib only: a scrape is one short GET.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Optional
from urllib.parse import urlparse

from ._api import CullReport

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
BROKEN_CLIENT = (
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
    asyncio.TimeoutError,
    ValueError,
    OSError,
)


class Metrics:
    """What the passes did, since the culler started."""

    def __init__(self) -> None:
        self.started = time.time()
        self.passes = 0
        self.passes_failed = 0
        self.duration_sum = 0.0
        self.last_duration: Optional[float] = None
        self.last_pass: Optional[float] = None
        self.last_success: Optional[float] = None
        self.last_complete: Optional[bool] = None
        self.stopped: Counter[str] = Counter()
        self.deleted: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.request_errors: Counter[str] = Counter()

    def observe(self, report: Optional[CullReport]) -> None:
        """Count one pass; ``None`` for a pass that raised."""
        self.passes += 1
        self.last_pass = time.time()
        if report is None or not report.complete:
            self.passes_failed += 1
            self.last_complete = False
        else:
            self.last_complete = True
            self.last_success = self.last_pass
        if report is None:
            return
        self.duration_sum += report.seconds
        self.last_duration = report.seconds
        # From the totals, which count everything even when the report lists nothing.
        servers, users = report.totals.get("servers", {}), report.totals.get("users", {})
        for outcome in ("stopped", "gone"):
            self.stopped.update(servers.get(outcome, {}))
        self.deleted.update(users.get("deleted", {}))
        self.skipped["slow-stop"] += sum(servers.get("stopping", {}).values())
        self.skipped.update(report.totals.get("skipped", {}))
        self.request_errors.update(report.request_errors)

    def prometheus(self) -> str:
        lines: list[str] = []

        def metric(name: str, kind: str, help: str, samples: dict[str, float]) -> None:
            lines.append(f"# HELP cull_idle_{name} {help}")
            lines.append(f"# TYPE cull_idle_{name} {kind}")
            for labels, value in samples.items():
                lines.append(f"cull_idle_{name}{labels} {value:g}")

        def by(label: str, counts: Counter[str]) -> dict[str, float]:
            return {f'{{{label}="{key}"}}': value for key, value in sorted(counts.items())}

        metric("passes_total", "counter", "Cull passes run.", {"": self.passes})
        failed: dict[str, float] = {"": self.passes_failed}
        metric("passes_failed_total", "counter", "Passes that could not list every user.", failed)
        metric(
            "pass_duration_seconds",
            "summary",
            "Time taken by passes.",
            {"_sum": self.duration_sum, "_count": self.passes},
        )
        if self.last_success is not None:
            metric(
                "last_success_timestamp_seconds",
                "gauge",
                "When the last complete pass ended (Unix time).",
                {"": self.last_success},
            )
        metric("servers_stopped_total", "counter", "Servers stopped, by reason.", by("reason", self.stopped))
        metric("users_deleted_total", "counter", "Users deleted, by reason.", by("reason", self.deleted))
        metric("skipped_total", "counter", "Servers and users kept, by reason.", by("reason", self.skipped))
        metric(
            "hub_request_errors_total",
            "counter",
            "Failed requests to the Hub (retries too), by status or kind.",
            by("status", self.request_errors),
        )
        return "\n".join(lines) + "\n"

    def health(self) -> tuple[int, dict[str, object]]:
        """HTTP status and body: 503 while the last pass failed."""
        status = "starting" if self.last_complete is None else "ok" if self.last_complete else "failing"
        body: dict[str, object] = {
            "status": status,
            "passes": self.passes,
            "passes_failed": self.passes_failed,
            "last_pass": self.last_pass,
            "last_success": self.last_success,
            "uptime_seconds": round(time.time() - self.started, 3),
        }
        return (503 if status == "failing" else 200), body


def service_address(service_url: Optional[str], prefix: Optional[str]) -> Optional[tuple[str, int, str]]:
    """Where a Hub-managed service with a ``url`` must listen: ``(host, port, prefix)``.

    A service without ``url`` is given ``http://127.0.0.1:0/``: no address then.
    """
    if not service_url:
        return None
    parsed = urlparse(service_url)
    if not parsed.port:
        return None
    return parsed.hostname or "127.0.0.1", parsed.port, _prefix(prefix)


def _prefix(prefix: Optional[str]) -> str:
    prefix = prefix or "/"
    return prefix if prefix.endswith("/") else prefix + "/"


async def serve(metrics: Metrics, host: str, port: int, prefix: str = "/") -> asyncio.AbstractServer:
    """Serve ``{prefix}metrics`` and ``{prefix}health`` (and 200 at the root, for the Hub's check)."""
    prefix = _prefix(prefix)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            path = target.split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                code, kind, body = 405, "text/plain", b"GET only\n"
            elif path == prefix + "metrics":
                code, kind, body = 200, PROMETHEUS_TYPE, metrics.prometheus().encode()
            elif path == prefix + "health":
                code, payload = metrics.health()
                kind, body = "application/json", json.dumps(payload).encode()
            elif path in ("/", prefix, prefix.rstrip("/")):
                code, kind, body = 200, "text/plain", b"cull-idle: see metrics and health\n"
            else:
                code, kind, body = 404, "text/plain", b"not found\n"
            reason = REASONS[code]
            writer.write(
                f"HTTP/1.1 {code} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + (body if method != "HEAD" else b"")
            )
            await writer.drain()
        except BROKEN_CLIENT:
            pass  # a broken or slow client: drop it
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
