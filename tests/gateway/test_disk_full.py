"""A full disk behaves like a full buffer: nothing acked, nothing lost, resumes by itself.

Without root: SQLite's ``PRAGMA max_page_count`` caps the file, and SQLite then
fails writes with SQLITE_FULL exactly as on a full file system (the end-to-end
test on a real small file system is in ``test_disk_full_tmpfs.py``).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.accounting.lastseen import LastSeen, Sighting
from gateway.buffer.core import BufferFull, DiskFull, DurableBuffer
from gateway.buffer.txn import transaction
from gateway.ingest.pipeline import Pipeline
from gateway.ops.metrics import Metrics
from tests.gateway.helpers import PREFIX, SITE, FakeSink, msg
from tests.gateway.test_buffer import T0
from tests.gateway.test_buffer import msg as accepted

MB = 1024 * 1024


def cap(db: sqlite3.Connection, extra_pages: int | None) -> None:
    """Cap the file at its current size plus ``extra_pages`` (None: lift the cap)."""
    pages = int(db.execute("PRAGMA page_count").fetchone()[0])
    db.execute(f"PRAGMA max_page_count={1 << 30 if extra_pages is None else pages + extra_pages}")


@pytest.fixture
def buf(tmp_path: Path) -> Iterator[DurableBuffer]:
    b = DurableBuffer(tmp_path / "buffer.sqlite", max_bytes=64 * MB)
    yield b
    b.close()


def fill(buf: DurableBuffer) -> int:
    """Put until the disk is full; returns how many messages got in."""
    n = 0
    with pytest.raises(DiskFull) as info:
        for seq in range(100_000):
            buf.put([accepted("a", 1, seq, n_points=20)], T0 + seq)
            n += 1
    assert "disk full" in str(info.value) and "data_dir" in str(info.value)
    assert "rollback" not in str(info.value)  # the real error, not the masking one
    return n


def test_full_disk_refuses_puts_cleanly_and_resumes(buf: DurableBuffer) -> None:
    cap(buf._db, 8)
    n = fill(buf)
    assert n > 0 and buf.disk_full and buf.is_full()
    assert isinstance(DiskFull(buf.path, 1, 2), BufferFull)  # the pipeline's backpressure
    assert buf.stats().depth == n * 20  # nothing half-written
    with pytest.raises(DiskFull):  # still full: refused again, still cleanly
        buf.put([accepted("b", 1, 0, n_points=20)], T0)
    cap(buf._db, None)  # space returns
    r = buf.put([accepted("b", 1, 0), accepted("a", 1, 0)], T0)
    assert (r.accepted, r.duplicates) == (1, 1)  # the dedup record survived
    assert not buf.disk_full and not buf.is_full()


class FullOn:
    """A connection whose ``verb`` statements fail as on a full file system (a delete
    can fail there, the WAL grows first; max_page_count never fails a shrinking write)."""

    def __init__(self, db: sqlite3.Connection, verb: str | tuple[str, ...]) -> None:
        self._db = db
        self._verb = verb

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.startswith(self._verb):
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.startswith(self._verb):
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.executemany(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._db, name)


def test_ack_on_a_full_disk_raises_diskfull_and_keeps_the_rows(buf: DurableBuffer) -> None:
    for seq in range(50):
        buf.put([accepted("a", 1, seq, n_points=20)], T0 + seq)
    first = buf.get_batch(500)
    assert first is not None
    buf.ack(first)  # deferred into the next commit: nothing written yet
    batch = buf.get_batch(10_000)
    assert batch is not None and len(batch) == 500
    real = buf._db
    buf._db = FullOn(real, "DELETE")  # type: ignore[assignment]
    with pytest.raises(DiskFull):
        buf.ack(batch)  # deletes both: fails on the full disk
    assert not real.in_transaction
    assert buf.stats().depth == 500 and buf.disk_full
    assert real.execute("SELECT count(*) FROM msgs").fetchone()[0] == 50  # rows kept
    buf._db = real
    buf.ack(batch)  # the retry succeeds
    assert buf.stats().depth == 0 and not buf.disk_full
    assert real.execute("SELECT count(*) FROM msgs").fetchone()[0] == 0


def test_transaction_rolls_back_only_what_is_open(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "x.sqlite", isolation_level=None)
    db.execute("CREATE TABLE t (x BLOB)")
    cap(db, 1)
    with pytest.raises(sqlite3.OperationalError, match="full"):
        with transaction(db):
            db.execute("INSERT INTO t VALUES (zeroblob(100000))")
    assert not db.in_transaction
    db.close()


def test_pipeline_holds_acks_says_so_once_and_resumes(
        buf: DurableBuffer, caplog: pytest.LogCaptureFixture) -> None:
    sink = FakeSink()
    pipe = Pipeline(site=SITE, prefix=PREFIX, rejected_topic="rej", buffer=buf, sink=sink,
                    metrics=Metrics(), full_poll_s=0.01, full_wait_s=0.05)
    real = buf._db
    buf._db = FullOn(real, "INSERT")  # type: ignore[assignment]

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(pipe.run(stop))
        for i in range(5):
            pipe.submit(msg("air-0001", i, mid=i + 1))
        for _ in range(100):
            await asyncio.sleep(0.01)
        assert pipe.full and pipe.disk_full and sink.acked == []
        buf._db = real  # space returns
        for _ in range(500):
            if len(sink.acked) == 5:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task

    with caplog.at_level(logging.INFO, logger="livinglab.gateway.pipeline"):
        asyncio.run(go())
    assert sorted(sink.acked) == [1, 2, 3, 4, 5] and not pipe.full and not pipe.disk_full
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "disk full" in warnings[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


def test_lastseen_keeps_sightings_while_the_disk_is_full(tmp_path: Path) -> None:
    ls = LastSeen(tmp_path / "lastseen.sqlite", flush_every_s=0.0)
    try:
        ls._db.execute("PRAGMA max_page_count=1")
        many = [Sighting(f"air-{i:04d}", T0, "telemetry") for i in range(500)]
        ls.update(many)  # flushes: fails (needs new pages), kept for the next flush
        assert ls.disk_full
        ls._db.execute("PRAGMA max_page_count=100000")
        ls.flush()
        assert len(ls.all()) == 500 and not ls.disk_full
    finally:
        ls.close()


def test_forwarder_retries_a_delete_that_fails_on_a_full_disk(buf: DurableBuffer) -> None:
    from tests.gateway.test_forwarder import FakeSleep, FakeStore, fill, make, run_until

    lines = fill(buf, 50)
    store, sleep = FakeStore(), FakeSleep()
    # batches of 20 out of one row of 50 lines: the first two record their lines in
    # `acked` (and fail), the last one deletes the row (deferred into close)
    fwd, metrics = make(buf, store, batch_size=20, sleep=sleep)
    real = buf._db
    buf._db = FullOn(real, ("DELETE", "INSERT INTO acked"))  # type: ignore[assignment]
    fails: list[bool] = []

    async def go() -> None:
        def cond() -> bool:
            fails.append(fwd.disk_full)
            if len(sleep.delays) >= 3:  # three retries refused: space returns
                buf._db = real
            return buf.stats().depth == 0

        await run_until(fwd, cond)

    asyncio.run(go())
    assert any(fails) and not fwd.disk_full  # it was retrying, and it recovered
    assert sleep.delays[:3] == [1.0, 1.0, 1.0]
    assert sorted(set(store.written)) == sorted(lines)  # all forwarded, rows then deleted
    assert metrics.registry.get_sample_value("livinglab_points_forwarded_total") == 50
