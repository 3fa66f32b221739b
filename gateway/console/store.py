"""What the console asks the store, through the one reader stack of gateway/stores.

Both scopes read the store through a :class:`~gateway.stores.centre.CentreReader`
(``make_centre_reader``): there is no console-only reader. Two questions:

- :func:`latest`: the newest value of each quantity per device, over the last
  ``window_s`` (the gateway scope shows the last hour; the city the reader's
  ``lookback_s``), the newest over the sensors that measure it;
- :func:`series`: one quantity of one device over a window, averaged per step in
  the store's own query, one line per sensor on one time axis.

:class:`LazyReader` builds the reader on first use and again after a failure: an
``influxdb2`` store whose flavour is probed may be down when the console starts,
and the console must start anyway, say so, and recover by itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from protocols.config import StoreSection
from protocols.quantities import Registry

from ..stores.centre import (
    CentreReader,
    DeliveryRow,
    DevicePoint,
    GatewayPoint,
    RejectionRow,
    SeriesPoint,
    StationPoint,
)
from ..stores.reading import Reading

__all__ = ["Latest", "LazyReader", "align", "describe", "latest", "series"]

#: device -> quantity -> (value, time in ms)
Latest = dict[str, dict[str, tuple[float, int]]]


def describe(store: StoreSection) -> str:
    """The store in words, for the gateway panel's tooltip."""
    if store.kind == "sqlite":
        return f"SQLite store {store.path}"
    where = ", ".join(store.reader_urls)
    if store.kind == "influxdb1":
        return f"InfluxDB 1 database '{store.database}' at {where}"
    return f"{store.kind} store (bucket '{store.bucket}') at {where}"


def latest(reader: CentreReader, site: str, window_s: int | None = None,
           device: str | None = None, now_ms: int | None = None) -> Latest:
    """device -> quantity -> (value, time) of the site's newest values (one query)."""
    since = None if window_s is None else (now_ms or int(time.time() * 1000)) - window_s * 1000
    # the reader looks back only as far as the window: a shorter look, a cheaper query
    rows = reader.latest_values((site,), (device,) if device else (), since)
    out: Latest = {}
    for r in rows:
        if since is not None and r.time_ms < since:
            continue
        per = out.setdefault(r.device, {})
        if r.quantity not in per or r.time_ms > per[r.quantity][1]:
            per[r.quantity] = (r.value, r.time_ms)
    return out


def align(points: Iterable[SeriesPoint]) -> dict[str, Any]:
    """``{"times_ms": [...], "sensors": {sensor: [value or None per time]}}``."""
    per: dict[str, dict[int, float]] = {}
    for p in points:
        per.setdefault(p.sensor or "-", {})[p.time_ms] = p.value
    times = sorted({t for pts in per.values() for t in pts})
    return {"times_ms": times,
            "sensors": {s: [pts.get(t) for t in times] for s, pts in sorted(per.items())}}


def series(reader: CentreReader, registry: Registry, site: str, device: str, quantity: str,
           since_ms: int, until_ms: int, step_ms: int, domain: str = "") -> dict[str, Any]:
    """One quantity of one device averaged per ``step_ms``; a quantity the site does not
    know (and no ``domain`` given) has no readings: nothing is asked."""
    domain = domain or registry.domain_of(quantity) or ""
    if not domain:
        return align(())
    return align(reader.series(site, device, domain, quantity, since_ms, until_ms,
                               max(step_ms, 1000)))


class LazyReader:
    """A CentreReader made on first use, and made again after a failure to make it."""

    def __init__(self, make: Callable[[], CentreReader]) -> None:
        self._make = make
        self._reader: CentreReader | None = None
        self._lock = threading.Lock()
        self._queries = 0

    def _get(self) -> CentreReader:
        with self._lock:
            if self._reader is None:
                self._reader = self._make()
            return self._reader

    def check(self) -> None:
        self._get().check()

    def sites(self) -> list[str]:
        return self._get().sites()

    def gateways(self, sites: Sequence[str] = ()) -> list[GatewayPoint]:
        return self._get().gateways(sites)

    def devices(self, sites: Sequence[str] = ()) -> list[DevicePoint]:
        return self._get().devices(sites)

    def device_points(self, since_ms: int, until_ms: int,
                      sites: Sequence[str] = ()) -> list[DevicePoint]:
        return self._get().device_points(since_ms, until_ms, sites)

    def stations(self, sites: Sequence[str] = ()) -> list[StationPoint]:
        return self._get().stations(sites)

    def station_history(self, sites: Sequence[str] = (),
                        devices: Sequence[str] = ()) -> list[StationPoint]:
        return self._get().station_history(sites, devices)

    def latest_reading_times(self, sites: Sequence[str] = ()) -> dict[tuple[str, str], int]:
        return self._get().latest_reading_times(sites)

    def latest_values(self, sites: Sequence[str] = (), devices: Sequence[str] = (),
                      since_ms: int | None = None) -> list[Reading]:
        return self._get().latest_values(sites, devices, since_ms)

    def readings(self, since_ms: int, until_ms: int, sites: Sequence[str] = (),
                 devices: Sequence[str] = (), domains: Sequence[str] = (),
                 quantities: Sequence[str] = ()) -> Iterator[Reading]:
        return self._get().readings(since_ms, until_ms, sites, devices, domains, quantities)

    def series(self, site: str, device: str, domain: str, quantity: str,
               since_ms: int, until_ms: int, step_ms: int) -> list[SeriesPoint]:
        return self._get().series(site, device, domain, quantity, since_ms, until_ms, step_ms)

    def delivery(self, since_ms: int, until_ms: int,
                 sites: Sequence[str] = ()) -> list[DeliveryRow]:
        return self._get().delivery(since_ms, until_ms, sites)

    def rejections(self, since_ms: int, until_ms: int,
                   sites: Sequence[str] = ()) -> list[RejectionRow]:
        return self._get().rejections(since_ms, until_ms, sites)

    def queries(self) -> int:
        return self._reader.queries() if self._reader is not None else 0

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
