"""One contract, every buffer: the real ``DurableBuffer`` and each fake that stands for
it in tests must behave alike where the pipeline relies on them (``gateway.buffer.api``).

A fake that drifts from the real buffer (a missing ``hook``, another dedup rule, other
counts) fails here instead of letting the pipeline's tests pass against a fiction.
Add a new fake to ``IMPLS``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.accounting.delivery import Accounting, Event
from gateway.buffer.api import Buffer, BufferIntake
from gateway.buffer.core import BufferFull, DurableBuffer
from protocols import Accepted, Rejection, make_point
from tests.gateway.helpers import SITE, T0, FakeBuffer

# checked by mypy: the real buffer is a whole ``Buffer``, the fake an intake (the pipeline's side)
_REAL: type[Buffer] = DurableBuffer
_FAKE: type[BufferIntake] = FakeBuffer

#: name -> (make an unbounded buffer, make one that is full once it holds one point)
Make = Callable[[Path], BufferIntake]
IMPLS: dict[str, tuple[Make, Make]] = {
    "DurableBuffer": (lambda d: DurableBuffer(d / "b.sqlite", 1 << 30),
                      lambda d: DurableBuffer(d / "b.sqlite", 1)),
    "FakeBuffer": (lambda d: FakeBuffer(), lambda d: FakeBuffer(max_points=1)),
}


@pytest.fixture(params=sorted(IMPLS))
def impl(request: pytest.FixtureRequest) -> tuple[Make, Make]:
    return IMPLS[request.param]


def item(device: str, seq: int, boot: int = 1, points: int = 1) -> Accepted:
    return Accepted(device, boot, seq, tuple(
        make_point("air", {"device": device, "site": SITE, "sensor": "scd41"},
                   {"co2": 400.0 + k}, int(T0 * 1000) + seq * 10 + k)
        for k in range(points)))


class Recorder:
    """A ``PutHook`` that notes each call (and can fail its stage)."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, object]] = []
        self.fail = fail

    def stage(self, db: sqlite3.Connection, duplicates: set[tuple[str, int, int]]) -> None:
        assert isinstance(db, sqlite3.Connection) and db.in_transaction
        db.execute("CREATE TABLE IF NOT EXISTS hook_probe (x)")  # a hook writes, as it may
        self.calls.append(("stage", set(duplicates)))
        if self.fail:
            raise RuntimeError("stage failed")

    def done(self, committed: bool) -> None:
        self.calls.append(("done", committed))


def test_put_counts_accepted_duplicates_and_points(impl: tuple[Make, Make],
                                                   tmp_path: Path) -> None:
    buf = impl[0](tmp_path)
    r = buf.put([item("air-0001", 0, points=2), item("air-0001", 1), item("air-0002", 0)], T0)
    assert (r.accepted, r.duplicates, r.points) == (3, 0, 4)
    assert not buf.is_full()


def test_duplicates_by_device_boot_seq_across_and_within_calls(impl: tuple[Make, Make],
                                                               tmp_path: Path) -> None:
    buf = impl[0](tmp_path)
    buf.put([item("air-0001", 0), item("air-0001", 1)], T0)
    r = buf.put([item("air-0001", 1, points=3),  # seen by the earlier put
                 item("air-0001", 2), item("air-0001", 2),  # twice in this one
                 item("air-0001", 1, boot=2),  # another boot: new
                 item("air-0002", 1)], T0 + 1)  # another device: new
    assert (r.accepted, r.duplicates, r.points) == (3, 2, 3)


def test_hook_staged_in_the_transaction_with_the_duplicates_then_done(
        impl: tuple[Make, Make], tmp_path: Path) -> None:
    buf = impl[0](tmp_path)
    buf.put([item("air-0001", 0)], T0)
    hook = Recorder()
    buf.put([item("air-0001", 0), item("air-0001", 1), item("air-0001", 1)], T0, hook=hook)
    assert hook.calls == [("stage", {("air-0001", 1, 0), ("air-0001", 1, 1)}),
                          ("done", True)]


def test_a_failed_stage_is_done_false_raised_and_writes_nothing(impl: tuple[Make, Make],
                                                                tmp_path: Path) -> None:
    buf = impl[0](tmp_path)
    hook = Recorder(fail=True)
    with pytest.raises(RuntimeError, match="stage failed"):
        buf.put([item("air-0001", 0)], T0, hook=hook)
    assert hook.calls == [("stage", set()), ("done", False)]
    r = buf.put([item("air-0001", 0)], T0)  # rolled back: not a duplicate now
    assert (r.accepted, r.duplicates) == (1, 0)


def test_full_refuses_without_writing_or_calling_the_hook(impl: tuple[Make, Make],
                                                          tmp_path: Path) -> None:
    buf = impl[1](tmp_path)
    assert not buf.is_full()
    buf.put([item("air-0001", 0)], T0)
    assert buf.is_full()
    hook = Recorder()
    with pytest.raises(BufferFull):
        buf.put([item("air-0001", 1)], T0, [(Rejection("t", "air-0001", "not_json", "x"),
                                             b"x")], hook=hook)
    assert hook.calls == []
    assert buf.is_full()


def test_the_delivery_accounting_runs_as_a_hook(impl: tuple[Make, Make],
                                                tmp_path: Path) -> None:
    """The pipeline's real hook: it stages its tables in the put's transaction, and an
    'accepted' event the buffer finds a duplicate is counted as one."""
    buf = impl[0](tmp_path)
    acc = Accounting()
    buf.put([item("air-0001", 0)], T0, hook=acc.with_events([
        Event("air-0001", T0, "accepted", 1, 0)]))
    buf.put([item("air-0001", 0), item("air-0001", 1)], T0 + 1, hook=acc.with_events([
        Event("air-0001", T0 + 1, "accepted", 1, 0),
        Event("air-0001", T0 + 1, "accepted", 1, 1)]))
    points, _ = acc.points(SITE, T0 + 2)
    fields = {k: v for p in points if p.measurement == "delivery" for k, v in p.fields}
    assert fields["accepted"] == 2 and fields["duplicates"] == 1
