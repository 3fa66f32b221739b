"""A gateway killed with SIGKILL right after ``put`` returned loses nothing: the lines
and the seen keys were committed together, so the redelivery is a duplicate."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.buffer.core import DurableBuffer
from protocols import Accepted
from tests.gateway.helpers import kill9_after

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from gateway.buffer.core import DurableBuffer
    from protocols import Accepted, Point
    buf = DurableBuffer(Path(sys.argv[1]), 64 * 1024 * 1024)
    for s in range(0, 1000, 100):
        msgs = [Accepted("air-1", 3, q, (Point("air", (("device", "air-1"), ("site", "lab")),
                 (("co2", float(q)),), 1795351934000 + q),)) for q in range(s, s + 100)]
        buf.put(msgs, time.time())
        print(s + 100, flush=True)  # the MQTT ack would go out now
    time.sleep(60)  # killed here, without close()
""")


@pytest.mark.slow
def test_sigkill_after_put_keeps_lines_and_dedup_keys(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    kill9_after(CHILD, [str(path)], "1000", "child committed 1000 messages")
    buf = DurableBuffer(path, 64 * 1024 * 1024)
    try:
        assert buf.stats().depth == 1000
        redelivered = [Accepted("air-1", 3, q, ()) for q in (0, 500, 999)]
        r = buf.put(redelivered + [Accepted("air-1", 3, 1000, ())], 0.0)
        assert (r.accepted, r.duplicates) == (1, 3)
    finally:
        buf.close()
