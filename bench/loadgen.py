"""One publisher process: QoS 1 telemetry from its share of the fleet.

``python -m bench.loadgen --port P --tag T -m N [--shard J --shards K] [--rate R]``

Several of these run side by side to reach the machine's maximum (paho's
Python loop caps one process at roughly 7-12k msg/s). They share a start time
(``--start-at``, Unix seconds) so the run's first publish is well defined.
With ``--times-out`` the publish time of every message is written as raw
doubles (``array('d')``), in publish order, for the latency phase.

Prints one JSON line: messages acknowledged by the broker (PUBACK), the first
publish, the last PUBACK, and msg/s between them.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from array import array

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.profile import fleet

WINDOW = 5000  # published but unacknowledged, well below paho's 16-bit message ids


class Acks:
    """PUBACK count and time of the last one, shared with paho's network thread."""

    def __init__(self) -> None:
        self.n = 0
        self.t_last = 0.0
        self.cond = threading.Condition()

    def on_publish(self, _c: object, _u: object, _mid: int, _rc: object, _p: object) -> None:
        with self.cond:
            self.n += 1
            self.t_last = time.time()
            self.cond.notify_all()

    def wait_below(self, sent: int, window: int) -> None:
        with self.cond:
            while sent - self.n >= window:
                self.cond.wait(0.05)

    def wait_all(self, total: int, timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self.cond:
            while self.n < total:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.1))
        return True


def publish(a: argparse.Namespace) -> dict[str, object]:
    devices = fleet(a.tag, a.devices, a.shard, a.shards, seed=a.seed)
    acks = Acks()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{a.tag}-{a.shard}",
                         clean_session=True)
    client.max_inflight_messages_set(a.inflight)
    client.max_queued_messages_set(0)
    client.on_publish = acks.on_publish
    client.connect("127.0.0.1", a.port, keepalive=60)
    client.loop_start()
    end = time.monotonic() + 10
    while not client.is_connected():
        if time.monotonic() > end:
            sys.exit("loadgen: no CONNACK within 10 s")
        time.sleep(0.01)
    times = array("d")
    delay = a.start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    t_first = time.time()
    period = 1.0 / a.rate if a.rate > 0 else 0.0
    nd = len(devices)
    for k in range(a.messages):
        if period:
            wait = t_first + k * period - time.time()
            if wait > 0:
                time.sleep(wait)
        if k - acks.n >= WINDOW:
            acks.wait_below(k, WINDOW)
        dev = devices[k % nd]
        payload = dev.payload()
        if a.times_out:
            times.append(time.time())
        info = client.publish(dev.topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            sys.exit(f"loadgen: publish failed rc={info.rc} at message {k}")
    t_last_call = time.time()
    ok = acks.wait_all(a.messages, a.ack_timeout)
    client.disconnect()
    client.loop_stop()
    if a.times_out:
        with open(a.times_out, "wb") as f:
            times.tofile(f)
    span = (acks.t_last if ok else time.time()) - t_first
    return {"shard": a.shard, "messages": a.messages, "acked": acks.n, "all_acked": ok,
            "t_first_publish": t_first, "t_last_publish_call": t_last_call,
            "t_last_ack": acks.t_last,
            "msg_per_s": round(acks.n / span, 1) if span > 0 else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tag", required=True, help="device name prefix, unique per phase")
    ap.add_argument("-m", "--messages", type=int, required=True, help="this shard's messages")
    ap.add_argument("-d", "--devices", type=int, default=100, help="devices in the whole fleet")
    ap.add_argument("--shard", type=int, default=0)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--rate", type=float, default=0.0, help="this shard's msg/s; 0 = max")
    ap.add_argument("--inflight", type=int, default=100)
    ap.add_argument("--start-at", type=float, default=0.0)
    ap.add_argument("--ack-timeout", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--times-out", default="")
    a = ap.parse_args(argv)
    res = publish(a)
    print(json.dumps(res), flush=True)
    return 0 if res["all_acked"] else 2


if __name__ == "__main__":
    sys.exit(main())
