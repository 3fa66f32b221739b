"""Commit grouping: one commit (one fsync) for a window of messages, acks after it."""

from __future__ import annotations

import asyncio
import time

from gateway.ingest.pipeline import Pipeline
from gateway.ops.metrics import Metrics
from tests.gateway.helpers import PREFIX, SITE, FakeBuffer, FakeSink, msg


def run(window: float, n: int, max_batch: int = 2000) -> tuple[FakeBuffer, FakeSink, float]:
    buf, sink = FakeBuffer(), FakeSink()
    pipe = Pipeline(site=SITE, prefix=PREFIX, rejected_topic="rej", buffer=buf, sink=sink,
                    metrics=Metrics(), commit_window_s=window, max_batch=max_batch)

    async def go() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(pipe.run(stop))
        t0 = time.time()
        for i in range(n):
            pipe.submit(msg("air-0001", i, mid=i + 1, received_at=t0))
        for _ in range(500):
            if len(sink.acked) == n:
                break
            await asyncio.sleep(0.01)
        took = time.time() - t0
        stop.set()
        await task
        return took

    took = asyncio.run(go())
    return buf, sink, took


def test_a_window_of_messages_is_one_commit_acked_after_it() -> None:
    buf, sink, took = run(0.3, 5)
    assert buf.puts == 1 and sorted(sink.acked) == [1, 2, 3, 4, 5]
    assert took >= 0.29  # the commit waited for its window


def test_a_full_batch_ends_the_window_early() -> None:
    buf, sink, took = run(5.0, 4, max_batch=4)
    assert buf.puts == 1 and len(sink.acked) == 4
    assert took < 4.0
