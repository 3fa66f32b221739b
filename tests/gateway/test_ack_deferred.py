"""The forwarder's ack is deleted in the next commit (SD-card wear, issue 21), and the
``msgs`` rows are packed and deflated: what that keeps and what a kill -9 costs."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest

from gateway.buffer.core import DurableBuffer
from gateway.buffer.packing import DEFLATED, ROW_LINES, pack, unpack
from protocols import Accepted, Point
from tests.gateway.helpers import kill9_after

MB = 1024 * 1024
T0 = 1_796_000_000.0


def msg(seq: int, device: str = "air-1", points: int = 3) -> Accepted:
    return Accepted(device, 3, seq, tuple(
        Point("air", (("device", device), ("site", "lab")), (("co2", float(seq * 10 + i)),),
              1_795_351_934_000 + seq * 10 + i) for i in range(points)))


def rows(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT count(*) FROM msgs").fetchone()[0])
    finally:
        db.close()


def test_ack_is_deferred_into_the_next_put(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    b = DurableBuffer(path, 64 * MB, sync_full=True)
    try:
        b.put([msg(s) for s in range(5)], T0)
        first = b.get_batch(100)
        assert first is not None and len(first) == 15
        b.ack(first)
        assert b.depth == 0 and b.stats().depth == 0 and b.stats().oldest_age_s == 0.0
        assert b.get_batch(100) is None  # never handed out again
        assert rows(path) == 1  # not deleted yet
        b.ack(first)  # acked twice: nothing changes
        assert b.depth == 0
        b.put([msg(s) for s in range(5, 8)], T0 + 1)  # deletes it in the same commit
        assert rows(path) == 1 and b.depth == 9
        second = b.get_batch(100)
        assert second is not None and second.lines[0].startswith(b"air,device=air-1")
        assert len(second) == 9 and second.ids[0] > first.ids[-1]
    finally:
        b.close()
    assert rows(path) == 1  # close() writes nothing it was not told: second not acked
    b = DurableBuffer(path, 64 * MB)
    try:
        assert b.depth == 9
    finally:
        b.close()


def test_a_second_ack_deletes_both_and_close_the_last(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    b = DurableBuffer(path, 64 * MB, sync_full=True)
    b.put([msg(s) for s in range(4)], T0)
    b.put([msg(s) for s in range(4, 8)], T0 + 1)
    one = b.get_batch(12)
    assert one is not None
    b.ack(one)
    two = b.get_batch(100)
    assert two is not None and len(two) == 12
    b.ack(two)  # one pending already: both deleted now, in one commit
    assert rows(path) == 0 and b.depth == 0
    # still FULL for the next put (the ack's commit alone was relaxed)
    assert b._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    b.put([msg(8)], T0 + 2)
    last = b.get_batch(100)
    assert last is not None
    b.ack(last)
    assert rows(path) == 1
    b.close()
    assert rows(path) == 0


CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from gateway.buffer.core import DurableBuffer
    from protocols import Accepted, Point
    def msg(seq):
        return Accepted("air-1", 3, seq, (Point("air", (("device", "air-1"),),
                        (("co2", float(seq)),), 1795351934000 + seq),))
    buf = DurableBuffer(Path(sys.argv[1]), 64 * 1024 * 1024, sync_full=True)
    buf.put([msg(s) for s in range(100)], time.time())
    batch = buf.get_batch(1000)
    buf.ack(batch)  # the store has them
    if sys.argv[2] == "put":
        buf.put([msg(s) for s in range(100, 150)], time.time())  # the ack goes with it
    print("done", flush=True)
    time.sleep(60)  # killed here, without close()
""")


@pytest.mark.parametrize("then", ["nothing", "put"])
def test_kill9_after_a_deferred_ack_loses_nothing_and_doubles_nothing(
        tmp_path: Path, then: str) -> None:
    """kill -9 right after the ack: its lines are sent once more (the store keeps one
    copy of an identical point), nothing lost; after the next put, the ack is durable
    with it: the acked lines are gone, the new ones there once, every key deduped."""
    path = tmp_path / "buffer.sqlite"
    kill9_after(CHILD, [str(path), then], "done", "child acked")
    buf = DurableBuffer(path, 64 * MB)
    try:
        batch = buf.get_batch(1000)
        assert batch is not None
        seqs = [int(line.rsplit(b" ", 1)[1]) - 1795351934000 for line in batch.lines]
        if then == "put":
            assert seqs == list(range(100, 150))  # acked ones gone, new ones once
        else:
            assert seqs == list(range(100))  # the ack was not written: sent again
        r = buf.put([msg(s, points=1) for s in (0, 99, 149, 150)], T0)
        assert (r.accepted, r.duplicates) == ((1, 3) if then == "put" else (2, 2))
    finally:
        buf.close()


def test_packing_rows_of_whole_messages_deflated_and_old_rows_read() -> None:
    bodies = [(3, b"air,device=a co2=1 1\nair,device=a co2=2 2\nair,device=a co2=3 3")] * 200
    packed = pack(bodies)
    assert [n for n, _ in packed] == [255, 255, 90]  # whole messages, <= ROW_LINES
    assert all(blob[:1] == DEFLATED for _, blob in packed)
    assert sum(len(b) for _, b in packed) < sum(len(b) for _, b in bodies) / 5
    assert sum((unpack(b) for _, b in packed), []) == b"\n".join(
        b for _, b in bodies).split(b"\n")
    assert unpack(b"air,device=a co2=1 1\nair co2=2 2") == [b"air,device=a co2=1 1",
                                                          b"air co2=2 2"]  # an old row
    assert pack([(1, b"x f=1 1")]) == [(1, b"x f=1 1")]  # kept raw when no smaller
    big = pack([(ROW_LINES + 5, b"\n".join([b"a f=1 1"] * (ROW_LINES + 5)))])
    assert len(big) == 1  # one message larger than a row: a row of its own
