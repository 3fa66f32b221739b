"""The ``lines`` table: one row per point, drained before the ``msgs`` backlog.

It held every point in earlier versions (a buffer from before the upgrade still
drains from it first); now the gateway's own health points go there, so they
reach the store ahead of any backlog (wire contract, "Health before backlog").
Called by :class:`gateway.buffer.core.DurableBuffer` with its lock held.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager

from gateway.buffer.schema import Batch
from protocols import Point, encode_point

__all__ = ["PriorityLines", "first_lines", "insert_lines"]


class PriorityLines:
    """The priority side of :class:`gateway.buffer.core.DurableBuffer` (a mixin: it uses
    the buffer's lock, connection, write transaction and counters)."""

    _lock: threading.Lock
    _db: sqlite3.Connection
    _priority: int
    _depth: int
    _pending: Batch | None

    def _ack_transaction(self, sync: bool = True) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _apply_pending(self) -> None:
        raise NotImplementedError

    def put_priority(self, points: Sequence[Point], at: float) -> int:
        """Buffer points sent ahead of any backlog; a few a minute, so never refused at
        the bound. DiskFull when the disk is full."""
        lines = [encode_point(p).encode() for p in points]
        with self._lock:
            with self._ack_transaction():
                self._apply_pending()  # a deferred ack of the forwarder, in this commit
                n = insert_lines(self._db, lines, at)
            self._pending = None
            self._priority, self._depth = self._priority + n, self._depth + n
        return n

    @property
    def priority_waiting(self) -> bool:
        """Lines may wait (until a ``get_batch`` finds the table empty)."""
        return self._priority > 0


def first_lines(db: sqlite3.Connection, max_points: int) -> Batch | None:
    """Up to ``max_points`` oldest rows of ``lines`` as a batch, or None when empty."""
    old = db.execute("SELECT id, line, received_at FROM lines ORDER BY id LIMIT ?",
                     (max_points,)).fetchall()
    if not old:
        return None
    ids = tuple(int(r[0]) for r in old)
    return Batch(ids[0], ids[-1], ids, tuple(bytes(r[1]) for r in old),
                 tuple(float(r[2]) for r in old))


def insert_lines(db: sqlite3.Connection, lines: list[bytes], at: float) -> int:
    """Add ``lines`` (encoded points) received ``at``; returns how many."""
    db.executemany("INSERT INTO lines (received_at, line) VALUES (?, ?)",
                   [(at, line) for line in lines])
    return len(lines)
