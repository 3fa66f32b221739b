"""Blocking store calls in daemon threads, so a hung store never holds up the exit.

``asyncio.to_thread`` runs on the loop's default executor, and ``asyncio.run``
joins that executor's threads at exit (so does the interpreter, for every
``ThreadPoolExecutor``). A store that accepts connections and never answers
(a SIGSTOPped influxd, a readings file locked by a reader) keeps such a thread
inside its request for the whole ``timeout_s``: SIGTERM would then take that
long, however quickly the gateway itself shuts down.

Store requests go through :func:`detached` instead: one daemon thread per call
(a few calls a second at most, so the thread start is noise), which the
interpreter does not wait for. Abandoning a request is safe: the forwarder acks
a batch only after its write *returned*, so an abandoned write leaves its rows
in the durable buffer and they are written again after the restart (a point
is identified by measurement, tags and time, so the store keeps it once).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["detached"]

T = TypeVar("T")


async def detached(fn: Callable[[], T], name: str = "store") -> T:
    """``await fn()`` run in a new daemon thread; cancelling the await abandons the call."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def deliver(result: T | None, exc: BaseException | None) -> None:
        if fut.done():  # cancelled meanwhile
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result: T | None = fn()
            exc: BaseException | None = None
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting task
            result, exc = None, e
        try:
            loop.call_soon_threadsafe(deliver, result, exc)
        except RuntimeError:
            pass  # the loop is closed: nobody waits for this answer any more

    threading.Thread(target=work, name=f"livinglab-{name}", daemon=True).start()
    return await fut
