"""Run the console: checks that fail fast with one line, then uvicorn on a socket we bound."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from gateway.ops import listen
from protocols.config import Config
from protocols.mqtt_tls import client_tls

from .app import build_app
from .errors import ConsoleError
from .store import LazyReader

__all__ = ["bind", "is_loopback", "open_reader", "serve"]


class _Server(uvicorn.Server):
    """uvicorn, telling the app on SIGINT/SIGTERM so open SSE streams end at once."""

    def __init__(self, config: uvicorn.Config, stopping: asyncio.Event) -> None:
        super().__init__(config)
        self.stopping = stopping
        self.loop = asyncio.get_running_loop()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.loop.call_soon_threadsafe(self.stopping.set)
        super().handle_exit(sig, frame)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(cfg: Config, host: str) -> None:
    if not is_loopback(host) and not cfg.console.token:
        raise ConsoleError(f"the console would listen on {host}, reachable from the network, "
                           "without a token (set [console] token, or bind 127.0.0.1)")


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a one-line ConsoleError (port busy, bad address)."""
    return listen.bind(host, port, "console", "console", ConsoleError)


async def serve(cfg: Config, host: str, port: int,
                on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until cancelled or SIGINT/SIGTERM (uvicorn's handlers)."""
    check_token(cfg, host)
    if cfg.console.scope != "city":  # unusable [mqtt] TLS files: one line now, not a dead task
        client_tls(cfg)
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    stopping = asyncio.Event()
    app = _city_app(cfg, stopping) if cfg.console.scope == "city" else build_app(
        cfg, open_reader(cfg), stopping=stopping)
    config = uvicorn.Config(app, log_level=logging.WARNING, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=3)
    server = _Server(config, stopping)
    shown = f"[{host}]" if ":" in host else host
    if on_ready is not None:
        on_ready(f"http://{shown}:{actual}/")
    try:
        await server.serve(sockets=[sock])
    finally:
        sock.close()


def open_reader(cfg: Config) -> LazyReader:
    """The store's centre reader (gateway/stores, the one reader stack), made on first
    use so a store that is down at start-up delays nothing: the pages say so."""
    from ..stores.readers import make_centre_reader

    return LazyReader(lambda: make_centre_reader(cfg))


def _city_app(cfg: Config, stopping: asyncio.Event) -> Any:
    """The city scope: the shared store through its centre reader, Alertmanager's
    firing alerts when ``[alerts] alertmanager_url`` is set."""
    from ..alerts.firing import firing_alerts
    from .city_app import build_city_app

    url = cfg.alerts.alertmanager_url
    return build_city_app(cfg, open_reader(cfg),
                          (lambda: firing_alerts(url)) if url else None, stopping=stopping)


def run(cfg: Config, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    asyncio.run(serve(cfg, host, port, on_ready))
