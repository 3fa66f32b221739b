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

import math
import sqlite3
from bisect import bisect_right
from collections.abc import Sequence

from protocols import MessageKey

__all__ = ["SCHEMA", "Near", "count_keys", "existing_keys", "insert_many", "lookup",
           "migrate", "prune_seen", "record", "stamp"]

Key = MessageKey
Run = tuple[int, int, float]  # lo, hi, at (the newest key's receive time)
Near = dict[tuple[str, int], list[Run]]

_VARIABLES = 900  # bound parameters per statement (SQLite's limit is 32766 since 3.32)
_STAMP_MAX_S = 600.0  # see stamp()
_BUCKETS = 8  # a run only grows within one window/8 of time: pruning stays near the window

#: the record: runs of consecutive seqs per (device, boot). The old one-row-per-key
#: ``seen`` table (still in the schema, emptied by :func:`migrate`) put each device's
#: newest key on its own B-tree leaf, so a commit wrote a 1 KiB page per device it
#: touched: 70 % of the WAL's frames at 100 msg/s (issue 21). A run per device is
#: ~40 bytes: the runs of 200 devices fit in a few pages.
SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_runs (
    device TEXT NOT NULL, boot INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
    at REAL NOT NULL, PRIMARY KEY (device, boot, lo)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_runs_at ON seen_runs (at);
"""

# the runs that may hold or touch seqs ?3+1..?4-1: the last starting at or before ?3,
# and every one starting up to ?4 (runs are disjoint, so also sorted by hi)
_NEAR = ("SELECT lo, hi, at FROM seen_runs WHERE device = ?1 AND boot = ?2 AND lo <= ?4 "
         "AND lo >= coalesce((SELECT max(lo) FROM seen_runs WHERE device = ?1 AND boot = ?2 "
         "AND lo <= ?3), ?3) ORDER BY lo")


def count_keys(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT coalesce(sum(hi - lo + 1), 0) FROM seen_runs").fetchone()[0])


def migrate(db: sqlite3.Connection) -> int:
    """Once, for a buffer written before the runs: the ``seen`` rows become runs (the
    caller holds the transaction). Returns how many keys moved."""
    rows = db.execute("SELECT device, boot, seq, at FROM seen ORDER BY device, boot, seq"
                      ).fetchall()
    runs: list[list[object]] = []
    for dev, boot, seq, at in rows:
        last = runs[-1] if runs else None
        if last is not None and last[0] == dev and last[1] == boot and last[3] == seq - 1:
            last[3] = seq
            last[4] = max(at, last[4])
        else:
            runs.append([dev, boot, seq, seq, at])
    insert_many(db, "INSERT INTO seen_runs VALUES ", 5, [tuple(r) for r in runs])
    db.execute("DELETE FROM seen")
    return len(rows)


def _inside(runs: list[Run], los: list[int], seq: int) -> bool:
    i = bisect_right(los, seq) - 1
    return i >= 0 and runs[i][1] >= seq


def lookup(db: sqlite3.Connection, keys: Sequence[Key]) -> tuple[set[Key], Near]:
    """Which of ``keys`` are already recorded, and the runs near them (for :func:`record`):
    one query per (device, boot) of the batch."""
    groups: dict[tuple[str, int], list[int]] = {}
    for dev, boot, seq in keys:
        groups.setdefault((dev, boot), []).append(seq)
    found: set[Key] = set()
    near: Near = {}
    for (dev, boot), seqs in groups.items():
        runs: list[Run] = db.execute(_NEAR, (dev, boot, min(seqs) - 1, max(seqs) + 1)
                                     ).fetchall()
        near[(dev, boot)] = runs
        if runs:
            los = [r[0] for r in runs]
            found.update((dev, boot, s) for s in seqs if _inside(runs, los, s))
    return found, near


def existing_keys(db: sqlite3.Connection, keys: Sequence[Key]) -> set[Key]:
    """Which of ``keys`` are already recorded."""
    return lookup(db, keys)[0]


def stamp(at: float, window_s: float) -> float:
    """The ``at`` stored for a key received at ``at``: rounded *up* to a step of
    window/64 (at most 10 minutes). A run growing by one key then keeps its ``at``
    most of the time, so the commit rewrites only the run's row, not also its
    ``seen_runs_at`` index entry on another leaf (7 of a 10 msg/s commit's ~33 WAL
    pages, issue 21); a key is kept up to one step longer, never shorter."""
    step = min(_STAMP_MAX_S, window_s / 64)
    return math.ceil(at / step) * step if step > 0 else at


def record(db: sqlite3.Connection, new: Sequence[Key], near: Near, at: float,
           window_s: float) -> None:
    """Add ``new`` keys (none recorded yet) received at ``at``: each extends or bridges
    the runs of its (device, boot) that grew within the same window/8 of time, or starts
    a run. ``near`` is :func:`lookup`'s answer for a superset of ``new``."""
    bucket = window_s / _BUCKETS
    at = stamp(at, window_s)
    now_b = at // bucket
    groups: dict[tuple[str, int], list[int]] = {}
    for dev, boot, seq in new:
        groups.setdefault((dev, boot), []).append(seq)
    gone: list[tuple[str, int, int]] = []
    rows: list[tuple[str, int, int, int, float]] = []
    grown: list[tuple[int, str, int, int]] = []  # the same run, one more key, same at
    for (dev, boot), seqs in groups.items():
        live = [(lo, hi, True) for lo, hi, t in near.get((dev, boot), ())
                if t // bucket == now_b]  # older runs stay as they are
        stamps = {lo: t for lo, _, t in near.get((dev, boot), ())}
        merged: list[tuple[int, int, list[int], bool]] = []  # lo, hi, old runs' lo, new?
        for lo, hi, old in sorted(live + [(s, s, False) for s in seqs]):
            if merged and lo <= merged[-1][1] + 1:
                mlo, mhi, olds, grew = merged[-1]
                merged[-1] = (mlo, max(mhi, hi), olds + [lo] if old else olds, grew or not old)
            else:
                merged.append((lo, hi, [lo] if old else [], not old))
        for lo, hi, olds, grew in merged:
            if olds == [lo] and grew and stamps.get(lo) == at:
                grown.append((hi, dev, boot, lo))
            elif grew or len(olds) > 1:
                gone.extend((dev, boot, o) for o in olds)
                rows.append((dev, boot, lo, hi, at))
    if gone:
        db.executemany("DELETE FROM seen_runs WHERE device = ? AND boot = ? AND lo = ?", gone)
    if grown:
        db.executemany("UPDATE seen_runs SET hi = ? WHERE device = ? AND boot = ? AND lo = ?",
                       grown)
    insert_many(db, "INSERT INTO seen_runs VALUES ", 5, rows)


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
    """Drop runs outside the window, then the oldest keys beyond the cap (a run larger
    than what must go loses its lowest seqs); returns how many keys went."""
    old = now - window_s
    removed = int(db.execute("SELECT coalesce(sum(hi - lo + 1), 0) FROM seen_runs "
                             "WHERE at < ?", (old,)).fetchone()[0])
    if removed:
        db.execute("DELETE FROM seen_runs WHERE at < ?", (old,))
    excess = count - removed - cap
    if excess <= 0:
        return removed
    excess += cap // 100  # some slack so this does not run on every put
    while excess > 0:
        runs = db.execute("SELECT device, boot, lo, hi FROM seen_runs ORDER BY at, device, "
                          "boot, lo LIMIT 500").fetchall()
        if not runs:
            break
        for dev, boot, lo, hi in runs:
            n = min(hi - lo + 1, excess)
            if n == hi - lo + 1:
                db.execute("DELETE FROM seen_runs WHERE device = ? AND boot = ? AND lo = ?",
                           (dev, boot, lo))
            else:
                db.execute("UPDATE seen_runs SET lo = ? WHERE device = ? AND boot = ? "
                           "AND lo = ?", (lo + n, dev, boot, lo))
            removed += n
            excess -= n
            if excess <= 0:
                break
    return removed
