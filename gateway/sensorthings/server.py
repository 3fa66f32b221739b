"""Run the API: bind first (one-line errors), check the store, then uvicorn."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

import uvicorn

from gateway.ops import listen
from protocols.config import Config

from ..stores.centre import CentreReader
from ..stores.reading import StoreUnreadable
from .app import build_app
from .errors import SensorThingsError
from .service import Service

__all__ = ["bind", "open_reader", "run", "serve"]


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a one-line SensorThingsError (port busy, bad address)."""
    return listen.bind(host, port, "sensorthings", "sensorthings", SensorThingsError)


def open_reader(cfg: Config) -> CentreReader:
    from ..stores.readers import make_centre_reader

    try:
        reader = make_centre_reader(cfg)
        reader.check()
    except StoreUnreadable as exc:
        raise SensorThingsError(f"the store cannot be read: {exc}") from None
    return reader


async def serve(cfg: Config, host: str, port: int,
                on_ready: Callable[[str], None] | None = None,
                reader: CentreReader | None = None) -> None:
    """Serve until cancelled or SIGINT/SIGTERM (uvicorn's handlers)."""
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    reader = reader or open_reader(cfg)
    service = Service(reader, cfg.registry, cfg.sensorthings.base_url)
    service.warm()
    config = uvicorn.Config(build_app(service), log_level=logging.WARNING, access_log=False,
                            lifespan="off", timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    if on_ready is not None:
        on_ready(f"http://{shown}:{actual}/v1.1")
    try:
        await server.serve(sockets=[sock])
    finally:
        sock.close()
        reader.close()


def run(cfg: Config, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    asyncio.run(serve(cfg, host, port, on_ready))
