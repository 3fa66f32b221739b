"""Run the console: checks that fail fast with one line, then uvicorn on a socket we bound."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
from collections.abc import Callable
from types import FrameType

import uvicorn

from protocols.config import Config

from .app import build_app
from .errors import ConsoleError
from .queries import open_reader

__all__ = ["bind", "is_loopback", "serve"]


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
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConsoleError(f"console host {host!r} does not resolve: {exc.strerror} "
                           "(check [console] host or --host)") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConsoleError(f"console port {host}:{port} is already in use (another console "
                               "running? pick one with --port or [console] port)") from None
        raise ConsoleError(f"cannot listen on {host}:{port}: {exc.strerror} "
                           "(check [console] host/port)") from None
    sock.set_inheritable(True)
    return sock


async def serve(cfg: Config, host: str, port: int,
                on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until cancelled or SIGINT/SIGTERM (uvicorn's handlers)."""
    check_token(cfg, host)
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    reader = open_reader(cfg)
    stopping = asyncio.Event()
    app = build_app(cfg, reader, stopping=stopping)
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


def run(cfg: Config, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    asyncio.run(serve(cfg, host, port, on_ready))
