"""The dedup record as runs of consecutive seqs (gateway.buffer.seen): exactly the
answers of a plain set of keys, a file from before the runs migrated, few rows."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from gateway.buffer import seen
from gateway.buffer.core import DurableBuffer
from gateway.buffer.schema import SCHEMA
from protocols import Accepted, Point

MB = 1 << 20
T0 = 1_795_351_934.0


def _db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(SCHEMA)
    db.executescript(seen.SCHEMA)
    return db


def test_runs_answer_like_a_set_of_keys() -> None:
    rng = random.Random(7)
    db, model = _db(), set()
    at = T0
    for _ in range(300):
        at += rng.choice([0.5, 5, 4000])  # some puts cross a window/8 bucket (450 s)
        keys = [(f"d{rng.randrange(4)}", rng.randrange(2), rng.randrange(60))
                for _ in range(rng.randrange(1, 12))]
        found, near = seen.lookup(db, keys)
        assert found == {k for k in keys if k in model}
        new = list(dict.fromkeys(k for k in keys if k not in model))
        seen.record(db, new, near, at, 3600.0)
        model.update(new)
        assert seen.count_keys(db) == len(model)
        runs = db.execute("SELECT device, boot, lo, hi FROM seen_runs ORDER BY 1, 2, 3").fetchall()
        for a, b in zip(runs, runs[1:], strict=False):  # disjoint
            assert (a[0], a[1]) != (b[0], b[1]) or a[3] < b[2]


def test_steady_devices_keep_one_run_each() -> None:
    db = _db()
    for seq in range(100):
        keys = [(f"dev-{d:03d}", 1, seq) for d in range(200)]
        found, near = seen.lookup(db, keys)
        assert not found
        seen.record(db, keys, near, T0 + seq, 7 * 86400.0)
    assert db.execute("SELECT count(*) FROM seen_runs").fetchone()[0] == 200
    assert seen.count_keys(db) == 20_000


def test_a_buffer_from_before_the_runs_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO seen VALUES (?, ?, ?, ?)",
                   [("a", 1, s, T0 + s) for s in (*range(10), 12, 13)] + [("b", 2, 5, T0)])
    db.close()
    b = DurableBuffer(path, max_bytes=64 * MB)
    try:
        assert b.stats().seen_keys == 13
        pt = Point("air", (("device", "a"),), (("co2", 1.0),), 1)
        r = b.put([Accepted("a", 1, s, (pt,)) for s in (9, 10, 11, 12)], T0 + 100)
        assert (r.duplicates, r.accepted) == (2, 2)
        assert b.stats().seen_keys == 15
        assert b._db.execute("SELECT count(*) FROM seen").fetchone()[0] == 0
    finally:
        b.close()
