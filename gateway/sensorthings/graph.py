"""The small entity sets, built from stations and the latest values: the mapping.

Things, Locations, HistoricalLocations, Sensors, ObservedProperties,
Datastreams and FeaturesOfInterest are a few per device, so they are built in
memory from two bounded reader calls (``station_history`` and
``latest_values``) and kept for a few seconds (:class:`GraphCache`).
Observations are never held here: :mod:`.observations` streams them.

Datastreams are the union of what stations declare (each kind's quantities,
:mod:`.catalogue`) and every series with a value in the reader's lookback.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from protocols.quantities import Registry

from ..opendata.units import ucum_of
from ..stores.centre import CentreReader, StationPoint
from ..stores.reading import Reading
from . import ids
from .catalogue import kind_of, quantity_def

__all__ = ["NAV", "Deployment", "Ent", "Graph", "GraphCache", "build_graph"]

OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
UCUM_DEF = "http://unitsofmeasure.org/ucum.html#"
GEOJSON = "application/geo+json"

#: entity set -> navigation property -> (target set, is a collection)
NAV: dict[str, dict[str, tuple[str, bool]]] = {
    "Things": {"Locations": ("Locations", True), "HistoricalLocations":
               ("HistoricalLocations", True), "Datastreams": ("Datastreams", True)},
    "Locations": {"Things": ("Things", True), "HistoricalLocations":
                  ("HistoricalLocations", True)},
    "HistoricalLocations": {"Thing": ("Things", False), "Locations": ("Locations", True)},
    "Datastreams": {"Thing": ("Things", False), "Sensor": ("Sensors", False),
                    "ObservedProperty": ("ObservedProperties", False),
                    "Observations": ("Observations", True)},
    "Sensors": {"Datastreams": ("Datastreams", True)},
    "ObservedProperties": {"Datastreams": ("Datastreams", True)},
    "Observations": {"Datastream": ("Datastreams", False),
                     "FeatureOfInterest": ("FeaturesOfInterest", False)},
    "FeaturesOfInterest": {"Observations": ("Observations", True)},
}


@dataclass
class Ent:
    """One entity: its set, id and JSON properties (no ``@iot`` keys, no links)."""

    set: str
    id: str
    props: dict[str, Any]


@dataclass(frozen=True)
class Deployment:
    """One deployment of a device: from its first station point to the next deployment."""

    site: str
    device: str
    number: int
    since_ms: int
    until_ms: int | None
    last: StationPoint

    @property
    def id(self) -> str:
        return ids.deployment_id(self.site, self.device, self.number)

    @property
    def point(self) -> dict[str, Any] | None:
        if self.last.lat is None or self.last.lon is None:
            return None
        return {"type": "Point", "coordinates": [self.last.lon, self.last.lat]}


@dataclass
class Graph:
    things: dict[str, Ent] = field(default_factory=dict)
    locations: dict[str, Ent] = field(default_factory=dict)
    hlocations: dict[str, Ent] = field(default_factory=dict)
    sensors: dict[str, Ent] = field(default_factory=dict)
    obsprops: dict[str, Ent] = field(default_factory=dict)
    datastreams: dict[str, Ent] = field(default_factory=dict)
    fois: dict[str, Ent] = field(default_factory=dict)
    #: (site, device) -> its deployments, oldest first
    deployments: dict[tuple[str, str], list[Deployment]] = field(default_factory=dict)
    #: datastream id -> its store domain (measurement)
    domain: dict[str, str] = field(default_factory=dict)
    #: datastream id -> the time of its newest value (within the reader's lookback)
    newest: dict[str, int] = field(default_factory=dict)

    def by_set(self, name: str) -> dict[str, Ent]:
        return {"Things": self.things, "Locations": self.locations,
                "HistoricalLocations": self.hlocations, "Sensors": self.sensors,
                "ObservedProperties": self.obsprops, "Datastreams": self.datastreams,
                "FeaturesOfInterest": self.fois}[name]

    def foi_of(self, site: str, device: str, time_ms: int) -> str:
        """The deployment a reading at ``time_ms`` belongs to (the first one before any)."""
        deps = self.deployments.get((site, device))
        if not deps:
            return ids.deployment_id(site, device, 0)
        i = bisect.bisect_right([d.since_ms for d in deps], time_ms) - 1
        return deps[max(i, 0)].id

    def deployment(self, foi_id: str) -> Deployment | None:
        key = ids.parse_deployment(foi_id)
        if key is None:
            return None
        for d in self.deployments.get((key[0], key[1]), []):
            if d.number == key[2]:
                return d
        return None

    def one(self, ent: Ent, nav: str) -> Ent | None:
        """The single entity ``nav`` points at (Observation -> Datastream / FeatureOfInterest
        included), None for a collection or nothing."""
        if ent.set == "Observations":
            o = ids.parse_observation(ent.id)
            if o is None:
                return None
            if nav == "Datastream":
                return self.datastreams.get(str(o.datastream))
            if nav == "FeatureOfInterest":
                return self.fois.get(self.foi_of(o.datastream.site, o.datastream.device,
                                                 o.time_ms))
            return None
        target = NAV.get(ent.set, {}).get(nav)
        if target is None or target[1]:
            return None
        found = self.related(ent, nav)
        return found[0] if found else None

    def related(self, ent: Ent, nav: str) -> list[Ent]:
        """The entities ``nav`` of ``ent`` points at (not Observations: see observations)."""
        p = ent.props
        if ent.set == "Things":
            site, dev = p["properties"]["site"], p["name"]
            deps = [d for d in self.deployments.get((site, dev), []) if d.point]
            if nav == "Locations":
                return [self.locations[deps[-1].id]] if deps else []
            if nav == "HistoricalLocations":
                return [self.hlocations[d.id] for d in reversed(deps)]
            return [d for d in self.datastreams.values()
                    if d.id.startswith(ent.id + ".")]
        if ent.set in ("Locations", "HistoricalLocations"):
            site, dev, _ = ids.parse_deployment(ent.id) or ("", "", 0)
            thing = self.things.get(ids.thing_id(site, dev))
            if nav in ("Things", "Thing"):
                return [thing] if thing else []
            other = self.hlocations if nav == "HistoricalLocations" else self.locations
            return [other[ent.id]] if ent.id in other else []
        if ent.set == "Datastreams":
            ds = ids.parse_datastream(ent.id)
            assert ds is not None
            target = {"Thing": self.things.get(ids.thing_id(ds.site, ds.device)),
                      "Sensor": self.sensors.get(ds.sensor),
                      "ObservedProperty": self.obsprops.get(ds.quantity)}.get(nav)
            return [target] if target else []
        if ent.set in ("Sensors", "ObservedProperties"):
            pos = 2 if ent.set == "Sensors" else 3
            return [d for d in self.datastreams.values() if d.id.split(".")[pos] == ent.id]
        return []


def _deployments(history: Iterable[StationPoint]) -> dict[tuple[str, str], list[Deployment]]:
    groups: dict[tuple[str, str], dict[int, list[StationPoint]]] = {}
    for s in history:
        groups.setdefault((s.site, s.device), {}).setdefault(s.deployment, []).append(s)
    out: dict[tuple[str, str], list[Deployment]] = {}
    for key, by_dep in groups.items():
        firsts = sorted((min(p.time_ms for p in pts), n) for n, pts in by_dep.items())
        deps = []
        for i, (since, n) in enumerate(firsts):
            pts = sorted(by_dep[n], key=lambda p: p.time_ms)
            located = [p for p in pts if p.lat is not None and p.lon is not None]
            last = located[-1] if located else pts[-1]
            until = firsts[i + 1][0] if i + 1 < len(firsts) else None
            deps.append(Deployment(key[0], key[1], n, since, until, last))
        out[key] = deps
    return out


def _thing(site: str, device: str, st: StationPoint | None) -> Ent:
    props: dict[str, Any] = {"site": site}
    desc = f"device {device} of site {site}"
    if st is not None:
        props.update(board=st.board, room=st.room, zone=st.zone, note=st.note,
                     deployment=st.deployment, retired=st.retired, sensors=list(st.sensors))
        where = ", ".join(x for x in (st.room, st.zone) if x)
        desc = f"{st.board or 'device'} {device} of site {site}" + (f" ({where})" if where
                                                                    else "")
    return Ent("Things", ids.thing_id(site, device),
               {"name": device, "description": desc, "properties": props})


def _location(d: Deployment, hist: bool) -> Ent:
    if hist:
        return Ent("HistoricalLocations", d.id, {"time": d.since_ms})
    where = ", ".join(x for x in (d.last.room, d.last.zone) if x)
    return Ent("Locations", d.id, {
        "name": f"{d.device} deployment {d.number}",
        "description": f"where {d.device} of {d.site} stood" + (f": {where}" if where else ""),
        "encodingType": GEOJSON, "location": d.point})


def _foi(site: str, device: str, d: Deployment | None, n: int) -> Ent:
    return Ent("FeaturesOfInterest", ids.deployment_id(site, device, n), {
        "name": f"{device} deployment {n}",
        "description": f"the air around {device} of {site}, deployment {n}",
        "encodingType": GEOJSON, "feature": d.point if d else None})


def _datastream(ds: ids.DatastreamId, registry: Registry) -> Ent:
    unit = registry.unit_of(ds.quantity) or ""
    return Ent("Datastreams", str(ds), {
        "name": f"{ds.quantity} of {ds.device} ({ds.sensor})",
        "description": f"{quantity_def(ds.quantity)[0]} measured by the {ds.sensor} of "
                       f"{ds.device} at {ds.site}",
        "observationType": OM_MEASUREMENT,
        "unitOfMeasurement": {"name": unit, "symbol": ucum_of(unit),
                              "definition": UCUM_DEF + ucum_of(unit)}})


def build_graph(history: Iterable[StationPoint], latest: Iterable[Reading],
                registry: Registry) -> Graph:
    g = Graph(deployments=_deployments(history))
    series: dict[ids.DatastreamId, str] = {}
    for (site, dev), deps in g.deployments.items():
        for kind in deps[-1].last.sensors:
            for q in kind_of(kind).quantities:
                series[ids.DatastreamId(site, dev, kind, q)] = registry.domain_of(q) or ""
    for r in latest:
        key = ids.DatastreamId(r.site, r.device, r.sensor, r.quantity)
        series[key] = r.domain
        g.newest[str(key)] = max(r.time_ms, g.newest.get(str(key), r.time_ms))
    keys = set(g.deployments) | {(d.site, d.device) for d in series}
    for site, dev in sorted(keys):
        deps = g.deployments.get((site, dev), [])
        t = _thing(site, dev, deps[-1].last if deps else None)
        g.things[t.id] = t
        for d in deps:
            g.fois[d.id] = _foi(site, dev, d, d.number)
            if d.point:
                g.locations[d.id] = _location(d, False)
                g.hlocations[d.id] = _location(d, True)
        if not deps:
            f = _foi(site, dev, None, 0)
            g.fois[f.id] = f
    for ds, domain in sorted(series.items()):
        e = _datastream(ds, registry)
        g.datastreams[e.id] = e
        g.domain[e.id] = domain or registry.domain_of(ds.quantity) or ""
        k = kind_of(ds.sensor)
        g.sensors.setdefault(ds.sensor, Ent("Sensors", ds.sensor, {
            "name": ds.sensor, "description": k.description,
            "encodingType": "text/html" if k.datasheet else "text/plain",
            "metadata": k.datasheet or k.description}))
        desc, definition = quantity_def(ds.quantity)
        g.obsprops.setdefault(ds.quantity, Ent("ObservedProperties", ds.quantity, {
            "name": ds.quantity, "definition": definition, "description": desc}))
    return g


class GraphCache:
    """The graph for ``ttl_s`` seconds: one rebuild (two reader calls) per period."""

    def __init__(self, reader: CentreReader, registry: Registry, ttl_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.reader, self.registry, self.ttl_s, self.clock = reader, registry, ttl_s, clock
        self._lock = threading.Lock()
        self._graph: Graph | None = None
        self._at = 0.0

    def get(self) -> Graph:
        with self._lock:
            now = self.clock()
            if self._graph is None or now - self._at > self.ttl_s:
                self._graph = build_graph(self.reader.station_history(),
                                          self.reader.latest_values(), self.registry)
                self._at = now
            return self._graph
