"""Device last-seen table: when each device last sent telemetry or status, and its state.

A small SQLite file under ``data_dir`` (``lastseen.sqlite``), separate from the
durable buffer so that reading it (``livinglab devices``) never contends with
the ingest transaction. Each committed batch notes its sightings in memory (in
the same worker-thread hop as the commit; a failure is raised only after the
batch's acks), and the table is written every few seconds when there is news (a
device not in the table yet, a status message), else every 30 s (only newer
times of known devices: each write is a WAL page and its share of a checkpoint,
SD-card wear, issue 21): it is a convenience view, not part of the delivery
guarantee. The gateway's own ``all()`` writes what is pending first.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.buffer.txn import is_disk_full
from protocols.config import LASTSEEN_FILE
from protocols.sqlitefile import open_shared

log = logging.getLogger("livinglab.gateway.lastseen")

FILE_NAME = LASTSEEN_FILE

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


class _Latest:
    """The newest sighting per device not yet written; merged like the table merges."""

    __slots__ = ("last_seen", "last_telemetry", "status")

    def __init__(self, at: float) -> None:
        self.last_seen = at
        self.last_telemetry: float | None = None
        self.status: Sighting | None = None


class LastSeen:
    """Thread-safe (one lock): updated from the pipeline's commit thread, read by the CLI."""

    def __init__(self, path: Path, flush_every_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 refresh_every_s: float = 30.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # the console and CLI open it too: a concurrent first open waits (WAL switch)
        self._db = open_shared(path, 10.0, isolation_level="DEFERRED",
                               check_same_thread=False)
        with self._lock, self._db:
            # a convenience view, not part of the delivery guarantee: no fsync per
            # flush (SD-card wear); a power cut may lose its last few seconds
            self._db.execute("PRAGMA synchronous=NORMAL")
            # the table is a few pages: checkpoint often so its WAL stays ~256 KiB,
            # not SQLite's 4 MiB of repeated copies of the same pages
            self._db.execute("PRAGMA wal_autocheckpoint=64")
            self._db.execute(_SCHEMA)
            self._known = {r[0] for r in self._db.execute("SELECT device FROM devices")}
        self._pending: dict[str, _Latest] = {}
        self._news = False  # a pending sighting the table does not show at all yet
        self._flush_every_s = flush_every_s
        self._refresh_every_s = max(refresh_every_s, flush_every_s)
        self._clock = clock
        self._last_flush = clock()
        self.disk_full = False

    def update(self, sightings: Sequence[Sighting]) -> None:
        """Note a batch; older sightings never overwrite newer ones. Written when due."""
        with self._lock:
            pending = self._pending
            for s in sightings:
                cur = pending.get(s.device)
                if s.kind == "status" or s.device not in self._known:
                    self._news = True
                if cur is None:
                    cur = pending[s.device] = _Latest(s.at)
                elif s.at > cur.last_seen:
                    cur.last_seen = s.at
                if s.kind == "telemetry":
                    if cur.last_telemetry is None or cur.last_telemetry < s.at:
                        cur.last_telemetry = s.at
                elif cur.status is None or cur.status.at <= s.at:
                    cur.status = s
            if self._due():
                self._flush()

    def flush_if_due(self) -> None:
        with self._lock:
            if self._due():
                self._flush()

    def _due(self) -> bool:
        """News every ``flush_every_s``, newer times only every ``refresh_every_s``."""
        if not self._pending:
            return False
        waited = self._clock() - self._last_flush
        return waited >= (self._flush_every_s if self._news else self._refresh_every_s)

    def flush(self) -> None:
        """Write every pending sighting now (shutdown, tests)."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        """One transaction for everything pending (call with the lock held)."""
        self._last_flush = self._clock()
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        news, self._news = self._news, False
        try:
            self._write(pending)
        except sqlite3.OperationalError as exc:
            if not is_disk_full(exc):
                raise
            self._pending = pending  # kept for the next flush; nothing newer came (lock held)
            self._news = news
            if not self.disk_full:
                log.warning("last-seen table not updated: %s (retrying every %.0f s)", exc,
                            self._flush_every_s)
            self.disk_full = True
            return
        self._known.update(pending)
        self.disk_full = False

    def _write(self, pending: dict[str, _Latest]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT INTO devices(device, last_seen) VALUES (?, ?) ON CONFLICT(device) "
                "DO UPDATE SET last_seen=max(last_seen, excluded.last_seen)",
                [(d, p.last_seen) for d, p in pending.items()])
            self._db.executemany(
                "UPDATE devices SET last_telemetry=? WHERE device=? AND "
                "(last_telemetry IS NULL OR last_telemetry < ?)",
                [(p.last_telemetry, d, p.last_telemetry) for d, p in pending.items()
                 if p.last_telemetry is not None])
            self._db.executemany(
                "UPDATE devices SET state=?, status_at=?, status_json=? WHERE device=? "
                "AND (status_at IS NULL OR status_at <= ?)",
                [(s.state, s.at, json.dumps(s.fields, sort_keys=True), d, s.at)
                 for d, s in ((d, p.status) for d, p in pending.items()) if s is not None])

    def all(self) -> list[DeviceSeen]:
        with self._lock:
            self._flush()
            rows = self._db.execute(
                "SELECT device, last_seen, last_telemetry, state, status_at, status_json "
                "FROM devices ORDER BY device").fetchall()
        return [DeviceSeen(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]) if r[5] else {})
                for r in rows]

    def close(self) -> None:
        """Write what is pending, then close."""
        with self._lock:
            try:
                self._flush()
            finally:
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
