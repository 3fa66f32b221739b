"""Commit groups and their acks: how many pending messages end a commit window, and
one write for a committed group's PUBACKs (issue 21, ``docs/benchmarks.md``)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.ingest.mqtt import Message
from gateway.ingest.ports import Sink
from protocols.config import Config

__all__ = ["MAX_BATCH", "ack_all", "commit_group"]

MAX_BATCH = 2000


def commit_group(cfg: Config) -> int:
    """Pending messages that end a commit window early: half the broker's inflight
    window, so one half is committed while the other arrives. MQTT v5: our Receive
    Maximum; 3.1.1 has none, and Mosquitto's own default inflight limit is 20."""
    if cfg.mqtt.protocol == "5":
        return max(1, min(MAX_BATCH, cfg.mqtt.receive_maximum // 2))
    return 10


def ack_all(sink: Sink, batch: Sequence[Message]) -> None:
    """Ack a committed batch: in one write when the sink can (``MqttSource.ack_many``:
    one send() for the batch's PUBACKs instead of one each), else message by message."""
    many = getattr(sink, "ack_many", None)
    if many is not None:
        many(batch)
        return
    for msg in batch:
        sink.ack(msg)
