"""Faults: zero lost and zero extra points, compared as exact sets of
(device, sensor, time, field, value) between what was published and the store.

kill -9 of the gateway (repeatedly), a stopped store, a broker restart (with a
VictoriaMetrics that keeps duplicates, so a double write would show), and a
buffer filled to its bound (the gateway must stop acking, then drain).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.accounting.read import read_hours
from gateway.buffer.core import DurableBuffer
from tests.gateway.helpers import (
    GatewayProc,
    Publisher,
    influx_rows,
    vm_rows,
    wait_subscribed,
    write_config,
)
from tests.servers import Influxd, Mosquitto, VictoriaMetrics, free_port, running, wait_for

pytestmark = pytest.mark.slow
N_FULL = 6000  # ~12 MiB of lines, ~1.6 MiB deflated in the buffer: more than its 1 MiB


class VMKeepsDuplicates(VictoriaMetrics):
    """VictoriaMetrics without ``-dedup.minScrapeInterval``: a point written twice stays twice."""

    def command(self) -> list[str]:
        return [a for a in super().command() if not a.startswith("-dedup")]


@pytest.fixture
def vm_dups(tmp_path: Path) -> Iterator[VMKeepsDuplicates]:
    with running(VMKeepsDuplicates(tmp_path / "vm-dups")) as server:
        yield server


@pytest.fixture
def persistent_mosquitto(mosquitto: Mosquitto) -> Mosquitto:
    """The shared broker: persistence works there, so restart() keeps sessions."""
    return mosquitto


def start_gateway(tmp_path: Path, mqtt_port: int, store: dict[str, object],
                  **gateway: object) -> GatewayProc:
    hp = free_port()
    cfg = write_config(tmp_path / "gw.toml", mqtt_port=mqtt_port, health_port=hp,
                       store={"timeout_s": 1.0, "max_backoff_s": 0.5, **store},
                       gateway=dict(gateway))
    gw = GatewayProc(cfg, hp)
    gw.start()
    wait_subscribed(gw)
    return gw


def stream(pub: Publisher, n: int, devices: int, rate: float, boot: int = 1,
           samples: int = 1) -> threading.Thread:
    """Publish ``n`` messages round-robin over ``devices`` at about ``rate``/s in a thread."""
    base = time.time() - n * samples - 1000  # every sample time unique and in the past

    def run() -> None:
        t0 = time.monotonic()
        for seq in range(n):
            pub.send(f"dev-{seq % devices:04d}", boot, seq, base, samples)
            ahead = t0 + seq / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def assert_influx_exact(influxd: Influxd, expected: list[tuple[str, str, int, str, float]],
                        timeout: float = 60) -> None:
    want = sorted(expected)
    assert len(set(want)) == len(want)
    wait_for(lambda: len(influx_rows(influxd, "ll")) >= len(want), timeout,
             what=f"{len(want)} values in influxd")
    got = sorted(influx_rows(influxd, "ll"))
    missing, extra = set(want) - set(got), set(got) - set(want)
    assert not missing and not extra, (len(missing), len(extra))
    assert got == want


def test_kill9_repeatedly_loses_nothing(tmp_path: Path, mosquitto: Mosquitto,
                                        influxd: Influxd) -> None:
    gw = start_gateway(tmp_path, mosquitto.port, {"kind": "influxdb1", "url": influxd.url,
                                                  "database": "ll", "batch_size": 200})
    pub = Publisher(mosquitto.port)
    rng = random.Random(1234)
    try:
        t = stream(pub, 2500, 10, rate=300.0)
        for _ in range(5):
            time.sleep(rng.uniform(0.3, 1.2))
            gw.kill()
            gw.start()
        t.join(30)
        pub.wait_all()
        assert_influx_exact(influxd, pub.expected)
        assert gw.terminate() == 0
        # each (device, boot, seq) was accepted exactly once across the six runs
        path = tmp_path / "var" / "buffer.sqlite"
        buf = DurableBuffer(path, 2**30)
        try:
            # the gateway's own `delivery` flushes (device `_delivery`) are keyed too
            flushes = buf._db.execute("SELECT coalesce(sum(hi - lo + 1), 0) FROM seen_runs "
                                      "WHERE device = "
                                      "'_delivery'").fetchone()[0]
            assert buf.stats().seen_keys - flushes == 2500 and buf.stats().depth == 0
        finally:
            buf.close()
        # ... and the delivery accounting, committed with the data, agrees exactly
        hours = read_hours(path, 0, 2e9)
        assert sum(h.accepted for h in hours) == 2500
        assert sum(h.received - h.duplicates for h in hours) == 2500
        assert sum(h.rejected for h in hours) == 0
        # stream() numbers seq globally, round-robin over 10 devices: device d gets
        # d, d+10, ..., so each has (its highest seq + 1 - 250) seqs never sent
        assert sum(h.missing for h in hours) == sum(2490 + d + 1 - 250 for d in range(10))
    finally:
        gw.kill()
        pub.close()


def test_stopped_store_loses_nothing(tmp_path: Path, mosquitto: Mosquitto,
                                     influxd: Influxd) -> None:
    """influxd SIGSTOPped mid-stream; the gateway is even SIGTERMed during the outage
    (it must exit 0 within 10 s, keeping unflushed rows for the next start)."""
    gw = start_gateway(tmp_path, mosquitto.port, {"kind": "influxdb1", "url": influxd.url,
                                                  "database": "ll"})
    pub = Publisher(mosquitto.port)
    try:
        t = stream(pub, 1500, 5, rate=400.0)
        time.sleep(1.0)
        influxd.pause()
        try:
            wait_for(lambda: gw.metric("livinglab_store_errors_total") >= 1, 15,
                     what="store errors while influxd is stopped")
            code, doc = gw.healthz()
            assert code == 200 and doc["buffer_depth"] > 0  # < 60 s of outage: still healthy
            t0 = time.monotonic()
            assert gw.terminate() == 0
            assert time.monotonic() - t0 < 10
        finally:
            influxd.resume()
        gw.start()
        t.join(30)
        pub.wait_all()
        assert_influx_exact(influxd, pub.expected)
    finally:
        gw.kill()
        pub.close()


def test_broker_restart_no_loss_no_double_write(tmp_path: Path,
                                                persistent_mosquitto: Mosquitto,
                                                vm_dups: VMKeepsDuplicates) -> None:
    """The gateway is frozen (SIGSTOP) so messages queue in its broker session and some
    sit unacked in flight; the broker restarts (persisting them), the gateway thaws,
    reconnects and gets them all, redeliveries included, writing each point once."""
    mq = persistent_mosquitto
    gw = start_gateway(tmp_path, mq.port, {"kind": "influxdb2", "url": vm_dups.url,
                                           "token": "x"})
    pub = Publisher(mq.port)
    try:
        t = stream(pub, 1500, 5, rate=400.0)
        time.sleep(1.0)
        assert gw.proc is not None
        os.kill(gw.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(1.5)  # ~600 messages queue for the frozen gateway
            mq.restart()
        finally:
            os.kill(gw.proc.pid, signal.SIGCONT)
        t.join(30)
        pub.wait_all()
        want = Counter(pub.expected)
        wait_for(lambda: gw.metric("livinglab_points_accepted_total") >= 1500, 30,
                 what="gateway reconnected and got everything")
        wait_for(lambda: gw.healthz()[1].get("buffer_depth") == 0, 20, what="drained")
        wait_for(lambda: sum(Counter(vm_rows(vm_dups)).values()) >= sum(want.values()), 20,
                 what="all values in VictoriaMetrics")
        got = Counter(vm_rows(vm_dups))
        assert [k for k, n in got.items() if n > 1] == []  # no point written twice
        assert got == want
        # the readings (each once, above) and the gateway's own health points
        assert gw.metric("livinglab_points_forwarded_total") >= 1500
        assert "Permission denied" not in mq.log.read_text()
    finally:
        gw.kill()
        pub.close()


def test_full_buffer_stops_acks_then_drains(tmp_path: Path, mosquitto: Mosquitto,
                                            influxd: Influxd) -> None:
    gw = start_gateway(tmp_path, mosquitto.port, {"kind": "influxdb1", "url": influxd.url,
                                                  "database": "ll"},
                       buffer_max_bytes=1024 * 1024)
    pub = Publisher(mosquitto.port)
    influxd.pause()
    try:
        t = stream(pub, N_FULL, 6, rate=3000.0, samples=20)  # see N_FULL
        wait_for(lambda: gw.healthz()[1].get("buffer_full"), 30, what="buffer full")
        assert gw.metric("livinglab_buffer_full_total") >= 1
        held = gw.healthz()[1]["pending"]
        assert held > 0  # received but not acked: the broker still owns them
        accepted = gw.metric("livinglab_messages_accepted_total")
        assert accepted < N_FULL
    finally:
        influxd.resume()
    try:
        t.join(30)
        pub.wait_all()
        assert_influx_exact(influxd, pub.expected, timeout=40)
        # the gateway's own retained status may still sit in a commit window (2.5 s)
        wait_for(lambda: gw.healthz()[1].get("pending") == 0, 10, what="nothing pending")
        code, doc = gw.healthz()
        assert code == 200 and not doc["buffer_full"] and doc["pending"] == 0
        assert gw.metric("livinglab_messages_accepted_total") == N_FULL
    finally:
        gw.kill()
        pub.close()
