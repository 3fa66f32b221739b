"""No single message stops the gateway: a failed batch commit is split until the
culprit is alone (issue 15; wire contract, "Rejection reports, bounded").

The rules say what a bad message is, and the pipeline rejects those. This is for
what no rule foresaw: a batch whose decode or commit raises anything but
``BufferFull`` (the ordinary backpressure) is cut in halves and each half committed
on its own, recursively, in order, so every innocent message still commits and is
acked. A message that fails alone, twice, is the culprit: it is quarantined with
reason ``internal_error`` (detail: the error, one line), acked, reported and counted
(``/metrics``, and ``rejected`` in the delivery accounting), so the broker does not
hand it over again at every restart (a crash loop that stalls the whole site).

A failure that is not the message's (the buffer file unwritable, SQLite broken) also
fails the quarantine of the lone message: then nothing is acked and the error goes
up to the supervisor, exactly as before; the broker keeps every message.

Only the decode and the buffer commit run under this: their transaction rolls back
as a whole, so a retried half never counts or stores anything twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from gateway.accounting.delivery import Accounting, Event
from gateway.buffer.api import BufferIntake
from gateway.buffer.core import BufferFull
from gateway.buffer.quarantine import storable
from gateway.errors import one_line
from gateway.ingest.message import Message
from protocols import Rejection
from protocols.errors import TopicError
from protocols.topics import TopicInfo, parse_topic

__all__ = ["commit_isolating", "culprit", "quarantine_culprit", "quarantine_row"]

Commit = Callable[[Sequence[Message]], Awaitable[None]]
Isolate = Callable[[Message, Exception], Awaitable[None]]


def culprit(msg: Message, prefix: str, exc: BaseException) -> tuple[Rejection, TopicInfo | None]:
    """The ``internal_error`` rejection for ``msg``, and its topic when it parses."""
    try:
        info: TopicInfo | None = parse_topic(msg.topic, prefix)
    except TopicError:
        info = None
    device = info.device if info is not None else None
    return Rejection(storable(msg.topic), device, "internal_error",
                     storable(one_line(exc))), info


async def commit_isolating(batch: Sequence[Message], commit: Commit, isolate: Isolate
                           ) -> tuple[int, BufferFull | None]:
    """Commit ``batch`` through ``commit``, isolating what makes it fail.

    Returns how many messages of the batch (a prefix, in order) are done (committed,
    or isolated through ``isolate``), and the ``BufferFull`` that stopped it, if any:
    the rest stay pending. ``commit`` must roll back whatever it did when it raises.
    """
    try:
        await commit(batch)
        return len(batch), None
    except BufferFull as exc:  # DiskFull too: backpressure, not a poison message
        return 0, exc
    except Exception as exc:  # noqa: BLE001 - the point: whatever no rule foresaw
        if len(batch) == 1:
            try:
                await commit(batch)  # once more: a transient failure is not a culprit
                return 1, None
            except BufferFull as again:
                return 0, again
            except Exception:  # noqa: BLE001 - fails alone, twice: the culprit
                try:
                    await isolate(batch[0], exc)
                except BufferFull as full:
                    return 0, full
                return 1, None
        mid = len(batch) // 2
        done, stop = await commit_isolating(batch[:mid], commit, isolate)
        if stop is not None or done < mid:
            return done, stop
        rest, stop = await commit_isolating(batch[mid:], commit, isolate)
        return done + rest, stop


async def quarantine_culprit(msg: Message, exc: Exception, prefix: str, buffer: BufferIntake,
                             accounting: Accounting | None) -> tuple[Rejection, str]:
    """Quarantine the culprit ``msg`` as ``internal_error``, counted as ``rejected`` in
    the delivery accounting when it is telemetry; returns the rejection and the
    message's kind (for ``/metrics``).

    If the accounting is what fails, the row goes in without it. If the quarantine
    fails too, the failure is not the message's: ``exc`` is raised, nothing is acked
    and the supervisor restarts the gateway (the broker keeps every message).
    """
    rejection, info = culprit(msg, prefix, exc)
    kind = info.kind if info is not None else "bad_topic"
    hook = None
    if accounting is not None and info is not None and info.device is not None \
            and kind == "telemetry":  # no readable (boot, seq): it reveals no gap
        hook = accounting.with_events([Event(info.device, msg.received_at, "rejected")])
    item = [(rejection, msg.payload)]
    try:
        await asyncio.to_thread(buffer.put, [], msg.received_at, item, hook=hook)
    except BufferFull:
        raise
    except Exception:  # noqa: BLE001 - maybe the accounting fails: the row without it
        try:
            await asyncio.to_thread(buffer.put, [], msg.received_at, item)
        except BufferFull:
            raise
        except Exception:  # noqa: BLE001 - not this message's fault: the original error
            raise exc from None
    return rejection, kind


def quarantine_row(rejections: Sequence[Rejection]) -> Rejection:
    """The one quarantine row of a message with one or more rejected parts."""
    first = rejections[0]
    if len(rejections) == 1:
        return first
    more = sum(r.count or 1 for r in rejections[1:])
    return Rejection(first.topic, first.device, first.reason,
                     f"{first.detail[:150]} (and {more} more rejected)")
