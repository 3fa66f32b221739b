"""The fleet inventory's file, schema and a read-only reader (neutral ground).

``devices`` owns the writing side (``devices/inventory.py``: provisioning, ``device
set``, ``retire``); the gateway only reads the file in its ``data_dir`` to write
``station`` points (wire contract, "Stations"), and may not import ``devices``.
Both take the file name and the schema from here, so they cannot drift. The reader
returns plain frozen rows and never writes (``PRAGMA query_only``); it never
creates the file either.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .config import INVENTORY_FILE  # the one place the file name is written

__all__ = ["INVENTORY_FILE", "SCHEMA", "DeviceRow", "InventoryRows", "MetaRow",
           "inventory_stamp", "read_inventory"]


SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    board TEXT NOT NULL,
    sensors TEXT NOT NULL DEFAULT '[]',
    location TEXT NOT NULL DEFAULT '',
    fw_version TEXT NOT NULL DEFAULT '',
    fw_hash TEXT NOT NULL DEFAULT '',
    provisioned_at REAL NOT NULL,
    credential_ref TEXT NOT NULL DEFAULT '',
    retired INTEGER NOT NULL DEFAULT 0,
    retired_at REAL
);
CREATE TABLE IF NOT EXISTS seen (
    device TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    seen_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS device_meta (
    device TEXT NOT NULL,
    at REAL NOT NULL,
    deployment INTEGER NOT NULL,
    lat REAL,
    lon REAL,
    room TEXT NOT NULL DEFAULT '',
    zone TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (device, at)
)
"""


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """A device as provisioned: ``sensors`` are the kinds, in the inventory's order."""

    device: str
    site: str
    board: str
    sensors: tuple[str, ...]
    provisioned_at: float
    retired: bool
    retired_at: float | None


@dataclass(frozen=True, slots=True)
class MetaRow:
    """One recorded metadata change: the full state from ``at`` on."""

    device: str
    at: float
    deployment: int
    lat: float | None
    lon: float | None
    room: str
    zone: str
    note: str


@dataclass(frozen=True, slots=True)
class InventoryRows:
    devices: tuple[DeviceRow, ...]
    meta: tuple[MetaRow, ...]  # by device, then time


def inventory_stamp(path: Path) -> tuple[int, ...]:
    """A cheap fingerprint (two ``stat`` calls): changes when a write commits (WAL mode
    appends to ``-wal``; a checkpoint rewrites the file). Empty when there is no file."""
    out: list[int] = []
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = os.stat(p)
        except OSError:
            continue
        out += [st.st_mtime_ns, st.st_size]
    return tuple(out)


def _kinds(raw: str) -> tuple[str, ...]:
    try:
        items = json.loads(raw)
    except ValueError:
        return ()
    if not isinstance(items, list):
        return ()
    return tuple(str(s["kind"]) for s in items if isinstance(s, dict) and "kind" in s)


def read_inventory(path: Path, timeout_s: float = 5.0) -> InventoryRows | None:
    """Every device and metadata change, or None when the file does not exist (yet).

    Raises ``sqlite3.Error`` on a damaged file; the caller decides what that means.
    """
    if not path.exists():
        return None
    db = sqlite3.connect(path, timeout=timeout_s)
    try:
        db.execute("PRAGMA query_only = ON")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        devices: list[DeviceRow] = []
        meta: list[MetaRow] = []
        if "devices" in tables:
            devices = [DeviceRow(r[0], r[1], r[2], _kinds(r[3]), float(r[4]), bool(r[5]),
                                 None if r[6] is None else float(r[6])) for r in db.execute(
                "SELECT device, site, board, sensors, provisioned_at, retired, retired_at "
                "FROM devices ORDER BY site, device")]
        if "device_meta" in tables:
            meta = [MetaRow(r[0], float(r[1]), int(r[2]), r[3], r[4], r[5], r[6], r[7])
                    for r in db.execute("SELECT device, at, deployment, lat, lon, room, zone, "
                                        "note FROM device_meta ORDER BY device, at")]
        return InventoryRows(tuple(devices), tuple(meta))
    finally:
        db.close()
