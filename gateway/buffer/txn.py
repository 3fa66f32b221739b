"""One write transaction on the buffer's SQLite file, and what a full disk looks like.

A full file system (or ``PRAGMA max_page_count``) makes SQLite fail a write with
SQLITE_FULL, often at ``COMMIT``, and SQLite then has already rolled the
transaction back: a blind ``ROLLBACK`` would raise "cannot rollback - no
transaction is active" and mask the real error. :func:`transaction` rolls back
only what is still open and turns SQLITE_FULL into :class:`DiskFull`, which the
pipeline treats like a full buffer (no acks, the broker keeps the messages) and
the forwarder retries (a delete of forwarded rows can fail on a full disk too).

So that those deletes can still run, ``put`` refuses early, while a small reserve
is still free (:func:`disk_room`), and a refused write first tries to reclaim the
WAL's space (:func:`reclaim_wal`).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from gateway.buffer.schema import BufferFull
from protocols import MessageKey

__all__ = ["DiskFull", "Key", "PutHook", "disk_room", "is_disk_full", "reclaim_wal", "transaction",
           "wal_pages"]

_SQLITE_FULL = 13
#: free space kept for the forwarder's deletes and checkpoints: a disk filled to the
#: last byte by ``put`` would leave no room for the WAL frames that free space again
RESERVE_MAX = 8 * 1024 * 1024
RESERVE_SHARE = 10  # at most a tenth of the file system (a 4 MiB tmpfs keeps 400 KiB)


class DiskFull(BufferFull):
    """The file system under the buffer is full: hold back acks until space returns."""

    def __init__(self, path: Path, used_bytes: int, max_bytes: int) -> None:
        super().__init__(used_bytes, max_bytes)
        self.args = (f"disk full under the durable buffer {path}: holding back acks until "
                     "space returns (free space on the [gateway] data_dir file system)",)

    def __str__(self) -> str:
        return str(self.args[0])


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL
        or "database or disk is full" in str(exc))


def _reserve(st: os.statvfs_result) -> int:
    return min(RESERVE_MAX, st.f_blocks * st.f_frsize // RESERVE_SHARE)


def wal_pages(directory: Path, page_size: int, default: int = 1000) -> int:
    """The WAL auto-checkpoint size, in pages: at most half the reserve, so that a full
    WAL can always be checkpointed into the reserve (SQLite's default elsewhere)."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return default
    return max(16, min(default, _reserve(st) // 2 // page_size))


def disk_room(directory: Path, need: int) -> bool:
    """Would ``need`` more bytes still leave the reserve free? (one statvfs)"""
    try:
        st = os.statvfs(directory)
    except OSError:
        return True  # cannot tell: let SQLite find out
    return st.f_bavail * st.f_frsize - need > _reserve(st)


def reclaim_wal(db: sqlite3.Connection) -> None:
    """Copy the WAL into the database and truncate it: on a full disk that turns the
    WAL's space (frames often repeat the same pages) into free space again."""
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.OperationalError:
        pass  # full even for that, or busy: the next attempt tries again


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` .. ``COMMIT``; rolls back what is still open on failure.

    SQLITE_FULL is re-raised as it is; callers turn it into :class:`DiskFull`
    with their own numbers (they hold the lock the size query needs).
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


Key = MessageKey


class PutHook(Protocol):
    """Extra writes committed in a ``put``'s transaction (see :mod:`gateway.delivery`)."""

    def stage(self, db: sqlite3.Connection, duplicates: set[Key]) -> None: ...

    def done(self, committed: bool) -> None: ...
