"""The ingest pipeline: receive -> decode topic -> validate -> dedup+buffer -> ack.

Top to bottom:

1. ``Pipeline.submit`` (loop thread, from MQTT or serial) appends to ``pending``.
2. ``decode`` (pure) turns a batch of raw messages into buffer items: accepted
   telemetry, status points, rejections with their raw payloads.
3. ``buffer.put`` commits them, dedup included, in ONE transaction, and the
   last-seen table notes the sightings, in one worker-thread hop per batch.
4. Only then every message of the batch is acknowledged to the broker, the
   rejection reports are published, metrics bumped and the forwarder woken.

If ``put`` raises ``BufferFull`` (or ``DiskFull``: the file system is full) nothing
is acked: the batch stays pending and the broker keeps everything else (its
inflight window is our Receive Maximum); it is said once in the log, and the
commit is retried until it succeeds, so the gateway resumes by itself.

Commit grouping (``commit_window_s``): a commit waits until its oldest message is
that old (or ``commit_group`` messages are pending), so one fsync and one set of WAL
pages cover every message of the window: SD-card wear, measured in ``bench/wear.py``.
The group ends the window early because the broker stops at its inflight limit (our
Receive Maximum): a backlog drained in windows of a full inflight each waited out the
whole window every round (issue 21: the drain was capped near Receive Maximum / window).

Status messages have no (boot, seq); their ``device`` point is buffered as an
``Accepted`` with ``boot=STATUS_BOOT`` (-1, never a real boot) and ``seq`` = the
receive time in ms, so the buffer's dedup key never collides with telemetry and
two copies received in the same millisecond are kept once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet

from gateway.accounting.delivery import Accounting
from gateway.accounting.lastseen import LastSeen
from gateway.accounting.rejections import RejectionCounts, flush_points, with_rejections
from gateway.aio import first_of
from gateway.buffer.api import BufferIntake, PutResult
from gateway.buffer.core import BufferFull, DiskFull
from gateway.ingest.decode import DELIVERY_BOOT, STATUS_BOOT, Decoded, decode
from gateway.ingest.grouping import MAX_BATCH, Window, ack_all
from gateway.ingest.isolate import commit_isolating, quarantine_culprit
from gateway.ingest.message import Message
from gateway.ingest.ports import Sink
from gateway.ops.metrics import Metrics
from protocols.quantities import BUILTIN, Registry
from protocols.validate import Accepted

log = logging.getLogger("livinglab.gateway.pipeline")

_FULL_LOG_EVERY_S = 60.0


class Pipeline:
    """The thin asyncio shell around :func:`decode` and the buffer commit."""

    def __init__(self, *, site: str, prefix: str, rejected_topic: str, buffer: BufferIntake,
                 sink: Sink, metrics: Metrics, wake: Callable[[], None] = lambda: None,
                 lastseen: LastSeen | None = None, accounting: Accounting | None = None,
                 max_batch: int = MAX_BATCH,
                 full_poll_s: float = 0.1, full_wait_s: float = 5.0,
                 registry: Registry = BUILTIN, commit_window_s: float = 0.0,
                 commit_group: int = MAX_BATCH,
                 serial_ids: Mapping[str, AbstractSet[str]] | None = None,
                 rejections: RejectionCounts | None = None) -> None:
        self.site, self.prefix, self.rejected_topic = site, prefix, rejected_topic
        self.registry = registry
        self._buffer = buffer
        self._sink = sink
        self._metrics = metrics
        self._wake = wake
        self._lastseen = lastseen
        self._accounting = accounting
        self._rejections = rejections  # counted with the accounting, in its put
        self._max_batch = max_batch
        self._cap = max_batch  # halved while the disk is full, doubled back after
        self._full_poll_s = full_poll_s
        self._full_wait_s = full_wait_s
        self._commit_window_s = commit_window_s
        # a window also ends once this many are pending: the broker stops sending at
        # its inflight limit (our Receive Maximum), so waiting longer only idles
        self._group = max(1, min(commit_group, max_batch))
        self._window = Window(commit_window_s, self._group)
        self.pending: list[Message] = []
        self._ready = asyncio.Event()
        self._batch_full = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._intake = True
        self.full = False
        self.disk_full = False
        self._full_logged = float("-inf")
        self._full_announced = False
        self.committed_messages = 0
        #: serial port -> the device ids it may speak for ([gateway.serial_ids])
        self.serial_ids: Mapping[str, AbstractSet[str]] = serial_ids or {}
        self._after_error: Exception | None = None  # raised once the batch is acked
        self._isolated: set[str] = set()  # kinds of failure logged once already

    # -- stage 1: receive ---------------------------------------------------------

    def submit(self, msg: Message) -> None:
        """Called on the loop thread for every received message; never blocks."""
        if not self._intake:
            return  # shutting down: not acked, so the broker redelivers it next start
        self.pending.append(msg)
        self._window.arrived += 1
        self._ready.set()
        if len(self.pending) >= self._group:
            self._batch_full.set()  # ends a commit window early

    def stop_intake(self) -> None:
        self._intake = False

    # -- stages 2-4: decode, commit, ack ---------------------------------------------

    async def commit_once(self) -> bool:
        """Commit up to ``max_batch`` pending messages. False if the buffer was full.

        Serialised: two commits of the same pending slice would ack twice.
        """
        async with self._commit_lock:
            return await self._commit()

    async def _commit(self) -> bool:
        batch = self.pending[: self._cap]
        if not batch:
            return True
        # a batch that fails in a way no rule foresaw is split until the culprit is
        # alone (gateway.ingest.isolate); the others commit and are acked as usual
        done, exc = await commit_isolating(batch, self._commit_part, self._isolate)
        del self.pending[:done]
        if done:
            self._wake()
        if exc is not None:  # BufferFull or DiskFull: the same backpressure, said once
            disk = isinstance(exc, DiskFull)
            if disk:  # a smaller batch may fit where this one does not
                self._cap = max(1, len(batch) // 2)
            if not self.full or disk != self.disk_full:
                self.full, self.disk_full = True, disk
                self._metrics.buffer_full.inc()
                # once per episode: at the edge a small batch may fit between refusals
                if time.monotonic() - self._full_logged >= _FULL_LOG_EVERY_S:
                    self._full_logged = time.monotonic()
                    self._full_announced = True
                    log.warning("%s; holding %d messages unacked (the broker keeps them)",
                                exc, len(self.pending))
            return False
        self._cap = min(self._max_batch, self._cap * 2)
        if self.full:
            self.full = self.disk_full = False
            if self._full_announced:
                self._full_announced = False
                log.info("buffer has room again; resuming acks")
        after_error, self._after_error = self._after_error, None
        if after_error is not None:
            raise after_error  # after the acks (a last-seen failure, as when it had its own step)
        return True

    async def _commit_part(self, batch: Sequence[Message]) -> None:
        """Decode and commit ``batch``, then ack it and publish its reports. Raises (with
        nothing committed) only from the decode or the buffer's transaction."""
        decoded = decode(batch, self.site, self.prefix, self.registry,
                         self._accounting is not None, self.serial_ids)
        received_at = min(m.received_at for m in batch)
        result, lastseen_error = await asyncio.to_thread(self._commit_sync, decoded,
                                                         received_at)
        self._after_error = self._after_error or lastseen_error
        try:  # committed: a failure from here on must never make the batch commit again
            ack_all(self._sink, batch)
            self.committed_messages += len(batch)
            for rejection, _ in decoded.rejected:
                self._sink.publish(self.rejected_topic, rejection.to_json(), qos=0)
            self._count(batch, decoded, result)
        except Exception as exc:  # noqa: BLE001 - raised by _commit, after the split
            self._after_error = self._after_error or exc

    async def _isolate(self, msg: Message, exc: Exception) -> None:
        """The culprit: quarantined as ``internal_error`` and counted as rejected in the
        accounting (or raised: see :func:`~gateway.ingest.isolate.quarantine_culprit`),
        then logged once per kind of failure, acked, reported and counted."""
        rejection, kind = await quarantine_culprit(msg, exc, self.prefix, self._buffer,
                                                   self._accounting)
        if type(exc).__name__ not in self._isolated:
            self._isolated.add(type(exc).__name__)
            log.error("a message made the commit fail (%s); isolated, quarantined as "
                      "internal_error and acked: %s", msg.topic[:200], rejection.detail,
                      exc_info=(type(exc), exc, exc.__traceback__))
        self._sink.ack(msg)
        self.committed_messages += 1
        self._sink.publish(self.rejected_topic, rejection.to_json(), qos=0)
        self._metrics.received.labels(kind=kind).inc()
        self._metrics.rejected.labels(reason="internal_error").inc()

    def _commit_sync(self, decoded: Decoded, received_at: float
                     ) -> tuple[PutResult, Exception | None]:
        """One worker-thread hop per batch: the buffer commit, then the last-seen note
        (in memory; its table is written every few seconds). A last-seen failure is
        returned, not raised, so the committed batch is still acked first."""
        if self._accounting is not None:
            hook = with_rejections(self._accounting.with_events(decoded.deliveries),
                                   self._rejections, decoded.rejected, received_at)
            result = self._buffer.put(decoded.accepted, received_at, decoded.quarantine,
                                      hook=hook)
        else:
            result = self._buffer.put(decoded.accepted, received_at, decoded.quarantine)
        if self._lastseen is not None and decoded.sightings:
            try:
                self._lastseen.update(decoded.sightings)
            except Exception as exc:  # noqa: BLE001 - re-raised by the caller after the acks
                return result, exc
        return result, None

    def _count(self, batch: Sequence[Message], d: Decoded, result: PutResult) -> None:
        m = self._metrics
        for kind, n in d.kinds.items():
            m.received.labels(kind=kind).inc(n)
        # result.accepted counts status items too; those are not telemetry messages
        statuses = sum(1 for a in d.accepted if a.boot == STATUS_BOOT)
        m.accepted.inc(max(result.accepted - statuses, 0))
        m.points_accepted.inc(result.points)
        m.duplicates.inc(result.duplicates + d.batch_duplicates)
        for reason, n in Counter(r.reason for r, _ in d.rejected).items():
            m.rejected.labels(reason=reason).inc(n)

    async def flush_delivery(self, now: float) -> int:
        """Buffer the ``delivery`` (and ``rejections``) points of dirty and current hours
        (the forwarder writes them like any other); returns how many. Skipped while the
        buffer is full."""
        acc = self._accounting
        if acc is None:
            return 0
        async with self._commit_lock:  # never while a commit stages counts
            points, hook = flush_points(acc, self._rejections, self.site, now)
            if not points:
                return 0
            item = Accepted(device="_delivery", boot=DELIVERY_BOOT, seq=int(now * 1000),
                            points=tuple(points))
            try:
                await asyncio.to_thread(self._buffer.put, [item], now, hook=hook)
            except BufferFull:
                return 0
        self._wake()
        return len(points)

    async def _wait_room(self, stop: asyncio.Event | None = None) -> None:
        """Bounded wait for the forwarder to drain below the bound."""
        end = time.monotonic() + self._full_wait_s
        while time.monotonic() < end and not (stop is not None and stop.is_set()):
            await asyncio.sleep(self._full_poll_s)
            if not await asyncio.to_thread(self._buffer.is_full):
                return

    async def run(self, stop: asyncio.Event) -> None:
        """Commit whatever is pending until ``stop`` is set."""
        while not stop.is_set():
            if not self.pending:
                self._ready.clear()
                waiter = asyncio.ensure_future(self._ready.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                continue
            if self._commit_window_s > 0 and len(self.pending) < self._group:
                # group commits: one fsync (and a few pages of WAL) for every message of
                # the window instead of each; acks wait for the commit as always
                age = max(0.0, time.time() - self.pending[0].received_at)
                window = self._window.current(time.monotonic())
                if age < window:
                    self._batch_full.clear()
                    await first_of(stop, self._batch_full, window - age)
                    continue
            if not await self.commit_once():
                await self._wait_room(stop)

    async def drain(self, timeout_s: float) -> bool:
        """Shutdown: commit and ack what is pending, for at most ``timeout_s``."""
        end = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < end:
            if not await self.commit_once():
                await asyncio.sleep(self._full_poll_s)
        return not self.pending
