"""The quarantine side of :class:`gateway.buffer.core.DurableBuffer` (a mixin like
:mod:`gateway.buffer.priority`: it uses the buffer's lock, connection and counters).

Rejected messages are kept one row each, the first 2 KiB and the length, under the
quarantine's own bounds (``quarantine_max`` rows, ``quarantine_max_bytes``), never
the buffer's: one device's rejections cannot use up the site's outage buffer.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence

from gateway.buffer import quarantine
from gateway.buffer.schema import QuarantineItem
from gateway.buffer.txn import is_disk_full, transaction
from protocols import Rejection

__all__ = ["QuarantineSide"]


class QuarantineSide:
    _lock: threading.Lock
    _db: sqlite3.Connection
    _q: quarantine.State
    quarantine_max: int
    quarantine_max_bytes: int

    def _bump(self, name: str, by: int) -> None:
        raise NotImplementedError

    def _raise_disk_full(self, exc: BaseException) -> None:
        raise NotImplementedError

    def _insert_quarantine(self, items: Sequence[tuple[Rejection, bytes]], at: float
                           ) -> quarantine.State:
        q = quarantine.insert(self._db, items, at, self._q, self.quarantine_max,
                              self.quarantine_max_bytes)
        self._bump("quarantine_evicted", q.evicted)
        return q

    def quarantine(self, items: Sequence[tuple[Rejection, bytes]]) -> None:
        """Keep rejected items, one row each (the quarantine's own bound, not the buffer's)."""
        if not items:
            return
        with self._lock:
            try:
                with transaction(self._db):
                    state = self._insert_quarantine(items, time.time())
            except sqlite3.Error as exc:
                self._q = quarantine.load(self._db)
                if is_disk_full(exc):
                    self._raise_disk_full(exc)
                raise
            self._q = state

    def list_quarantine(self, limit: int = 100) -> list[QuarantineItem]:
        """Newest first."""
        with self._lock:
            return quarantine.newest(self._db, limit)
