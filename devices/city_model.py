"""The city's device load model: what N sites x M devices send, as pure functions.

Not the MicroPython firmware (``livinglab fleet`` runs that, at ~10 MB a device):
a CPython stand-in cheap enough to run thousands of devices in one process, that
sends what the firmware sends (firmware/ll/app.py and ll/link.py) at its rates:

* telemetry ``{"v":1,"device","boot","seq","samples":[{"sensor","ts","values"}]}``
  every ``interval_s`` (the firmware's default 30 s), ``seq`` from 0 per boot, one
  sample per sensor, values in range with natural noise (a mean-reverting walk
  around a daily cycle), rounded as the drivers round them;
* a retained status ``{"state":"online","fw","board","boot","ip","rssi",
  "heap_free","uptime","dropped","interval_s","sensor_errors"}`` at connect and
  every ``status_every_s`` (60 s);
* the last will ``{"state":"offline"}`` (retained, QoS 1) on the status topic.

Everything here is deterministic for a given seed, so a test can predict it.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from firmware import FW_VERSION

from .fleet_plan import KIND_SENSORS, KINDS, Kind

__all__ = ["OFFLINE", "SimDevice", "SitePlan", "Walk", "plan_city", "site_id", "status_payload",
           "telemetry_payload"]

OFFLINE = b'{"state":"offline"}'  # the firmware's last will, byte for byte
STATUS_EVERY_S = 60  # firmware/ll/config.py status_every_s
BOARDS = ("pico_w", "esp32")

# quantity -> (mean, daily swing, noise per step, reversion per step, decimals, lo, hi)
_SHAPES: Mapping[str, tuple[float, float, float, float, int, float, float]] = {
    "co2": (650.0, 350.0, 12.0, 0.15, 0, 400.0, 5000.0),
    "temperature": (21.5, 1.5, 0.05, 0.1, 2, -40.0, 85.0),
    "humidity": (45.0, 8.0, 0.3, 0.1, 2, 0.0, 100.0),
    "pressure": (1013.0, 4.0, 0.05, 0.05, 2, 300.0, 1100.0),
    "pm1_0": (4.0, 2.0, 0.8, 0.2, 0, 0.0, 1000.0),
    "pm2_5": (7.0, 4.0, 1.2, 0.2, 0, 0.0, 1000.0),
    "pm10": (11.0, 6.0, 1.8, 0.2, 0, 0.0, 1000.0),
    "illuminance": (300.0, 300.0, 8.0, 0.2, 2, 0.0, 200000.0),
    "flow_rate": (1.5, 1.5, 0.3, 0.3, 3, 0.0, 1000.0),
}
# The quantities each sensor kind reports, in the drivers' order (write_values).
SENSOR_VALUES: Mapping[str, tuple[str, ...]] = {
    "scd41": ("co2", "temperature", "humidity"),
    "bme280": ("temperature", "pressure", "humidity"),
    "pms5003": ("pm1_0", "pm2_5", "pm10"),
    "bh1750": ("illuminance",),
    "yfs201": ("flow_rate", "volume"),
}


def site_id(index: int) -> str:
    """``city-01`` ... (index from 1): a valid site id whatever the count."""
    return f"city-{index:02d}"


@dataclass(frozen=True)
class SimDevice:
    """One simulated device: where it is, what it carries, how it is seeded."""

    site: str
    device: str
    kind: Kind
    board: str
    boot: int
    seed: int

    @property
    def sensors(self) -> tuple[str, ...]:
        return KIND_SENSORS[self.kind]


@dataclass(frozen=True)
class SitePlan:
    site: str
    devices: tuple[SimDevice, ...]


def plan_city(sites: int, per_site: int, seed: int = 1) -> list[SitePlan]:
    """``sites`` sites of ``per_site`` devices; kinds cycle air, air, light, flow (a
    city is mostly air quality), ids unique across the city (``c01-air-001``)."""
    rng = random.Random(seed)
    mix: tuple[Kind, ...] = ("air", "air", "light", "flow")
    plans = []
    for i in range(1, sites + 1):
        devs = []
        for j in range(per_site):
            kind = mix[j % len(mix)] if per_site > 1 else KINDS[0]
            devs.append(SimDevice(site=site_id(i), device=f"c{i:02d}-{kind}-{j + 1:03d}",
                                  kind=kind, board=BOARDS[j % len(BOARDS)],
                                  boot=rng.randint(1, 500), seed=rng.randint(0, 2**31)))
        plans.append(SitePlan(site_id(i), tuple(devs)))
    return plans


def _daily(t: float, quantity: str) -> float:
    """The day's shape in -1..1: occupancy for co2/pm/flow, daylight for illuminance."""
    hour = (t / 3600.0) % 24.0
    if quantity == "illuminance":
        return max(-1.0, math.sin((hour - 6.0) / 12.0 * math.pi) * 1.2 - 0.2)
    if quantity in ("co2", "pm1_0", "pm2_5", "pm10", "flow_rate"):
        return 1.0 if 8.0 <= hour < 18.0 else -0.6
    return math.sin((hour - 9.0) / 24.0 * 2 * math.pi)


@dataclass
class Walk:
    """Each quantity's value: reverts towards the daily target, with Gaussian noise."""

    seed: int
    values: dict[str, float] = field(default_factory=dict)
    volume: float = 0.0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def step(self, quantity: str, t: float, dt: float) -> float:
        if quantity == "volume":  # the flow meter's litres since boot
            self.volume += self.values.get("flow_rate", 0.0) * dt / 60.0
            return round(self.volume, 3)
        mean, swing, noise, revert, decimals, lo, hi = _SHAPES[quantity]
        target = mean + swing * _daily(t, quantity)
        v = self.values.get(quantity, target + self._rng.gauss(0.0, noise * 3))
        v += revert * (target - v) + self._rng.gauss(0.0, noise)
        v = min(hi, max(lo, v))
        self.values[quantity] = v
        return round(v) if decimals == 0 else round(v, decimals)


def sample_values(walk: Walk, sensor: str, t: float, dt: float) -> dict[str, float | int]:
    return {q: walk.step(q, t, dt) for q in SENSOR_VALUES[sensor]}


def telemetry_payload(dev: SimDevice, seq: int, ts: float, walk: Walk,
                      dt: float) -> bytes:
    """One telemetry message: a sample per sensor, all at the device clock's ``ts``."""
    samples = [{"sensor": s, "ts": round(ts, 3), "values": sample_values(walk, s, ts, dt)}
               for s in dev.sensors]
    return json.dumps({"v": 1, "device": dev.device, "boot": dev.boot, "seq": seq,
                       "samples": samples}, separators=(",", ":")).encode()


def status_payload(dev: SimDevice, uptime_s: float, interval_s: int, rssi: int,
                   heap_free: int) -> bytes:
    """The retained online status, the firmware's fields in the firmware's order."""
    n = int(dev.device.rsplit("-", 1)[-1]) if dev.device[-1].isdigit() else 1
    return json.dumps({
        "state": "online", "fw": FW_VERSION, "board": dev.board, "boot": dev.boot,
        "ip": f"10.{int(dev.site[-2:]) % 256}.{n // 250}.{n % 250 + 2}", "rssi": rssi,
        "heap_free": heap_free, "uptime": int(uptime_s), "dropped": 0,
        "interval_s": interval_s, "sensor_errors": 0}, separators=(",", ":")).encode()
