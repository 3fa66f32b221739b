"""The forwarder's side of the buffer: acking forwarded lines, deferred into the next commit.

The store has a batch's points once ``ack`` is called; deleting them is a write of its
own, and on an SD card a commit of its own (with its fsync) is the dearest part of it:
page 1, the ``msgs`` root, the freelist trunk and the boundary leaves go to the WAL
again, and the fsync rounds its frames up to whole 4 KiB blocks (issue 21, wear). So
an ``ack`` of a batch as ``get_batch`` made it (the oldest lines, ``Batch.whole``) is
*deferred*: its lines stop counting (``depth``) and are never handed out again, and
the delete runs inside the next write transaction of the buffer, the ingest ``put``
(or ``put_priority``), so it is written in the same WAL frames and made durable by the
same fsync as the next group of messages. At most one batch is deferred: the next
``ack`` finds one waiting and deletes both in one transaction, which does not fsync
either (``synchronous=NORMAL`` for that commit only: the next ingest commit's fsync
covers its frames, as they come earlier in the same WAL file). ``close`` deletes what
is still deferred.

What a crash costs: kill -9 loses nothing written (the frames are in the OS's page
cache), but a deferred ack not yet written is: its lines are still in the buffer
after a restart and are sent once more, which the store treats as the same points (as
for a crash between the store's answer and the ack, always possible). A power cut can
lose an unsynced ack commit the same way. Never the other way round: a line is only
deleted after the store acknowledged it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from gateway.buffer.ack import ack_priority, ack_rows
from gateway.buffer.schema import ROW_BASE, ROW_SHIFT, Batch, line_id
from gateway.buffer.txn import DiskFull, is_disk_full, reclaim_wal, transaction

__all__ = ["AckSide"]


class AckSide:
    """A mixin of :class:`gateway.buffer.core.DurableBuffer` (its lock, connection,
    counters)."""

    _lock: threading.Lock
    _db: sqlite3.Connection
    _depth: int
    _acked: int
    _sync_full: bool
    _pending: Batch | None
    disk_full: bool
    path: Path
    max_bytes: int

    def _scalar(self, sql: str) -> int:
        raise NotImplementedError

    def _used_bytes(self) -> int:
        raise NotImplementedError

    def ack(self, batch: Batch) -> None:
        """The store has exactly the lines of ``batch``: they leave the buffer (a message
        row goes once all its lines are acked, the rest of a row stays for the next
        batch). A batch as ``get_batch`` made it is deleted with the next commit."""
        if not batch.ids:
            return
        if batch.whole is not None:
            with self._lock:
                pending = self._pending
                if pending is None and not self.disk_full:  # full: free the space now
                    self._depth -= self._waiting(batch)
                    self._pending = batch
                    return
                if pending is not None and _same(pending, batch):
                    return  # acked twice: nothing more to do
                with self._ack_transaction(sync=False):
                    self._apply_pending()
                    n = self._delete_whole(batch.whole, batch.cut)
                self._pending = None
                self._depth -= n
            return
        prio = [i for i in batch.ids if i < ROW_BASE] if batch.first_id < ROW_BASE \
            or batch.last_id < ROW_BASE else []
        with self._lock:
            with self._ack_transaction():
                n = ack_priority(self._db, prio, batch) if prio else 0
                if len(prio) < len(batch.ids):
                    n += self._ack_rows([i for i in batch.ids if i >= ROW_BASE]
                                        if prio else batch.ids)
            self._depth -= n

    def flush_acks(self) -> None:
        """Delete the deferred batch now (``close``; tests)."""
        with self._lock:
            self._flush_pending(sync=True)

    def _flush_pending(self, sync: bool = False) -> None:
        """Delete the deferred batch in a commit of its own (lock held): before a
        ``put`` would be refused for want of the space its rows hold."""
        if self._pending is not None:
            with self._ack_transaction(sync=sync):
                self._apply_pending()
            self._pending = None

    def _apply_pending(self) -> None:
        """The deferred batch's delete, inside the caller's transaction (lock held); the
        caller clears ``_pending`` once that commits."""
        if self._pending is not None and self._pending.whole is not None:
            self._delete_whole(self._pending.whole, self._pending.cut)

    def _skipped(self) -> tuple[tuple[int, int] | None, tuple[int, ...]]:
        """The rows and cut lines of the deferred batch: ``get_batch`` leaves them out."""
        p = self._pending
        return (None, ()) if p is None else (p.whole, p.cut)

    def _waiting(self, batch: Batch) -> int:
        """How many of a ``get_batch`` batch's lines are still waiting (read only)."""
        assert batch.whole is not None
        lo, hi = batch.whole
        n = int(self._db.execute("SELECT coalesce(sum(points), 0) FROM msgs WHERE id "
                                 "BETWEEN ? AND ?", (lo, hi)).fetchone()[0])
        if self._acked:
            n -= self._scalar_args("SELECT count(*) FROM acked WHERE line_id BETWEEN ? AND ?",
                                   (line_id(lo, 0), line_id(hi + 1, 0) - 1))
        if batch.cut:
            row = (batch.cut[0] - ROW_BASE) >> ROW_SHIFT
            if self._db.execute("SELECT 1 FROM msgs WHERE id = ?", (row,)).fetchone():
                done = {int(r[0]) for r in self._db.execute(
                    "SELECT line_id FROM acked WHERE line_id BETWEEN ? AND ?",
                    (batch.cut[0], batch.cut[-1]))} if self._acked else set()
                n += sum(1 for i in batch.cut if i not in done)
        return max(0, n)

    def _scalar_args(self, sql: str, args: tuple[int, int]) -> int:
        return int(self._db.execute(sql, args).fetchone()[0])

    @contextmanager
    def _ack_transaction(self, sync: bool = True) -> Iterator[None]:
        """One transaction; on failure re-read the acked count (DiskFull: retry later).
        ``sync=False``: no fsync for this commit (the next fsync'd one covers it)."""
        relax = not sync and self._sync_full
        if relax:
            self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            with transaction(self._db):
                yield
        except BaseException as exc:
            self._acked = self._scalar("SELECT count(*) FROM acked")
            if is_disk_full(exc):
                self.disk_full = True
                reclaim_wal(self._db)
                raise DiskFull(self.path, self._used_bytes(), self.max_bytes) from None
            raise
        finally:
            if relax:
                self._db.execute("PRAGMA synchronous=FULL")
        self.disk_full = False

    def _delete_whole(self, whole: tuple[int, int], cut: tuple[int, ...]) -> int:
        """Delete a batch as ``get_batch`` made it: every remaining line of a range of
        rows, then maybe some lines of the next row (the batch was full). Returns how
        many lines were still there."""
        n = int(self._db.execute("SELECT coalesce(sum(points), 0) FROM msgs WHERE id "
                                 "BETWEEN ? AND ?", whole).fetchone()[0])
        self._db.execute("DELETE FROM msgs WHERE id BETWEEN ? AND ?", whole)
        if self._acked:  # lines of these rows acked earlier were not waiting
            gone = self._db.execute(
                "DELETE FROM acked WHERE line_id BETWEEN ? AND ?",
                (line_id(whole[0], 0), line_id(whole[1] + 1, 0) - 1)).rowcount
            n -= gone
            self._acked -= gone
        if cut:
            n += self._ack_rows(cut)
        return n

    def _ack_rows(self, ids: Sequence[int]) -> int:
        """Ack lines of ``msgs`` rows; returns how many were still waiting."""
        count, acked_delta = ack_rows(self._db, ids, self._acked > 0)
        self._acked += acked_delta
        return count


def _same(a: Batch, b: Batch) -> bool:
    return a.whole == b.whole and a.cut == b.cut
