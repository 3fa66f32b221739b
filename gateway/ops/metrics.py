"""Gateway health counters, exposed as Prometheus text on ``/metrics``.

prometheus-client does the exposition format (escaping, HELP/TYPE, histogram
buckets) better than hand-written code. One registry per gateway instance so
tests can run several in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """Every counter the gateway keeps; stages increment them per batch, not per value."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.received = Counter("livinglab_messages_received", "MQTT/serial messages received",
                                ["kind"], registry=r)
        self.accepted = Counter("livinglab_messages_accepted",
                                "Telemetry messages committed to the durable buffer", registry=r)
        self.points_accepted = Counter("livinglab_points_accepted",
                                       "Points committed to the durable buffer", registry=r)
        self.rejected = Counter("livinglab_rejections", "Rejected messages, samples or values",
                                ["reason"], registry=r)
        self.duplicates = Counter("livinglab_duplicates",
                                  "Telemetry messages dropped as (device, boot, seq) duplicates",
                                  registry=r)
        self.forwarded = Counter("livinglab_points_forwarded",
                                 "Points the store acknowledged", registry=r)
        self.store_errors = Counter("livinglab_store_errors", "Failed store writes", ["kind"],
                                    registry=r)
        self.buffer_full = Counter("livinglab_buffer_full",
                                   "Times the buffer reached its bound and acks were held back",
                                   registry=r)
        self.buffer_depth = Gauge("livinglab_buffer_depth_points",
                                  "Points waiting in the durable buffer", registry=r)
        self.buffer_oldest_age = Gauge("livinglab_buffer_oldest_age_seconds",
                                       "Age of the oldest point waiting in the buffer", registry=r)
        self.buffer_bytes = Gauge("livinglab_buffer_bytes", "Size of the buffer file", registry=r)
        self.latency = Histogram("livinglab_receive_to_store_seconds",
                                 "Time from gateway receive to store acknowledgement",
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                                          60, 300), registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
