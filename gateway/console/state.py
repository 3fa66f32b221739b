"""What the gateway keeps under ``data_dir``, read without ever writing it.

Every SQLite file is opened ``mode=ro`` (URI), read in one short transaction
and closed: the console cannot create, lock for writing or checkpoint the
gateway's files, and a missing file (the gateway never ran) reads as empty.
The gateway's ``/healthz`` is asked over loopback HTTP with a short timeout.
The delivery accounting (tables in ``buffer.sqlite``) is read through the
gateway's own read-only module, :mod:`gateway.delivery_read`, the one that
``livinglab report`` uses, so both show the same numbers.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.accounting.delivery import Gap, HourRow
from gateway.accounting.read import read_gaps, read_hours
from protocols.config import BUFFER_FILE, INVENTORY_FILE, LASTSEEN_FILE
from protocols.jsonstrict import JsonError, loads_strict
from protocols.sqlitefile import open_readonly

__all__ = ["GatewayFiles", "InventoryRow", "Rejection", "SeenRow", "fetch_healthz"]


@dataclass(frozen=True, slots=True)
class InventoryRow:
    device: str
    board: str
    sensors: tuple[str, ...]
    location: str
    fw_version: str
    provisioned_at: float
    retired: bool


@dataclass(frozen=True, slots=True)
class SeenRow:
    device: str
    last_seen: float
    last_telemetry: float | None
    state: str | None
    status_at: float | None
    status: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejection:
    id: int
    at: float
    topic: str
    device: str | None
    reason: str
    detail: str
    payload: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "topic": self.topic, "device": self.device,
                "reason": self.reason, "detail": self.detail, "payload": self.payload}


@contextmanager
def _readonly(path: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection, or None when the file does not exist (or is unreadable)."""
    try:
        con = open_readonly(path, 2.0)
    except sqlite3.Error:
        con = None
    if con is None:
        yield None
        return
    try:
        yield con
    finally:
        con.close()


def _rows(path: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with _readonly(path) as con:
        if con is None:
            return []
        try:
            return list(con.execute(sql, args).fetchall())
        except sqlite3.OperationalError:  # no such table yet (a gateway mid-start)
            return []


class GatewayFiles:
    """The gateway's ``data_dir``, read-only."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    @property
    def exists(self) -> bool:
        return self.data_dir.is_dir()

    def inventory(self) -> list[InventoryRow]:
        rows = _rows(self.data_dir / INVENTORY_FILE,
                     "SELECT device, board, sensors, location, fw_version, provisioned_at, "
                     "retired FROM devices ORDER BY device")
        out = []
        for r in rows:
            try:
                sensors = tuple(str(s.get("kind", "")) for s in json.loads(r[2]))
            except (ValueError, AttributeError):
                sensors = ()
            out.append(InventoryRow(str(r[0]), str(r[1]), sensors, str(r[3]), str(r[4]),
                                    float(r[5]), bool(r[6])))
        return out

    def lastseen(self) -> list[SeenRow]:
        rows = _rows(self.data_dir / LASTSEEN_FILE,
                     "SELECT device, last_seen, last_telemetry, state, status_at, status_json "
                     "FROM devices ORDER BY device")
        out = []
        for r in rows:
            try:  # strict: a NaN or lone surrogate kept by an older gateway must not 500 a page
                status = loads_strict(r[5]) if r[5] else {}
            except JsonError:
                status = {}
            out.append(SeenRow(str(r[0]), float(r[1]), r[2], r[3], r[4],
                               status if isinstance(status, dict) else {}))
        return out

    def rejections(self, *, device: str | None = None, reason: str | None = None,
                   since: float | None = None, limit: int = 200) -> list[Rejection]:
        """The quarantine, newest first, optionally filtered."""
        where: list[str] = []
        args: list[Any] = []
        if device:
            where.append("device = ?")
            args.append(device)
        if reason:
            where.append("reason = ?")
            args.append(reason)
        if since is not None:
            where.append("at >= ?")
            args.append(since)
        sql = ("SELECT id, at, topic, device, reason, detail, payload FROM quarantine"
               + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY id DESC LIMIT ?")
        rows = _rows(self.data_dir / BUFFER_FILE, sql, (*args, limit))
        return [Rejection(int(r[0]), float(r[1]), str(r[2]), r[3], str(r[4]), str(r[5]),
                          bytes(r[6])[:2048].decode("utf-8", "replace")) for r in rows]

    def rejection_counts(self, since_s: float = 86400.0) -> dict[str, int]:
        """device -> rejections over the last ``since_s`` seconds."""
        rows = _rows(self.data_dir / BUFFER_FILE,
                     "SELECT coalesce(device, ''), count(*) FROM quarantine WHERE at >= ? "
                     "GROUP BY 1", (time.time() - since_s,))
        return {str(d): int(n) for d, n in rows}

    def delivery_hours(self, since: float, until: float, device: str | None = None
                       ) -> list[HourRow]:
        """The accounting's hour rows (UTC hours overlapping [since, until)), by device, hour;
        empty when the gateway never ran or predates the accounting."""
        try:
            return read_hours(self.data_dir / BUFFER_FILE, since, until,
                              (device,) if device else ())
        except sqlite3.Error:  # unreadable, or mid-migration: nothing to show this time
            return []

    def delivery_gaps(self, since: float, until: float, device: str) -> list[Gap]:
        """The device's gaps (missing ranges, rejections, reboots) ending in [since, until)."""
        try:
            return read_gaps(self.data_dir / BUFFER_FILE, since, until, (device,))
        except sqlite3.Error:
            return []

    def reasons(self) -> list[str]:
        rows = _rows(self.data_dir / BUFFER_FILE,
                     "SELECT DISTINCT reason FROM quarantine ORDER BY reason")
        return [str(r[0]) for r in rows]


def fetch_healthz(host: str, port: int, timeout: float = 1.0) -> dict[str, Any] | None:
    """The gateway's ``/healthz`` document, or None when it does not answer."""
    if not port:
        return None
    url = f"http://{host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read(65536)
    except urllib.error.HTTPError as exc:  # 503 still carries the document
        body = exc.read(65536)
    except (urllib.error.URLError, OSError, ValueError):
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
