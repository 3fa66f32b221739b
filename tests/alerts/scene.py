"""Points a test writes into a real store, at chosen times, through the store's writer.

The same points the gateways write (wire contract, third turn): readings,
``device`` status (strings in ``device_info``), ``gateway`` health, ``station``
metadata, ``delivery`` counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.stores import make_store
from protocols import Point, encode_lines
from protocols.config import Config, load_config
from protocols.lineprotocol import make_point

S = 1000


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Scene:
    points: list[Point] = field(default_factory=list)

    def add(self, measurement: str, tags: Mapping[str, str],
            fields: Mapping[str, float | str], t: int) -> None:
        self.points.append(make_point(measurement, tags, fields, t))
        strings = {k: v for k, v in fields.items() if isinstance(v, str) and v}
        if any(isinstance(v, str) for v in fields.values()):
            self.points.append(make_point(f"{measurement}_info", {**tags, **strings},
                                          {"v": 1.0}, t))

    def gateway(self, site: str, t: int, gateway: str = "gw1", **fields: float) -> None:
        f: dict[str, float | str] = {"up": 1.0, "broker_connected": 1.0, "buffer_points": 0.0,
                                     "buffer_oldest_s": 0.0, "disk_free_bytes": 5e9,
                                     "devices_online": 1.0, "uptime_s": 3600.0,
                                     "interval_s": 30.0, "version": "0.9"}
        f.update(fields)
        self.add("gateway", {"site": site, "gateway": gateway}, f, t)

    def status(self, site: str, device: str, t: int, **fields: float | str) -> None:
        f: dict[str, float | str] = {"online": 1.0, "interval_s": 60.0, "uptime": 9000.0,
                                     "fw": "1.0.0"}
        f.update(fields)
        self.add("device", {"site": site, "device": device}, f, t)

    def last_will(self, site: str, device: str, t: int) -> None:
        self.add("device", {"site": site, "device": device}, {"online": 0.0}, t)

    def reading(self, site: str, device: str, t: int, co2: float = 600.0,
                sensor: str = "scd41") -> None:
        self.add("air", {"site": site, "device": device, "sensor": sensor}, {"co2": co2}, t)

    def station(self, site: str, device: str, t: int, retired: bool = False) -> None:
        self.add("station", {"site": site, "device": device},
                 {"deployment": 1.0, "retired": 1.0 if retired else 0.0, "board": "pico_w",
                  "sensors": "scd41", "room": "Lab", "zone": "", "note": ""}, t)

    def delivery(self, site: str, device: str, hour_ms: int, accepted: int, missing: int = 0,
                 rejected: int = 0) -> None:
        self.add("delivery", {"site": site, "device": device},
                 {"received": float(accepted + rejected), "accepted": float(accepted),
                  "duplicates": 0.0, "rejected": float(rejected), "missing": float(missing)},
                 hour_ms)

    def fleet(self, site: str, n: int, t: int, prefix: str = "air",
              quiet: tuple[str, ...] = ()) -> list[str]:
        """A healthy site at ``t``: its gateway, n devices with a status and a reading
        (none for the ``quiet`` ones: the test writes theirs)."""
        self.gateway(site, t)
        devs = [f"{prefix}-{i:04d}" for i in range(n)]
        for d in devs:
            self.station(site, d, t - 86_400 * S)
            self.status(site, d, t - 600 * S)
            if d not in quiet:
                self.reading(site, d, t - 10 * S)
        return devs

    def write(self, cfg: Config) -> None:
        """Through the store's own writer, then forget the points (the next write adds)."""
        points, self.points = self.points, []

        async def go() -> None:
            store = make_store(cfg.store)
            try:
                await store.ensure_ready()
                for i in range(0, len(points), 5000):
                    chunk = points[i:i + 5000]
                    await store.write(encode_lines(chunk), len(chunk))
            finally:
                await store.aclose()
        asyncio.run(go())


def centre_config(tmp: Path, alertmanager_url: str = "", interval_s: float = 30,
                  extra: str = "", store: str = "") -> Path:
    """A centre's config: no site, a SQLite store (unless ``store`` gives another)."""
    path = tmp / "centre.toml"
    store = store or f'[store]\nkind = "sqlite"\npath = "{tmp / "store.sqlite"}"\n'
    path.write_text(f'[gateway]\ndata_dir = "{tmp / "var"}"\n{store}\n'
                    f'[alerts]\ninterval_s = {interval_s}\n'
                    f'alertmanager_url = "{alertmanager_url}"\n{extra}', encoding="utf-8")
    return path


def load(path: Path) -> Config:
    return load_config(path, need_site=False)
