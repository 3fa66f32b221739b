"""A full disk, for real: ``data_dir`` on a 4 MiB tmpfs, the store stopped, publish on.

The gateway must stay up, stop acking (the broker keeps the rest), say so once in
its log, in ``/healthz`` (503) and in its retained status, then drain and resume
by itself once the store is back, with every point in the store exactly once.
Mounting needs root (or CAP_SYS_ADMIN); elsewhere the test is skipped and
``test_disk_full.py`` covers the same paths through ``PRAGMA max_page_count``.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.helpers import SITE, Publisher
from tests.gateway.test_faults import assert_influx_exact, start_gateway, stream
from tests.servers import Influxd, Mosquitto, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                       capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a 1 MiB tmpfs here (needs root): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=20)


def retained_status(port: int) -> dict[str, object]:
    out = subprocess.run(["mosquitto_sub", "-p", str(port), "-C", "1", "-W", "5", "-t",
                          f"livinglab/v1/{SITE}/_gateway/gw-test/status"],
                         capture_output=True, timeout=20)
    return dict(json.loads(out.stdout)) if out.stdout.strip() else {}


def test_full_disk_holds_acks_then_resumes_by_itself(
        tmp_path: Path, small_fs: Path, mosquitto: Mosquitto, influxd: Influxd) -> None:
    gw = start_gateway(tmp_path, mosquitto.port, {"kind": "influxdb1", "url": influxd.url,
                                                  "database": "ll"},
                       data_dir=str(small_fs))
    pub = Publisher(mosquitto.port)
    n = 3000
    influxd.pause()
    try:
        # ~6 MiB of lines, ~0.9 MiB deflated in the buffer: more than fits in 1 MiB
        t = stream(pub, n, 6, rate=2000.0, samples=20)
        seen: list[object] = []

        def disk_full() -> bool:
            code, doc = gw.healthz()
            df = subprocess.run(["df", "-k", str(small_fs)], capture_output=True, text=True)
            seen[:] = [code, doc, df.stdout.splitlines()[-1]]
            return bool(doc.get("disk_full"))

        try:
            wait_for(disk_full, 60, what="disk full reported")
        except TimeoutError:
            raise AssertionError(f"never full: {seen}") from None
        code, doc = gw.healthz()
        assert code == 503 and doc["disk_full"] and doc["buffer_full"]
        assert doc["pending"] > 0  # received, not acked: the broker still owns them
        assert gw.metric("livinglab_messages_accepted_total") < n
        wait_for(lambda: retained_status(mosquitto.port).get("disk_full") is True, 15,
                 what="retained status says disk_full")
        time.sleep(2.0)  # it stays up and keeps retrying without noise
        assert gw.proc is not None and gw.proc.poll() is None
    finally:
        influxd.resume()
    try:
        t.join(60)
        pub.wait_all(60)
        assert_influx_exact(influxd, pub.expected, timeout=90)
        wait_for(lambda: gw.healthz()[0] == 200, 30, what="healthy again")

        def settled() -> bool:  # a last message may sit in the commit window (2.5 s)
            doc = gw.healthz()[1]
            return not doc["disk_full"] and not doc["buffer_full"] and doc["pending"] == 0

        wait_for(settled, 15, what="nothing pending, not full")
        assert gw.metric("livinglab_messages_accepted_total") == n
        wait_for(lambda: retained_status(mosquitto.port).get("disk_full") is False, 15,
                 what="retained status says disk_full false")
        log = gw.log.read_text()
        assert "Traceback" not in log and "cannot rollback" not in log
        assert sum("disk full" in line and "holding" in line for line in log.splitlines()) == 1
        assert gw.terminate() == 0
    finally:
        gw.kill()
        pub.close()
