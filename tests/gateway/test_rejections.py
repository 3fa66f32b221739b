"""``rejections`` points per device, reason and UTC hour (wire contract, third turn)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.accounting.delivery import Accounting
from gateway.accounting.rejections import Hooks, RejectionCounts
from gateway.buffer.core import DurableBuffer
from protocols import Accepted

H = 1_795_348_800  # an hour's start
MB = 1024 * 1024


def put(buf: DurableBuffer, counts: RejectionCounts, items: list[tuple[str, str]],
        at: float) -> None:
    weighted = [(d, r, 1) for d, r in items]
    buf.put([], at, hook=Hooks(Accounting().with_events(()),
                               counts.with_rejections(weighted, at)))


def test_counts_per_device_reason_hour_and_rewrite_rules(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buf = DurableBuffer(path, 64 * MB)
    counts = RejectionCounts()
    put(buf, counts, [("air-1", "out_of_range"), ("air-1", "out_of_range"),
                      ("air-2", "not_json")], H + 10)
    put(buf, counts, [("air-1", "out_of_range")], H + 3600 + 5)
    pts, hook = counts.points("lab", H + 3600 + 6)
    got = {(dict(p.tags)["device"], dict(p.tags)["reason"], p.time_ms): dict(p.fields)
           for p in pts}
    assert got == {("air-1", "out_of_range", H * 1000): {"count": 2.0},
                   ("air-2", "not_json", H * 1000): {"count": 1.0},
                   ("air-1", "out_of_range", (H + 3600) * 1000): {"count": 1.0}}
    assert all(p.measurement == "rejections" and dict(p.tags)["site"] == "lab" for p in pts)
    buf.put([Accepted("_delivery", -2, 1, tuple(pts))], H + 3600 + 6, hook=hook)
    # written: only the current hour comes again, until a new rejection dirties an hour
    again, _ = counts.points("lab", H + 3600 + 7)
    assert [p.time_ms for p in again] == [(H + 3600) * 1000]
    put(buf, counts, [("air-2", "not_json")], H + 3600 + 8)
    again, _ = counts.points("lab", H + 3600 + 9)
    assert sorted((dict(p.tags)["device"], p.fields) for p in again) == [
        ("air-1", (("count", 1.0),)), ("air-2", (("count", 1.0),))]
    buf.close()
    # kill -9 and restart: the counts come back from the buffer file
    reloaded = RejectionCounts()
    with sqlite3.connect(path) as db:
        reloaded.load(db, H + 3600 + 10)
    pts2, _ = reloaded.points("lab", H + 3600 + 10)
    assert {(dict(p.tags)["device"], p.time_ms, p.fields) for p in pts2} == {
        ("air-1", (H + 3600) * 1000, (("count", 1.0),)),
        ("air-2", (H + 3600) * 1000, (("count", 1.0),))}


def test_a_rolled_back_put_counts_nothing(tmp_path: Path) -> None:
    counts = RejectionCounts()
    with sqlite3.connect(tmp_path / "x.sqlite") as db:
        counts.with_rejections([("d", "r", 1)], H)
        counts.stage(db, set())
        counts.done(False)
    assert counts.points("lab", H + 7200)[0] == []


def test_with_rejections_weights_the_summary_report() -> None:
    from gateway.accounting.rejections import with_rejections
    from protocols import Rejection
    counts = RejectionCounts()
    base = Accounting()
    assert with_rejections(base, counts, [], H) is base  # no rejections: no extra hook
    hook = with_rejections(base, counts, [
        (Rejection("t", "d", "out_of_range", "x"), b""),
        (Rejection("t", "d", "too_many_rejections", "y", count=40), b""),
        (Rejection("t", None, "bad_topic", "z"), b"")], H)
    assert isinstance(hook, Hooks)
    assert counts._items == [("d", "out_of_range", 1), ("d", "too_many_rejections", 40)]
