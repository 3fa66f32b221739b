"""A small city written into a store, and what the centre reader must give back.

Three sites; readings, ``device`` points (with a last will after the status),
``gateway`` health (one shut down), ``station`` history (a move, a retirement),
``delivery`` and ``rejections``; every point with strings has its ``_info``
companion, as the wire contract's third turn says. Times are recent (the
"latest" questions look back ``lookback_s`` from now).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.stores import Reading, make_store
from protocols import Point, encode_lines
from protocols.lineprotocol import make_point

HOUR = 3_600_000
MIN = 60_000


def now_hour() -> int:
    return int(time.time() * 1000) // HOUR * HOUR


@dataclass
class City:
    t0: int
    points: list[Point] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)

    def add(self, measurement: str, tags: Mapping[str, str],
            fields: Mapping[str, float | str], t: int) -> None:
        self.points.append(make_point(measurement, tags, fields, t))
        strings = {k: v for k, v in fields.items() if isinstance(v, str)}
        if strings:  # the companion: strings as tags (empty ones cannot be tags)
            info_tags = {**tags, **{k: v for k, v in strings.items() if v}}
            self.points.append(make_point(f"{measurement}_info", info_tags, {"v": 1.0}, t))

    def reading(self, site: str, device: str, sensor: str, domain: str,
                values: Mapping[str, float], t: int) -> None:
        self.add(domain, {"site": site, "device": device, "sensor": sensor}, values, t)
        self.readings += [Reading(t, site, device, sensor, domain, q, v)
                          for q, v in values.items()]


def build(n_extra_devices: int = 0) -> City:
    """The city; ``n_extra_devices`` more devices in site ``gamma`` (query-count tests)."""
    t0 = now_hour() - 2 * HOUR
    c = City(t0)
    for i in range(90):  # 90 minutes of air readings, one a minute
        t = t0 + i * MIN + 123
        for site, dev, k in (("alpha", "a1", 0), ("alpha", "a2", 1), ("beta", "b1", 2)):
            values = {"co2": 400.0 + i * 1.1 + k / 3.0, "temperature": -5.25 + i * 0.0123456789}
            if dev == "a2" and i == 89:
                values = {"co2": 999.5}  # the newest point lacks temperature
            c.reading(site, dev, "scd41", "air", values, t)
        if i % 5 == 0:
            c.reading("alpha", "a1", "bh1750", "light", {"illuminance": float(i * 10)}, t)
    for j in range(n_extra_devices):
        c.reading("gamma", f"g{j}", "scd41", "air", {"co2": 500.0 + j}, t0 + 30 * MIN)
        c.add("device", {"site": "gamma", "device": f"g{j}"},
              {"online": 1.0, "rssi": -50.0 - j, "fw": "1.0.0"}, t0 + 30 * MIN)
    a1, a2, b1 = ({"site": s, "device": d} for s, d in (("alpha", "a1"), ("alpha", "a2"),
                                                         ("beta", "b1")))
    c.add("device", a1, {"online": 1.0, "rssi": -60.0, "heap_free": 123456.0, "uptime": 100.0,
                         "interval_s": 60.0, "boot": 3.0, "fw": "1.0.0", "board": "pico_w"}, t0)
    c.add("device", a1, {"online": 1.0, "rssi": -61.0, "uptime": 1900.0, "interval_s": 60.0,
                         "fw": "1.1.0", "board": "pico_w", "update_state": "confirmed",
                         "update_version": "1.1.0"}, t0 + 30 * MIN)
    c.add("device", a1, {"online": 0.0}, t0 + 60 * MIN)  # its last will
    c.add("device", a2, {"online": 1.0, "dropped": 2.0, "sensor_errors": 1.0,
                         "fw": "1.0.0"}, t0 + 10 * MIN)
    c.add("device", b1, {"online": 1.0, "uptime": 5.0, "fw": "1.0.0",
                         "update_state": "rolled_back", "update_version": "1.1.0",
                         "update_reason": "crc mismatch, reverted = bad"}, t0 + 20 * MIN)
    ga = {"site": "alpha", "gateway": "gw1"}
    for k in range(3):
        c.add("gateway", ga, {"up": 1.0, "broker_connected": 1.0, "buffer_points": 10.0 + k,
                              "buffer_oldest_s": 2.5, "disk_free_bytes": 5e9,
                              "devices_online": 2.0, "uptime_s": 600.0 + 30 * k,
                              "interval_s": 30.0, "version": "0.9.0"},
              t0 + 80 * MIN + k * 30_000)
    c.add("gateway", {"site": "beta", "gateway": "gw-b"},
          {"up": 0.0, "broker_connected": 0.0, "buffer_points": 0.0, "buffer_oldest_s": 0.0,
           "disk_free_bytes": 1e9, "devices_online": 0.0, "uptime_s": 50.0, "interval_s": 15.0,
           "version": "0.8.1"}, t0 + 85 * MIN)
    c.add("station", a1, {"lat": 41.1, "lon": 16.8, "deployment": 1.0, "retired": 0.0,
                          "board": "pico_w", "sensors": "scd41,bh1750", "room": "Lab 2",
                          "zone": "north", "note": "by the window, left"}, t0 - 24 * HOUR)
    c.add("station", a1, {"lat": 41.125, "lon": 16.875, "deployment": 2.0, "retired": 0.0,
                          "board": "pico_w", "sensors": "scd41,bh1750", "room": "Hall",
                          "zone": "", "note": ""}, t0 - HOUR)
    c.add("station", b1, {"deployment": 1.0, "retired": 1.0, "board": "esp32",
                          "sensors": "scd41", "room": "", "zone": "", "note": "gone"},
          t0 - 2 * HOUR)
    c.add("station", {"site": "alpha", "device": "a9"},  # never seen
          {"deployment": 1.0, "retired": 0.0, "board": "pico_w", "sensors": "pms5003",
           "room": "Roof", "zone": "", "note": ""}, t0 - 3 * HOUR)
    for h, (acc, miss) in enumerate(((58, 2), (60, 0))):
        c.add("delivery", a1, {"received": float(acc + 1), "accepted": float(acc),
                               "duplicates": 1.0, "rejected": 0.0, "missing": float(miss)},
              t0 + h * HOUR)
    c.add("delivery", b1, {"received": 60.0, "accepted": 59.0, "duplicates": 0.0,
                           "rejected": 1.0, "missing": 0.0}, t0)
    for tags, n in (({**a1, "reason": "out_of_range"}, 3.0), ({**a1, "reason": "not_json"}, 1.0),
                    ({**b1, "reason": "too_many_rejections"}, 2.0)):
        c.add("rejections", tags, {"count": n}, t0 + HOUR)
    return c


def write(store_cfg: object, points: list[Point]) -> None:
    """Through the store's own writer (``gateway.stores.make_store``)."""
    async def go() -> None:
        store = make_store(store_cfg)  # type: ignore[arg-type]
        try:
            await store.ensure_ready()
            for i in range(0, len(points), 1000):
                chunk = points[i:i + 1000]
                await store.write(encode_lines(chunk), len(chunk))
        finally:
            await store.aclose()
    asyncio.run(go())
