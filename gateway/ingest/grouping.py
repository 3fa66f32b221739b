"""Commit groups and their acks: how many pending messages end a commit window, and
one write for a committed group's PUBACKs (issue 21, ``docs/benchmarks.md``)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.ingest.message import Message
from gateway.ingest.ports import Sink
from protocols.config import Config

__all__ = ["MAX_BATCH", "Window", "ack_all", "commit_group"]

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


class Window:
    """The commit window for the current arrival rate.

    At low rates it is ``window_s`` (the SD-card wear: one commit per window). Once
    messages come faster, a group of ``group`` fills long before that, so it ends the
    window; but the last messages of a burst, fewer than a group, would then wait the
    whole window (measured at 1,000 msg/s with a 2.5 s window: p99 2.8 s). So the
    window is also at most half the time a group takes to fill at the recent rate.
    Before the first estimate (0.25 s) the arrivals so far stand for the rate, so a
    backlog drained at start is not held the whole window at its tail.
    """

    def __init__(self, window_s: float, group: int) -> None:
        self.window_s = window_s
        self.group = group
        self.arrived = 0  #: bumped by the pipeline for every message
        self.rate = 0.0  #: messages/s, smoothed over intervals of >= 0.25 s
        self._since: float | None = None
        self._mark = 0

    def current(self, now: float) -> float:
        """The window to apply now (``now``: a monotonic clock)."""
        if self._since is None:
            self._since, self._mark = now, self.arrived
        elif now - self._since >= 0.25:
            r = (self.arrived - self._mark) / (now - self._since)
            self.rate = r if self.rate == 0 else (self.rate + r) / 2
            self._since, self._mark = now, self.arrived
        rate = self.rate
        if rate <= 0 and now > self._since:
            # no estimate yet (the first 0.25 s): what arrived so far. A backlog drained
            # at start came in within it, and its last messages, fewer than a group,
            # waited the whole window (issue 21: 2,000 queued landed after 3.3 s, not 1 s)
            rate = (self.arrived - self._mark) / (now - self._since)
        if rate <= 0:
            return self.window_s
        return min(self.window_s, self.group / (2 * rate))
