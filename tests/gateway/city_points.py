"""Points as the gateways write them to the shared store (wire contract, "Additions
(third turn)"), with their ``*_info`` companions; and a three-site city that shows
every derived state. Shared by the city console's tests, its browser test and
bench/city_console.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from protocols.lineprotocol import Point, encode_lines, make_point

__all__ = ["city", "delivery", "device", "encode_lines", "gateway", "reading", "rejections",
           "station"]

HOUR_MS = 3_600_000


def _with_info(measurement: str, tags: Mapping[str, str], fields: Mapping[str, float | str],
               t: int) -> list[Point]:
    """The point, and its ``{measurement}_info`` companion holding its strings as tags."""
    strings = {k: v for k, v in fields.items() if isinstance(v, str)}
    out = [make_point(measurement, tags, fields, t)]
    if strings:
        out.append(make_point(f"{measurement}_info", {**tags, **{k: v for k, v in strings.items()
                                                                if v}}, {"v": 1.0}, t))
    return out


def gateway(site: str, gw: str, t: int, *, up: float = 1.0, broker: float = 1.0,
            buffer_points: float = 0.0, oldest_s: float = 0.0, disk: float = 12e9,
            online: float = 0.0, uptime_s: float = 3600.0, interval_s: float = 30.0,
            version: str = "0.4.0") -> list[Point]:
    return _with_info("gateway", {"site": site, "gateway": gw}, {
        "up": up, "broker_connected": broker, "buffer_points": buffer_points,
        "buffer_oldest_s": oldest_s, "disk_free_bytes": disk, "devices_online": online,
        "uptime_s": uptime_s, "interval_s": interval_s, "version": version}, t)


def device(site: str, dev: str, t: int, *, online: float = 1.0, uptime: float = 7200.0,
           interval_s: float = 60.0, fw: str = "1.2.0", board: str = "pico_w",
           rssi: float = -61.0, update: Sequence[str] = ()) -> list[Point]:
    fields: dict[str, float | str] = {"online": online}
    if online:
        fields.update({"rssi": rssi, "heap_free": 91000.0, "uptime": uptime,
                       "interval_s": interval_s, "boot": 3.0, "dropped": 0.0,
                       "sensor_errors": 0.0, "fw": fw, "board": board})
        if update:
            fields.update(dict(zip(("update_version", "update_state", "update_reason"),
                                   update, strict=False)))
    return _with_info("device", {"site": site, "device": dev}, fields, t)


def station(site: str, dev: str, t: int, *, lat: float | None = None,
            lon: float | None = None, board: str = "pico_w", sensors: str = "scd41",
            room: str = "", zone: str = "", note: str = "", deployment: int = 1,
            retired: bool = False) -> list[Point]:
    fields: dict[str, float | str] = {"deployment": float(deployment),
                                      "retired": 1.0 if retired else 0.0, "board": board,
                                      "sensors": sensors, "room": room, "zone": zone,
                                      "note": note}
    if lat is not None and lon is not None:
        fields.update({"lat": lat, "lon": lon})
    return _with_info("station", {"site": site, "device": dev}, fields, t)


def reading(site: str, dev: str, sensor: str, domain: str, values: Mapping[str, float],
            t: int) -> list[Point]:
    return [make_point(domain, {"site": site, "device": dev, "sensor": sensor}, values, t)]


def delivery(site: str, dev: str, hour_ms: int, accepted: int, missing: int = 0,
             rejected: int = 0, duplicates: int = 0) -> list[Point]:
    return [make_point("delivery", {"site": site, "device": dev}, {
        "received": float(accepted + rejected + duplicates), "accepted": float(accepted),
        "duplicates": float(duplicates), "rejected": float(rejected),
        "missing": float(missing)}, hour_ms)]


def rejections(site: str, dev: str, reason: str, hour_ms: int, count: int) -> list[Point]:
    return [make_point("rejections", {"site": site, "device": dev, "reason": reason},
                       {"count": float(count)}, hour_ms)]


#: where the city's stations stand (Brussels, three campuses)
NORTH = (50.8793, 4.7010)
SOUTH = (50.8120, 4.3810)


def city(now: int) -> list[Point]:
    """Three sites. north-lab (gateway up): air-0001 online, air-0002 silent (no location),
    air-0003 offline (its last will), air-0004 never-seen, air-0005 retired. south-lab
    (gateway up, a 15-minute backlog): air-0101 delayed, air-0102 online. east-lab
    (gateway down): air-0201 unknown. One UpdateFailed-worthy status on air-0001."""
    p: list[Point] = []
    hour = now // HOUR_MS * HOUR_MS
    p += gateway("north-lab", "gw-north", now - 5_000, online=1)
    p += station("north-lab", "air-0001", now - 86_400_000, lat=NORTH[0], lon=NORTH[1],
                 room="1.12", zone="east wing", sensors="scd41,bme280")
    p += device("north-lab", "air-0001", now - 30_000,
                update=("1.3.0", "refused", "signature <b>bad</b>"))
    for i in range(30):
        p += reading("north-lab", "air-0001", "scd41", "air",
                     {"co2": 600.0 + i, "temperature": 21.5}, now - (30 - i) * 60_000 + 10_000)
    p += reading("north-lab", "air-0001", "bme280", "air", {"temperature": 21.75}, now - 20_000)
    p += delivery("north-lab", "air-0001", hour - HOUR_MS, 57, missing=3)
    p += delivery("north-lab", "air-0001", hour, 30)
    p += rejections("north-lab", "air-0001", "out_of_range", hour - HOUR_MS, 2)
    p += station("north-lab", "air-0002", now - 86_400_000, room="2.01")
    p += device("north-lab", "air-0002", now - 3 * HOUR_MS)
    p += reading("north-lab", "air-0002", "scd41", "air", {"co2": 700.0}, now - 3 * HOUR_MS)
    p += station("north-lab", "air-0003", now - 86_400_000, lat=NORTH[0] + 0.0004,
                 lon=NORTH[1] + 0.0006, room="1.14")
    p += device("north-lab", "air-0003", now - 60_000, online=0.0)
    p += reading("north-lab", "air-0003", "scd41", "air", {"co2": 455.0}, now - 50 * 60_000)
    p += station("north-lab", "air-0004", now - 3_600_000, lat=NORTH[0] - 0.0005,
                 lon=NORTH[1] + 0.0002, room="0.03", note="<script>alert(1)</script>")
    p += station("north-lab", "air-0005", now - 3_600_000, lat=NORTH[0] + 0.0002,
                 lon=NORTH[1] - 0.0007, retired=True)
    p += gateway("south-lab", "gw-south", now - 3_000, buffer_points=5400.0, oldest_s=900.0,
                 online=1)
    p += station("south-lab", "air-0101", now - 86_400_000, lat=SOUTH[0], lon=SOUTH[1],
                 room="A.101")
    p += device("south-lab", "air-0101", now - 20 * 60_000)
    p += reading("south-lab", "air-0101", "scd41", "air", {"co2": 812.0}, now - 16 * 60_000)
    p += station("south-lab", "air-0102", now - 86_400_000, lat=SOUTH[0] + 0.0006,
                 lon=SOUTH[1] - 0.0004, room="A.102", board="esp32")
    p += device("south-lab", "air-0102", now - 10_000, board="esp32")
    p += reading("south-lab", "air-0102", "bh1750", "light", {"illuminance": 350.5},
                 now - 10_000)
    p += delivery("south-lab", "air-0102", hour, 40)
    p += gateway("east-lab", "gw-east", now - 600_000, online=1)
    p += station("east-lab", "air-0201", now - 86_400_000, lat=50.85, lon=4.45)
    p += device("east-lab", "air-0201", now - 610_000)
    p += reading("east-lab", "air-0201", "scd41", "air", {"co2": 500.0}, now - 610_000)
    return p


def fleet(site: str, now: int, n: int, origin: tuple[float, float], *,
          prefix: str = "air") -> list[Point]:
    """``n`` online devices of a site on a small grid around ``origin``, each with a
    station, a status, 30 minutes of air readings a minute apart and 24 h of delivery."""
    p: list[Point] = []
    hour = now // HOUR_MS * HOUR_MS
    for i in range(n):
        dev = f"{prefix}-{i + 1:04d}"
        lat, lon = origin[0] + (i // 4) * 0.0006, origin[1] + (i % 4) * 0.0009
        p += station(site, dev, now - 86_400_000, lat=lat, lon=lon, room=f"{i // 4}.{i % 4:02d}",
                     zone="lab" if i % 2 else "office", sensors="scd41")
        p += device(site, dev, now - 15_000 - i * 1000)
        for k in range(30):
            p += reading(site, dev, "scd41", "air", {
                "co2": 480.0 + 7 * i + 3 * k, "temperature": 20.5 + i / 10,
                "humidity": 41.0 + i}, now - (30 - k) * 60_000 + 5_000)
        for h in range(24):
            p += delivery(site, dev, hour - h * HOUR_MS, 60 - (1 if (i + h) % 9 == 0 else 0),
                          missing=1 if (i + h) % 9 == 0 else 0)
    return p
