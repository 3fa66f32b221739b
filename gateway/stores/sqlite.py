"""The embedded store: readings in a local SQLite file anyone can query.

The default store, so a gateway (and ``livinglab demo``) works with nothing
else installed. One row per (point, field)::

    CREATE TABLE readings (
        measurement TEXT NOT NULL,     -- domain: air, light, flow, device
        site        TEXT NOT NULL,
        device      TEXT NOT NULL,
        sensor      TEXT NOT NULL,     -- '' for points without a sensor tag (device health)
        field       TEXT NOT NULL,     -- quantity: co2, temperature, rssi, ...
        value       REAL NOT NULL,     -- in the quantity's canonical unit
        time_ms     INTEGER NOT NULL,  -- Unix time in milliseconds (UTC)
        UNIQUE (measurement, site, device, sensor, field, time_ms)
    );

String fields (the ``device`` point's ``fw``, the firmware version) go to a table
of their own with the same key, so ``readings.value`` stays a number every query
can average::

    CREATE TABLE text_fields (
        measurement, site, device, sensor, field TEXT NOT NULL,
        value       TEXT NOT NULL,     -- the string as the device sent it
        time_ms     INTEGER NOT NULL,
        UNIQUE (measurement, site, device, sensor, field, time_ms)
    );

    sqlite3 -readonly var/readings.sqlite "
      SELECT device, value AS fw, max(time_ms) FROM text_fields
      WHERE measurement = 'device' AND field = 'fw' GROUP BY device;"

Writes are ``INSERT OR REPLACE``: a point written twice is kept once, like
InfluxDB, so the forwarder may safely retry. The file is in WAL mode, so it can
be read while the gateway writes. Example (hourly mean CO2 per device)::

    sqlite3 -readonly var/readings.sqlite "
      SELECT device, strftime('%Y-%m-%d %H:00', time_ms / 1000, 'unixepoch') AS hour,
             round(avg(value), 1) AS co2_ppm, count(*) AS n
      FROM readings
      WHERE measurement = 'air' AND field = 'co2'
        AND time_ms >= (strftime('%s', 'now') - 86400) * 1000
      GROUP BY device, hour ORDER BY device, hour;"

Tags other than ``site``, ``device`` and ``sensor`` are not stored, except the
contract's ``gateway`` tag (of ``gateway`` points, kept in ``device``),
``reason`` (of ``rejections`` points, kept in ``sensor``) and the string tags of
the ``{m}_info`` companions: each lands as a ``text_fields`` row with measurement
``{m}_info``, field = the tag's name, value = the tag's value (its ``v`` = 1.0 in
``readings`` as for any field). The original point's string fields are in
``text_fields`` under ``{m}`` as well, so a reader may use either.
A line that does not parse makes the whole write a StoreRejected, so the
forwarder isolates and quarantines it.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from protocols import ProtocolError, parse_line
from protocols.config import StoreSection
from protocols.lineprotocol import INFO_SUFFIX
from protocols.sqlitefile import open_shared

from .base import StoreFatal, StoreRejected, StoreTransient
from .detached import detached

__all__ = ["SCHEMA", "SQLiteStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    measurement TEXT NOT NULL,
    site        TEXT NOT NULL,
    device      TEXT NOT NULL,
    sensor      TEXT NOT NULL,
    field       TEXT NOT NULL,
    value       REAL NOT NULL,
    time_ms     INTEGER NOT NULL,
    UNIQUE (measurement, site, device, sensor, field, time_ms)
);
CREATE INDEX IF NOT EXISTS readings_time ON readings (time_ms);
CREATE TABLE IF NOT EXISTS text_fields (
    measurement TEXT NOT NULL,
    site        TEXT NOT NULL,
    device      TEXT NOT NULL,
    sensor      TEXT NOT NULL,
    field       TEXT NOT NULL,
    value       TEXT NOT NULL,
    time_ms     INTEGER NOT NULL,
    UNIQUE (measurement, site, device, sensor, field, time_ms)
);
"""

_INSERT = ("INSERT OR REPLACE INTO readings "
           "(measurement, site, device, sensor, field, value, time_ms) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)")

_INSERT_TEXT = ("INSERT OR REPLACE INTO text_fields "
                "(measurement, site, device, sensor, field, value, time_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)")

Row = tuple[str, str, str, str, str, float, int]
TextRow = tuple[str, str, str, str, str, str, int]

_CLOSE_S = 1.0
#: the tags kept in the key columns; an ``_info`` point's other tags are its strings
_KEY_TAGS = frozenset(("site", "device", "sensor", "gateway", "reason"))


def rows_of(body: bytes) -> tuple[list[Row], list[TextRow]]:
    """Line protocol -> (readings rows, text_fields rows); StoreRejected names the first
    bad line."""
    rows: list[Row] = []
    texts: list[TextRow] = []
    for n, raw in enumerate(body.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            p = parse_line(raw.decode("utf-8"))
        except (UnicodeDecodeError, ProtocolError) as exc:
            raise StoreRejected(f"line {n}: {exc}", status=None) from None
        tags = dict(p.tags)
        # the point's second and third tags: a gateway point's `gateway` is kept in the
        # device column, a rejections point's `reason` in the sensor column
        site, device = tags.get("site"), tags.get("device") or tags.get("gateway")
        if not site or not device:
            raise StoreRejected(f"line {n}: a point needs site and device (or gateway) "
                                f"tags: {raw!r}")
        sensor = tags.get("sensor") or tags.get("reason", "")
        if p.measurement.endswith(INFO_SUFFIX):
            texts.extend((p.measurement, site, device, sensor, k, v, p.time_ms)
                         for k, v in p.tags if k not in _KEY_TAGS)
        for k, v in p.fields:
            if isinstance(v, str):
                texts.append((p.measurement, site, device, sensor, k, v, p.time_ms))
            else:
                rows.append((p.measurement, site, device, sensor, k, v, p.time_ms))
    return rows, texts


class SQLiteStore:
    def __init__(self, cfg: StoreSection) -> None:
        self._path = Path(cfg.path)
        self._timeout = cfg.timeout_s
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                conn = open_shared(self._path, self._timeout, check_same_thread=False)
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(SCHEMA)
            except (OSError, sqlite3.DatabaseError) as exc:
                raise StoreFatal(f"cannot open the readings database {self._path}: {exc} "
                                 "(check [store] path and its permissions)") from None
            self._conn = conn
        return self._conn

    def _write(self, body: bytes) -> None:
        rows, texts = rows_of(body)
        with self._lock:
            conn = self._open()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(_INSERT, rows)
                    if texts:
                        conn.executemany(_INSERT_TEXT, texts)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                # locked by a reader's long transaction, disk full: may pass later
                raise StoreTransient(f"readings database {self._path}: {exc}") from None
            except sqlite3.DatabaseError as exc:
                raise StoreFatal(f"readings database {self._path} is unusable: {exc} "
                                 "(move it away; the gateway creates a new one)") from None

    def _ensure(self) -> None:
        with self._lock:
            self._open()

    async def ensure_ready(self) -> None:
        await detached(self._ensure, "sqlite-setup")

    async def write(self, body: bytes, n_lines: int) -> None:
        await detached(lambda: self._write(body), "sqlite-write")

    def _close(self) -> None:
        # a write waiting on a lock held by a reader keeps ours: do not wait for it
        # (that connection then dies with the process; the WAL keeps the file sound)
        if not self._lock.acquire(timeout=_CLOSE_S):
            return
        try:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        finally:
            self._lock.release()

    async def aclose(self) -> None:
        await detached(self._close, "sqlite-close")
