"""The dedup record: which (device, boot, seq) the buffer has accepted, in table ``seen``.

Every query runs inside the caller's transaction, so the record is committed
together with the buffered data (the wire contract requires that a redelivery
after a crash is still recognised).

Seen-keys window: a key only matters while its message can come again. The
broker redelivers only messages the gateway has not acknowledged (at most a
Receive Maximum's worth, re-sent right after reconnecting) and keeps them at
most for the MQTT session lifetime (7 days by default); a device re-sends an
unacknowledged publish on its next connection. So keys older than
``seen_window_s`` (7 days, measured against the newest ``received_at``) are
pruned. A hard cap ``seen_max`` (1,000,000 keys, about 65 MB at ~65 bytes a
key with its index) evicts the oldest first when a large fleet or a flooding
device accepts more than that within the window: keys are only added while the
gateway is running and acking, and redeliveries arrive right after a reconnect,
so the keys that matter are the newest. Pruning runs at most once a minute
(cheap: an index range delete) and is counted (``seen_pruned``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from protocols import MessageKey

__all__ = ["existing_keys", "insert_many", "prune_seen"]

Key = MessageKey

_VARIABLES = 900  # bound parameters per statement (SQLite's limit is 32766 since 3.32)
_KEYS_PER_QUERY = _VARIABLES // 3  # (device, boot, seq) row values per dedup query


def existing_keys(db: sqlite3.Connection, keys: Sequence[Key]) -> set[Key]:
    """Which of ``keys`` are already in ``seen`` (a few queries, not one per key)."""
    found: set[Key] = set()
    for i in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[i:i + _KEYS_PER_QUERY]
        # a join, not ``(device, boot, seq) IN (VALUES ...)``: SQLite scans the whole
        # table for that form, and searches the primary key for this one
        sql = ("SELECT s.device, s.boot, s.seq FROM (VALUES "
               + ",".join(["(?,?,?)"] * len(chunk)) + ") AS k CROSS JOIN seen AS s "
               "ON s.device = k.column1 AND s.boot = k.column2 AND s.seq = k.column3")
        found.update(db.execute(sql, [v for k in chunk for v in k]).fetchall())
    return found


def insert_many(db: sqlite3.Connection, head: str, width: int,
                rows: Sequence[tuple[object, ...]]) -> None:
    """Like ``executemany`` but a few multi-row statements: executemany steps once per
    row, releasing and re-taking the GIL each time (a convoy with the event loop)."""
    per = _VARIABLES // width
    one = "(" + ",".join("?" * width) + ")"
    for i in range(0, len(rows), per):
        chunk = rows[i:i + per]
        db.execute(head + ",".join([one] * len(chunk)), [v for row in chunk for v in row])


def prune_seen(db: sqlite3.Connection, now: float, count: int, window_s: float,
               cap: int) -> int:
    """Drop keys outside the window or beyond the cap; returns how many went."""
    removed = int(db.execute("DELETE FROM seen WHERE at < ?", (now - window_s,)).rowcount)
    excess = count - removed - cap
    if excess > 0:
        excess += cap // 100  # some slack so this does not run on every put
        removed += int(db.execute(
            "DELETE FROM seen WHERE (device, boot, seq) IN "
            "(SELECT device, boot, seq FROM seen ORDER BY at LIMIT ?)", (excess,)).rowcount)
    return removed
