"""An in-memory CentreReader: the rules' tests run without a store.

It keeps every point it is given and answers each protocol call with one
"query", like a real reader must (a bounded number per call, whatever the fleet).
mypy holds it to ``CentreReader``; ``tests/alerts/test_fake_reader_contract.py``
holds its answers to the SQLite reader's for one small city. Not modelled (empty
answers, said here so no test relies on them): ``series`` and ``rejections``; the
``lookback_s`` window (everything it holds counts as recent).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from gateway.stores.centre import (
    DeliveryRow,
    DevicePoint,
    GatewayPoint,
    RejectionRow,
    SeriesPoint,
    StationPoint,
)
from gateway.stores.reading import Reading


def _in(site: str, sites: Sequence[str]) -> bool:
    return not sites or site in sites


@dataclass
class FakeReader:
    gateway_points: list[GatewayPoint] = field(default_factory=list)
    device_pts: list[DevicePoint] = field(default_factory=list)
    station_pts: list[StationPoint] = field(default_factory=list)
    reading_rows: list[Reading] = field(default_factory=list)
    delivery_rows: list[DeliveryRow] = field(default_factory=list)
    n_queries: int = 0
    calls: list[str] = field(default_factory=list)

    def _q(self, name: str) -> None:
        self.n_queries += 1
        self.calls.append(name)

    def check(self) -> None:
        self._q("check")

    def sites(self) -> list[str]:
        self._q("sites")
        return sorted({g.site for g in self.gateway_points} | {d.site for d in self.device_pts}
                      | {s.site for s in self.station_pts} | {r.site for r in self.reading_rows}
                      | {r.site for r in self.delivery_rows})

    def gateways(self, sites: Sequence[str] = ()) -> list[GatewayPoint]:
        self._q("gateways")
        latest: dict[tuple[str, str], GatewayPoint] = {}
        for g in sorted(self.gateway_points, key=lambda g: g.time_ms):
            if _in(g.site, sites):
                latest[(g.site, g.gateway)] = g
        return list(latest.values())

    def devices(self, sites: Sequence[str] = ()) -> list[DevicePoint]:
        self._q("devices")
        latest: dict[tuple[str, str], DevicePoint] = {}
        strings: dict[tuple[str, str], dict[str, str]] = {}
        for d in sorted(self.device_pts, key=lambda d: d.time_ms):
            if _in(d.site, sites):
                latest[(d.site, d.device)] = d
                if d.strings:  # as the real readers: strings from the newest companion
                    strings[(d.site, d.device)] = dict(d.strings)
        return [replace(d, strings=strings.get(k, {})) for k, d in latest.items()]

    def device_points(self, since_ms: int, until_ms: int,
                      sites: Sequence[str] = ()) -> list[DevicePoint]:
        self._q("device_points")
        return sorted((d for d in self.device_pts
                       if since_ms <= d.time_ms < until_ms and _in(d.site, sites)),
                      key=lambda d: d.time_ms)

    def stations(self, sites: Sequence[str] = ()) -> list[StationPoint]:
        self._q("stations")
        latest: dict[tuple[str, str], StationPoint] = {}
        for s in sorted(self.station_pts, key=lambda s: s.time_ms):
            if _in(s.site, sites):
                latest[(s.site, s.device)] = s
        return list(latest.values())

    def station_history(self, sites: Sequence[str] = (),
                        devices: Sequence[str] = ()) -> list[StationPoint]:
        self._q("station_history")
        return sorted((s for s in self.station_pts
                       if _in(s.site, sites) and (not devices or s.device in devices)),
                      key=lambda s: s.time_ms)

    def latest_reading_times(self, sites: Sequence[str] = ()) -> dict[tuple[str, str], int]:
        self._q("latest_reading_times")
        out: dict[tuple[str, str], int] = {}
        for r in self.reading_rows:
            if _in(r.site, sites):
                k = (r.site, r.device)
                out[k] = max(out.get(k, 0), r.time_ms)
        return out

    def latest_values(self, sites: Sequence[str] = (), devices: Sequence[str] = (),
                      since_ms: int | None = None) -> list[Reading]:
        self._q("latest_values")
        latest: dict[tuple[str, str, str, str, str], Reading] = {}
        for r in sorted(self.reading_rows, key=lambda r: r.time_ms):
            if _in(r.site, sites) and (not devices or r.device in devices) \
                    and (since_ms is None or r.time_ms >= since_ms):
                latest[(r.site, r.device, r.sensor, r.domain, r.quantity)] = r
        return list(latest.values())

    def readings(self, since_ms: int, until_ms: int, sites: Sequence[str] = (),
                 devices: Sequence[str] = (), domains: Sequence[str] = (),
                 quantities: Sequence[str] = ()) -> Iterator[Reading]:
        self._q("readings")
        rows = [r for r in self.reading_rows
                if since_ms <= r.time_ms < until_ms and _in(r.site, sites)
                and (not devices or r.device in devices)
                and (not domains or r.domain in domains)
                and (not quantities or r.quantity in quantities)]
        return iter(sorted(rows, key=lambda r: (r.time_ms, r.site, r.device, r.sensor,
                                                r.quantity)))

    def series(self, site: str, device: str, domain: str, quantity: str,
               since_ms: int, until_ms: int, step_ms: int) -> list[SeriesPoint]:
        self._q("series")
        return []

    def delivery(self, since_ms: int, until_ms: int,
                 sites: Sequence[str] = ()) -> list[DeliveryRow]:
        self._q("delivery")
        return [r for r in self.delivery_rows
                if since_ms <= r.hour_ms < until_ms and _in(r.site, sites)]

    def rejections(self, since_ms: int, until_ms: int,
                   sites: Sequence[str] = ()) -> list[RejectionRow]:
        self._q("rejections")
        return []

    def queries(self) -> int:
        return self.n_queries

    def close(self) -> None:
        pass
