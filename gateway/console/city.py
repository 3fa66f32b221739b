"""The city console's pages as pure functions of one snapshot of the shared store.

The city scope reads nothing but the store (interfaces, "City scope"). One
:class:`Snapshot` holds what the derived states need, for every site at once:
the latest ``gateway``, ``device`` and ``station`` points, each device's latest
reading time and the ``delivery`` points of the last 24 h. The states come from
:func:`gateway.stores.states.device_states`, the function ``livinglab alerts``
and SensorThings call too, so the three never disagree about a device. Everything
here is pure: :mod:`gateway.console.city_model` fetches and caches, this module
shapes the rows the templates and the JSON API show.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from protocols.quantities import Registry

from ..accounting.delivery import capture
from ..stores.centre import DeliveryRow, DevicePoint, GatewayPoint, StationPoint
from ..stores.reading import Reading
from ..stores.states import DEVICE_STATES, DeviceState, gateway_state

__all__ = ["PAGE_SIZE", "SHOWN_STATES", "Snapshot", "device_doc", "device_row", "geojson",
           "page_of", "site_rows", "site_summaries", "values_of"]

#: devices a site page shows at once (interfaces: ``?page=``, 100 devices a page)
PAGE_SIZE = 100
#: the states in the order a person reads them (the rules' order is DEVICE_STATES)
SHOWN_STATES = ("online", "delayed", "silent", "offline", "never-seen", "unknown", "retired")
assert set(SHOWN_STATES) == set(DEVICE_STATES)
COUNTS = ("received", "accepted", "duplicates", "rejected", "missing")
Key = tuple[str, str]


@dataclass(frozen=True)
class Snapshot:
    """What the store said at ``at_ms`` about the sites shown."""

    at_ms: int
    sites: tuple[str, ...] = ()
    gateways: tuple[GatewayPoint, ...] = ()
    devices: Mapping[Key, DevicePoint] = field(default_factory=dict)
    stations: Mapping[Key, StationPoint] = field(default_factory=dict)
    latest: Mapping[Key, int] = field(default_factory=dict)
    states: Mapping[Key, DeviceState] = field(default_factory=dict)
    #: (site, device) -> its delivery points of the last 24 h, oldest first
    delivery: Mapping[Key, tuple[DeliveryRow, ...]] = field(default_factory=dict)

    @cached_property
    def by_site(self) -> dict[str, list[Key]]:
        """site -> its devices, sorted by id (computed once per snapshot)."""
        out: dict[str, list[Key]] = {}
        for k in sorted(self.states):
            out.setdefault(k[0], []).append(k)
        return out

    def keys_of(self, site: str) -> list[Key]:
        """The site's devices, sorted by id."""
        return self.by_site.get(site, [])

    @cached_property
    def site_delivery(self) -> dict[str, dict[str, Any] | None]:
        """site -> its delivery counts summed over 24 h (None without a point)."""
        rows: dict[str, list[DeliveryRow]] = {}
        for k, rs in self.delivery.items():
            rows.setdefault(k[0], []).extend(rs)
        return {site: _counts(r) for site, r in rows.items()}

    @cached_property
    def site_gateways(self) -> dict[str, list[GatewayPoint]]:
        out: dict[str, list[GatewayPoint]] = {}
        for g in self.gateways:
            out.setdefault(g.site, []).append(g)
        return out


def _counts(rows: Iterable[DeliveryRow]) -> dict[str, Any] | None:
    """The contract's counts summed, with capture = accepted / (accepted + rejected +
    missing); None when there is no delivery point at all (nothing to say)."""
    sums = [0] * len(COUNTS)
    seen = False
    for r in rows:
        seen = True
        for i, n in enumerate((r.received, r.accepted, r.duplicates, r.rejected, r.missing)):
            sums[i] += n
    if not seen:
        return None
    doc: dict[str, Any] = dict(zip(COUNTS, sums, strict=True))
    doc["capture"] = round(capture(doc["accepted"], doc["rejected"], doc["missing"]), 6)
    return doc


def _gateway_json(g: GatewayPoint, now_ms: int) -> dict[str, Any]:
    return {"gateway": g.gateway, "state": gateway_state(g, now_ms),
            "last_seen": g.time_ms / 1000, "buffer_points": g.buffer_points,
            "buffer_oldest_s": g.buffer_oldest_s, "disk_free_bytes": g.disk_free_bytes,
            "broker_connected": g.broker_connected == 1.0, "uptime_s": g.uptime_s,
            "devices_online": g.devices_online, "version": g.version}


def _site_state(gateways: Sequence[dict[str, Any]]) -> str:
    """``online`` when any gateway of the site is; a site no gateway ever spoke for is down."""
    return "online" if any(g["state"] == "online" for g in gateways) else "down"


def site_summaries(snap: Snapshot, alerts: Sequence[Mapping[str, Any]] = ()
                   ) -> list[dict[str, Any]]:
    """``/api/sites``: per site its gateways, a count for every state, the 24 h capture
    (None without delivery points) and how many alerts fire for it."""
    out = []
    for site in snap.sites:
        gws = sorted((_gateway_json(g, snap.at_ms) for g in snap.site_gateways.get(site, ())),
                     key=lambda g: str(g["gateway"]))
        counts = dict.fromkeys(SHOWN_STATES, 0)
        for key in snap.keys_of(site):
            counts[snap.states[key]] += 1
        total = snap.site_delivery.get(site)
        out.append({"site": site, "state": _site_state(gws), "gateways": gws,
                    "devices": counts, "device_count": sum(counts.values()),
                    "capture_24h": total["capture"] if total else None,
                    "alerts": sum(1 for a in alerts if a.get("site") == site)})
    return out


def values_of(readings: Iterable[Reading], registry: Registry
              ) -> dict[Key, dict[str, dict[str, Any]]]:
    """(site, device) -> quantity -> the newest value over its sensors, with its unit."""
    out: dict[Key, dict[str, dict[str, Any]]] = {}
    for r in readings:
        per = out.setdefault((r.site, r.device), {})
        old = per.get(r.quantity)
        if old is None or r.time_ms > old["time_ms"]:
            per[r.quantity] = {"value": r.value, "unit": registry.unit_of(r.quantity) or "",
                               "time_ms": r.time_ms, "domain": r.domain}
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def _update(strings: Mapping[str, str]) -> dict[str, str] | None:
    version, state = strings.get("update_version"), strings.get("update_state")
    if not version or not state:
        return None
    return {"version": version[:40], "state": state[:20],
            "reason": strings.get("update_reason", "")[:200]}


def _where(s: StationPoint | None) -> str:
    """Room and zone in words (the gateway scope's ``location`` column)."""
    if s is None:
        return ""
    return " · ".join(p for p in (s.room, s.zone) if p)


def device_row(snap: Snapshot, key: Key, values: Mapping[str, dict[str, Any]] | None = None
               ) -> dict[str, Any]:
    """One device as the fleet page shows it: the gateway scope's row plus ``site``."""
    d, s = snap.devices.get(key), snap.stations.get(key)
    strings = d.strings if d is not None else {}
    seen = [t for t in ((d.time_ms if d else None), snap.latest.get(key)) if t is not None]
    dl = _counts(snap.delivery.get(key, ()))
    fw = strings.get("fw")
    return {
        "site": key[0], "device": key[1], "state": snap.states.get(key, "never-seen"),
        "board": (s.board if s is not None else "") or strings.get("board", ""),
        "firmware": fw or "", "fw": fw, "update": _update(strings),
        "location": _where(s),
        "lat": s.lat if s is not None else None, "lon": s.lon if s is not None else None,
        "last_seen": max(seen) / 1000 if seen else None,
        "values": {q: {k: v for k, v in doc.items() if k != "domain"}
                   for q, doc in (values or {}).items()},
        "rejected_24h": dl["rejected"] if dl else 0,
        "delivery_24h": dl,
    }


def site_rows(snap: Snapshot, site: str, values: Mapping[Key, dict[str, dict[str, Any]]],
              state: str = "") -> list[dict[str, Any]]:
    """Every device of the site (those in ``state`` when given), sorted by id."""
    return [device_row(snap, k, values.get(k)) for k in snap.keys_of(site)
            if not state or snap.states[k] == state]


def page_of(rows: Sequence[dict[str, Any]], page: int) -> tuple[list[dict[str, Any]], int]:
    """(the rows of page ``page`` counted from 1, clamped; how many pages there are)."""
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    return list(rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]), pages


def _per_hour(rows: Sequence[DeliveryRow], now_ms: int) -> list[dict[str, Any]]:
    """The last 24 whole UTC hours and the current one; an hour without a point has
    zero counts and capture None (as the gateway scope shows it)."""
    got = {r.hour_ms: r for r in rows}
    first = (now_ms // 3_600_000 - 24) * 3_600_000
    out = []
    for h in range(first, first + 25 * 3_600_000, 3_600_000):
        row = got.get(h)
        counts = _counts([row]) if row is not None else {**dict.fromkeys(COUNTS, 0),
                                                         "capture": None}
        out.append({"hour_ms": h, **(counts or {})})
    return out


def device_doc(snap: Snapshot, key: Key, values: Mapping[str, dict[str, Any]],
               rejections: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The device page: its row, status fields, station metadata, delivery per hour and
    the rejections by reason per hour (the store keeps counts, not the messages)."""
    d, s = snap.devices.get(key), snap.stations.get(key)
    status: dict[str, Any] = {}
    if d is not None:
        status.update({k: (int(v) if float(v).is_integer() else v)
                       for k, v in d.fields.items()})
        status.update({k: v for k, v in d.strings.items() if not k.startswith("update_")})
    row = device_row(snap, key, values)
    meta = None
    if s is not None:
        where = f"{s.lat:.5f}, {s.lon:.5f}" if s.lat is not None and s.lon is not None else ""
        meta = {"board": s.board, "sensors": list(s.sensors), "location": where,
                "room": s.room, "zone": s.zone, "note": s.note, "deployment": s.deployment,
                "retired": s.retired, "changed_at": s.time_ms / 1000}
    return {**row, "status": status, "status_at": d.time_ms / 1000 if d else None,
            "charts": {q: {"value": v["value"], "unit": v["unit"]} for q, v in values.items()},
            "metadata": meta, "rejections": list(rejections),
            "delivery_per_hour": _per_hour(snap.delivery.get(key, ()), snap.at_ms)}


def geojson(snap: Snapshot) -> dict[str, Any]:
    """``/api/stations.geojson``: one Point per station with a location (lon, lat order)."""
    features = []
    for key, s in sorted(snap.stations.items()):
        if s.lat is None or s.lon is None:
            continue
        features.append({
            "type": "Feature", "id": f"{key[0]}.{key[1]}",
            "geometry": {"type": "Point", "coordinates": [s.lon, s.lat]},
            "properties": {"site": key[0], "device": key[1],
                           "state": snap.states.get(key, "never-seen"), "board": s.board,
                           "room": s.room, "zone": s.zone}})
    return {"type": "FeatureCollection", "features": features}
