"""The quarantine table of the durable buffer: rejected messages kept for
``livinglab gateway rejected`` and the console, oldest evicted first.

Plain functions over the buffer's connection: the buffer owns the lock and the
transaction, these own the SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway.buffer.schema import QuarantineItem
from protocols import Rejection

__all__ = ["insert", "newest"]


def insert(db: sqlite3.Connection, items: Sequence[tuple[Rejection, bytes]], at: float,
           count: int, keep: int) -> tuple[int, int]:
    """Insert ``items`` (inside the caller's transaction) and evict the oldest beyond
    ``keep``; returns (rows now kept, rows evicted). ``count`` is the rows before."""
    db.executemany(
        "INSERT INTO quarantine (at, topic, device, reason, detail, payload) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(at, r.topic, r.device, r.reason, r.detail, bytes(p)) for r, p in items])
    count += len(items)
    excess = count - keep
    if excess <= 0:
        return count, 0
    db.execute("DELETE FROM quarantine WHERE id IN "
               "(SELECT id FROM quarantine ORDER BY id LIMIT ?)", (excess,))
    return count - excess, excess


def newest(db: sqlite3.Connection, limit: int) -> list[QuarantineItem]:
    """The newest ``limit`` rows, newest first."""
    rows = db.execute(
        "SELECT id, at, topic, device, reason, detail, payload FROM quarantine "
        "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [QuarantineItem(int(r[0]), float(r[1]), r[2], r[3], r[4], r[5], bytes(r[6]))
            for r in rows]
