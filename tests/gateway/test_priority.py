"""Health before backlog (wire contract): priority lines leave the buffer ahead of any
backlog, also when they arrive while a backlog batch is being retried."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from gateway.buffer.core import DurableBuffer
from gateway.stores import StoreTransient
from protocols import encode_point, make_point
from tests.gateway.test_forwarder import MB, FakeSleep, FakeStore, fill, make, run_until


def health(at_ms: int) -> list:  # type: ignore[type-arg]
    return [make_point("gateway", {"site": "lab", "gateway": "gw1"}, {"up": 1.0}, at_ms)]


def test_priority_lines_come_first_and_count_in_depth_and_age(tmp_path: Path) -> None:
    buf = DurableBuffer(tmp_path / "b.sqlite", 64 * MB)
    try:
        fill(buf, 50, received_at=time.time() - 100)
        pts = health(1)
        assert buf.put_priority(pts, time.time()) == 1
        assert buf.depth == 51 and buf.priority_waiting
        assert buf.stats().oldest_age_s >= 99  # the backlog's age, not the health point's
        batch = buf.get_batch(10)
        assert batch is not None and batch.priority
        assert batch.lines == (encode_point(pts[0]).encode(),)
        buf.ack(batch)
        nxt = buf.get_batch(10)
        assert nxt is not None and not nxt.priority and len(nxt) == 10
        assert not buf.priority_waiting and buf.depth == 50
    finally:
        buf.close()


def test_priority_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buf = DurableBuffer(path, 64 * MB)
    fill(buf, 5)
    buf.put_priority(health(2), time.time())
    buf.close()
    buf = DurableBuffer(path, 64 * MB)
    try:
        assert buf.depth == 6 and buf.priority_waiting
        batch = buf.get_batch(100)
        assert batch is not None and batch.priority and len(batch) == 1
    finally:
        buf.close()


def test_health_arriving_during_an_outage_is_written_first(tmp_path: Path) -> None:
    """The store is down while the forwarder retries a backlog batch; a health point
    arrives; the first successful write is the health point."""
    buf = DurableBuffer(tmp_path / "b.sqlite", 64 * MB)
    try:
        lines = fill(buf, 300)
        line = encode_point(health(3)[0]).encode()

        class Store(FakeStore):
            def __init__(self) -> None:
                super().__init__(tuple(StoreTransient("down") for _ in range(3)))
                self.first_ok: list[bytes] | None = None

            async def write(self, body: bytes, n_lines: int) -> None:
                if self.calls == 1:  # the outage is on: the gateway's health comes in
                    buf.put_priority(health(3), time.time())
                await super().write(body, n_lines)
                if self.first_ok is None:
                    self.first_ok = body.split(b"\n")

        store = Store()
        fwd, _ = make(buf, store, sleep=FakeSleep())
        asyncio.run(run_until(fwd, lambda: buf.depth == 0))
        assert store.first_ok == [line]
        assert store.written == [line, *lines]  # nothing lost, nothing twice
    finally:
        buf.close()
