"""Delivery accounting: the contract's counts for known patterns, through a real buffer."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.accounting.delivery import (
    Accounting,
    Event,
    capture,
    hour_of,
    readable_key,
)
from gateway.accounting.read import read_gaps, read_hours
from gateway.app import load_accounting
from gateway.buffer.core import DurableBuffer
from protocols import Accepted

H = 1_764_064_800.0  # 2025-11-25T10:00:00Z, an hour start
assert hour_of(H) == H


def _put(buf: DurableBuffer, acc: Accounting, events: list[Event]) -> None:
    """What the pipeline does: accepted messages to the buffer, events to the hook."""
    msgs = [Accepted(e.device, e.boot, e.seq, ()) for e in events
            if e.kind == "accepted" and e.boot is not None and e.seq is not None]
    buf.put(msgs, min(e.at for e in events), hook=acc.with_events(events))


def _counts(path: Path, device: str = "air-1") -> dict[int, tuple[int, ...]]:
    return {int(r.hour - H) // 3600: r.counts()
            for r in read_hours(path, 0, 2e9, [device])}


def ok(seq: int, at: float, boot: int = 1) -> Event:
    return Event("air-1", at, "accepted", boot, seq)


def test_readable_key() -> None:
    assert readable_key(b'{"boot": 3, "seq": 9, "samples": 1}') == (3, 9)
    assert readable_key(b'{"boot": "3", "seq": 9}') == (None, None)
    assert readable_key(b'{"boot": true, "seq": 9}') == (None, None)
    assert readable_key(b"\xff not json") == (None, None)
    assert readable_key(b"[1]") == (None, None)
    assert capture(0, 0, 0) == 1.0 and capture(3, 1, 0) == 0.75


def test_gaps_duplicates_rejections_late_arrival_and_reboot(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    buf = DurableBuffer(path, 64 << 20)
    acc = load_accounting(path)
    # hour 0: seq 0,1,2, then 5 (3 and 4 missing), a duplicate of 1, seq 6 rejected with a
    # readable seq (not missing), a rejection without one
    _put(buf, acc, [ok(0, H + 1), ok(1, H + 2), ok(2, H + 3)])
    _put(buf, acc, [ok(5, H + 10)])
    _put(buf, acc, [ok(1, H + 11)])
    _put(buf, acc, [Event("air-1", H + 12, "rejected", 1, 6),
                    Event("air-1", H + 13, "rejected", None, None),
                    Event("air-1", H + 14, "duplicate", 1, 5)])
    assert _counts(path) == {0: (8, 4, 2, 2, 2)}
    # hour 1: 4 arrives late (hour 0 gives it back), 7 arrives, then 9 (8 missing)
    _put(buf, acc, [ok(4, H + 3600 + 5), ok(7, H + 3600 + 6), ok(9, H + 3600 + 7)])
    assert _counts(path) == {0: (8, 4, 2, 2, 1), 1: (3, 3, 0, 0, 1)}
    # reboot: boot 2 starts at seq 1 (0 missing, counted in hour 2)
    _put(buf, acc, [ok(1, H + 7200 + 1, boot=2)])
    assert _counts(path)[2] == (1, 1, 0, 0, 1)
    gaps = [(g.boot, g.lo, g.hi, g.cause) for g in read_gaps(path, 0, 2e9)]
    assert gaps == [(1, 3, 3, "unknown"), (1, 6, 6, "rejection"), (1, 8, 8, "unknown"),
                    (2, -1, -1, "reboot"), (2, 0, 0, "unknown")]
    buf.close()
    # a restart (new process state) continues from the file: 3 arrives late
    buf = DurableBuffer(path, 64 << 20)
    acc = load_accounting(path)
    _put(buf, acc, [ok(3, H + 7200 + 9)])
    assert _counts(path)[0] == (8, 4, 2, 2, 0)
    assert _counts(path)[2] == (2, 2, 0, 0, 1)
    buf.close()


def test_offline_status_names_the_cause(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    buf = DurableBuffer(path, 64 << 20)
    acc = load_accounting(path)
    _put(buf, acc, [ok(0, H + 1)])
    acc.with_events([Event("air-1", H + 5, "offline")])
    buf.put([], H + 5, hook=acc)
    _put(buf, acc, [ok(4, H + 60)])
    assert [g.cause for g in read_gaps(path, 0, 2e9)] == ["offline"]
    buf.close()


def test_rollback_keeps_memory_and_file_in_step(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    buf = DurableBuffer(path, 64 << 20)
    acc = load_accounting(path)
    _put(buf, acc, [ok(0, H + 1)])

    class Boom(Exception):
        pass

    class Failing:
        def stage(self, db: sqlite3.Connection, dups: set[tuple[str, int, int]]) -> None:
            acc.stage(db, dups)
            raise Boom

        def done(self, committed: bool) -> None:
            acc.done(committed)

    acc.with_events([ok(5, H + 2)])
    with pytest.raises(Boom):
        buf.put([Accepted("air-1", 1, 5, ())], H + 2, hook=Failing())
    _put(buf, acc, [ok(1, H + 3)])
    assert _counts(path) == {0: (2, 2, 0, 0, 0)}
    buf.close()


def test_points_and_clear_dirty(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    buf = DurableBuffer(path, 64 << 20)
    acc = load_accounting(path)
    _put(buf, acc, [ok(0, H + 1), ok(2, H + 2), ok(3, H + 3600 + 1)])
    pts, hook = acc.points("lab", H + 3600 + 5)
    assert [(p.measurement, p.time_ms, dict(p.fields)["missing"]) for p in pts] == [
        ("delivery", int(H * 1000), 1.0), ("delivery", int((H + 3600) * 1000), 0.0)]
    buf.put([], H + 3600 + 5, hook=hook)
    pts, _ = acc.points("lab", H + 3600 + 6)
    assert [p.time_ms for p in pts] == [int((H + 3600) * 1000)]  # only the current hour
    # a late arrival makes the past hour dirty again
    _put(buf, acc, [ok(1, H + 3600 + 7)])
    pts, _ = acc.points("lab", H + 3600 + 8)
    assert len(pts) == 2
    buf.close()
    assert len(load_accounting(path).points("lab", H + 3 * 3600)[0]) == 2  # dirty survives
