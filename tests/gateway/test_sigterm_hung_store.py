"""SIGTERM exits 0 within 10 s whatever the store does, and nothing is lost.

A hung store accepts connections and never answers: influxd or VictoriaMetrics
SIGSTOPped, or the SQLite readings file locked by another process. Each store
hangs first before the gateway starts (so ``ensure_ready`` hangs), then again
mid-stream (writes and the shutdown flush hang), with the default 10 s
``timeout_s``: a request the gateway waited for would blow the 10 s budget.
After each stop the store recovers, the gateway restarts and every point must be
in the store exactly once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gateway.stores.sqlite import SCHEMA
from tests.gateway.helpers import (
    GatewayProc,
    Publisher,
    influx_rows,
    vm_rows,
    wait_subscribed,
    write_config,
)
from tests.servers import Influxd, Mosquitto, VictoriaMetrics, free_port, wait_for

pytestmark = pytest.mark.slow

def sqlite_rows(path: Path) -> list[tuple[str, str, int, str, float]]:
    if not path.exists():
        return []
    db = sqlite3.connect(path, timeout=10)
    try:
        return [(d, s, int(t), f, float(v)) for d, s, t, f, v in db.execute(
            "SELECT device, sensor, time_ms, field, value FROM readings "
            "WHERE measurement = 'air'")]  # not the gateway's device/delivery points
    finally:
        db.close()


@contextmanager
def paused(server: Influxd | VictoriaMetrics) -> Iterator[None]:
    server.pause()
    try:
        yield
    finally:
        server.resume()


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Another process's write lock on the readings file: every store request of the
    gateway sits in SQLite's busy wait (``timeout_s``)."""
    new = not path.exists()
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        if new:  # before the first start: even opening it (WAL switch) must wait
            db.execute("PRAGMA journal_mode=DELETE")
            db.executescript(SCHEMA)
        db.execute("BEGIN EXCLUSIVE")  # in WAL mode (later): every write waits
        db.execute("INSERT INTO readings VALUES ('x', 's', 'd', '', 'f', 0, 0)")
        yield
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")
        db.close()


def send(pub: Publisher, first: int, n: int) -> None:
    base = 1_700_000_000.0
    for seq in range(first, first + n):
        pub.send(f"dev-{seq % 3:04d}", 1, seq, base)
    pub.wait_all(30)


def sigterm_fast(gw: GatewayProc) -> None:
    t0 = time.monotonic()
    assert gw.terminate(timeout=20) == 0
    took = time.monotonic() - t0
    assert took < 10, f"SIGTERM took {took:.1f} s"


@pytest.mark.parametrize("kind", ["influxdb1", "influxdb2", "sqlite"])
def test_sigterm_with_a_hung_store_exits_in_time_and_loses_nothing(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, victoria: VictoriaMetrics,
        kind: str) -> None:
    readings = tmp_path / "readings.sqlite"
    store: dict[str, object] = {"kind": kind, "max_backoff_s": 0.5}  # default timeout_s: 10
    if kind == "influxdb1":
        store |= {"url": influxd.url, "database": "ll"}
        hang = lambda: paused(influxd)  # noqa: E731
        rows = lambda: influx_rows(influxd, "ll")  # noqa: E731
    elif kind == "influxdb2":
        store |= {"url": victoria.url, "token": "x"}
        hang = lambda: paused(victoria)  # noqa: E731
        rows = lambda: vm_rows(victoria)  # noqa: E731
    else:
        store |= {"path": str(readings)}
        hang = lambda: locked(readings)  # noqa: E731
        rows = lambda: sqlite_rows(readings)  # noqa: E731
    hp = free_port()
    gw = GatewayProc(write_config(tmp_path / "gw.toml", mqtt_port=mosquitto.port,
                                  health_port=hp, store=store), hp)
    pub = Publisher(mosquitto.port)
    try:
        # 1. hung before the start: ensure_ready (then the first writes) never answer
        with hang():
            gw.start()
            wait_subscribed(gw)
            send(pub, 0, 20)
            wait_for(lambda: gw.metric("livinglab_messages_accepted_total") >= 20, 15,
                     what="20 messages committed")
            time.sleep(0.5)  # the forwarder is inside its store request now
            sigterm_fast(gw)
        # 2. hung mid-stream: writes and the shutdown flush never answer
        gw.start()
        wait_subscribed(gw)
        send(pub, 20, 20)
        wait_for(lambda: gw.metric("livinglab_points_forwarded_total") >= 40, 30,
                 what="the backlog forwarded after the store came back")
        with hang():
            send(pub, 40, 20)
            wait_for(lambda: gw.metric("livinglab_messages_accepted_total") >= 40, 15,
                     what="20 more messages committed")
            time.sleep(0.5)
            sigterm_fast(gw)
        gw.start()
        want = sorted(pub.expected)
        wait_for(lambda: len(rows()) >= len(want), 30, what=f"{len(want)} values in {kind}")
        time.sleep(0.5)  # anything extra would show now
        assert sorted(rows()) == want
        assert "Traceback" not in gw.log.read_text()
        sigterm_fast(gw)
    finally:
        gw.kill()
        pub.close()
