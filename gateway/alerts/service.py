"""``livinglab alerts`` as a service: one cycle every ``interval_s`` on one event loop.

The thin asyncio shell around :class:`~gateway.alerts.engine.Engine`: the cycle
(store reads, the POST) runs in a thread so the loop keeps pinging systemd's
watchdog; the state file is written after every cycle; SIGTERM/SIGINT end the
loop after the cycle in progress (exit 0). ``READY=1`` goes out after the first
cycle, ``STATUS=`` says what fires and whether Alertmanager and the store answer,
``STOPPING=1`` on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from pathlib import Path

from ..ops.sdnotify import Notifier
from ..stores.reading import StoreUnreadable
from .engine import Engine
from .errors import StateFileError
from .state import save_state

__all__ = ["ServiceCounters", "run_service"]

log = logging.getLogger("livinglab.alerts")


class ServiceCounters:
    """Every failure counted (and shown in STATUS), none swallowed silently."""

    def __init__(self) -> None:
        self.cycles = 0
        self.store_failures = 0
        self.state_failures = 0


async def run_service(engine: Engine, state_file: Path, notifier: Notifier | None = None,
                      stop: asyncio.Event | None = None,
                      counters: ServiceCounters | None = None) -> ServiceCounters:
    """Evaluate every ``interval_s`` until ``stop`` is set or SIGTERM/SIGINT arrives."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    notifier = notifier or Notifier()
    counters = counters or ServiceCounters()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    watchdog = asyncio.create_task(notifier.watchdog())
    interval = engine.cfg.interval_s
    try:
        next_at = time.monotonic()
        while not stop.is_set():
            status = await _one_cycle(engine, state_file, counters)
            notifier.ready(status)
            notifier.status(status)
            next_at = max(next_at + interval, time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=next_at - time.monotonic())
    finally:
        notifier.stopping()
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog
        for sig in signals:
            loop.remove_signal_handler(sig)
        notifier.close()
    return counters


async def _one_cycle(engine: Engine, state_file: Path, counters: ServiceCounters) -> str:
    now_ms = int(time.time() * 1000)
    counters.cycles += 1
    try:
        result = await asyncio.to_thread(engine.cycle, now_ms)
    except StoreUnreadable as exc:
        counters.store_failures += 1
        log.warning("store unreadable, alerts unchanged this cycle: %s", exc)
        return f"STORE UNREADABLE ({counters.store_failures} cycles); " \
               f"{len(engine.state.active)} alerts firing"
    try:
        await asyncio.to_thread(save_state, state_file, engine.state)
    except StateFileError as exc:
        counters.state_failures += 1
        log.error("%s", exc)
    log.info("cycle: %d firing, %d store queries, %s", len(result.firing), result.queries,
             "sent" if result.sent else "NOT SENT (kept)")
    am = "Alertmanager ok" if result.sent else \
        f"ALERTMANAGER UNREACHABLE ({len(engine.state.outbox)} resolutions kept)"
    return f"{len(result.firing)} alerts firing; {am}"
