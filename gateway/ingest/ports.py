"""What the pipeline needs from its neighbours: the broker side (acks, reports) and
the durable buffer. Protocols, so tests drive the pipeline with fakes (house style:
the MQTT client behind a small interface the project owns).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from gateway.buffer.core import PutHook
from gateway.ingest.mqtt import Message
from protocols.validate import Accepted, Rejection

__all__ = ["BufferLike", "PutResultLike", "Sink"]


class Sink(Protocol):
    """Where acks and rejection reports go (``MqttSource``, or a fake in tests)."""

    def ack(self, msg: Message) -> bool: ...

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> Any: ...


class PutResultLike(Protocol):
    @property
    def accepted(self) -> int: ...

    @property
    def duplicates(self) -> int: ...

    @property
    def points(self) -> int: ...


class BufferLike(Protocol):
    """The part of ``gateway.buffer.DurableBuffer`` the pipeline uses."""

    def put(self, messages: Sequence[Accepted], received_at: float,
            rejected: Sequence[tuple[Rejection, bytes]] = (), *,
            hook: PutHook | None = None) -> PutResultLike: ...

    def is_full(self) -> bool: ...
