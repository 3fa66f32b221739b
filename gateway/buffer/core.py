"""The durable buffer: accepted points wait here, in SQLite, until the store has them.

One SQLite file under ``data_dir`` in WAL mode; its tables (``msgs``, ``lines`` for
priority points, ``seen``, ``quarantine``) and values are in :mod:`gateway.buffer.schema`.

Durability: the gateway opens it with ``sync_full=True`` (``[gateway] durability =
"fsync"``, the default): ``synchronous=FULL`` fsyncs the WAL at every commit, and the
MQTT acks wait for the commit, so a power cut loses nothing acknowledged; commit
grouping (``commit_window_s``, in the pipeline) keeps that to one fsync per group.
``"os-cache"`` (``synchronous=NORMAL``) survives kill -9 but not a power cut. The
forwarder's deletes are written with the next commit (:mod:`gateway.buffer.ack_side`),
and a commit's lines are packed into few deflated rows (:mod:`gateway.buffer.packing`).

Bound (backpressure): when the bytes holding data (``(page_count - freelist_count) *
page_size``) reach ``max_bytes``, ``put`` raises :class:`BufferFull` and writes
nothing; the caller does not ack, so the broker keeps the messages. Every refusal is
counted (``full_refusals``); freed pages are reused, so the file stays near the bound.
Dedup record (runs of seqs per (device, boot), its queries, its retention):
:mod:`gateway.buffer.seen`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from gateway.buffer import quarantine
from gateway.buffer import seen as seen_record
from gateway.buffer.ack_side import AckSide
from gateway.buffer.packing import pack, unpack
from gateway.buffer.priority import PriorityLines, first_lines
from gateway.buffer.quarantine_side import QuarantineSide
from gateway.buffer.schema import (
    ROW_BASE,
    ROW_SHIFT,
    SCHEMA,
    Batch,
    BufferFull,
    BufferStats,
    PutResult,
    QuarantineItem,
    line_id,
)
from gateway.buffer.seen import insert_many, prune_seen
from gateway.buffer.txn import (
    DiskFull,
    Key,
    PutHook,
    disk_room,
    is_disk_full,
    reclaim_wal,
    transaction,
    wal_pages,
)
from gateway.errors import GatewayError
from protocols import Accepted, MessageKey, ProtocolError, Rejection, encode_lines
from protocols.sqlitefile import open_shared

__all__ = ["Batch", "BufferFull", "BufferStats", "DiskFull", "DurableBuffer", "PutHook",
           "PutResult", "QuarantineItem"]

_PRUNE_EVERY_S = 60.0
_PAGE_SIZE = 1024
_WAL_BYTES = 4 * 1024 * 1024


class _Inserted(NamedTuple):
    """What one ``put`` transaction did, applied to the in-memory counters only once it
    has committed."""

    accepted: int
    duplicates: int
    points: int
    quarantine: quarantine.State
    seen: int
    pruned: int
    pruned_due: bool


class DurableBuffer(AckSide, PriorityLines, QuarantineSide):
    """Thread-safe (one connection behind a lock): ingress ``put``s from one thread
    while the single forwarder ``get_batch``/``ack``s from another."""

    def __init__(self, path: Path, max_bytes: int, quarantine_max: int = 10_000, *,
                 sync_full: bool = False, seen_window_s: float = 7 * 24 * 3600.0,
                 seen_max: int = 1_000_000, quarantine_max_bytes: int = 64 << 20) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.quarantine_max = quarantine_max
        self.quarantine_max_bytes = quarantine_max_bytes
        self.seen_window_s = seen_window_s
        self.seen_max = seen_max
        self._lock = threading.Lock()
        self._sync_full = sync_full
        self._pending: Batch | None = None  # an ack deferred into the next commit
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # 1 KiB pages for a new file (an existing one keeps its own): a commit
            # writes whole pages to the WAL, and most of a 4 KiB page is unchanged.
            # open_shared: a concurrent first open (a CLI reading it) waits for the WAL
            # switch instead of failing with "database is locked".
            self._db = open_shared(self.path, 30.0, check_same_thread=False,
                                   page_size=_PAGE_SIZE)
            mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
            self._db.execute(f"PRAGMA synchronous={'FULL' if sync_full else 'NORMAL'}")
            # Debian builds SQLite with SECURE_DELETE: every forwarded row would be
            # zeroed, a second full page write per message (SD-card wear, full disk)
            self._db.execute("PRAGMA secure_delete=OFF")
            self._db.executescript(SCHEMA)
            quarantine.migrate(self._db)
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
        # checkpoint every ~4 MiB of WAL whatever the page size (small disks: less)
        wal = wal_pages(self.path.parent, self._page_size, _WAL_BYTES // self._page_size)
        self._db.execute(f"PRAGMA wal_autocheckpoint={wal}")
        self._priority = self._scalar("SELECT count(*) FROM lines")
        self._acked = self._scalar("SELECT count(*) FROM acked")
        self._depth = (self._priority + self._scalar("SELECT coalesce(sum(points), 0) FROM msgs")
                       - self._acked)
        self._seen = self._open_seen()
        self._q = quarantine.load(self._db)
        self._counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
        self.full_refusals = 0
        #: the last write failed with SQLITE_FULL; cleared by the next one that commits
        self.disk_full = False
        self._last_prune = float("-inf")

    # -- helpers (call with the lock held) ----------------------------------------------
    def _open_seen(self) -> int:
        """The dedup record's runs table; a file from before it has its keys moved once."""
        self._db.executescript(seen_record.SCHEMA)
        if self._db.execute("SELECT 1 FROM seen LIMIT 1").fetchone() is not None:
            with transaction(self._db):
                seen_record.migrate(self._db)
        return seen_record.count_keys(self._db)

    def _scalar(self, sql: str) -> int:
        return int(self._db.execute(sql).fetchone()[0])

    def _used_bytes(self) -> int:
        pages = self._scalar("PRAGMA page_count") - self._scalar("PRAGMA freelist_count")
        return pages * self._page_size

    def _raise_disk_full(self, exc: BaseException) -> None:
        self.disk_full = True
        reclaim_wal(self._db)
        raise DiskFull(self.path, self._used_bytes(), self.max_bytes) from None

    def _bump(self, name: str, by: int) -> None:
        if by:
            self._counters[name] = self._counters.get(name, 0) + by
            self._db.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
                             "SET value = value + excluded.value", (name, by))

    # -- public API ------------------------------------------------------------------------
    def put(self, messages: Sequence[Accepted], received_at: float,
            rejected: Sequence[tuple[Rejection, bytes]] = (), *,
            hook: PutHook | None = None) -> PutResult:
        """Dedup, buffer and record ``messages`` and quarantine ``rejected``, atomically.

        ``hook.stage(db, duplicates)`` runs inside the same transaction (the delivery
        accounting), ``hook.done(committed)`` after it.
        Raises :class:`BufferFull` (nothing written) when the buffer is at its bound.
        """
        encoded: list[tuple[Accepted, bytes | None, str]] = []
        for msg in messages:  # encoding is pure: do it before taking the lock
            if msg.body is not None:  # validation encoded it already (the hot path)
                encoded.append((msg, msg.body, ""))
                continue
            try:
                encoded.append((msg, encode_lines(msg.points), ""))
            except ProtocolError as exc:  # validated upstream; never wedge the ingress
                encoded.append((msg, None, str(exc)))
        keys = [(msg.device, msg.boot, msg.seq) for msg, _, _ in encoded]
        # a generous estimate (WAL frames, then the checkpoint's pages): a put
        # never eats into the reserve the forwarder's deletes need
        need = 3 * sum(len(b) for _, b, _ in encoded if b) + 200 * len(keys)
        with self._lock:
            used = self._used_bytes()
            if self._pending is not None and (
                    self._full(used) or not disk_room(self.path.parent, need)):
                self._flush_pending()  # forwarded rows first: never refuse for them
                used = self._used_bytes()
            if self._full(used):
                self.full_refusals += 1
                raise BufferFull(used, self.max_bytes)
            if not disk_room(self.path.parent, need):
                reclaim_wal(self._db)
                if not disk_room(self.path.parent, need):
                    self.full_refusals += 1
                    self.disk_full = True
                    raise DiskFull(self.path, used, self.max_bytes)
            dups: set[Key] = set()
            try:
                with transaction(self._db):
                    self._apply_pending()  # the forwarder's last ack, in this commit
                    done = self._insert(keys, encoded, received_at, rejected, dups)
                    if hook is not None:
                        hook.stage(self._db, dups)
            except BaseException as exc:
                if hook is not None:
                    hook.done(False)
                self._counters = dict(self._db.execute(
                    "SELECT name, value FROM counters").fetchall())
                self._q = quarantine.load(self._db)
                self._acked = self._scalar("SELECT count(*) FROM acked")
                if is_disk_full(exc):
                    self.full_refusals += 1  # the disk filled up before the bound
                    self._raise_disk_full(exc)
                raise
            self._pending = None
            if hook is not None:
                hook.done(True)
            self.disk_full = False
            if done.pruned_due:
                self._last_prune = received_at
            self._seen = done.seen - done.pruned
            self._depth += done.points
            self._q = done.quarantine
        return PutResult(accepted=done.accepted, duplicates=done.duplicates, points=done.points)

    def _insert(self, keys: list[MessageKey],
                encoded: list[tuple[Accepted, bytes | None, str]], received_at: float,
                rejected: Sequence[tuple[Rejection, bytes]], dups: set[Key]
                ) -> _Inserted:
        """The body of ``put``'s transaction (lock held, transaction open); the keys
        found already accepted are added to ``dups`` (for the delivery accounting)."""
        accepted = duplicates = points = 0
        bodies: list[tuple[int, bytes]] = []
        new_keys: list[MessageKey] = []
        bad: list[tuple[Rejection, bytes]] = list(rejected)
        taken, near = seen_record.lookup(self._db, keys) if keys else (set(), {})
        for key, (msg, body, error) in zip(keys, encoded, strict=True):
            if key in taken:  # seen before, or earlier in this same call
                duplicates += 1
                dups.add(key)
                continue
            taken.add(key)
            new_keys.append(key)
            accepted += 1
            if body is None:
                bad.append((Rejection("", msg.device, "unencodable", error),
                            repr(msg).encode()))
            elif body:
                n = body.count(b"\n") + 1
                points += n
                bodies.append((n, body))
        seen_record.record(self._db, new_keys, near, received_at, self.seen_window_s)
        rows = [(received_at, n, blob) for n, blob in pack(bodies)]  # few rows, deflated
        insert_many(self._db, "INSERT INTO msgs (received_at,points,body) VALUES ", 3, rows)
        quarantined = self._insert_quarantine(bad, received_at) if bad else self._q
        seen = self._seen + accepted
        every = min(_PRUNE_EVERY_S, self.seen_window_s / 4)
        due = received_at - self._last_prune >= every or seen > self.seen_max
        pruned = prune_seen(self._db, received_at, seen, self.seen_window_s,
                            self.seen_max) if due else 0
        self._bump("seen_pruned", pruned)
        return _Inserted(accepted, duplicates, points, quarantined, seen, pruned, due)

    def _full(self, used: int) -> bool:
        """At the bound (the quarantine's bytes left out: it has its own) *and* holding
        points the forwarder can drain: when dedup keys alone reach the bound, refusing
        would wedge ingest forever (no ack can free space), so the buffer accepts."""
        return used - self._q.bytes >= self.max_bytes and self._depth > 0

    def is_full(self) -> bool:
        """At the bound, or the disk was full at the last write (until one commits)."""
        with self._lock:
            return self.disk_full or self._full(self._used_bytes())

    @property
    def depth(self) -> int:
        """Points waiting (kept in memory: cheap enough to call on every wake-up)."""
        return self._depth

    def get_batch(self, max_points: int) -> Batch | None:
        """Up to ``max_points`` oldest lines, or None when empty. One consumer only.
        ``lines`` (:mod:`gateway.buffer.priority`) first; a batch never mixes tables."""
        with self._lock:
            if self._priority > 0:
                first = first_lines(self._db, max_points)
                if first is not None:
                    return first
                self._priority = 0
            skip: set[int] = set()  # lines acked apart from their row (few, usually none)
            if self._acked:
                skip = {int(r[0]) for r in self._db.execute("SELECT line_id FROM acked")}
            gone, cut_before = self._skipped()  # a deferred ack's lines are not waiting
            skip.update(cut_before)
            skip_rows = {(i - ROW_BASE) >> ROW_SHIFT for i in skip}
            lo, hi = gone if gone is not None else (0, -1)
            cur = self._db.execute("SELECT id, received_at, body FROM msgs WHERE id < ? OR "
                                   "id > ? ORDER BY id", (lo, hi))
            ids: list[int] = []
            lines: list[bytes] = []
            stamps: list[float] = []
            rows: list[int] = []
            cut: list[int] = []
            try:
                for row, at, body in cur:
                    base = line_id(row, 0)
                    parts = unpack(bytes(body))
                    if row in skip_rows:
                        kept = [(base + i, p) for i, p in enumerate(parts) if base + i not in skip]
                        row_ids = [k[0] for k in kept]
                        parts = [k[1] for k in kept]
                    else:
                        row_ids = list(range(base, base + len(parts)))
                    room = max_points - len(lines)
                    if len(parts) > room:
                        parts, row_ids = parts[:room], row_ids[:room]
                        cut = row_ids
                    else:
                        rows.append(row)
                    ids.extend(row_ids)
                    lines.extend(parts)
                    stamps.extend([at] * len(parts))
                    if len(lines) >= max_points:
                        break
            finally:
                cur.close()
        if not ids:
            return None
        whole = (rows[0], rows[-1]) if rows and rows[-1] - rows[0] + 1 == len(rows) else None
        return Batch(ids[0], ids[-1], tuple(ids), tuple(lines), tuple(stamps),
                     whole, tuple(cut) if whole else ())

    def stats(self) -> BufferStats:
        with self._lock:
            return BufferStats(depth=self._depth, oldest_age_s=self._oldest_age(),
                               size_bytes=self._used_bytes(), quarantined=self._q.rows,
                               quarantine_bytes=self._q.bytes,
                               quarantine_evicted=self._counters.get("quarantine_evicted", 0),
                               full_refusals=self.full_refusals, seen_keys=self._seen)

    def _oldest_age(self) -> float:
        gone = self._skipped()[0]  # a deferred ack's rows are not waiting
        after = gone[1] if gone is not None else 0
        firsts = [self._db.execute(f"SELECT received_at FROM {t} WHERE id > ? ORDER BY id "
                                   "LIMIT 1", (after if t == "msgs" else 0,)).fetchone()
                  for t in (("lines", "msgs") if self._priority else ("msgs",))]
        oldest = min((float(r[0]) for r in firsts if r), default=None)
        return max(0.0, time.time() - oldest) if oldest is not None else 0.0

    def close(self) -> None:
        try:
            self.flush_acks()
        finally:
            with self._lock:
                self._db.close()
