"""Rejections per device, reason and UTC hour (wire contract, "Rejections by reason").

Next to the delivery accounting and written like it: counts staged inside the
buffer's ``put`` transaction (so they survive kill -9 exactly as the data does),
hours changed since their last write are ``dirty``, and every flush turns the dirty
and current hours into ``rejections`` points (tags ``site``, ``device``,
``reason``; field ``count``; timestamp = the hour's start), rewritten with the same
timestamp so the store keeps the last. One count per rejection report the
pipeline makes (a message, or one of its samples or values; a
``too_many_rejections`` report counts the rejections it sums up); reports without
a device (a bad topic) have no series to land in. The hour is that of the batch's
receive time. Nothing here runs for a batch without rejections.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway.buffer.txn import PutHook
from protocols import Point, Rejection
from protocols.lineprotocol import make_point

from .delivery import KEEP_HOURS_S, Accounting, Key, hour_of

__all__ = ["SCHEMA", "Hooks", "RejectionCounts", "flush_points", "with_rejections"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS rejection_hours (
    device TEXT NOT NULL, reason TEXT NOT NULL, hour INTEGER NOT NULL,
    count INTEGER NOT NULL, dirty INTEGER NOT NULL,
    PRIMARY KEY (device, reason, hour)) WITHOUT ROWID
"""

RKey = tuple[str, str, int]  # device, reason, hour


class RejectionCounts:
    """Committed counts in memory plus what the current transaction staged (one writer:
    the buffer calls ``stage``/``done`` under its lock)."""

    def __init__(self) -> None:
        self._hours: dict[RKey, list[int]] = {}  # [count, dirty]
        self._staged: dict[RKey, list[int]] = {}
        self._items: Sequence[tuple[str, str, int]] = ()
        self._at = 0.0
        self._ready = False

    def load(self, db: sqlite3.Connection, now: float) -> None:
        """Create the table and read the recent and dirty hours."""
        db.execute(SCHEMA)
        for d, r, h, c, dirty in db.execute(
                "SELECT device, reason, hour, count, dirty FROM rejection_hours "
                "WHERE hour >= ? OR dirty = 1", (hour_of(now) - KEEP_HOURS_S,)):
            self._hours[(d, r, int(h))] = [int(c), int(dirty)]
        self._ready = True

    def with_rejections(self, items: Sequence[tuple[str, str, int]], at: float
                        ) -> RejectionCounts:
        """Set the (device, reason, how many) the next ``stage`` counts, received ``at``."""
        self._items, self._at = items, at
        return self

    def stage(self, db: sqlite3.Connection, duplicates: set[Key]) -> None:
        if not self._items:
            return
        if not self._ready:
            db.execute(SCHEMA)
            self._ready = True
        hour = hour_of(self._at)
        staged: dict[RKey, list[int]] = {}
        for device, reason, n in self._items:
            key = (device, reason, hour)
            row = staged.get(key)
            if row is None:
                base = self._hours.get(key)
                if base is None:
                    r = db.execute("SELECT count FROM rejection_hours WHERE device = ? AND "
                                   "reason = ? AND hour = ?", key).fetchone()
                    base = [int(r[0]) if r else 0, 0]
                row = staged[key] = [base[0], 1]
            row[0] += n
        db.executemany("INSERT OR REPLACE INTO rejection_hours VALUES (?, ?, ?, ?, ?)",
                       [(*k, *v) for k, v in staged.items()])
        self._staged = staged

    def done(self, committed: bool) -> None:
        if committed:
            self._hours.update(self._staged)
            if len(self._hours) >= 10_000:
                newest = max(h for _, _, h in self._hours)
                for k in [k for k, v in self._hours.items()
                          if k[2] < newest - KEEP_HOURS_S and not v[1]]:
                    del self._hours[k]
        self._staged, self._items = {}, ()

    def points(self, site: str, now: float) -> tuple[list[Point], ClearRejections]:
        """``rejections`` points of the dirty and current hours, and the hook that marks
        them written in the same put (unless ingest changed them meanwhile)."""
        current = hour_of(now)
        rows = [(k, v[0]) for k, v in sorted(self._hours.items()) if v[1] or k[2] == current]
        pts = [make_point("rejections", {"site": site, "device": d, "reason": r},
                          {"count": float(c)}, h * 1000) for (d, r, h), c in rows]
        return pts, ClearRejections(self, rows)


class ClearRejections:
    """Put hook of a flush: clears ``dirty`` of the rows written if still unchanged."""

    def __init__(self, counts: RejectionCounts, rows: list[tuple[RKey, int]]) -> None:
        self._counts = counts
        self._rows = rows

    def stage(self, db: sqlite3.Connection, duplicates: set[Key]) -> None:
        if self._rows:
            db.executemany("UPDATE rejection_hours SET dirty = 0 WHERE device = ? AND "
                           "reason = ? AND hour = ? AND count = ?",
                           [(*k, c) for k, c in self._rows])

    def done(self, committed: bool) -> None:
        if not committed:
            return
        for k, c in self._rows:
            row = self._counts._hours.get(k)
            if row is not None and row[0] == c:
                row[1] = 0


class Hooks:
    """Several put hooks as one (the delivery accounting and the rejection counts)."""

    def __init__(self, *hooks: PutHook) -> None:
        self._hooks = hooks

    def stage(self, db: sqlite3.Connection, duplicates: set[Key]) -> None:
        for h in self._hooks:
            h.stage(db, duplicates)

    def done(self, committed: bool) -> None:
        for h in self._hooks:
            h.done(committed)



def with_rejections(hook: PutHook, counts: RejectionCounts | None,
                    rejected: Sequence[tuple[Rejection, bytes]], at: float) -> PutHook:
    """The pipeline's put hook: ``hook`` alone for a batch without rejections (the
    common case costs nothing), else both, the reports counted per device and reason."""
    if counts is None or not rejected:
        return hook
    return Hooks(hook, counts.with_rejections(
        [(r.device, r.reason, r.count or 1) for r, _ in rejected if r.device], at))


def flush_points(acc: Accounting, counts: RejectionCounts | None, site: str, now: float
                 ) -> tuple[list[Point], PutHook]:
    """A flush's points (``delivery``, then ``rejections``) and the hook marking them
    written, in one put."""
    points, hook = acc.points(site, now)
    if counts is None:
        return points, hook
    more, written = counts.points(site, now)
    return points + more, Hooks(hook, written)
