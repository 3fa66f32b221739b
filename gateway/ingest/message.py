"""What every source (MQTT, a serial board) hands the pipeline: one received message."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Message"]


class Message(NamedTuple):
    """One received message and where its ack must go.

    ``generation`` is the connection it arrived on; ``mid`` 0 / ``qos`` 0 means
    there is nothing to acknowledge (QoS 0, or a serial line). ``port``: the serial
    port a line came from ("" for MQTT), checked against ``[gateway.serial_ids]``.
    A NamedTuple, not a frozen dataclass: one is built per message on the loop
    thread, and a frozen dataclass's ``__init__`` (an ``object.__setattr__`` per
    field) was 4 % of the backlog drain's CPU (issue 21).
    """

    topic: str
    payload: bytes
    received_at: float
    qos: int = 0
    mid: int = 0
    generation: int = -1
    retain: bool = False
    port: str = ""
