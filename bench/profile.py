"""The load profile shared with the peer harness: 100 devices, 3 samples, 8 readings.

One telemetry message per call, valid per the wire contract: ``v`` 1, the
device equal to the topic's device, a random boot id per device, ``seq`` +1 per
message, and three samples with ``ts`` = now:

  scd41    co2, temperature, humidity           -> one ``air`` point
  veml7700 illuminance, cct                     -> one ``light`` point
  yfs201   flow_rate, volume, water_temperature -> one ``flow`` point

Sample times are unique per (device, sensor) in milliseconds, so a store that
keeps one point per (series, ms) keeps every point we send: a missing point is
a real loss, never a collision.
"""

from __future__ import annotations

import json
import random
import time

POINTS_PER_MSG = 3
READINGS_PER_MSG = 8
SITE = "bdnc-lab"
PREFIX = "livinglab/v1"
MEASUREMENTS = ("air", "light", "flow")


class Device:
    """A simulated device: identity, counters and bounded random-walk readings."""

    __slots__ = ("name", "topic", "boot", "seq", "last_ms", "rnd", "v")

    def __init__(self, name: str, rnd: random.Random) -> None:
        self.name = name
        self.topic = f"{PREFIX}/{SITE}/{name}/telemetry"
        self.boot = rnd.randrange(0, 2**31)
        self.seq = 0
        self.last_ms = 0
        self.rnd = rnd
        self.v = [rnd.uniform(450, 900), rnd.uniform(19, 25), rnd.uniform(30, 60),
                  rnd.uniform(50, 800), rnd.uniform(2700, 6500), rnd.uniform(0, 12),
                  rnd.uniform(1000, 5e5), rnd.uniform(12, 55)]

    def payload(self) -> bytes:
        now_ms = int(time.time() * 1000)
        ms = now_ms if now_ms > self.last_ms else self.last_ms + 1
        self.last_ms = ms
        u, v = self.rnd.uniform, self.v
        v[0] = min(5000.0, max(400.0, v[0] + u(-15, 15)))
        v[1] = min(30.0, max(15.0, v[1] + u(-0.05, 0.05)))
        v[2] = min(80.0, max(20.0, v[2] + u(-0.3, 0.3)))
        v[3] = min(20000.0, max(0.0, v[3] + u(-20, 20)))
        v[4] = min(6500.0, max(2700.0, v[4] + u(-10, 10)))
        v[5] = min(30.0, max(0.0, v[5] + u(-0.5, 0.5)))
        v[6] += v[5] / 60.0
        v[7] = min(70.0, max(8.0, v[7] + u(-0.1, 0.1)))
        ts = ms / 1000.0
        msg = {"v": 1, "device": self.name, "boot": self.boot, "seq": self.seq, "samples": [
            {"sensor": "scd41", "ts": ts, "values": {
                "co2": round(v[0]), "temperature": round(v[1], 2), "humidity": round(v[2], 1)}},
            {"sensor": "veml7700", "ts": ts, "values": {
                "illuminance": round(v[3], 1), "cct": round(v[4])}},
            {"sensor": "yfs201", "ts": ts, "values": {
                "flow_rate": round(v[5], 2), "volume": round(v[6], 3),
                "water_temperature": round(v[7], 2)}},
        ]}
        self.seq += 1
        return json.dumps(msg, separators=(",", ":")).encode()


def fleet(tag: str, devices: int, shard: int = 0, shards: int = 1,
          seed: int | None = None) -> list[Device]:
    """Devices ``{tag}-{i:03d}`` with ``i % shards == shard`` (one publisher's share)."""
    rnd = random.Random(seed)
    return [Device(f"{tag}-{i:03d}", rnd) for i in range(devices) if i % shards == shard]
