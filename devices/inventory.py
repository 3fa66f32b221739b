"""The fleet inventory: which devices exist, where, with what firmware and credentials.

Stored in SQLite (``<data_dir>/inventory.sqlite``) because provisioning runs as
short CLI processes that may overlap (two technicians flashing at once, a
``retire`` during a ``broker sync``): SQLite gives each write an exclusive
transaction (``BEGIN IMMEDIATE`` + a busy timeout, WAL so readers never block),
survives power loss mid-write, and needs no server. A JSON/TOML file would need
its own locking and atomic-rename dance and would still lose a concurrent write.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from protocols.ids import ID_PATTERN
from protocols.inventory import INVENTORY_FILE, SCHEMA
from protocols.sqlitefile import open_shared

from .errors import DeviceNotFoundError, InventoryError

__all__ = ["ID_PATTERN", "INVENTORY_FILE", "Device", "Inventory", "Meta", "SensorSpec"]
# the file name and schema are shared with the gateway's read-only reader
_SCHEMA = SCHEMA


class SensorSpec(BaseModel):
    """One sensor attached to a device, as written into its ``device.json``.

    I2C sensors name a bus and an address, UART sensors a UART number, pulse
    sensors a pin (the firmware's ``sensors`` entries, docs/device-config.md).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    bus: str = ""
    address: int | None = Field(default=None, ge=0, le=0x7F)
    uart: int | None = Field(default=None, ge=0, le=9)
    pin: int | None = Field(default=None, ge=0, le=255)

    def device_entry(self) -> dict[str, object]:
        """The ``sensors`` entry for ``device.json`` (unset fields left out)."""
        return {k: v for k, v in self.model_dump().items() if v not in (None, "")}


class Device(BaseModel):
    """One inventory row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = Field(pattern=ID_PATTERN)
    site: str = Field(pattern=ID_PATTERN)
    board: str
    sensors: tuple[SensorSpec, ...] = ()
    location: str = ""
    fw_version: str = ""
    fw_hash: str = ""
    provisioned_at: float = Field(default_factory=time.time)
    # Where the device's MQTT secret lives (a path relative to data_dir); the
    # secret itself is never stored in the inventory.
    credential_ref: str = ""
    retired: bool = False
    retired_at: float | None = None


class Meta(BaseModel):
    """A device's metadata from ``at`` on (one dated row per change, the full state).

    ``deployment`` counts the places the device has been: a new location or room
    starts a new one, so a series never joins two places.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = Field(pattern=ID_PATTERN)
    at: float
    deployment: int = Field(ge=1)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    room: str = ""
    zone: str = ""
    note: str = ""

    def place(self) -> tuple[float | None, float | None, str]:
        return (self.lat, self.lon, self.room)


def _row_to_device(row: sqlite3.Row) -> Device:
    data = dict(row)
    data["sensors"] = json.loads(data["sensors"])
    data["retired"] = bool(data["retired"])
    return Device.model_validate(data)


class Inventory:
    """The inventory database; every write is one exclusive transaction."""

    def __init__(self, path: Path, timeout_s: float = 30.0) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # another process may be creating it this instant (two boards flashed at once)
            self._db = open_shared(path, timeout_s)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA synchronous=FULL")
            with self._write():
                for stmt in _SCHEMA.split(";"):
                    self._db.execute(stmt)
        except sqlite3.Error as exc:
            raise InventoryError(f"inventory {path} cannot be opened: {exc} "
                                 "(check the data_dir in the config)") from None

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> Inventory:
        """The inventory kept in a config's ``[gateway] data_dir``."""
        return cls(data_dir / INVENTORY_FILE)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Inventory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def upsert(self, dev: Device) -> None:
        """Add a device, or replace its row when it is re-provisioned (un-retiring it)."""
        row = dev.model_dump()
        row["sensors"] = json.dumps([s.model_dump() for s in dev.sensors])
        row["retired"] = int(dev.retired)
        cols = ", ".join(row)
        marks = ", ".join(f":{c}" for c in row)
        try:
            with self._write():
                self._db.execute(
                    f"INSERT OR REPLACE INTO devices ({cols}) VALUES ({marks})", row)
        except sqlite3.Error as exc:
            raise InventoryError(f"inventory {self.path} write failed: {exc}") from None

    def get(self, device: str) -> Device:
        """The row of ``device``, or :class:`DeviceNotFoundError`."""
        row = self._db.execute("SELECT * FROM devices WHERE device = ?", (device,)).fetchone()
        if row is None:
            raise DeviceNotFoundError(device)
        return _row_to_device(row)

    def find(self, device: str) -> Device | None:
        """The row of ``device`` or None."""
        try:
            return self.get(device)
        except DeviceNotFoundError:
            return None

    def list(self, include_retired: bool = True) -> list[Device]:
        """Every device, sorted by site then id."""
        q = "SELECT * FROM devices"
        if not include_retired:
            q += " WHERE retired = 0"
        rows = self._db.execute(q + " ORDER BY site, device").fetchall()
        return [_row_to_device(r) for r in rows]

    def retire(self, device: str, now: float | None = None) -> Device:
        """Mark ``device`` retired (its row stays for the record) and return the new row."""
        with self._write():
            cur = self._db.execute(
                "UPDATE devices SET retired = 1, retired_at = ? WHERE device = ?",
                (time.time() if now is None else now, device))
            if cur.rowcount == 0:
                raise DeviceNotFoundError(device)
        return self.get(device)

    def record_seen(self, device: str, state: str, at: float) -> None:
        """Remember when a device was last seen and in which state.

        A retained status carries no time, so "last seen" is when a command of
        ours saw the device online (or saw it go offline); kept here so it
        outlives the command.
        """
        with self._write():
            self._db.execute("INSERT OR REPLACE INTO seen (device, state, seen_at) "
                             "VALUES (?, ?, ?)", (device, state, at))

    def seen(self) -> dict[str, tuple[str, float]]:
        """device -> (last state seen, when), for devices ever seen."""
        rows = self._db.execute("SELECT device, state, seen_at FROM seen").fetchall()
        return {r["device"]: (r["state"], r["seen_at"]) for r in rows}

    # -- metadata with history ------------------------------------------------------------
    def set_meta(self, device: str, changes: dict[str, object], now: float | None = None
                 ) -> Meta:
        """Record a change of ``device``'s metadata (any id, in the inventory or not);
        keys of ``changes``: lat, lon, room, zone, note. Returns the new state."""
        at = time.time() if now is None else now
        with self._write():
            prev = self._latest_meta(device)
            base = prev.model_dump() if prev else {"device": device, "deployment": 1}
            if prev is not None and at <= prev.at:
                at = prev.at + 1e-3  # keep the history strictly ordered
            new = Meta.model_validate({**base, **changes, "at": at})
            if prev is not None and new.place() != prev.place():
                new = new.model_copy(update={"deployment": prev.deployment + 1})
            self._db.execute(
                "INSERT INTO device_meta (device, at, deployment, lat, lon, room, zone, note) "
                "VALUES (:device, :at, :deployment, :lat, :lon, :room, :zone, :note)",
                new.model_dump())
        return new

    def _latest_meta(self, device: str) -> Meta | None:
        row = self._db.execute("SELECT * FROM device_meta WHERE device = ? ORDER BY at DESC "
                               "LIMIT 1", (device,)).fetchone()
        return Meta.model_validate(dict(row)) if row else None

    def meta_history(self, device: str | None = None) -> tuple[Meta, ...]:
        """Every recorded change, by device then date."""
        q = "SELECT * FROM device_meta"
        args: tuple[str, ...] = ()
        if device is not None:
            q, args = q + " WHERE device = ?", (device,)
        rows = self._db.execute(q + " ORDER BY device, at", args).fetchall()
        return tuple(Meta.model_validate(dict(r)) for r in rows)

    def current_meta(self) -> dict[str, Meta]:
        """device -> its latest metadata."""
        out: dict[str, Meta] = {}
        for m in self.meta_history():
            out[m.device] = m
        return out
