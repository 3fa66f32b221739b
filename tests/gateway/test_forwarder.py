"""Forwarder against a fake store: retries without loss or duplicates, bad-line isolation,
Retry-After, stop during backoff, batching limits, shutdown flush."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.buffer.core import DurableBuffer
from gateway.forward.forwarder import Forwarder
from gateway.forward.retry import Backoff
from gateway.ops.metrics import Metrics
from gateway.stores import StoreFatal, StoreRejected, StoreTransient
from protocols import Accepted, Point, encode_lines

MB = 1024 * 1024


class FakeStore:
    """Writes into a list; raises the scripted errors first; rejects measurement 'bad'."""

    def __init__(self, script: tuple[Exception, ...] = (), partial: bool = False) -> None:
        self.script = deque(script)
        self.partial = partial
        self.written: list[bytes] = []
        self.calls = 0
        self.ready_calls = 0

    async def ensure_ready(self) -> None:
        self.ready_calls += 1

    async def write(self, body: bytes, n_lines: int) -> None:
        self.calls += 1
        if self.script:
            raise self.script.popleft()
        lines = body.split(b"\n")
        assert len(lines) == n_lines
        good = [line for line in lines if not line.startswith(b"bad,")]
        if len(good) != len(lines):
            if self.partial:  # InfluxDB 2's 422: the good points are written anyway
                self.written.extend(good)
                raise StoreRejected("HTTP 422: partial write: 1 point dropped", 422, True)
            raise StoreRejected("HTTP 400: unable to parse 'bad,...'", 400)
        self.written.extend(lines)

    async def aclose(self) -> None:
        pass


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def fill(buf: DurableBuffer, n_points: int, bad_at: int | None = None,
         received_at: float | None = None, boot: int = 1) -> list[bytes]:
    """``n_points`` one-point messages; returns the encoded lines in order."""
    msgs = []
    for i in range(n_points):
        measurement = "bad" if i == bad_at else "air"
        p = Point(measurement, (("device", f"d{i % 7}"), ("sensor", "scd41"), ("site", "lab")),
                  (("co2", 400.0 + i),), 1_795_351_934_000 + i)
        msgs.append(Accepted(f"d{i % 7}", boot, i, (p,)))
    buf.put(msgs, time.time() if received_at is None else received_at)
    return [encode_lines(m.points) for m in msgs]


@pytest.fixture
def buf(tmp_path: Path) -> Iterator[DurableBuffer]:
    b = DurableBuffer(tmp_path / "buffer.sqlite", 64 * MB)
    yield b
    b.close()


def make(buf: DurableBuffer, store: FakeStore, batch_size: int = 100,
         flush_interval_s: float = 0.05, sleep: Callable[[float], object] | None = None,
         base: float = 0.5) -> tuple[Forwarder, Metrics]:
    metrics = Metrics()
    fwd = Forwarder(buf, store, metrics, batch_size=batch_size, flush_interval_s=flush_interval_s,
                    backoff=Backoff(base=base, cap=30.0, rng=random.Random(7)),
                    sleep=sleep or FakeSleep())  # type: ignore[arg-type]
    return fwd, metrics


async def run_until(fwd: Forwarder, cond: Callable[[], bool], timeout: float = 10.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(fwd.run(stop))
    end = time.monotonic() + timeout
    try:
        while not cond():
            if task.done():
                task.result()
            if time.monotonic() > end:
                raise TimeoutError("condition not met")
            await asyncio.sleep(0.005)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_transient_errors_then_success_no_loss_no_duplicates(buf: DurableBuffer) -> None:
    lines = fill(buf, 250)
    store = FakeStore((StoreTransient("connection refused"), StoreTransient("HTTP 503")))
    sleep = FakeSleep()
    fwd, metrics = make(buf, store, sleep=sleep)
    asyncio.run(run_until(fwd, lambda: buf.depth == 0))
    assert store.written == lines  # in order, each once
    assert len(sleep.delays) == 2 and all(0 <= d <= 1.0 for d in sleep.delays)
    assert value(metrics, "livinglab_points_forwarded_total") == 250
    assert value(metrics, "livinglab_store_errors_total", kind="transient") == 2
    assert value(metrics, "livinglab_receive_to_store_seconds_count") == 250
    assert fwd.failing_since is None and store.ready_calls == 1


@pytest.mark.parametrize("partial", [False, True], ids=["400", "422-partial"])
def test_one_bad_line_in_100_is_quarantined_the_rest_forwarded(buf: DurableBuffer,
                                                               partial: bool) -> None:
    lines = fill(buf, 100, bad_at=37)
    store = FakeStore(partial=partial)
    fwd, metrics = make(buf, store)
    asyncio.run(run_until(fwd, lambda: buf.depth == 0))
    good = [line for i, line in enumerate(lines) if i != 37]
    assert set(store.written) == set(good)
    if not partial:
        assert store.written == good  # each good line written exactly once
    q = buf.list_quarantine()
    assert len(q) == 1
    assert q[0].payload == lines[37] and q[0].reason == "store_rejected"
    assert q[0].device == "d2" and "HTTP" in q[0].detail
    assert value(metrics, "livinglab_points_forwarded_total") == 99
    assert store.calls <= 2 * 7 + 1  # halving: about 2 log2(100) writes, not 100


def test_retry_after_is_honoured(buf: DurableBuffer) -> None:
    fill(buf, 5)
    store = FakeStore((StoreTransient("HTTP 429", retry_after=12.0),))
    sleep = FakeSleep()
    fwd, _ = make(buf, store, sleep=sleep)
    asyncio.run(run_until(fwd, lambda: buf.depth == 0))
    assert sleep.delays == [12.0]


def test_fatal_is_counted_and_retried(buf: DurableBuffer) -> None:
    lines = fill(buf, 5)
    store = FakeStore((StoreFatal("bucket not found (create it)"),) * 3)
    sleep = FakeSleep()
    fwd, metrics = make(buf, store, sleep=sleep)
    asyncio.run(run_until(fwd, lambda: buf.depth == 0))
    assert store.written == lines
    assert value(metrics, "livinglab_store_errors_total", kind="fatal") == 3
    assert len(sleep.delays) == 3


def test_stop_during_backoff_returns_promptly_and_keeps_the_batch(buf: DurableBuffer) -> None:
    fill(buf, 10)
    store = FakeStore((StoreTransient("down"),) * 100)
    fwd, metrics = make(buf, store, sleep=asyncio.sleep, base=0.01)

    async def scenario() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(fwd.run(stop))
        while store.calls < 2:  # two attempts: the first backoff (< base) may be short
            await asyncio.sleep(0.01)
            if task.done():
                task.result()
        t0 = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 2)
        return time.monotonic() - t0

    start = time.monotonic()
    took = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert took < 1.0
    assert time.monotonic() - start < 5
    assert buf.depth == 10 and store.written == []
    assert fwd.failing_since is not None
    assert value(metrics, "livinglab_points_forwarded_total") == 0


def test_long_backoff_is_interrupted_by_stop(buf: DurableBuffer) -> None:
    fill(buf, 3)
    store = FakeStore((StoreTransient("down", retry_after=500.0),))
    fwd, _ = make(buf, store, sleep=asyncio.sleep)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(fwd.run(stop))
        while store.calls < 1:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # now inside the 500 s backoff
        stop.set()
        await asyncio.wait_for(task, 1)

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert buf.depth == 3


def test_small_batch_waits_for_flush_interval_full_batch_goes_at_once(
        buf: DurableBuffer) -> None:
    store = FakeStore()
    fwd, _ = make(buf, store, batch_size=10, flush_interval_s=1.0)

    async def scenario() -> tuple[float, int, float, float]:
        stop = asyncio.Event()
        task = asyncio.create_task(fwd.run(stop))
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        fill(buf, 1, boot=2)  # the first batch after a start goes at once (issue 21)
        fwd.wake()
        while len(store.written) < 1:
            await asyncio.sleep(0.005)
        first_after = time.monotonic() - t0
        t0 = time.monotonic()
        fill(buf, 3)
        fwd.wake()
        await asyncio.sleep(0.3)
        early = len(store.written)  # the small batch is still waiting
        while len(store.written) < 4:
            await asyncio.sleep(0.01)
        small_after = time.monotonic() - t0
        t1 = time.monotonic()
        more = [Accepted("x", 1, i, (Point("air", (("device", "x"), ("site", "lab")),
                                           (("co2", 1.0),), 1_795_351_934_000 + i),))
                for i in range(10)]
        buf.put(more, time.time())
        fwd.wake()
        while len(store.written) < 14:
            await asyncio.sleep(0.005)
        full_after = time.monotonic() - t1
        stop.set()
        await asyncio.wait_for(task, 2)
        return first_after, early, small_after, full_after

    first_after, early, small_after, full_after = asyncio.run(
        asyncio.wait_for(scenario(), 10))
    assert first_after < 0.5
    assert early == 1
    assert 0.9 <= small_after < 2.0
    assert full_after < 0.5


def test_old_data_is_sent_without_waiting(buf: DurableBuffer) -> None:
    fill(buf, 3, received_at=time.time() - 60)  # e.g. left over from the last run
    store = FakeStore()
    fwd, _ = make(buf, store, batch_size=100, flush_interval_s=5.0)
    t0 = time.monotonic()
    asyncio.run(run_until(fwd, lambda: buf.depth == 0, timeout=4))
    assert time.monotonic() - t0 < 2.0


def test_flush_sends_partial_batches_and_respects_its_deadline(buf: DurableBuffer) -> None:
    lines = fill(buf, 25)
    store = FakeStore()
    fwd, _ = make(buf, store, batch_size=10, flush_interval_s=30.0)
    asyncio.run(asyncio.wait_for(fwd.flush(5.0), 10))
    assert store.written == lines and buf.depth == 0

    fill(buf, 1, boot=2)
    assert buf.depth == 1
    down = FakeStore((StoreTransient("down"),) * 1000)
    fwd, _ = make(buf, down, sleep=asyncio.sleep, base=0.05)
    t0 = time.monotonic()
    asyncio.run(asyncio.wait_for(fwd.flush(0.5), 5))
    assert 0.4 <= time.monotonic() - t0 < 1.5
    assert buf.depth == 1  # still buffered for the next start


@pytest.mark.parametrize("seed", range(6))
def test_any_set_of_bad_lines_is_isolated_exactly(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 300)
    bad = set(rng.sample(range(n), rng.randint(0, min(n, 12))))
    buf = DurableBuffer(tmp_path / "b.sqlite", 64 * MB)
    try:
        msgs = []
        for i in range(n):
            p = Point("bad" if i in bad else "air", (("device", f"d{i}"), ("site", "lab")),
                      (("co2", float(i)),), 1_795_351_934_000 + i)
            msgs.append(Accepted(f"d{i}", 1, i, (p,)))
        buf.put(msgs, time.time())
        lines = [encode_lines(m.points) for m in msgs]
        store = FakeStore(partial=bool(seed % 2))
        fwd, metrics = make(buf, store, batch_size=rng.choice([1, 7, 64, 1000]))
        asyncio.run(run_until(fwd, lambda: buf.depth == 0))
        assert sorted(q.payload for q in buf.list_quarantine(1000)) == sorted(
            lines[i] for i in bad)
        assert set(store.written) == {line for i, line in enumerate(lines) if i not in bad}
        assert value(metrics, "livinglab_points_forwarded_total") == n - len(bad)
    finally:
        buf.close()


def test_weighted_histogram_matches_one_by_one_observations() -> None:
    """n equal observations in one call expose exactly what n observe() calls would."""
    from prometheus_client import CollectorRegistry, Histogram

    from gateway.ops.metrics import LATENCY_BUCKETS, WeightedHistogram

    ref_reg, our_reg = CollectorRegistry(), CollectorRegistry()
    ref = Histogram("h", "x", buckets=LATENCY_BUCKETS, registry=ref_reg)
    ours = WeightedHistogram("h", "x", LATENCY_BUCKETS, our_reg)
    for amount, n in ((0.0, 3), (0.01, 2), (0.3, 7), (299.9, 1), (301.0, 4), (1.0, 1)):
        for _ in range(n):
            ref.observe(amount)
        ours.observe(amount, n)

    def samples(reg: CollectorRegistry) -> dict[tuple[str, str], float]:
        return {(s.name, s.labels.get("le", "")): s.value
                for fam in reg.collect() for s in fam.samples if not s.name.endswith("_created")}

    assert samples(our_reg) == samples(ref_reg)
