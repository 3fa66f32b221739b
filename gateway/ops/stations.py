"""``station`` points: where each device of the site stands, from the inventory
(wire contract, "Stations" and "Stations, in detail").

Pure part: :func:`station_points` turns the inventory's rows into one point per
recorded change, at the time of that change (provisioning, each ``device set``,
retirement), each carrying the full state at that time, plus, when asked, the
current state at ``now``. Board and sensors have no history in the inventory, so
every point carries the current ones. Thin part: :class:`StationWatcher` reads
the inventory at start, then only when its file changed (two ``stat`` calls per
poll), and every ``REFRESH_S`` for the current state again; it remembers which
change points it has buffered this run, so a change writes only its new points.
A restart writes the history again with the same timestamps, which the store
keeps once.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from pathlib import Path

from protocols.inventory import (
    INVENTORY_FILE,
    DeviceRow,
    InventoryRows,
    MetaRow,
    inventory_stamp,
    read_inventory,
)
from protocols.lineprotocol import Point, clean_string, make_point, with_info

__all__ = ["POLL_S", "REFRESH_S", "StationWatcher", "state_at", "station_points"]

POLL_S = 10.0  # a change reaches the buffer within this (the contract allows 30 s)
REFRESH_S = 24 * 3600.0  # the current state again, so retention never loses it


def state_at(dev: DeviceRow, meta: list[MetaRow], at: float) -> dict[str, float | str]:
    """The ``station`` fields of ``dev`` at time ``at``; ``meta`` sorted by time."""
    i = bisect.bisect_right([m.at for m in meta], at)
    m = meta[i - 1] if i else None
    fields: dict[str, float | str] = {
        "board": clean_string(dev.board), "sensors": clean_string(",".join(dev.sensors)),
        "deployment": float(m.deployment if m else 1),
        "retired": 1.0 if dev.retired and dev.retired_at is not None and dev.retired_at <= at
        else 0.0,
        "room": clean_string(m.room) if m else "", "zone": clean_string(m.zone) if m else "",
        "note": clean_string(m.note) if m else ""}
    if m is not None and m.lat is not None and m.lon is not None:
        fields["lat"], fields["lon"] = float(m.lat), float(m.lon)
    return fields


def _changes(dev: DeviceRow, meta: list[MetaRow]) -> list[float]:
    times = {dev.provisioned_at, *(m.at for m in meta)}
    if dev.retired and dev.retired_at is not None:
        times.add(dev.retired_at)
    return sorted(times)


def station_points(rows: InventoryRows, site: str, now: float | None) -> list[Point]:
    """History points of every device of ``site`` (and the current state at ``now``
    unless None), each followed by its ``station_info`` companion."""
    by_dev: dict[str, list[MetaRow]] = {}
    for m in rows.meta:
        by_dev.setdefault(m.device, []).append(m)
    out: list[Point] = []
    for dev in rows.devices:
        if dev.site != site:
            continue
        meta = by_dev.get(dev.device, [])
        times = _changes(dev, meta) + ([] if now is None else [now])
        tags = {"site": site, "device": dev.device}
        for at in times:
            out.extend(with_info(make_point("station", tags, state_at(dev, meta, at),
                                            round(at * 1000.0))))
    return out


class StationWatcher:
    """Decides what to buffer when; call :meth:`due` from a worker thread."""

    def __init__(self, data_dir: Path, site: str) -> None:
        self.path = data_dir / INVENTORY_FILE
        self.site = site
        self._stamp: tuple[int, ...] | None = None
        self._refreshed = float("-inf")
        self._written: set[tuple[str, int]] = set()
        self._pending: tuple[tuple[int, ...], bool, float] = ((), False, 0.0)

    def due(self, now: float) -> list[Point]:
        """The points to buffer now (empty when nothing changed). Call :meth:`written`
        once they are in the buffer; until then they come again."""
        stamp = inventory_stamp(self.path)
        refresh = now - self._refreshed >= REFRESH_S
        if stamp == self._stamp and not refresh:
            return []
        rows = read_inventory(self.path)
        if rows is None:
            self._stamp = stamp
            return []
        pts = station_points(rows, self.site, now if refresh else None)
        self._pending = (stamp, refresh, now)
        return [p for p in pts if (dict(p.tags)["device"], p.time_ms) not in self._written]

    def written(self, points: Iterable[Point]) -> None:
        """The points :meth:`due` returned are in the buffer."""
        stamp, refresh, now = self._pending
        self._stamp = stamp
        if refresh:
            self._refreshed = now
        self._written.update((dict(p.tags)["device"], p.time_ms) for p in points
                             if p.measurement == "station")
