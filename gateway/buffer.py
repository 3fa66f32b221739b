"""The durable buffer: accepted points wait here, in SQLite, until the store has them.

One SQLite file under ``data_dir`` in WAL mode holds three things that must agree:

- ``lines``: encoded line-protocol points, oldest first, until the forwarder
  acks them (rows leave only after the store acknowledged them);
- ``seen``: the (device, boot, seq) of every accepted message, written in the
  *same transaction* as its lines, so a redelivery after a crash (gateway died
  after committing but before its MQTT ack) is still recognised as a duplicate;
- ``quarantine``: rejected messages and lines the store refused, with the raw
  payload, for ``livinglab gateway rejected`` (bounded, oldest evicted).

Durability: ``synchronous=NORMAL`` in WAL mode makes every committed ``put``
survive a process crash (kill -9, OOM): the commit is in the WAL file in the
OS page cache before the MQTT ack goes out. It does not fsync on commit, so a
power loss can lose the last commits that the broker already considers
delivered. ``sync_full=True`` (``synchronous=FULL``) fsyncs the WAL on every
commit and closes that gap, at the cost of one fsync per ``put`` (ms on an SD
card). Batching many messages per ``put`` keeps either mode cheap.

Bound (backpressure policy): when the used size of the file (``(page_count -
freelist_count) * page_size``, the bytes actually holding data, cheap to read)
reaches ``max_bytes``, ``put`` raises :class:`BufferFull` and writes nothing.
The caller then does not acknowledge the MQTT messages, so the broker keeps
them and redelivers later: nothing is dropped silently. Every refusal is
counted (``full_refusals``). Freed pages are reused, so the file does not grow
past the bound by more than one batch plus the WAL.

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
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from protocols import Accepted, ProtocolError, Rejection, encode_lines

from .errors import GatewayError

__all__ = ["Batch", "BufferFull", "BufferStats", "DurableBuffer", "PutResult", "QuarantineItem"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    line BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS seen (
    device TEXT NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (device, boot, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_at ON seen (at);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, topic TEXT NOT NULL,
    device TEXT, reason TEXT NOT NULL, detail TEXT NOT NULL, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)
    WITHOUT ROWID;
"""
_PRUNE_EVERY_S = 60.0


class BufferFull(GatewayError):
    """The buffer reached its bound: do not acknowledge, the broker keeps the messages."""

    def __init__(self, used_bytes: int, max_bytes: int) -> None:
        super().__init__(f"durable buffer full ({used_bytes} of {max_bytes} bytes): holding back "
                         "acks until the store catches up (check the store, or raise "
                         "[gateway] buffer_max_bytes)")
        self.used_bytes = used_bytes
        self.max_bytes = max_bytes


@dataclass(frozen=True)
class PutResult:
    accepted: int
    duplicates: int
    points: int


@dataclass(frozen=True)
class Batch:
    first_id: int
    last_id: int
    ids: tuple[int, ...]
    lines: tuple[bytes, ...]
    received_at: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.ids)

    def body(self) -> bytes:
        return b"\n".join(self.lines)

    def slice(self, start: int, stop: int) -> Batch:
        """A sub-batch (for isolating bad lines); acking it deletes only its rows."""
        ids = self.ids[start:stop]
        return Batch(ids[0], ids[-1], ids, self.lines[start:stop], self.received_at[start:stop])


@dataclass(frozen=True)
class BufferStats:
    depth: int
    oldest_age_s: float
    size_bytes: int
    quarantined: int
    quarantine_evicted: int = 0
    full_refusals: int = 0
    seen_keys: int = 0


@dataclass(frozen=True)
class QuarantineItem:
    id: int
    at: float
    topic: str
    device: str | None
    reason: str
    detail: str
    payload: bytes


class DurableBuffer:
    """Thread-safe (one connection behind a lock): ingress ``put``s from one thread
    while the single forwarder ``get_batch``/``ack``s from another."""

    def __init__(self, path: Path, max_bytes: int, quarantine_max: int = 10_000, *,
                 sync_full: bool = False, seen_window_s: float = 7 * 24 * 3600.0,
                 seen_max: int = 1_000_000) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.quarantine_max = quarantine_max
        self.seen_window_s = seen_window_s
        self.seen_max = seen_max
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None,
                                       check_same_thread=False, timeout=30.0)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._db.execute(f"PRAGMA synchronous={'FULL' if sync_full else 'NORMAL'}")
            self._db.executescript(_SCHEMA)
        except OSError as exc:
            raise GatewayError(f"cannot create the buffer directory {self.path.parent}: "
                               f"{exc.strerror} (check [gateway] data_dir)") from None
        except sqlite3.DatabaseError as exc:
            raise GatewayError(f"cannot open the buffer {self.path}: {exc} (check [gateway] "
                               "data_dir; move a damaged file away to start empty)") from None
        if str(mode).lower() != "wal":
            raise GatewayError(f"buffer {self.path}: cannot use WAL mode (got {mode}); "
                               "put [gateway] data_dir on a local file system")
        self._page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        self._depth = self._scalar("SELECT count(*) FROM lines")
        self._seen = self._scalar("SELECT count(*) FROM seen")
        self._quarantined = self._scalar("SELECT count(*) FROM quarantine")
        self._counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
        self.full_refusals = 0
        self._last_prune = float("-inf")

    # -- helpers (call with the lock held) ----------------------------------------------
    def _scalar(self, sql: str) -> int:
        return int(self._db.execute(sql).fetchone()[0])

    def _used_bytes(self) -> int:
        pages = self._scalar("PRAGMA page_count") - self._scalar("PRAGMA freelist_count")
        return pages * self._page_size

    def _bump(self, name: str, by: int) -> None:
        if by:
            self._counters[name] = self._counters.get(name, 0) + by
            self._db.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
                             "SET value = value + excluded.value", (name, by))

    def _insert_quarantine(self, items: Sequence[tuple[Rejection, bytes]], at: float) -> int:
        self._db.executemany(
            "INSERT INTO quarantine (at, topic, device, reason, detail, payload) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(at, r.topic, r.device, r.reason, r.detail, bytes(p)) for r, p in items])
        count = self._quarantined + len(items)
        excess = count - self.quarantine_max
        if excess > 0:
            self._db.execute("DELETE FROM quarantine WHERE id IN "
                             "(SELECT id FROM quarantine ORDER BY id LIMIT ?)", (excess,))
            self._bump("quarantine_evicted", excess)
            count -= excess
        return count

    def _prune_seen(self, now: float, count: int) -> int:
        """Drop keys outside the window or beyond the cap; returns how many went."""
        removed = self._db.execute("DELETE FROM seen WHERE at < ?",
                                   (now - self.seen_window_s,)).rowcount
        excess = count - removed - self.seen_max
        if excess > 0:
            excess += self.seen_max // 100  # some slack so this does not run on every put
            removed += self._db.execute(
                "DELETE FROM seen WHERE (device, boot, seq) IN "
                "(SELECT device, boot, seq FROM seen ORDER BY at LIMIT ?)", (excess,)).rowcount
        self._bump("seen_pruned", removed)
        return removed

    # -- public API ------------------------------------------------------------------------
    def put(self, messages: Sequence[Accepted], received_at: float,
            rejected: Sequence[tuple[Rejection, bytes]] = ()) -> PutResult:
        """Dedup, buffer and record ``messages`` and quarantine ``rejected``, atomically.

        Raises :class:`BufferFull` (nothing written) when the buffer is at its bound.
        """
        encoded: list[tuple[Accepted, list[bytes] | None, str]] = []
        for msg in messages:  # encoding is pure: do it before taking the lock
            try:
                body = encode_lines(msg.points)
                encoded.append((msg, body.split(b"\n") if body else [], ""))
            except ProtocolError as exc:  # validated upstream; never wedge the ingress
                encoded.append((msg, None, str(exc)))
        with self._lock:
            used = self._used_bytes()
            if self._full(used):
                self.full_refusals += 1
                raise BufferFull(used, self.max_bytes)
            accepted = duplicates = 0
            rows: list[tuple[float, bytes]] = []
            bad: list[tuple[Rejection, bytes]] = list(rejected)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for msg, lines, error in encoded:
                    if not self._db.execute(
                            "INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?)",
                            (msg.device, msg.boot, msg.seq, received_at)).rowcount:
                        duplicates += 1
                        continue
                    accepted += 1
                    if lines is None:
                        bad.append((Rejection("", msg.device, "unencodable", error),
                                    repr(msg).encode()))
                    else:
                        rows.extend((received_at, line) for line in lines)
                self._db.executemany("INSERT INTO lines (received_at, line) VALUES (?, ?)", rows)
                quarantined = self._insert_quarantine(bad, received_at) if bad \
                    else self._quarantined
                seen = self._seen + accepted
                due = received_at - self._last_prune >= _PRUNE_EVERY_S or seen > self.seen_max
                pruned = self._prune_seen(received_at, seen) if due else 0
                self._db.execute("COMMIT")
            except BaseException as exc:
                self._db.execute("ROLLBACK")
                self._counters = dict(self._db.execute(
                    "SELECT name, value FROM counters").fetchall())
                if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
                    self.full_refusals += 1  # the disk filled up before the bound
                    raise BufferFull(self._used_bytes(), self.max_bytes) from exc
                raise
            if due:
                self._last_prune = received_at
            self._seen = seen - pruned
            self._depth += len(rows)
            self._quarantined = quarantined
        return PutResult(accepted=accepted, duplicates=duplicates, points=len(rows))

    def _full(self, used: int) -> bool:
        """At the bound *and* holding points the forwarder can drain.

        Dedup keys and the quarantine live in the same file and have their own caps;
        when they alone reach the bound, refusing would wedge ingest forever (no ack
        can ever free space), so the buffer keeps accepting.
        """
        return used >= self.max_bytes and self._depth > 0

    def is_full(self) -> bool:
        with self._lock:
            return self._full(self._used_bytes())

    @property
    def depth(self) -> int:
        """Points waiting (kept in memory: cheap enough to call on every wake-up)."""
        return self._depth

    def get_batch(self, max_points: int) -> Batch | None:
        """Up to ``max_points`` oldest lines, or None when empty. One consumer only."""
        with self._lock:
            rows = self._db.execute("SELECT id, line, received_at FROM lines ORDER BY id LIMIT ?",
                                    (max_points,)).fetchall()
        if not rows:
            return None
        ids = tuple(int(r[0]) for r in rows)
        return Batch(ids[0], ids[-1], ids, tuple(bytes(r[1]) for r in rows),
                     tuple(float(r[2]) for r in rows))

    def ack(self, batch: Batch) -> None:
        """Delete exactly the rows of ``batch`` (the store has them)."""
        if not batch.ids:
            return
        with self._lock:
            if batch.last_id - batch.first_id + 1 == len(batch.ids):  # contiguous: one range
                n = self._db.execute("DELETE FROM lines WHERE id BETWEEN ? AND ?",
                                     (batch.first_id, batch.last_id)).rowcount
            else:
                self._db.execute("BEGIN")
                try:
                    n = self._db.executemany("DELETE FROM lines WHERE id = ?",
                                             [(i,) for i in batch.ids]).rowcount
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            self._depth -= n

    def quarantine(self, items: Sequence[tuple[Rejection, bytes]]) -> None:
        """Keep rejected items (not subject to the size bound: the bound is for ``lines``)."""
        if not items:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                count = self._insert_quarantine(items, time.time())
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._quarantined = count

    def list_quarantine(self, limit: int = 100) -> list[QuarantineItem]:
        """Newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, at, topic, device, reason, detail, payload FROM quarantine "
                "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [QuarantineItem(int(r[0]), float(r[1]), r[2], r[3], r[4], r[5], bytes(r[6]))
                for r in rows]

    def stats(self) -> BufferStats:
        with self._lock:
            row = self._db.execute("SELECT received_at FROM lines ORDER BY id LIMIT 1").fetchone()
            used = self._used_bytes()
            age = max(0.0, time.time() - float(row[0])) if row else 0.0
            return BufferStats(depth=self._depth, oldest_age_s=age, size_bytes=used,
                               quarantined=self._quarantined,
                               quarantine_evicted=self._counters.get("quarantine_evicted", 0),
                               full_refusals=self.full_refusals, seen_keys=self._seen)

    def close(self) -> None:
        with self._lock:
            self._db.close()
