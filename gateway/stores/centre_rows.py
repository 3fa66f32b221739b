"""From what a store answers to the centre's rows: pure functions every reader shares.

Each store hands back *samples*, one value of one field of one point: (site, key,
time, field, value), where ``key`` is the point's second tag (``device``, or
``gateway`` for gateway points). The readers differ only in how they fetch them;
grouping samples into points, keeping "the latest point" (the fields written at
the newest time, not the newest value of every field: a last will writes
``online`` alone) and turning fields into rows happens here, once, so the three
store kinds cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from protocols.ids import ID_RE

from .centre import DeliveryRow, DevicePoint, GatewayPoint, RejectionRow, StationPoint
from .reading import Reading

__all__ = ["ID", "RESERVED_DOMAINS", "STRING_FIELDS", "Sample", "check_ids", "delivery_row",
           "device_point", "gateway_point", "latest_of", "latest_strings", "points_of",
           "reading_order", "rejection_row", "station_point"]

#: the id pattern of the wire contract: checked before an id goes into query text
ID = ID_RE  # the one id check (protocols/ids.py: \Z, so no trailing newline gets in)
_NAME = re.compile(r"^[a-z0-9_]{1,64}\Z")

#: string fields per measurement (wire contract, third turn); a store that keeps no
#: strings (VictoriaMetrics) may still answer a series of that name: never a number
STRING_FIELDS: Mapping[str, frozenset[str]] = {
    "device": frozenset({"fw", "board", "update_state", "update_version", "update_reason"}),
    "gateway": frozenset({"version"}),
    "station": frozenset({"board", "sensors", "room", "zone", "note"}),
}
#: measurements that hold no readings, companions aside (see centre.is_reading_measurement)
RESERVED_DOMAINS = ("delivery", "device", "gateway", "rejections", "station")

#: (site, key, time_ms, field, value)
Sample = tuple[str, str, int, str, float]
K = TypeVar("K")
V = TypeVar("V")


def check_ids(values: Sequence[str], what: str = "id") -> list[str]:
    """The ids, unchanged; ValueError for one that could not be in the store (and would
    otherwise go into query text)."""
    for v in values:
        if not ID.match(v) and not _NAME.match(v):
            raise ValueError(f"not a valid {what}: {v!r}")
    return list(values)


def points_of(samples: Iterable[Sample]) -> dict[tuple[str, str, int], dict[str, float]]:
    """(site, key, time) -> {field: value}: samples regrouped into points."""
    out: dict[tuple[str, str, int], dict[str, float]] = {}
    for site, key, t, f, v in samples:
        out.setdefault((site, key, t), {})[f] = v
    return out


def latest_of(samples: Iterable[Sample]) -> dict[tuple[str, str], tuple[int, dict[str, float]]]:
    """(site, key) -> (time, fields) of its newest point: only the fields written at the
    newest time, whatever older points held."""
    out: dict[tuple[str, str], tuple[int, dict[str, float]]] = {}
    for site, key, t, f, v in samples:
        cur = out.get((site, key))
        if cur is None or t > cur[0]:
            out[(site, key)] = (t, {f: v})
        elif t == cur[0]:
            cur[1][f] = v
    return out


def latest_strings(items: Iterable[tuple[K, int, V]]) -> dict[K, V]:
    """key -> the item with the newest time (the strings of the newest ``_info``)."""
    best: dict[K, tuple[int, V]] = {}
    for key, t, value in items:
        cur = best.get(key)
        if cur is None or t > cur[0]:
            best[key] = (t, value)
    return {k: v for k, (_, v) in best.items()}


def _numbers(measurement: str, fields: Mapping[str, float]) -> dict[str, float]:
    strings = STRING_FIELDS.get(measurement, frozenset())
    return {k: float(v) for k, v in fields.items() if k not in strings}


def device_point(site: str, device: str, t: int, fields: Mapping[str, float],
                 strings: Mapping[str, str]) -> DevicePoint:
    known = STRING_FIELDS["device"]
    return DevicePoint(site, device, t, _numbers("device", fields),
                       {k: v for k, v in strings.items() if k in known})


def gateway_point(site: str, gateway: str, t: int, fields: Mapping[str, float],
                  strings: Mapping[str, str]) -> GatewayPoint:
    f = _numbers("gateway", fields)
    return GatewayPoint(site, gateway, t, up=f.get("up", 1.0),
                        broker_connected=f.get("broker_connected", 0.0),
                        buffer_points=f.get("buffer_points", 0.0),
                        buffer_oldest_s=f.get("buffer_oldest_s", 0.0),
                        disk_free_bytes=f.get("disk_free_bytes", 0.0),
                        devices_online=f.get("devices_online", 0.0),
                        uptime_s=f.get("uptime_s", 0.0),
                        interval_s=f.get("interval_s", 30.0) or 30.0,
                        version=strings.get("version", ""))


def station_point(site: str, device: str, t: int, fields: Mapping[str, float],
                  strings: Mapping[str, str]) -> StationPoint:
    f = _numbers("station", fields)
    sensors = tuple(s for s in strings.get("sensors", "").split(",") if s)
    return StationPoint(site, device, t, lat=f.get("lat"), lon=f.get("lon"),
                        deployment=int(f.get("deployment", 0.0)),
                        retired=f.get("retired", 0.0) == 1.0, board=strings.get("board", ""),
                        sensors=sensors, room=strings.get("room", ""),
                        zone=strings.get("zone", ""), note=strings.get("note", ""))


def delivery_row(site: str, device: str, t: int, fields: Mapping[str, float]) -> DeliveryRow:
    def n(k: str) -> int:
        return int(fields.get(k, 0.0))
    return DeliveryRow(site, device, t, n("received"), n("accepted"), n("duplicates"),
                       n("rejected"), n("missing"))


def rejection_row(site: str, device: str, reason: str, t: int,
                  fields: Mapping[str, float]) -> RejectionRow:
    return RejectionRow(site, device, reason, t, int(fields.get("count", 0.0)))


def reading_order(r: Reading) -> tuple[int, str, str, str, str, str]:
    """The order of ``CentreReader.readings``: (time, site, device, sensor, quantity)."""
    return (r.time_ms, r.site, r.device, r.sensor, r.quantity, r.domain)


#: (site, key, time_ms, float fields, string fields): one point as a reader's primitives
#: ``_latest`` and ``_history`` return it, before it becomes a contract row
PointTuple = tuple[str, str, int, dict[str, float], dict[str, str]]
END_MS = 8_000_000_000_000  # year 2223: within every store's time range


class PointsFromPrimitives:
    """The five point questions of :class:`~gateway.stores.centre.CentreReader`, written
    once over two primitives each HTTP reader implements in its own query language:
    ``_latest(measurement, key, sites)`` (the newest point per key) and
    ``_history(measurement, key, sites, since_ms, until_ms)`` (every point, oldest first).
    """

    def _latest(self, measurement: str, key: str, sites: Sequence[str]) -> list[PointTuple]:
        raise NotImplementedError

    def _history(self, measurement: str, key: str, sites: Sequence[str], since_ms: int,
                 until_ms: int) -> list[PointTuple]:
        raise NotImplementedError

    def gateways(self, sites: Sequence[str] = ()) -> list[GatewayPoint]:
        return [gateway_point(*p) for p in self._latest("gateway", "gateway", sites)]

    def devices(self, sites: Sequence[str] = ()) -> list[DevicePoint]:
        return [device_point(*p) for p in self._latest("device", "device", sites)]

    def device_points(self, since_ms: int, until_ms: int,
                      sites: Sequence[str] = ()) -> list[DevicePoint]:
        return [device_point(*p)
                for p in self._history("device", "device", sites, since_ms, until_ms)]

    def stations(self, sites: Sequence[str] = ()) -> list[StationPoint]:
        return [station_point(*p) for p in self._latest("station", "device", sites)]

    def station_history(self, sites: Sequence[str] = (),
                        devices: Sequence[str] = ()) -> list[StationPoint]:
        want = set(check_ids(devices))
        return [station_point(*p) for p in self._history("station", "device", sites, 0, END_MS)
                if not want or p[1] in want]
