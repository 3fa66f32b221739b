"""Soak, accelerated: every store of state stays bounded and RSS stays flat.

90 s at 400 msg/s from 200 devices (1 % invalid, so the quarantine fills to
its cap), with a 15 s dedup window: after a 30 s warm-up the dedup record,
the quarantine, the buffer file, its WAL, the last-seen table and the log must
stop growing, and so must the gateway's RSS. ``python -m bench.soak`` runs the
same for an hour and plots it (docs/benchmarks.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.soak import soak

pytestmark = pytest.mark.slow

WARM_S, SECONDS, RATE, WINDOW = 30.0, 90.0, 400.0, 15.0


def peak(samples: list[dict[str, Any]], key: str, lo: float, hi: float) -> float:
    return max(float(s.get(key, 0)) for s in samples if lo <= s["t_s"] <= hi)


def test_state_stays_bounded_and_rss_flat(tmp_path: Path) -> None:
    samples = soak(tmp_path, SECONDS, RATE, 200, WINDOW, quarantine_max=100, every_s=3.0)
    last = samples[-1]
    assert last["sent"] >= RATE * SECONDS * 0.8, "the load generator fell behind"
    assert last["accepted"] >= last["sent"] * 0.98 * 0.9  # ingest kept up (1 % invalid)
    mid, end = (WARM_S, WARM_S + 30), (WARM_S + 30, SECONDS)
    # rows: the window holds ~RATE * (WINDOW + prune interval) keys, never more
    assert peak(samples, "seen", *end) <= RATE * (WINDOW + WINDOW / 4 + 3) * 1.2
    assert peak(samples, "quarantine", *end) <= 100
    assert peak(samples, "msgs", *end) <= RATE * 3  # forwarded within a second or two
    # files: no growth after the warm-up beyond a little slack (page reuse, WAL reset)
    for name, slack in (("buffer.sqlite", 256 * 1024), ("buffer.sqlite-wal", 256 * 1024),
                        ("lastseen.sqlite", 64 * 1024), ("gateway.log", 4096)):
        assert peak(samples, name, *end) <= peak(samples, name, *mid) + slack, name
    assert peak(samples, "lastseen.sqlite-wal", *end) <= 512 * 1024  # its checkpoint bound
    assert peak(samples, "rss_mib", *end) <= peak(samples, "rss_mib", *mid) + 8.0
