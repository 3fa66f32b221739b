"""The open-data package: a Frictionless Data Package folder.

``readings.csv`` (long format), ``delivery.csv`` (the accounting per device and
hour), ``deployments.csv`` (where each device was, from when to when),
``stations.geojson`` (one Point per device at its current location) and
``datapackage.json`` (Table Schemas with types, units as UCUM codes, descriptions,
and the site's licence from ``[export]``).

Where the devices stand comes from the gateway's inventory when there is one
(an export at a gateway), else from the store's ``station`` points (an export at
the centre, which has no gateway's files; always with ``--site``).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.accounting.delivery import HOUR_S, capture
from gateway.stores import StoreReader, read_chunks
from gateway.stores.centre import StationPoint
from protocols import QUANTITIES
from protocols.config import Config
from protocols.inventory import MetaRow as Meta
from protocols.inventory import read_inventory

from .stream import Progress, stream_readings
from .units import ucum_of, unit_of
from .writers import CsvWriter, TimeFormat, text_cell

__all__ = ["write_package"]

_COUNTS = ("received", "accepted", "duplicates", "rejected", "missing")


def _hour(ms: int) -> str:
    return TimeFormat()(ms)[:19] + "Z"


def write_package(cfg: Config, reader: StoreReader, folder: Path, since_ms: int,
                  until_ms: int, devices: Sequence[str], domains: Sequence[str],
                  progress: Progress, sites: Sequence[str] = ()) -> tuple[int, int, set[str]]:
    """Write every file into ``folder``; returns (readings, delivery rows, devices)."""
    writer = CsvWriter(folder / "readings.csv")
    try:
        n, seen = stream_readings(cfg, reader, writer, since_ms, until_ms, devices, domains,
                                  progress, sites)
    finally:
        writer.close()
    nd, with_delivery = _delivery(cfg, reader, folder / "delivery.csv", since_ms, until_ms,
                                  devices, sites)
    wanted = set(devices) if devices else seen | with_delivery
    history = [] if sites else _history(cfg)
    points = [] if history else _station_points(reader, sites, devices)
    if points:  # no inventory here: where the devices stand, from the store
        points = [p for p in points if p.device in wanted]
        _deployments(folder / "deployments.csv", _metas(points))
        _stations_of_points(folder / "stations.geojson", points)
    else:
        history = [m for m in history if m.device in wanted]
        _deployments(folder / "deployments.csv", history)
        _stations(folder / "stations.geojson", cfg.site, sorted(wanted), history)
    units = sorted({(d, q, unit_of(d, q)) for d in domains for q in _quantities(d)})
    name = cfg.site or "-".join(sites) or "city"
    (folder / "datapackage.json").write_text(
        json.dumps(_descriptor(cfg, name, units, since_ms, until_ms), indent=1) + "\n",
        encoding="utf-8")
    return n, nd, seen


def _station_points(reader: StoreReader, sites: Sequence[str], devices: Sequence[str]
                    ) -> list[StationPoint]:
    """Every ``station`` point of the sites (and devices), oldest first; none from a
    reader that cannot say (a test's fake)."""
    history = getattr(reader, "station_history", None)
    if history is None:
        return []
    return list(history(sites, devices))


def _metas(points: list[StationPoint]) -> list[Meta]:
    """Station points as the inventory's dated metadata rows (by device, then date)."""
    return [Meta(device=p.device, at=p.time_ms / 1000, deployment=max(p.deployment, 1),
                 lat=p.lat, lon=p.lon, room=p.room, zone=p.zone, note=p.note)
            for p in sorted(points, key=lambda p: (p.device, p.time_ms, p.site))]


def _stations_of_points(path: Path, points: list[StationPoint]) -> None:
    """One feature per (site, device) at its latest station point."""
    latest = {(p.site, p.device): p for p in sorted(points, key=lambda p: p.time_ms)}
    fmt = TimeFormat()
    features = []
    for (site, dev), p in sorted(latest.items()):
        geometry = None
        if p.lat is not None and p.lon is not None:
            geometry = {"type": "Point", "coordinates": [p.lon, p.lat]}
        features.append({"type": "Feature", "id": f"{site}.{dev}", "geometry": geometry,
                         "properties": {"site": site, "device": dev,
                                        "deployment": p.deployment,
                                        "since": fmt(p.time_ms), "room": p.room,
                                        "zone": p.zone, "note": p.note, "board": p.board,
                                        "sensors": list(p.sensors), "retired": p.retired}})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                               indent=1) + "\n", encoding="utf-8")


def _quantities(domain: str) -> list[str]:
    return [q.name for q in QUANTITIES.values() if q.domain == domain]


def _delivery(cfg: Config, reader: StoreReader, path: Path, since_ms: int, until_ms: int,
              devices: Sequence[str], sites: Sequence[str] = ()) -> tuple[int, set[str]]:
    """``delivery`` points (one per device and hour) pivoted to one row each."""
    start = since_ms // (HOUR_S * 1000) * HOUR_S * 1000
    chunk = max(cfg.export.chunk_s // HOUR_S, 1) * HOUR_S * 1000 * 24
    n = 0
    seen: set[str] = set()
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("hour", "site", "device", *_COUNTS, "capture"))
        for _, rows in read_chunks(reader, start, until_ms, chunk, ["delivery"], devices,
                                   sites):
            hours: dict[tuple[int, str, str], dict[str, float]] = {}
            for r in rows:
                hours.setdefault((r.time_ms, r.site, r.device), {})[r.quantity] = r.value
            for (t, site, dev), c in sorted(hours.items()):
                counts = [int(c.get(k, 0.0)) for k in _COUNTS]
                w.writerow((_hour(t), site, dev, *counts,
                            f"{capture(counts[1], counts[3], counts[4]):.6f}"))
                seen.add(dev)
                n += 1
    return n, seen


def _history(cfg: Config) -> list[Meta]:
    rows = read_inventory(cfg.inventory_file)  # read-only: an export never writes it
    return list(rows.meta) if rows is not None else []


def _deployments(path: Path, history: list[Meta]) -> None:
    """One row per (device, deployment): from its first change to the next deployment."""
    spans: dict[tuple[str, int], list[Any]] = {}
    for m in history:  # ordered by device, then date
        key = (m.device, m.deployment)
        if key not in spans:
            spans[key] = [m.at, None, m]
        spans[key][2] = m  # the latest metadata of the deployment
    keys = list(spans)
    for a, b in zip(keys, keys[1:], strict=False):
        if a[0] == b[0]:
            spans[a][1] = spans[b][0]
    fmt = TimeFormat()
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("device", "deployment", "start", "end", "lat", "lon", "room", "zone",
                    "note"))
        for (dev, dep), (start, end, m) in spans.items():
            w.writerow((dev, dep, fmt(int(start * 1000)),
                        "" if end is None else fmt(int(end * 1000)),
                        "" if m.lat is None else repr(m.lat), "" if m.lon is None else repr(m.lon),
                        text_cell(m.room), text_cell(m.zone), text_cell(m.note)))


def _stations(path: Path, site: str, devices: list[str], history: list[Meta]) -> None:
    current = {m.device: m for m in history}
    features = []
    for dev in devices:
        m = current.get(dev)
        geometry = None
        if m is not None and m.lat is not None and m.lon is not None:
            geometry = {"type": "Point", "coordinates": [m.lon, m.lat]}
        props: dict[str, Any] = {"site": site, "device": dev}
        if m is not None:
            props.update(deployment=m.deployment, since=TimeFormat()(int(m.at * 1000)),
                         room=m.room, zone=m.zone, note=m.note)
        features.append({"type": "Feature", "id": dev, "geometry": geometry,
                         "properties": props})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                               indent=1) + "\n", encoding="utf-8")


def _f(name: str, type_: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "description": description, **extra}


def _descriptor(cfg: Config, name: str, units: list[tuple[str, str, str]], since_ms: int,
                until_ms: int) -> dict[str, Any]:
    e = cfg.export
    fmt = TimeFormat()
    unit_codes = sorted({u for _, _, u in units if u})
    readings = {"fields": [
        _f("time", "datetime", "when the value was measured, UTC, millisecond precision "
           "(RFC 3339)", format="%Y-%m-%dT%H:%M:%S.%fZ"),
        _f("site", "string", "the living-lab site"),
        _f("device", "string", "device id (see deployments for where it was)"),
        _f("sensor", "string", "sensor kind on the device, e.g. scd41"),
        _f("domain", "string", "measurement family: air, light, flow, ..."),
        _f("quantity", "string", "what was measured, e.g. co2 (see quantities)"),
        _f("value", "number", "the value, in the canonical unit named by the unit column"),
        _f("unit", "string", "canonical unit of the quantity; UCUM code in quantities",
           constraints={"enum": unit_codes} if unit_codes else {}),
    ], "primaryKey": ["time", "device", "sensor", "domain", "quantity"]}
    count = "{count}"
    delivery = {"fields": [
        _f("hour", "datetime", "start of the UTC hour (by the gateway's receive time)",
           format="%Y-%m-%dT%H:%M:%SZ"),
        _f("site", "string", "the living-lab site"),
        _f("device", "string", "device id"),
        _f("received", "integer", "telemetry messages received, duplicates and rejected "
           "ones included", unit=count),
        _f("accepted", "integer", "distinct (device, boot, seq) accepted", unit=count),
        _f("duplicates", "integer", "copies of an already accepted message", unit=count),
        _f("rejected", "integer", "messages rejected as a whole", unit=count),
        _f("missing", "integer", "seq numbers never received (gaps)", unit=count),
        _f("capture", "number", "accepted / (accepted + rejected + missing); 1 when all "
           "are 0", unit="1"),
    ], "primaryKey": ["hour", "device"]}
    deployments = {"fields": [
        _f("device", "string", "device id"),
        _f("deployment", "integer", "1, 2, ...: a new place (location or room) starts a new "
           "one"),
        _f("start", "datetime", "from (UTC)", format="%Y-%m-%dT%H:%M:%S.%fZ"),
        _f("end", "datetime", "until (UTC); empty: still there", format="%Y-%m-%dT%H:%M:%S.%fZ"),
        _f("lat", "number", "WGS 84 latitude", unit="deg"),
        _f("lon", "number", "WGS 84 longitude", unit="deg"),
        _f("room", "string", "room"), _f("zone", "string", "zone"), _f("note", "string", "note"),
    ], "primaryKey": ["device", "deployment"]}
    return {
        "profile": "data-package",
        "name": f"livinglab-{name}",
        "title": f"Living lab {name}: sensor readings and delivery accounting",
        "description": f"Readings from {fmt(since_ms)} to {fmt(until_ms)} (end exclusive), "
                       "all times UTC. Join readings with delivery on device and hour to "
                       "tell 'no data' from 'low values'.",
        "licenses": [{"name": e.licence, "title": e.licence_title, "path": e.licence_url}],
        "created": fmt(int(time.time() * 1000)),
        "quantities": [{"domain": d, "quantity": q, "unit": u, "ucum": ucum_of(u)}
                       for d, q, u in units],
        "resources": [
            _csv("readings", "one row per reading (long format)", readings),
            _csv("delivery", "delivery accounting per device and UTC hour", delivery),
            _csv("deployments", "where each device was, from when to when", deployments),
            {"name": "stations", "path": "stations.geojson", "format": "geojson",
             "mediatype": "application/geo+json", "encoding": "utf-8",
             "description": "one Point feature per device at its current location "
                            "(GeoJSON, WGS 84 lon/lat), with its metadata"},
        ],
    }


def _csv(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "path": f"{name}.csv", "profile": "tabular-data-resource",
            "format": "csv", "mediatype": "text/csv", "encoding": "utf-8",
            "description": description, "schema": schema}
