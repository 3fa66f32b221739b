"""What the durable buffer's SQLite file holds, and the values it hands out.

One SQLite file under ``data_dir`` in WAL mode holds three things that must agree:

- ``msgs``: the accepted messages' encoded line-protocol points, a few rows per
  ``put`` (up to 256 lines each, whole messages, deflated: :mod:`gateway.buffer.
  packing`; older files hold one raw row per message), with their count and
  ``received_at``, oldest first, until the forwarder acks every line of it (rows
  leave only after the store acknowledged them; the delete is written with the
  next commit, :mod:`gateway.buffer.ack_side`).
  A batch is still a sequence of *lines* with one id each (``line_id``: the
  row id and the line's index in it); lines of a row acked on their own (a
  batch cut in the middle of a message, or a slice of the forwarder's
  split-and-quarantine path) are recorded in ``acked`` in the same
  transaction and skipped from then on, and the row goes once all its lines
  are acked. Few rows per ``put`` instead of one per point, and one bulk dedup
  query per ``put``, is what keeps SQLite cheap per message;
- ``lines``: the one-row-per-point table of earlier versions. It is still
  read (first, oldest data) and acked, so a buffer written before the upgrade
  drains; nothing new is written to it;
- ``seen``: the (device, boot, seq) of every accepted message, written in the
  *same transaction* as its lines, so a redelivery after a crash (gateway died
  after committing but before its MQTT ack) is still recognised as a duplicate;
- ``quarantine``: rejected messages and lines the store refused, one row per
  message with the first 2 KiB of its payload and its ``length``, for ``livinglab
  gateway rejected`` (bounded by rows and bytes, oldest evicted; outside
  ``buffer_max_bytes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.errors import GatewayError

__all__ = ["Batch", "BufferFull", "BufferStats", "PutResult", "QuarantineItem"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS msgs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    points INTEGER NOT NULL,
    body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS acked (line_id INTEGER PRIMARY KEY);
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
    device TEXT, reason TEXT NOT NULL, detail TEXT NOT NULL, payload BLOB NOT NULL,
    length INTEGER);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)
    WITHOUT ROWID;
"""
# Line ids: ``lines`` rows (priority points) keep their own ids (below ROW_BASE); a
# line of a ``msgs`` row is ROW_BASE + (row id << ROW_SHIFT) + its index in the row.
ROW_SHIFT = 20
ROW_BASE = 1 << 62


def line_id(row: int, index: int) -> int:
    return ROW_BASE + (row << ROW_SHIFT) + index


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
    #: set by ``get_batch`` only (not by ``slice``): the ``msgs`` rows the batch holds
    #: whole, first and last, and the ids of the cut row after them, for a cheap ``ack``
    whole: tuple[int, int] | None = field(default=None, compare=False, repr=False)
    cut: tuple[int, ...] = field(default=(), compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def priority(self) -> bool:
        """Lines of the ``lines`` table (gateway health: sent ahead of the backlog)."""
        return self.first_id < ROW_BASE

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
    quarantine_bytes: int = 0


@dataclass(frozen=True)
class QuarantineItem:
    id: int
    at: float
    topic: str
    device: str | None
    reason: str
    detail: str
    payload: bytes  # the first 2 KiB
    length: int = -1  # of the whole payload
