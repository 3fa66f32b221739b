"""``/healthz`` and ``/metrics`` over a tiny asyncio HTTP/1.0 server (stdlib only).

Two GET endpoints on loopback do not justify a web framework; each request is
answered and the connection closed.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
from collections.abc import Callable
from typing import Any

from gateway.errors import GatewayError

log = logging.getLogger("livinglab.gateway.health")

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class HealthPortBusy(GatewayError):
    """The health port is taken (another gateway running, or a stale process)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"health port {host}:{port} is already in use "
                         "(another gateway running? set [gateway] health_port, 0 = off)")


HealthFn = Callable[[], tuple[int, dict[str, Any]]]
MetricsFn = Callable[[], bytes]


def _response(status: int, body: bytes, ctype: str) -> bytes:
    head = (f"HTTP/1.0 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + body


def route(method: str, path: str, health: HealthFn, metrics: MetricsFn) -> bytes:
    """Pure: one request line in, one full HTTP response out."""
    path = path.split("?", 1)[0]
    if method not in ("GET", "HEAD"):
        return _response(405, b"", "text/plain")
    if path == "/healthz":
        status, doc = health()
        return _response(status, json.dumps(doc).encode() + b"\n", "application/json")
    if path == "/metrics":
        return _response(200, metrics(), "text/plain; version=0.0.4; charset=utf-8")
    return _response(404, b"not found\n", "text/plain")


async def start_health_server(host: str, port: int, health: HealthFn,
                              metrics: MetricsFn) -> asyncio.Server:
    """Listen on ``host:port``; raises :class:`HealthPortBusy` if it is taken."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass  # headers are not needed
            parts = line.decode("latin-1").split()
            if len(parts) >= 2:
                writer.write(route(parts[0], parts[1], health, metrics))
                await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    try:
        server = await asyncio.start_server(handle, host, port, reuse_address=True)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise HealthPortBusy(host, port) from None
        raise
    log.info("health on http://%s:%d/healthz and /metrics", host, port)
    return server
