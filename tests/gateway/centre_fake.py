"""A CentreReader over points held in memory: the city console's tests run without a
store, and count the queries as a real reader does (one per call)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from gateway.stores.centre import (
    DeliveryRow,
    DevicePoint,
    GatewayPoint,
    RejectionRow,
    SeriesPoint,
    StationPoint,
    is_reading_measurement,
)
from gateway.stores.reading import Reading, StoreUnreadable
from protocols.lineprotocol import Point

_GW = ("up", "broker_connected", "buffer_points", "buffer_oldest_s", "disk_free_bytes",
       "devices_online", "uptime_s", "interval_s")


class PointsReader:
    def __init__(self, points: Iterable[Point] = (), lookback_ms: int = 30 * 86_400_000
                 ) -> None:
        self.points = list(points)
        self.lookback_ms = lookback_ms
        self.down = False
        self.calls = 0

    def _ask(self, sites: Sequence[str]) -> list[Point]:
        self.calls += 1
        if self.down:
            raise StoreUnreadable("fake store at 127.0.0.1:9 is not reachable (test)")
        return [p for p in self.points if not sites or dict(p.tags).get("site") in sites]

    @staticmethod
    def _latest(points: Iterable[Point], measurement: str, key: str = "device"
                ) -> dict[tuple[str, str], Point]:
        out: dict[tuple[str, str], Point] = {}
        for p in points:
            if p.measurement != measurement:
                continue
            tags = dict(p.tags)
            k = (tags["site"], tags[key])
            if k not in out or p.time_ms >= out[k].time_ms:
                out[k] = p
        return out

    def check(self) -> None:
        self._ask(())

    def sites(self) -> list[str]:
        return sorted({dict(p.tags)["site"] for p in self._ask(())})

    def gateways(self, sites: Sequence[str] = ()) -> list[GatewayPoint]:
        out = []
        latest = self._latest(self._ask(sites), "gateway", "gateway")
        for (site, gw), p in sorted(latest.items()):
            f = dict(p.fields)
            nums = {k: float(f[k]) for k in _GW if k in f}
            out.append(GatewayPoint(site, gw, p.time_ms, **nums,
                                    version=str(f.get("version", ""))))
        return out

    def _device(self, p: Point) -> DevicePoint:
        tags = dict(p.tags)
        return DevicePoint(tags["site"], tags["device"], p.time_ms,
                           {k: float(v) for k, v in p.fields if not isinstance(v, str)},
                           {k: v for k, v in p.fields if isinstance(v, str)})

    def devices(self, sites: Sequence[str] = ()) -> list[DevicePoint]:
        latest = self._latest(self._ask(sites), "device")
        return [self._device(p) for _, p in sorted(latest.items())]

    def device_points(self, since_ms: int, until_ms: int,
                      sites: Sequence[str] = ()) -> list[DevicePoint]:
        return [self._device(p) for p in sorted(self._ask(sites), key=lambda p: p.time_ms)
                if p.measurement == "device" and since_ms <= p.time_ms < until_ms]

    def _station(self, p: Point) -> StationPoint:
        tags, f = dict(p.tags), dict(p.fields)
        lat, lon = f.get("lat"), f.get("lon")
        return StationPoint(tags["site"], tags["device"], p.time_ms,
                            float(lat) if lat is not None else None,
                            float(lon) if lon is not None else None,
                            int(float(f.get("deployment", 0))), f.get("retired") == 1.0,
                            str(f.get("board", "")),
                            tuple(s for s in str(f.get("sensors", "")).split(",") if s),
                            str(f.get("room", "")), str(f.get("zone", "")), str(f.get("note", "")))

    def stations(self, sites: Sequence[str] = ()) -> list[StationPoint]:
        latest = self._latest(self._ask(sites), "station")
        return [self._station(p) for _, p in sorted(latest.items())]

    def station_history(self, sites: Sequence[str] = (),
                        devices: Sequence[str] = ()) -> list[StationPoint]:
        return [self._station(p) for p in sorted(self._ask(sites), key=lambda p: p.time_ms)
                if p.measurement == "station"
                and (not devices or dict(p.tags)["device"] in devices)]

    def _readings(self, sites: Sequence[str]) -> Iterator[Reading]:
        for p in self._ask(sites):
            if is_reading_measurement(p.measurement):
                tags = dict(p.tags)
                for q, v in p.fields:
                    if not isinstance(v, str):
                        yield Reading(p.time_ms, tags["site"], tags["device"],
                                      tags.get("sensor", ""), p.measurement, q, float(v))

    def latest_reading_times(self, sites: Sequence[str] = ()) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for r in self._readings(sites):
            out[(r.site, r.device)] = max(out.get((r.site, r.device), 0), r.time_ms)
        return out

    def latest_values(self, sites: Sequence[str] = (), devices: Sequence[str] = (),
                      since_ms: int | None = None) -> list[Reading]:
        out: dict[tuple[str, ...], Reading] = {}
        for r in self._readings(sites):
            k = (r.site, r.device, r.sensor, r.domain, r.quantity)
            if since_ms is not None and r.time_ms < since_ms:
                continue
            if (not devices or r.device in devices) and (k not in out
                                                         or r.time_ms > out[k].time_ms):
                out[k] = r
        return sorted(out.values())

    def readings(self, since_ms: int, until_ms: int, sites: Sequence[str] = (),
                 devices: Sequence[str] = (), domains: Sequence[str] = (),
                 quantities: Sequence[str] = ()) -> Iterator[Reading]:
        rows = [r for r in self._readings(sites) if since_ms <= r.time_ms < until_ms
                and (not devices or r.device in devices)
                and (not domains or r.domain in domains)
                and (not quantities or r.quantity in quantities)]
        return iter(sorted(rows, key=lambda r: (r.time_ms, r.site, r.device, r.sensor,
                                                r.quantity)))

    def series(self, site: str, device: str, domain: str, quantity: str,
               since_ms: int, until_ms: int, step_ms: int) -> list[SeriesPoint]:
        acc: dict[tuple[str, int], list[float]] = {}
        for r in self.readings(since_ms, until_ms, (site,), (device,), (domain,), (quantity,)):
            acc.setdefault((r.sensor, r.time_ms // step_ms * step_ms), []).append(r.value)
        return [SeriesPoint(s, t, sum(v) / len(v)) for (s, t), v in sorted(acc.items())]

    def delivery(self, since_ms: int, until_ms: int,
                 sites: Sequence[str] = ()) -> list[DeliveryRow]:
        out = []
        for p in self._ask(sites):
            if p.measurement == "delivery" and since_ms <= p.time_ms < until_ms:
                t, f = dict(p.tags), {k: int(float(v)) for k, v in p.fields}
                out.append(DeliveryRow(t["site"], t["device"], p.time_ms, **f))
        return out

    def rejections(self, since_ms: int, until_ms: int,
                   sites: Sequence[str] = ()) -> list[RejectionRow]:
        out = []
        for p in self._ask(sites):
            if p.measurement == "rejections" and since_ms <= p.time_ms < until_ms:
                t = dict(p.tags)
                out.append(RejectionRow(t["site"], t["device"], t["reason"], p.time_ms,
                                        int(float(dict(p.fields)["count"]))))
        return out

    def queries(self) -> int:
        return self.calls

    def close(self) -> None:
        pass
