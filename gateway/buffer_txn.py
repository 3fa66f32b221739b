"""One write transaction on the buffer's SQLite file, and what a full disk looks like.

A full file system (or ``PRAGMA max_page_count``) makes SQLite fail a write with
SQLITE_FULL, often at ``COMMIT``, and SQLite then has already rolled the
transaction back: a blind ``ROLLBACK`` would raise "cannot rollback - no
transaction is active" and mask the real error. :func:`transaction` rolls back
only what is still open and turns SQLITE_FULL into :class:`DiskFull`, which the
pipeline treats like a full buffer (no acks, the broker keeps the messages) and
the forwarder retries (a delete of forwarded rows can fail on a full disk too).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .buffer_schema import BufferFull

__all__ = ["DiskFull", "is_disk_full", "transaction"]

_SQLITE_FULL = 13


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
