"""Delivery accounting: per device and UTC hour, what was received, accepted,
duplicated, rejected and missing (wire contract, "Delivery accounting").

Pure counting over :class:`Event`s (one per telemetry message the pipeline
decoded, plus ``offline`` status sightings) and a small table layer in the
buffer's SQLite file. :class:`Accounting` is handed to ``DurableBuffer.put`` as
its ``hook``: ``stage`` runs *inside* the put transaction (so counts commit
atomically with the data and the dedup record, and survive kill -9 exactly as
the buffer does), ``done`` merges or drops the staged state after COMMIT or
ROLLBACK.

Missing seqs are kept as ranges (``delivery_gaps``, cause ``unknown`` or
``offline``) with the hour that counted them, so a late arrival takes its seq
back from that hour. The same table lists whole-message rejections (cause
``rejection``, one seq) and reboots (cause ``reboot``, seq range -1) for the
gap list. Hours changed since they were last written to the store are
``dirty``; :meth:`Accounting.points` turns them into ``delivery`` points.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from protocols import MessageKey, Point, loads_strict
from protocols.lineprotocol import make_point
from protocols.validate import MAX_COUNTER

__all__ = ["SCHEMA", "Accounting", "ClearDirty", "Event", "Gap", "HourRow", "capture",
           "create_tables", "hour_of", "readable_key", "saturate"]

Kind = Literal["accepted", "duplicate", "rejected", "offline"]
Key = MessageKey
HOUR_S = 3600
KEEP_HOURS_S = 48 * HOUR_S  # hours kept in memory; older ones are read on demand
LOST = ("unknown", "offline")  # gap causes that count as missing
COUNT_MAX = 2**63 - 1  # SQLite's largest INTEGER: counts saturate here

SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery_hours (
    device TEXT NOT NULL, hour INTEGER NOT NULL, received INTEGER NOT NULL,
    accepted INTEGER NOT NULL, duplicates INTEGER NOT NULL, rejected INTEGER NOT NULL,
    missing INTEGER NOT NULL, dirty INTEGER NOT NULL, PRIMARY KEY (device, hour)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS delivery_hours_hour ON delivery_hours (hour);
CREATE TABLE IF NOT EXISTS delivery_boots (
    device TEXT NOT NULL, boot INTEGER NOT NULL, max_seq INTEGER NOT NULL,
    last_at REAL NOT NULL, PRIMARY KEY (device, boot)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS delivery_devices (
    device TEXT PRIMARY KEY, boot INTEGER, last_at REAL, offline_at REAL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS delivery_gaps (
    device TEXT NOT NULL, boot INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
    hour INTEGER NOT NULL, start REAL NOT NULL, end REAL NOT NULL, cause TEXT NOT NULL,
    PRIMARY KEY (device, boot, lo)) WITHOUT ROWID;
"""


def hour_of(at: float) -> int:
    """The UTC hour (Unix seconds of its start) a receive time falls in."""
    return int(at // HOUR_S) * HOUR_S


def readable_key(payload: bytes) -> tuple[int | None, int | None]:
    """(boot, seq) of a rejected telemetry payload when both are readable: integers in
    the contract's range 0..2^31-1, read by the one strict JSON reader. Anything else
    (2^64, 2^63-1 that a float would round up, NaN) reveals no gap: counting a gap up
    to such a seq would overflow SQLite's 64-bit integers and crash the gateway."""
    try:
        obj = loads_strict(payload)
    except ValueError:
        return None, None
    if type(obj) is not dict:
        return None, None
    boot, seq = obj.get("boot"), obj.get("seq")
    if type(boot) is int and type(seq) is int and 0 <= boot <= MAX_COUNTER \
            and 0 <= seq <= MAX_COUNTER:
        return boot, seq
    return None, None


def saturate(n: int) -> int:
    """A count as SQLite can store it: clamped to 0..2^63-1 instead of overflowing."""
    return n if 0 <= n <= COUNT_MAX else (COUNT_MAX if n > 0 else 0)


def capture(accepted: int, rejected: int, missing: int) -> float:
    """accepted / (accepted + rejected + missing), 1.0 when all are 0."""
    total = accepted + rejected + missing
    return 1.0 if total == 0 else accepted / total


class Event(NamedTuple):
    """One telemetry message (or an ``offline`` status) as the accounting sees it
    (a NamedTuple: one is made per message, so it must be cheap)."""

    device: str
    at: float
    kind: Kind
    boot: int | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class HourRow:
    device: str
    hour: int
    received: int
    accepted: int
    duplicates: int
    rejected: int
    missing: int

    @property
    def capture(self) -> float:
        return capture(self.accepted, self.rejected, self.missing)

    def counts(self) -> tuple[int, int, int, int, int]:
        return (self.received, self.accepted, self.duplicates, self.rejected, self.missing)


@dataclass(frozen=True, slots=True)
class Gap:
    device: str
    boot: int
    lo: int
    hi: int
    start: float
    end: float
    cause: str


class Accounting:
    """Counts in memory (committed state) plus what the current transaction staged.

    One writer (the buffer calls ``stage``/``done`` under its lock).
    """

    def __init__(self) -> None:
        self._hours: dict[tuple[str, int], list[int]] = {}  # counts + [dirty]
        self._boots: dict[tuple[str, int], list[float]] = {}  # [max_seq, last_at]
        self._devs: dict[str, list[float | None]] = {}  # [boot, last_at, offline_at]
        self._p_hours: dict[tuple[str, int], list[int]] = {}
        self._p_boots: dict[tuple[str, int], list[float]] = {}
        self._p_devs: dict[str, list[float | None]] = {}
        self._events: Sequence[Event] = ()
        self._ready = False

    # -- loading ----------------------------------------------------------------------
    def load(self, db: sqlite3.Connection, now: float) -> None:
        """Create the tables and read recent state (call once before the first put)."""
        create_tables(db)
        since = hour_of(now) - KEEP_HOURS_S
        for r in db.execute("SELECT device, hour, received, accepted, duplicates, rejected, "
                            "missing, dirty FROM delivery_hours WHERE hour >= ? OR dirty = 1",
                            (since,)):
            self._hours[(r[0], int(r[1]))] = [int(x) for x in r[2:]]
        for r in db.execute("SELECT device, boot, max_seq, last_at FROM delivery_boots "
                            "WHERE last_at >= ?", (since,)):
            self._boots[(r[0], int(r[1]))] = [int(r[2]), float(r[3])]
        for r in db.execute("SELECT device, boot, last_at, offline_at FROM delivery_devices"):
            self._devs[r[0]] = [r[1], r[2], r[3]]
        self._ready = True

    # -- the put hook -------------------------------------------------------------------
    def with_events(self, events: Sequence[Event]) -> Accounting:
        """Set the events the next ``stage`` counts (the pipeline calls this per batch)."""
        self._events = events
        return self

    def stage(self, db: sqlite3.Connection, duplicates: set[Key]) -> None:
        """Count the events inside the caller's transaction; ``duplicates`` are the keys
        the dedup record already held."""
        if not self._ready:  # no load() before: an empty or new file
            create_tables(db)
            self._ready = True
        hours: dict[tuple[str, int], list[int]] = {}
        boots: dict[tuple[str, int], list[float]] = {}
        devs: dict[str, list[float | None]] = {}
        self._p_hours, self._p_boots, self._p_devs = hours, boots, devs
        for ev in self._events:
            # fast path, the common case: the next seq of a known boot, accepted, its
            # hour row and device row already staged in this batch
            device, at, kind, boot, seq = ev
            if kind == "accepted" and boot is not None and seq is not None:
                b = boots.get((device, boot))
                h = hours.get((device, int(at // HOUR_S) * HOUR_S))
                d = devs.get(device)
                if b is not None and h is not None and d is not None and seq == b[0] + 1 \
                        and d[0] == boot and (device, boot, seq) not in duplicates:
                    h[0] += 1
                    h[1] += 1
                    b[0] = seq
                    if at > b[1]:
                        b[1] = at
                    if d[1] is None or at >= d[1]:
                        d[1] = at
                    continue
            self._one(db, ev, duplicates)
        self._write(db)

    def done(self, committed: bool) -> None:
        if committed:
            self._hours.update(self._p_hours)
            self._boots.update(self._p_boots)
            self._devs.update(self._p_devs)
            self._trim()
        self._p_hours, self._p_boots, self._p_devs = {}, {}, {}
        self._events = ()

    # -- counting -----------------------------------------------------------------------
    def _hour(self, db: sqlite3.Connection, device: str, hour: int) -> list[int]:
        key = (device, hour)
        row = self._p_hours.get(key)
        if row is None:
            base = self._hours.get(key)
            if base is None:
                r = db.execute("SELECT received, accepted, duplicates, rejected, missing, dirty "
                               "FROM delivery_hours WHERE device = ? AND hour = ?",
                               key).fetchone()
                base = [int(x) for x in r] if r else [0, 0, 0, 0, 0, 0]
            row = self._p_hours[key] = list(base)
        row[5] = 1
        return row

    def _boot(self, db: sqlite3.Connection, device: str, boot: int) -> list[float] | None:
        key = (device, boot)
        row = self._p_boots.get(key)
        if row is None:
            base = self._boots.get(key)
            if base is None:
                r = db.execute("SELECT max_seq, last_at FROM delivery_boots WHERE device = ? "
                               "AND boot = ?", key).fetchone()
                if r is None:
                    return None
                base = [int(r[0]), float(r[1])]
            row = self._p_boots[key] = list(base)
        return row

    def _dev(self, device: str) -> list[float | None]:
        row = self._p_devs.get(device)
        if row is None:
            row = self._p_devs[device] = list(self._devs.get(device, [None, None, None]))
        return row

    def _one(self, db: sqlite3.Connection, ev: Event, duplicates: set[Key]) -> None:
        dev = self._dev(ev.device)
        if ev.kind == "offline":
            dev[2] = ev.at
            return
        hour = hour_of(ev.at)
        h = self._hour(db, ev.device, hour)
        h[0] += 1
        if ev.kind == "duplicate" or (ev.kind == "accepted" and ev.boot is not None
                                      and ev.seq is not None
                                      and (ev.device, ev.boot, ev.seq) in duplicates):
            h[2] += 1
            return
        h[1 if ev.kind == "accepted" else 3] += 1
        if ev.boot is None or ev.seq is None:
            return  # a rejection without a readable boot/seq reveals nothing
        self._seq(db, ev, hour, dev)

    def _seq(self, db: sqlite3.Connection, ev: Event, hour: int,
             dev: list[float | None]) -> None:
        assert ev.boot is not None and ev.seq is not None
        boot, seq, at = ev.boot, ev.seq, ev.at
        b = self._boot(db, ev.device, boot)
        if b is None:
            b = self._p_boots[(ev.device, boot)] = [-1, at]
            if dev[0] is not None and int(dev[0]) != boot and dev[1] is not None:
                _put_gap(db, Gap(ev.device, boot, -1, -1, float(dev[1]), at, "reboot"), hour)
        if seq > b[0]:
            if seq > b[0] + 1:
                start = b[1] if b[0] >= 0 else (dev[1] if dev[1] is not None else at)
                off = dev[2]
                cause = "offline" if off is not None and start <= off <= at else "unknown"
                lo = int(b[0]) + 1
                _put_gap(db, Gap(ev.device, boot, lo, seq - 1, float(start), at, cause), hour)
                self._hour(db, ev.device, hour)[4] += seq - lo
            b[0], b[1] = seq, max(b[1], at)
        else:
            self._late(db, ev.device, boot, seq)
        if ev.kind == "rejected":
            _put_gap(db, Gap(ev.device, boot, seq, seq, at, at, "rejection"), hour)
        if dev[1] is None or at >= float(dev[1]):
            dev[0], dev[1] = boot, at

    def _late(self, db: sqlite3.Connection, device: str, boot: int, seq: int) -> None:
        """A seq below the boot's highest: if a gap counted it missing, take it back."""
        r = db.execute("SELECT lo, hi, hour, start, end, cause FROM delivery_gaps WHERE "
                       "device = ? AND boot = ? AND lo <= ? AND hi >= ? AND cause IN (?, ?)",
                       (device, boot, seq, seq, *LOST)).fetchone()
        if r is None:
            return
        lo, hi, hour, start, end, cause = int(r[0]), int(r[1]), int(r[2]), r[3], r[4], r[5]
        db.execute("DELETE FROM delivery_gaps WHERE device = ? AND boot = ? AND lo = ?",
                   (device, boot, lo))
        for a, z in ((lo, seq - 1), (seq + 1, hi)):
            if a <= z:
                _put_gap(db, Gap(device, boot, a, z, start, end, cause), hour)
        self._hour(db, device, hour)[4] -= 1

    def _write(self, db: sqlite3.Connection) -> None:
        if self._p_hours:
            for c in self._p_hours.values():  # saturated, in memory too: what is stored
                if max(c) > COUNT_MAX or min(c) < 0:
                    c[:] = [saturate(x) for x in c]
            # an upsert, not INSERT OR REPLACE: a replace deletes and re-inserts the
            # row's delivery_hours_hour entry too, an index leaf more per commit (wear)
            db.executemany(
                "INSERT INTO delivery_hours VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
                "(device, hour) DO UPDATE SET received = excluded.received, accepted = "
                "excluded.accepted, duplicates = excluded.duplicates, rejected = "
                "excluded.rejected, missing = excluded.missing, dirty = excluded.dirty",
                [(d, h, *c) for (d, h), c in self._p_hours.items()])
        if self._p_boots:
            db.executemany("INSERT OR REPLACE INTO delivery_boots VALUES (?, ?, ?, ?)",
                           [(d, b, int(v[0]), v[1]) for (d, b), v in self._p_boots.items()])
        if self._p_devs:
            db.executemany("INSERT OR REPLACE INTO delivery_devices VALUES (?, ?, ?, ?)",
                           [(d, *v) for d, v in self._p_devs.items()])

    def _trim(self) -> None:
        if len(self._hours) < 10_000:
            return
        newest = max(h for _, h in self._hours)
        for key in [k for k, v in self._hours.items() if k[1] < newest - KEEP_HOURS_S
                    and not v[5]]:
            del self._hours[key]

    # -- to the store -------------------------------------------------------------------
    def points(self, site: str, now: float) -> tuple[list[Point], ClearDirty]:
        """``delivery`` points for every dirty hour and every current-hour row, and the
        hook that marks them written (only if unchanged meanwhile) in the same put."""
        current = hour_of(now)
        rows = [(d, h, tuple(c[:5])) for (d, h), c in sorted(self._hours.items())
                if c[5] or h == current]
        pts = [make_point("delivery", {"site": site, "device": d},
                          dict(zip(("received", "accepted", "duplicates", "rejected", "missing"),
                                   (float(x) for x in c), strict=True)), h * 1000)
               for d, h, c in rows]
        return pts, ClearDirty(self, [(d, h, c) for d, h, c in rows])


class ClearDirty:
    """Put hook for a flush of ``delivery`` points: clears ``dirty`` of the rows written,
    unless ingest changed them in between (then they stay dirty for the next flush)."""

    def __init__(self, acc: Accounting, rows: list[tuple[str, int, tuple[int, ...]]]) -> None:
        self._acc = acc
        self._rows = rows

    def stage(self, db: sqlite3.Connection, duplicates: set[Key]) -> None:
        db.executemany("UPDATE delivery_hours SET dirty = 0 WHERE device = ? AND hour = ? AND "
                       "received = ? AND accepted = ? AND duplicates = ? AND rejected = ? AND "
                       "missing = ?", [(d, h, *c) for d, h, c in self._rows])

    def done(self, committed: bool) -> None:
        if not committed:
            return
        for d, h, c in self._rows:
            row = self._acc._hours.get((d, h))
            if row is not None and tuple(row[:5]) == c:
                row[5] = 0


# -- table layer ------------------------------------------------------------------------

def create_tables(db: sqlite3.Connection) -> None:
    """The tables, statement by statement (``executescript`` would COMMIT a transaction)."""
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            db.execute(stmt)


def _put_gap(db: sqlite3.Connection, g: Gap, hour: int) -> None:
    db.execute("INSERT OR REPLACE INTO delivery_gaps VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               (g.device, g.boot, g.lo, g.hi, hour, g.start, g.end, g.cause))
