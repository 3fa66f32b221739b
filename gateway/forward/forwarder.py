"""The forwarder: durable buffer -> store, in batches, until the store has every point.

One loop, one batch in flight:

1. take the oldest ``batch_size`` lines; a smaller batch waits (woken by the
   ingress after each ``put``) until it is full or its oldest line is
   ``flush_interval_s`` old, so a quiet fleet still sees readings promptly and a
   busy one sends full batches without delay. Health lines, and the first batch
   of readings after a start, go at once (issue 21: a backlog's first point);
2. write it; on success ack it (rows leave the buffer only now) and count it;
3. StoreTransient (connection, timeout, 5xx, 429): back off (capped exponential,
   full jitter, Retry-After as a floor) and retry the SAME batch. The buffer is
   the retry memory, so nothing is lost however long the outage lasts;
4. StoreRejected (400/413/422, partial or whole): split the batch in halves,
   recursively, down to single lines; a single line the store refuses goes to
   quarantine (reason ``store_rejected``) and is acked. Good points of a partial
   write are simply written again, which the store treats as the same point.
   An exception no store error class foresaw (a bug a line triggers) takes the
   same path, its line dead-lettered as ``internal_error``: never retried forever;
5. StoreFatal (credentials, missing bucket): logged and counted, then retried at
   the backoff pace, so fixing the store does not need a gateway restart. The
   health endpoint sees it through ``failing_since``.

Health before backlog: ``get_batch`` hands out the buffer's priority lines (the
gateway's health points) first, and a backlog batch being retried gives way to
them as soon as they arrive, so the centre hears from the site at once.

``flush(deadline_s)`` is for shutdown: it sends what it can, small batches
included, and leaves the rest in the buffer for the next start. Call it after
``run`` has returned (an asyncio lock keeps the two from sending at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from gateway.aio import first_of
from gateway.buffer.api import BufferOutlet
from gateway.buffer.core import Batch, DiskFull
from gateway.errors import one_line
from gateway.forward.retry import Backoff
from gateway.ops.metrics import Metrics
from gateway.stores import Store, StoreFatal, StoreRejected, StoreTransient
from protocols import Rejection

__all__ = ["Forwarder"]

log = logging.getLogger(__name__)

_IDLE_POLL_S = 1.0
_DISK_RETRY_S = 1.0
_DEVICE_TAG = re.compile(rb",device=([a-z0-9][a-z0-9-]{0,62})(?:,|$)")

_Outcome = Literal["ok", "stopped"]


class Forwarder:
    def __init__(self, buffer: BufferOutlet, store: Store, metrics: Metrics, batch_size: int,
                 flush_interval_s: float, backoff: Backoff,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 wall: Callable[[], float] = time.time) -> None:
        self._buffer = buffer
        self._store = store
        self._metrics = metrics
        self._batch_size = batch_size
        self._flush_interval = flush_interval_s
        self._backoff = backoff
        self._clock = clock
        self._sleep = sleep
        self._wall = wall
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._attempt = 0
        self._ready = False
        #: ``clock()`` of the first failure of the current store outage, None when healthy.
        self.failing_since: float | None = None
        #: the last store error message, for logs and health
        self.last_error: str | None = None
        #: a buffer update after a write failed with a full disk (being retried)
        self.disk_full = False
        self._internal_logged: set[str] = set()
        self._sent_readings = False  #: a batch of readings was handed out since start

    def wake(self) -> None:
        """New data was committed (call from the event loop thread)."""
        self._wake.set()

    # -- loop ---------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Forward until ``stop`` is set; an unfinished batch stays in the buffer."""
        while not stop.is_set():
            if not self._ready:
                if await self._with_retries(self._ensure_ready, stop) == "stopped":
                    return
                self._ready = True
            batch = await self._next_batch(stop)
            if batch is None:
                continue
            async with self._send_lock:
                with contextlib.suppress(_Preempted):
                    await self._send(batch, stop)

    async def _ensure_ready(self) -> None:
        try:
            await self._store.ensure_ready()
        except StoreRejected as exc:  # e.g. an invalid database name: nothing to split
            raise StoreFatal(f"store setup refused: {exc} (check the [store] section)") from exc

    async def flush(self, deadline_s: float) -> None:
        """Send what is buffered, small batches too, until empty or ``deadline_s`` passes."""
        expired = asyncio.Event()
        handle = asyncio.get_running_loop().call_later(deadline_s, expired.set)
        try:
            while not expired.is_set():
                batch = await asyncio.to_thread(self._buffer.get_batch, self._batch_size)
                if batch is None:
                    return
                async with self._send_lock:
                    with contextlib.suppress(_Preempted):
                        if await self._send(batch, expired) == "stopped":
                            return
        finally:
            handle.cancel()

    async def _next_batch(self, stop: asyncio.Event) -> Batch | None:
        """A full batch at once, else a partial one once its oldest line has waited enough."""
        deadline: float | None = None
        while not stop.is_set():
            self._wake.clear()  # before looking, so a put right after is not missed
            if deadline is None or self._buffer.depth >= self._batch_size \
                    or self._clock() >= deadline:
                batch = await asyncio.to_thread(self._buffer.get_batch, self._batch_size)
                if batch is None:
                    deadline = None
                else:
                    # health lines go at once (they come first anyway); so does the first
                    # batch of readings after a start: the first point of a backlog is in
                    # the store without waiting the flush interval (issue 21's start-up)
                    if len(batch) >= self._batch_size or batch.priority \
                            or not self._sent_readings:
                        self._sent_readings = self._sent_readings or not batch.priority
                        return batch
                    waited = max(0.0, self._wall() - batch.received_at[0])
                    if deadline is None:
                        deadline = self._clock() + max(0.0, self._flush_interval - waited)
                    if self._clock() >= deadline:
                        return batch
            # Empty: the ingress wakes us; the timeout only covers a put nobody announced.
            timeout = max(self._flush_interval, _IDLE_POLL_S) if deadline is None \
                else max(0.0, deadline - self._clock())
            await first_of(stop, self._wake, timeout)
        return None

    # -- one batch ------------------------------------------------------------------------
    async def _send(self, batch: Batch, stop: asyncio.Event) -> _Outcome:
        """Write ``batch`` until it is acked (or quarantined line by line) or ``stop``."""
        body = batch.body()

        async def write() -> None:
            if not batch.priority and self._buffer.priority_waiting:
                raise _Preempted  # health came in: it goes first, this batch after it
            await self._store.write(body, len(batch))

        try:
            if await self._with_retries(write, stop) == "stopped":
                return "stopped"
        except StoreRejected as exc:
            self._metrics.store_errors.labels(kind="rejected").inc()
            return await self._isolate(batch, exc, stop)
        except _Preempted:
            raise  # not a failure: health goes first, this batch comes next
        except Exception as exc:  # noqa: BLE001 - a store bug one line triggers: isolate it
            self._metrics.store_errors.labels(kind="internal").inc()
            if type(exc).__name__ not in self._internal_logged:
                self._internal_logged.add(type(exc).__name__)
                log.error("store write failed unexpectedly; isolating the line(s) that cause "
                          "it", exc_info=(type(exc), exc, exc.__traceback__))
            return await self._isolate(batch, exc, stop)
        if await self._on_disk(lambda: self._buffer.ack(batch), stop) == "stopped":
            return "stopped"  # the store has it, the buffer too: written again next time
        self._metrics.forwarded.inc(len(batch))
        now = self._wall()
        # one observation per line, but one call per run of equal receive times (a whole
        # committed batch shares one): observe() costs ~3 us, too much per point
        for t, same in itertools.groupby(batch.received_at):
            self._metrics.latency.observe(max(0.0, now - t), sum(1 for _ in same))
        self._metrics.buffer_depth.set(self._buffer.depth)
        return "ok"

    async def _isolate(self, batch: Batch, exc: Exception, stop: asyncio.Event) -> _Outcome:
        """Split a refused batch in halves down to single lines; a single line the store
        refuses for good is dead-lettered (quarantined with its reason) and acked, never
        retried forever: ``store_rejected``, or ``internal_error`` for an exception no
        store error class foresaw (issue 15)."""
        if len(batch) == 1:
            log.warning("store refused a line, quarantined: %s", exc)
            item = (_rejection(batch.lines[0], exc), batch.lines[0])
            if await self._on_disk(lambda: self._buffer.quarantine([item]), stop) \
                    == "stopped":
                return "stopped"
            return await self._on_disk(lambda: self._buffer.ack(batch), stop)
        mid = len(batch) // 2
        if await self._send(batch.slice(0, mid), stop) == "stopped":
            return "stopped"
        return await self._send(batch.slice(mid, len(batch)), stop)

    async def _on_disk(self, op: Callable[[], None], stop: asyncio.Event) -> _Outcome:
        """A buffer write after the store answered; retried while the disk is full.

        A delete of forwarded rows needs a little disk too (the WAL grows first).
        Until it commits the rows stay, so at worst they are written again, which
        the store treats as the same points; giving up would stop the gateway.
        """
        while True:
            try:
                await asyncio.to_thread(op)
            except DiskFull as exc:
                if not self.disk_full:
                    log.warning("%s; retrying the buffer update every %.0f s", exc,
                                _DISK_RETRY_S)
                self.disk_full = True
                if not await _until_stopped(self._sleep(_DISK_RETRY_S), stop):
                    return "stopped"
                continue
            if self.disk_full:
                log.info("buffer writable again; forwarded rows deleted")
            self.disk_full = False
            return "ok"

    async def _with_retries(self, op: Callable[[], Awaitable[None]],
                            stop: asyncio.Event) -> _Outcome:
        """Run ``op`` until it succeeds or raises StoreRejected; back off on the others."""
        while not stop.is_set():
            retry_after: float | None = None
            try:
                if not await _until_stopped(op(), stop):
                    return "stopped"
            except StoreTransient as exc:
                self._failed("transient", exc)
                retry_after = exc.retry_after
            except StoreFatal as exc:
                self._failed("fatal", exc)
            except StoreRejected:
                self._recovered()  # the store answered: it is up
                raise
            else:
                self._recovered()
                return "ok"
            delay = self._backoff.next_delay(self._attempt, retry_after)
            self._attempt += 1
            if not await _until_stopped(self._sleep(delay), stop):
                return "stopped"
        return "stopped"

    def _failed(self, kind: str, exc: Exception) -> None:
        self._metrics.store_errors.labels(kind=kind).inc()
        first = self.failing_since is None
        if first:
            self.failing_since = self._clock()
        if first or str(exc) != self.last_error:
            level = logging.ERROR if kind == "fatal" else logging.WARNING
            log.log(level, "store write failed (%s), retrying with backoff: %s", kind, exc)
        self.last_error = str(exc)

    def _recovered(self) -> None:
        if self.failing_since is not None:
            log.info("store reachable again after %.1f s", self._clock() - self.failing_since)
        self.failing_since = None
        self.last_error = None
        self._attempt = 0


class _Preempted(Exception):  # noqa: N818 - a signal, not an error
    """Priority lines (gateway health) arrived while a backlog batch waited to be written:
    the batch stays in the buffer and the next ``get_batch`` hands out the priority ones
    (wire contract, "Health before backlog"), even in the middle of a store outage."""


async def _until_stopped(aw: Awaitable[None], stop: asyncio.Event) -> bool:
    """Await ``aw`` unless ``stop`` comes first (then cancel it and return False).

    A cancelled store write may still complete in its worker thread; its batch is
    not acked, so it is written again later, which the store treats as the same points.
    """
    if stop.is_set():
        if asyncio.iscoroutine(aw):
            aw.close()
        return False
    work = asyncio.ensure_future(aw)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if work.done():
        work.result()  # re-raise the store's error
        return True
    work.cancel()
    return False


def _rejection(line: bytes, exc: Exception) -> Rejection:
    """The quarantine record of a line the store refused; the device tag when findable.

    A regex rather than ``parse_line``: a refused line may be one our parser refuses too.
    """
    m = _DEVICE_TAG.search(line.split(b" ", 1)[0])
    device = m.group(1).decode() if m else None
    if isinstance(exc, StoreRejected):
        return Rejection("", device, "store_rejected", str(exc))
    return Rejection("", device, "internal_error", one_line(exc))
