"""Known readings for export round trips, written through the stores' own writers."""

from __future__ import annotations

import asyncio
import csv
import math
from pathlib import Path

from gateway.stores import make_store
from protocols import Point, encode_lines
from protocols.lineprotocol import make_point

T0_MS = 1_764_064_800_000  # 2025-11-25T10:00:00Z
SITE = "lab"

Row = tuple[int, str, str, str, str, str, float, str]  # the export's columns, time in ms


def known_points(n_devices: int = 3, per_device: int = 40) -> tuple[list[Point], list[Row]]:
    """Readings with awkward values (many decimals, negatives, 0) over ~2 hours, plus
    the rows an export must give back (sorted like the export)."""
    points: list[Point] = []
    rows: list[Row] = []
    for d in range(n_devices):
        dev = f"air-{d:02d}"
        for i in range(per_device):
            t = T0_MS + i * 197_123 + d * 7  # ms precision, crosses hour boundaries
            co2 = 400.0 + i * 1.1 + d / 3.0
            temp = -5.25 + i * 0.0123456789
            points.append(make_point("air", {"site": SITE, "device": dev, "sensor": "scd41"},
                                     {"co2": co2, "temperature": temp}, t))
            rows += [(t, SITE, dev, "scd41", "air", "co2", co2, "ppm"),
                     (t, SITE, dev, "scd41", "air", "temperature", temp, "degC")]
            if i % 4 == 0:
                lux = float(i * 10)
                points.append(make_point("light", {"site": SITE, "device": dev,
                                                   "sensor": "bh1750"}, {"illuminance": lux},
                                         t))
                rows.append((t, SITE, dev, "bh1750", "light", "illuminance", lux, "lx"))
            if i == 0:  # device health: not a reading, never exported by default
                points.append(make_point("device", {"site": SITE, "device": dev},
                                         {"rssi": -60.0, "online": 1.0, "fw": "0.2.0"}, t))
    rows.sort(key=lambda r: (r[0], r[2], r[3], r[4], r[5]))
    return points, rows


def write(store_cfg: object, points: list[Point]) -> None:
    async def go() -> None:
        store = make_store(store_cfg)  # type: ignore[arg-type]
        try:
            await store.ensure_ready()
            for i in range(0, len(points), 500):
                chunk = points[i:i + 500]
                await store.write(encode_lines(chunk), len(chunk))
        finally:
            await store.aclose()
    asyncio.run(go())


def read_csv(path: Path) -> list[Row]:
    from datetime import datetime

    with open(path, encoding="utf-8", newline="") as f:
        r = csv.reader(f)
        assert next(r) == ["time", "site", "device", "sensor", "domain", "quantity", "value",
                           "unit"]
        out: list[Row] = []
        for t, site, dev, sensor, dom, q, v, unit in r:
            assert t.endswith("Z") and len(t) == 24, t
            ms = round(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000)
            out.append((ms, site, dev, sensor, dom, q, float(v), unit))
    return out


def read_parquet(path: Path) -> list[Row]:
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    assert str(t.schema.field("time").type) == "timestamp[ms, tz=UTC]"
    assert str(t.schema.field("value").type) == "double"
    d = t.to_pydict()
    return [(round(d["time"][i].timestamp() * 1000), d["site"][i], d["device"][i],
             d["sensor"][i], d["domain"][i], d["quantity"][i], d["value"][i], d["unit"][i])
            for i in range(t.num_rows)]


def same(got: list[Row], want: list[Row]) -> None:
    """Exactly once each, value for value (floats: exactly, or to float32 for stores that
    keep less)."""
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[:6] == w[:6] and g[7] == w[7], (g, w)
        assert g[6] == w[6] or math.isclose(g[6], w[6], rel_tol=1e-12), (g, w)
