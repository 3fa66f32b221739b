"""Small asyncio waits the gateway's loops share."""

from __future__ import annotations

import asyncio

__all__ = ["first_of"]


async def first_of(a: asyncio.Event, b: asyncio.Event, timeout: float) -> None:
    """Wait until either event is set or ``timeout`` passes (the pipeline's and the
    forwarder's idle waits: woken by new work or by stop, never later than the timeout)."""
    tasks = {asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())}
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
