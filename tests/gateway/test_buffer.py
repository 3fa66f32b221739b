"""DurableBuffer: dedup (also across a restart), bound, batches, quarantine, threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.buffer.core import Batch, BufferFull, DurableBuffer
from protocols import Accepted, Point, Rejection, encode_lines, parse_line

MB = 1024 * 1024
T0 = 1_795_351_934.0


def point(device: str, i: int, sensor: str = "scd41") -> Point:
    return Point("air", (("device", device), ("sensor", sensor), ("site", "lab")),
                 (("co2", 400.0 + i), ("temperature", 20.5)), 1_795_351_934_000 + i)


def msg(device: str, boot: int, seq: int, n_points: int = 3) -> Accepted:
    return Accepted(device, boot, seq, tuple(point(device, seq * 10 + k, f"s{k}")
                                             for k in range(n_points)))


@pytest.fixture
def buf(tmp_path: Path) -> Iterator[DurableBuffer]:
    b = DurableBuffer(tmp_path / "data" / "buffer.sqlite", max_bytes=64 * MB)
    yield b
    b.close()


def test_put_dedups_within_a_call_and_across_calls(buf: DurableBuffer) -> None:
    r = buf.put([msg("a", 1, 0), msg("a", 1, 1), msg("a", 1, 0)], T0)
    assert (r.accepted, r.duplicates, r.points) == (2, 1, 6)
    r = buf.put([msg("a", 1, 1), msg("a", 2, 1), msg("b", 1, 1)], T0 + 1)
    assert (r.accepted, r.duplicates, r.points) == (2, 1, 6)
    assert buf.stats().depth == 12


def test_dedup_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    b = DurableBuffer(path, max_bytes=64 * MB)
    b.put([msg("a", 7, 41), msg("a", 7, 42)], T0)
    batch = b.get_batch(100)
    assert batch is not None
    b.ack(batch)  # even after the lines are forwarded, the keys stay
    b.close()
    b = DurableBuffer(path, max_bytes=64 * MB)
    try:
        r = b.put([msg("a", 7, 42), msg("a", 7, 43)], T0 + 5)
        assert (r.accepted, r.duplicates) == (1, 1)
        assert b.stats().depth == 3
    finally:
        b.close()


def test_lines_roundtrip_oldest_first_and_ack_deletes_exactly_the_batch(
        buf: DurableBuffer) -> None:
    buf.put([msg("a", 1, s) for s in range(5)], T0)  # 15 lines
    first = buf.get_batch(4)
    assert first is not None and len(first) == 4
    assert first.received_at == (T0,) * 4
    assert [parse_line(x.decode()) for x in first.lines] == list(msg("a", 1, 0).points) + [
        msg("a", 1, 1).points[0]]
    again = buf.get_batch(4)
    assert again == first  # not acked: still there
    buf.ack(first)
    rest = buf.get_batch(100)
    assert rest is not None and len(rest) == 11 and rest.first_id > first.last_id
    # ack a non-contiguous subset: only those rows go
    picked = Batch(rest.ids[0], rest.ids[4], (rest.ids[0], rest.ids[2], rest.ids[4]),
                   (rest.lines[0], rest.lines[2], rest.lines[4]), (T0, T0, T0))
    buf.ack(picked)
    left = buf.get_batch(100)
    assert left is not None
    assert left.ids == tuple(i for i in rest.ids if i not in picked.ids)
    assert buf.stats().depth == 8
    buf.ack(left)
    assert buf.get_batch(100) is None
    assert buf.stats().depth == 0


def test_batch_body_is_line_protocol(buf: DurableBuffer) -> None:
    m = msg("a", 1, 0)
    buf.put([m], T0)
    batch = buf.get_batch(10)
    assert batch is not None
    assert batch.body() == encode_lines(m.points)
    assert batch.slice(1, 3).ids == batch.ids[1:3]


def test_message_without_points_is_still_recorded(buf: DurableBuffer) -> None:
    empty = Accepted("a", 1, 9, ())
    assert buf.put([empty], T0).accepted == 1
    assert buf.put([empty], T0).duplicates == 1
    assert buf.get_batch(10) is None


def test_full_buffer_refuses_and_writes_nothing(tmp_path: Path) -> None:
    b = DurableBuffer(tmp_path / "b.sqlite", max_bytes=256 * 1024)
    try:
        seq = 0
        with pytest.raises(BufferFull) as info:
            for _ in range(10_000):  # bounded: ~300 bytes a message, full well before
                b.put([msg("a", 1, seq + k) for k in range(50)], T0)
                seq += 50
        assert "buffer_max_bytes" in str(info.value)
        assert b.is_full()
        before = b.stats()
        rej = Rejection("t", "a", "not_json", "x")
        with pytest.raises(BufferFull):
            b.put([msg("a", 1, seq + 1), msg("z", 1, 0)], T0, [(rej, b"{")])
        after = b.stats()
        assert (after.depth, after.quarantined, after.seen_keys) == (
            before.depth, before.quarantined, before.seen_keys)
        assert after.full_refusals == before.full_refusals + 1
        # the refused message was not recorded as seen: accepted once there is room
        batch = b.get_batch(100_000)
        assert batch is not None
        b.ack(batch)
        assert not b.is_full()
        assert b.put([msg("z", 1, 0)], T0).accepted == 1
    finally:
        b.close()


def test_quarantine_bounded_newest_first(tmp_path: Path) -> None:
    b = DurableBuffer(tmp_path / "b.sqlite", max_bytes=64 * MB, quarantine_max=5)
    try:
        for i in range(4):
            b.put([], T0 + i, [(Rejection(f"t/{i}", "a", "out_of_range", f"#{i}"), b"%d" % i)])
        b.quarantine([(Rejection("store", None, "store_rejected", f"q{i}"), b"line")
                      for i in range(3)])
        items = b.list_quarantine()
        assert [i.detail for i in items] == ["q2", "q1", "q0", "#3", "#2"]
        assert items[-1].payload == b"2" and items[-1].topic == "t/2"
        assert items[0].device is None and items[0].reason == "store_rejected"
        s = b.stats()
        assert (s.quarantined, s.quarantine_evicted) == (5, 2)
        assert len(b.list_quarantine(limit=2)) == 2
    finally:
        b.close()
    b = DurableBuffer(tmp_path / "b.sqlite", max_bytes=64 * MB, quarantine_max=5)
    try:  # the eviction count is durable too
        assert (b.stats().quarantined, b.stats().quarantine_evicted) == (5, 2)
    finally:
        b.close()


def test_seen_keys_pruned_by_window_and_cap(tmp_path: Path) -> None:
    b = DurableBuffer(tmp_path / "b.sqlite", max_bytes=64 * MB, seen_window_s=3600,
                      seen_max=1000)
    try:
        b.put([msg("a", 1, s, 0) for s in range(10)], T0)
        b.put([msg("a", 1, 10, 0)], T0 + 3599)
        assert b.put([msg("a", 1, 0, 0)], T0 + 3599).duplicates == 1  # inside the window
        b.put([msg("b", 1, 0, 0)], T0 + 3601 + 60)  # prune runs: a/1/0..9 are too old
        assert b.stats().seen_keys == 2
        assert b.put([msg("a", 1, 10, 0)], T0 + 3700).duplicates == 1
        b.put([msg("c", 1, s, 0) for s in range(1500)], T0 + 3800)
        assert b.stats().seen_keys <= 1000
        assert b.put([msg("c", 1, 1499, 0)], T0 + 3800).duplicates == 1  # newest kept
    finally:
        b.close()


def test_stats_age_and_size(buf: DurableBuffer) -> None:
    buf.put([msg("a", 1, 0)], time.time() - 30)
    s = buf.stats()
    assert 29 <= s.oldest_age_s < 60
    assert s.size_bytes > 0 and s.depth == 3 and s.quarantined == 0


def test_threads_put_and_drain_concurrently(buf: DurableBuffer) -> None:
    n_msgs = 2000
    got: list[bytes] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def producer() -> None:
        try:
            for s in range(0, n_msgs, 20):
                buf.put([msg("a", 1, s + k, 1) for k in range(20)], T0)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)
        finally:
            done.set()

    t = threading.Thread(target=producer)
    t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        batch = buf.get_batch(37)
        if batch is None:
            if done.is_set() and buf.get_batch(1) is None:
                break
            time.sleep(0.001)
            continue
        got.extend(batch.lines)
        buf.ack(batch)
    t.join(10)
    assert not errors
    assert len(got) == n_msgs and len(set(got)) == n_msgs
    assert buf.stats().depth == 0


def test_quarantine_is_outside_the_buffer_bound(tmp_path: Path) -> None:
    """Issue 15: one device's junk must not use up the site's outage buffer. A rejected
    payload keeps its first 2 KiB and its length; the quarantine's bytes are left out of
    buffer_max_bytes (on main: 60 whole 64 KiB payloads, then the bound refused points)."""
    b = DurableBuffer(tmp_path / "b.sqlite", max_bytes=256 * 1024, quarantine_max=100_000)
    try:
        rej = Rejection("t", "a", "not_json", "x")
        for _ in range(60):  # 60 x 64 KiB sent: well past the bound if kept whole
            b.put([], T0, [(rej, b"{" * 65536)])
        item = b.list_quarantine(1)[0]
        assert len(item.payload) == 2048 and item.length == 65536
        assert b.stats().quarantined == 60
        assert b.put([msg("a", 1, 0)], T0).accepted == 1
        assert not b.is_full()  # the points' share of the file is far below the bound
    finally:
        b.close()


def test_quarantine_has_its_own_byte_bound(tmp_path: Path) -> None:
    b = DurableBuffer(tmp_path / "b.sqlite", max_bytes=MB, quarantine_max=100_000,
                      quarantine_max_bytes=64 * 1024)
    try:
        for i in range(100):  # ~2.2 KiB a row: about 29 rows fit in 64 KiB
            b.put([], T0, [(Rejection("t", "a", "not_json", f"#{i}"), b"x" * 5000)])
        stats = b.stats()
        assert 20 <= stats.quarantined <= 30 and stats.quarantine_bytes <= 64 * 1024
        assert stats.quarantine_evicted == 100 - stats.quarantined
        assert b.list_quarantine(1)[0].detail == "#99"  # the oldest went first
    finally:
        b.close()
    again = DurableBuffer(tmp_path / "b.sqlite", max_bytes=MB, quarantine_max_bytes=64 * 1024)
    try:  # the estimate is read back at open
        assert again.stats().quarantine_bytes == stats.quarantine_bytes
    finally:
        again.close()


def test_dedup_keys_alone_at_the_bound_do_not_wedge_ingest(tmp_path: Path) -> None:
    """With no points to drain, refusing would hold acks back forever."""
    b = DurableBuffer(tmp_path / "b.sqlite", max_bytes=MB)
    try:
        for i in range(40):  # messages without points: dedup keys only (every other
            # seq, so each is a run of its own in the record: enough to fill 1 MB)
            b.put([Accepted(f"dev-{i:04d}-{'x' * 40}", 1, s, ()) for s in range(0, 1000, 2)],
                  T0)
        assert b.stats().size_bytes >= MB and b.stats().depth == 0
        assert not b.is_full()
        assert b.put([msg("a", 1, 0)], T0).accepted == 1
        assert b.is_full()  # now there is something to drain: backpressure applies
    finally:
        b.close()


def test_unusable_buffer_file_is_a_one_line_gateway_error(tmp_path: Path) -> None:
    from gateway.errors import GatewayError

    path = tmp_path / "buffer.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(GatewayError, match="move a damaged file away") as info:
        DurableBuffer(path, 64 * MB)
    assert "\n" not in str(info.value)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(GatewayError, match="data_dir"):
        DurableBuffer(blocker / "sub" / "buffer.sqlite", 64 * MB)


def test_bulk_dedup_catches_duplicates_in_the_same_call_and_across_query_chunks(
        buf: DurableBuffer) -> None:
    buf.put([msg("a", 1, s, 1) for s in range(0, 1000, 7)], T0)  # 143 keys already there
    batch = [msg("a", 1, s, 1) for s in range(1000)] + [msg("a", 1, s, 1) for s in range(500)]
    r = buf.put(batch, T0 + 1)  # 1500 keys: several dedup queries; the tail repeats the head
    assert (r.accepted, r.duplicates, r.points) == (1000 - 143, 143 + 500, 1000 - 143)
    assert buf.stats().depth == 1000 and buf.stats().seen_keys == 1000


def test_slices_ack_lines_of_a_message_row_exactly_and_durably(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    b = DurableBuffer(path, max_bytes=64 * MB)
    b.put([msg("a", 1, s) for s in range(3)], T0)  # 3 rows of 3 lines
    batch = b.get_batch(100)
    assert batch is not None and len(batch) == 9
    b.ack(batch.slice(0, 4))  # row 1 whole, one line of row 2
    b.ack(batch.slice(5, 6))  # a line in the middle of row 2
    assert b.stats().depth == 4
    rest = b.get_batch(100)
    assert rest is not None
    assert rest.ids == batch.ids[4:5] + batch.ids[6:]
    assert rest.lines == batch.lines[4:5] + batch.lines[6:]
    b.close()
    b = DurableBuffer(path, max_bytes=64 * MB)  # the partial acks are durable
    try:
        again = b.get_batch(3)
        assert again is not None and again.ids == rest.ids[:3] and b.stats().depth == 4
        b.ack(again)
        b.ack(again)  # acking twice changes nothing
        assert b.stats().depth == 1
        last = b.get_batch(100)
        assert last is not None and last.lines == batch.lines[-1:]
        b.ack(last)
        assert b.get_batch(100) is None and b.stats().depth == 0
    finally:
        b.close()
    b = DurableBuffer(path, max_bytes=64 * MB)
    try:
        assert b.stats().depth == 0
    finally:
        b.close()


def test_old_one_row_per_line_buffer_drains_after_upgrade(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "buffer.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        PRAGMA journal_mode=WAL;
        CREATE TABLE lines (id INTEGER PRIMARY KEY AUTOINCREMENT, received_at REAL NOT NULL,
                            line BLOB NOT NULL);
        CREATE TABLE seen (device TEXT NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
                           at REAL NOT NULL, PRIMARY KEY (device, boot, seq)) WITHOUT ROWID;
        CREATE INDEX seen_at ON seen (at);""")
    old = [encode_lines((p,)) for p in msg("old", 1, 0, 5).points]
    db.executemany("INSERT INTO lines (received_at, line) VALUES (?, ?)",
                   [(T0 - 60, line) for line in old])
    db.execute("INSERT INTO seen VALUES ('old', 1, 0, ?)", (T0 - 60,))
    db.commit()
    db.close()
    b = DurableBuffer(path, max_bytes=64 * MB)
    try:
        assert b.stats().depth == 5
        assert b.put([msg("old", 1, 0, 5)], T0).duplicates == 1  # its key is still known
        new = msg("new", 1, 0)
        assert b.put([new], T0).points == 3
        assert b.stats().depth == 8
        first = b.get_batch(3)
        assert first is not None and first.lines == tuple(old[:3])
        b.ack(first)
        second = b.get_batch(100)  # the old table first, until it is empty
        assert second is not None and second.lines == tuple(old[3:])
        assert second.received_at == (T0 - 60,) * 2
        b.ack(second)
        third = b.get_batch(100)
        assert third is not None and third.body() == encode_lines(new.points)
        b.ack(third)
        assert b.get_batch(100) is None and b.stats().depth == 0
    finally:
        b.close()


@pytest.mark.parametrize("size", [1, 2, 4, 5, 7])
def test_batches_cut_inside_messages_drain_every_line_once(buf: DurableBuffer,
                                                           size: int) -> None:
    msgs = [msg("a", 1, s, n) for s, n in enumerate((3, 1, 5, 3, 2, 3))]
    buf.put(msgs, T0)
    want = [line for m in msgs for line in encode_lines(m.points).split(b"\n")]
    got: list[bytes] = []
    while (batch := buf.get_batch(size)) is not None:
        assert len(batch) == min(size, len(want) - len(got))
        got.extend(batch.lines)
        if len(batch) > 2:  # half of them through the forwarder's split path
            buf.ack(batch.slice(0, 1))
            buf.ack(batch.slice(1, len(batch)))
        else:
            buf.ack(batch)
        assert buf.depth == len(want) - len(got) == buf.stats().depth
    assert got == want
    assert buf.stats().oldest_age_s == 0.0
