"""What the rest of the gateway may use of the durable buffer, as protocols.

The pipeline (ingest side) and the forwarder (store side) type against these, not
against :class:`~gateway.buffer.core.DurableBuffer`, so a test fake stands for the
buffer only where it honours the same contract: mypy checks the signatures (tests
included), and ``tests/gateway/test_buffer_contract.py`` runs one set of behaviour
checks over the real buffer and every fake. A fake that drifts fails one or the other.

The contract of ``put`` (what the pipeline relies on):

- returns how many messages were ``accepted`` (new), how many were ``duplicates``
  and how many ``points`` the accepted ones held;
- a message is a duplicate when its ``(device, boot, seq)`` was accepted before, by
  an earlier ``put`` or earlier in the same one;
- ``hook.stage(db, duplicates)`` runs once inside the put's transaction (``db`` in a
  transaction, ``duplicates`` the keys found already accepted), then
  ``hook.done(True)`` after the commit; if the transaction fails, ``hook.done(False)``
  and the error goes up with nothing written;
- at the bound it raises ``BufferFull`` (``DiskFull`` for a full disk), writes
  nothing and calls no hook; ``is_full`` says so without writing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.buffer.schema import Batch, PutResult
from gateway.buffer.txn import PutHook
from protocols import Accepted, Rejection

__all__ = ["Buffer", "BufferIntake", "BufferOutlet", "PutResult"]


class BufferIntake(Protocol):
    """The ingest side: what the pipeline (and its culprit quarantine) uses."""

    def put(self, messages: Sequence[Accepted], received_at: float,
            rejected: Sequence[tuple[Rejection, bytes]] = (), *,
            hook: PutHook | None = None) -> PutResult: ...

    def is_full(self) -> bool: ...


class BufferOutlet(Protocol):
    """The store side: what the forwarder uses (one consumer)."""

    @property
    def depth(self) -> int: ...

    @property
    def priority_waiting(self) -> bool: ...

    def get_batch(self, max_points: int) -> Batch | None: ...

    def ack(self, batch: Batch) -> None: ...

    def quarantine(self, items: Sequence[tuple[Rejection, bytes]]) -> None: ...


class Buffer(BufferIntake, BufferOutlet, Protocol):
    """Both sides: what ``DurableBuffer`` is to the gateway."""
