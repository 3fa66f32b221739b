"""What the pipeline needs from the broker side (acks, reports), as a protocol, so tests
drive the pipeline with fakes (house style: the MQTT client behind a small interface
the project owns). The buffer side is :mod:`gateway.buffer.api`, next to the buffer.
"""

from __future__ import annotations

from typing import Any, Protocol

from gateway.ingest.message import Message

__all__ = ["Sink"]


class Sink(Protocol):
    """Where acks and rejection reports go (``MqttSource``, or a fake in tests)."""

    def ack(self, msg: Message) -> bool: ...

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> Any: ...
