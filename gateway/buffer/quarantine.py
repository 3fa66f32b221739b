"""The quarantine table of the durable buffer: rejected messages kept for
``livinglab gateway rejected`` and the console, oldest evicted first.

Plain functions over the buffer's connection: the buffer owns the lock and the
transaction, these own the SQL.

Bounded on its own (issue 15): one device sending 16 KiB of junk per message must
not use up the site's outage buffer. So a row keeps the first :data:`KEEP_PAYLOAD`
bytes of the payload and its full ``length``; the table holds at most ``max_rows``
rows and about ``max_bytes`` bytes (``[gateway] quarantine_max`` and
``quarantine_max_bytes``), and those bytes are left out of ``buffer_max_bytes``
(:meth:`DurableBuffer._full`). The size is an estimate kept in memory (the row's
strings and payload plus :data:`ROW_OVERHEAD`), so no query measures it per
``put``; against SQLite's ``dbstat`` with 1 KiB pages it is 1 % off for 2 KiB
payloads, +13 % for 100-byte ones and -24 % for 500-byte ones (cell slack).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from gateway.buffer.schema import QuarantineItem
from protocols import Rejection

__all__ = ["KEEP_PAYLOAD", "State", "insert", "load", "migrate", "newest", "row", "storable"]

KEEP_PAYLOAD = 2048  # bytes of a rejected payload kept (the wire contract's 2 KiB)
TOPIC_MAX = 512  # an MQTT topic may be 64 KiB long; the first 512 characters say enough
DETAIL_MAX = 400
ROW_OVERHEAD = 100  # rowid, at, reason, device, record header, page slack
_SIZE_SQL = f"length(payload) + length(detail) + length(topic) + {ROW_OVERHEAD}"

Row = tuple[float, str, str | None, str, str, bytes, int]


class State(NamedTuple):
    """What the table holds (kept in memory; re-read after a failed transaction)."""

    rows: int
    bytes: int
    evicted: int = 0  # rows evicted by the last insert


def migrate(db: sqlite3.Connection) -> None:
    """Add ``length`` to a quarantine made before it had one (NULL: the payload is whole)."""
    cols = {r[1] for r in db.execute("PRAGMA table_info(quarantine)")}
    if "length" not in cols:
        db.execute("ALTER TABLE quarantine ADD COLUMN length INTEGER")


def load(db: sqlite3.Connection) -> State:
    r = db.execute(f"SELECT count(*), coalesce(sum({_SIZE_SQL}), 0) FROM quarantine").fetchone()
    return State(int(r[0]), int(r[1]))


def storable(s: str) -> str:
    """``s`` as SQLite can store it: a lone surrogate (no UTF-8 for it) becomes
    ``\\udxxx``, so a strange topic or detail cannot make the quarantine itself fail."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s


def row(rejection: Rejection, payload: bytes, at: float) -> Row:
    """One row: the payload cut to its first 2 KiB, strings cut to a sane length."""
    return (at, storable(rejection.topic)[:TOPIC_MAX], rejection.device, rejection.reason,
            storable(rejection.detail)[:DETAIL_MAX], bytes(payload[:KEEP_PAYLOAD]),
            len(payload))


def _size(r: Row) -> int:
    return len(r[5]) + len(r[4]) + len(r[1]) + ROW_OVERHEAD


def insert(db: sqlite3.Connection, items: Sequence[tuple[Rejection, bytes]], at: float,
           state: State, max_rows: int, max_bytes: int) -> State:
    """Insert ``items`` (inside the caller's transaction), one row each, and evict the
    oldest rows beyond ``max_rows`` or ``max_bytes``; returns the new state."""
    rows = [row(r, p, at) for r, p in items]
    db.executemany("INSERT INTO quarantine (at, topic, device, reason, detail, payload, length) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    count = state.rows + len(rows)
    size = state.bytes + sum(map(_size, rows))
    if count <= max_rows and size <= max_bytes:
        return State(count, size)
    evicted = 0
    last = None
    cur = db.execute(f"SELECT id, {_SIZE_SQL} FROM quarantine ORDER BY id")
    try:
        for rid, n in cur:
            if (count <= max_rows and size <= max_bytes) or count <= 1:
                break
            last, count, size, evicted = rid, count - 1, size - int(n), evicted + 1
    finally:
        cur.close()
    if last is not None:
        db.execute("DELETE FROM quarantine WHERE id <= ?", (last,))
    return State(count, size, evicted)


def newest(db: sqlite3.Connection, limit: int) -> list[QuarantineItem]:
    """The newest ``limit`` rows, newest first."""
    rows = db.execute(
        "SELECT id, at, topic, device, reason, detail, payload, length FROM quarantine "
        "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [QuarantineItem(int(r[0]), float(r[1]), r[2], r[3], r[4], r[5], bytes(r[6]),
                           len(r[6]) if r[7] is None else int(r[7])) for r in rows]
