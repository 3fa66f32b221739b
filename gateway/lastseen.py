"""Device last-seen table: when each device last sent telemetry or status, and its state.

A small SQLite file under ``data_dir`` (``lastseen.sqlite``), separate from the
durable buffer so that reading it (``livinglab devices``) never contends with
the ingest transaction. Updated once per committed batch, after the acks: it is
a convenience view, not part of the delivery guarantee.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

FILE_NAME = "lastseen.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY,
    last_seen REAL NOT NULL,
    last_telemetry REAL,
    state TEXT,
    status_at REAL,
    status_json TEXT
)"""


@dataclass(frozen=True, slots=True)
class Sighting:
    """One message from a device, as the pipeline saw it."""

    device: str
    at: float
    kind: Literal["telemetry", "status"]
    state: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeviceSeen:
    """One row of the table: what ``livinglab devices`` shows."""

    device: str
    last_seen: float
    last_telemetry: float | None
    state: str | None
    status_at: float | None
    status: dict[str, Any]


def lastseen_path(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


class LastSeen:
    """Thread-safe (one lock): updated from ``asyncio.to_thread``, read by the CLI."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=10)
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)

    def update(self, sightings: Sequence[Sighting]) -> None:
        """Apply a batch in one transaction; older sightings never overwrite newer ones."""
        if not sightings:
            return
        with self._lock, self._db:
            for s in sightings:
                self._db.execute(
                    "INSERT INTO devices(device, last_seen) VALUES (?, ?) ON CONFLICT(device) "
                    "DO UPDATE SET last_seen=max(last_seen, excluded.last_seen)",
                    (s.device, s.at))
                if s.kind == "telemetry":
                    self._db.execute(
                        "UPDATE devices SET last_telemetry=? WHERE device=? AND "
                        "(last_telemetry IS NULL OR last_telemetry < ?)", (s.at, s.device, s.at))
                else:
                    self._db.execute(
                        "UPDATE devices SET state=?, status_at=?, status_json=? WHERE device=? "
                        "AND (status_at IS NULL OR status_at <= ?)",
                        (s.state, s.at, json.dumps(s.fields, sort_keys=True), s.device, s.at))

    def all(self) -> list[DeviceSeen]:
        with self._lock:
            rows = self._db.execute(
                "SELECT device, last_seen, last_telemetry, state, status_at, status_json "
                "FROM devices ORDER BY device").fetchall()
        return [DeviceSeen(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]) if r[5] else {})
                for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def read_lastseen(data_dir: Path) -> list[DeviceSeen]:
    """Every device the gateway has heard from (empty if it never ran)."""
    path = lastseen_path(data_dir)
    if not path.exists():
        return []
    table = LastSeen(path)
    try:
        return table.all()
    finally:
        table.close()
