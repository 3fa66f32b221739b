"""Stores against real servers: influxd (v1 API, database auto-created, a real 400
isolated by the forwarder, a SIGSTOP outage) and VictoriaMetrics (v2 write API)."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from pathlib import Path

import pytest

from gateway.buffer.core import DurableBuffer
from gateway.forward.forwarder import Forwarder
from gateway.forward.retry import Backoff
from gateway.ops.metrics import Metrics
from gateway.stores import Store, make_store
from gateway.stores.influxdb2_reader import VictoriaMetricsReader
from protocols import Accepted, Point, validate_status
from protocols.config import StoreSection
from tests.gateway.test_forwarder import run_until, value
from tests.servers import Influxd, VictoriaMetrics

MB = 1024 * 1024
T0_MS = 1_795_351_934_000
Expected = dict[tuple[str, str, str, int], dict[str, float]]


def messages(n: int, device_prefix: str = "air", boot: int = 1,
             start: int = 0) -> tuple[list[Accepted], Expected]:
    """``n`` messages with an air point (3 fields) and a light point each."""
    msgs: list[Accepted] = []
    expected: Expected = {}
    for i in range(start, start + n):
        device = f"{device_prefix}-{i % 5}"
        t = T0_MS + i * 1000 + 7
        air = Point("air", (("device", device), ("sensor", "scd41"), ("site", "lab")),
                    (("co2", 400.0 + i), ("humidity", 40.0 + i / 100),
                     ("temperature", round(20.0 + i / 7, 3))), t)
        light = Point("light", (("device", device), ("sensor", "bh1750"), ("site", "lab")),
                      (("illuminance", 100.5 + i),), t)
        msgs.append(Accepted(device, boot, i, (air, light)))
        for p in (air, light):
            expected[(p.measurement, device, dict(p.tags)["sensor"], t)] = {
                k: float(v) for k, v in p.fields}
    return msgs, expected


def forwarder(buf: DurableBuffer, store: Store, batch_size: int = 100,
              cap: float = 0.5) -> tuple[Forwarder, Metrics]:
    metrics = Metrics()
    fwd = Forwarder(buf, store, metrics, batch_size=batch_size, flush_interval_s=0.05,
                    backoff=Backoff(base=0.05, cap=cap, rng=random.Random(3)))
    return fwd, metrics


def influx_points(influxd: Influxd, db: str) -> Expected:
    got: Expected = {}
    for m in ("air", "light"):
        for row in influxd.points(db, m):
            key = (m, str(row["device"]), str(row["sensor"]), int(row["time"]))  # type: ignore[call-overload]
            got[key] = {k: float(v) for k, v in row.items()  # type: ignore[arg-type]
                        if k not in ("time", "device", "sensor", "site") and v is not None}
    return got


def test_influxdb1_creates_database_and_stores_every_value(tmp_path: Path,
                                                            influxd: Influxd) -> None:
    buf = DurableBuffer(tmp_path / "buffer.sqlite", 64 * MB)
    msgs, expected = messages(120)
    buf.put(msgs, time.time())
    store = make_store(StoreSection(kind="influxdb1", url=influxd.url, database="lab",
                                    timeout_s=5))
    fwd, metrics = forwarder(buf, store)
    try:
        asyncio.run(run_until(fwd, lambda: buf.depth == 0, timeout=30))
    finally:
        asyncio.run(store.aclose())
        buf.close()
    assert influx_points(influxd, "lab") == expected
    assert value(metrics, "livinglab_points_forwarded_total") == 240


def test_influxdb1_real_400_is_split_and_only_the_bad_line_quarantined(
        tmp_path: Path, influxd: Influxd) -> None:
    path = tmp_path / "buffer.sqlite"
    first, expected = messages(20)
    second, more = messages(20, start=20)
    expected.update(more)
    buf = DurableBuffer(path, 64 * MB)
    buf.put(first, time.time())
    buf.close()
    # A line our encoder never writes: co2 as a string, a field type conflict in InfluxDB.
    bad = b'air,device=air-9,sensor=scd41,site=lab co2="oops" 1795351934500'
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO msgs (received_at, points, body) VALUES (?, 1, ?)",
                   (time.time(), bad))  # a one-line message row between the two puts
    buf = DurableBuffer(path, 64 * MB)
    buf.put(second, time.time())
    store = make_store(StoreSection(kind="influxdb1", url=influxd.url, database="lab",
                                    timeout_s=5))
    fwd, metrics = forwarder(buf, store, batch_size=1000)
    try:
        # air.co2 already exists as a float: the string line conflicts with it
        asyncio.run(store.ensure_ready())
        asyncio.run(store.write(b"air,device=air-0,sensor=scd41,site=lab co2=1 1795351000000", 1))
        expected[("air", "air-0", "scd41", 1795351000000)] = {"co2": 1.0}
        asyncio.run(run_until(fwd, lambda: buf.depth == 0, timeout=30))
        quarantined = buf.list_quarantine()
    finally:
        asyncio.run(store.aclose())
        buf.close()
    assert [q.payload for q in quarantined] == [bad]
    assert quarantined[0].device == "air-9" and "field type conflict" in quarantined[0].detail
    assert influx_points(influxd, "lab") == expected
    assert value(metrics, "livinglab_points_forwarded_total") == 80
    assert value(metrics, "livinglab_store_errors_total", kind="rejected") >= 2


@pytest.mark.slow
def test_influxdb1_outage_sigstop_no_loss_no_duplicates(tmp_path: Path,
                                                        influxd: Influxd) -> None:
    buf = DurableBuffer(tmp_path / "buffer.sqlite", 64 * MB)
    msgs, expected = messages(300)
    late, more = messages(100, start=300)
    expected.update(more)
    buf.put(msgs, time.time())
    store = make_store(StoreSection(kind="influxdb1", url=influxd.url, database="lab",
                                    timeout_s=0.5))
    fwd, metrics = forwarder(buf, store, batch_size=50)

    async def scenario() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(fwd.run(stop))
        try:
            while buf.depth > 400:  # the first batch went through: the store is up
                await asyncio.sleep(0.005)
            influxd.pause()
            paused_at = time.monotonic()
            try:
                await asyncio.to_thread(buf.put, late, time.time())  # arrives during the outage
                fwd.wake()
                while value(metrics, "livinglab_store_errors_total", kind="transient") < 2:
                    await asyncio.sleep(0.05)
                    assert time.monotonic() - paused_at < 20
                await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - paused_at)))
                depth_during_outage = buf.depth
            finally:
                influxd.resume()
            assert depth_during_outage > 0
            end = time.monotonic() + 30
            while buf.depth > 0 and time.monotonic() < end:
                await asyncio.sleep(0.02)
            return time.monotonic() - paused_at
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        asyncio.run(store.aclose())
    assert buf.depth == 0
    buf.close()
    got = influx_points(influxd, "lab")
    assert len(got) == len(expected) == 800
    assert got == expected
    assert value(metrics, "livinglab_store_errors_total", kind="transient") >= 2
    assert fwd.failing_since is None


def test_victoriametrics_through_the_v2_write_api(tmp_path: Path,
                                                  victoria: VictoriaMetrics) -> None:
    buf = DurableBuffer(tmp_path / "buffer.sqlite", 64 * MB)
    msgs, expected = messages(60)
    buf.put(msgs, time.time())
    # VM ignores org and token and, for /api/v2/write, adds no label for the bucket.
    store = make_store(StoreSection(kind="influxdb2", url=victoria.url, token="",
                                    bucket="livinglab", org="livinglab", timeout_s=5))
    fwd, _ = forwarder(buf, store, batch_size=50)
    try:
        asyncio.run(run_until(fwd, lambda: buf.depth == 0, timeout=30))
    finally:
        asyncio.run(store.aclose())
        buf.close()
    got: Expected = {}
    for series in victoria.export():
        metric = series["metric"]
        assert isinstance(metric, dict)
        measurement, _, field = str(metric["__name__"]).partition("_")
        assert set(metric) == {"__name__", "device", "sensor", "site"} and metric["site"] == "lab"
        for v, t in zip(series["values"], series["timestamps"], strict=True):  # type: ignore[call-overload]
            key = (measurement, metric["device"], metric["sensor"], int(t))
            got.setdefault(key, {})[field] = float(v)
    assert got == expected


@pytest.mark.slow
def test_influxdb1_reconnects_after_the_server_restarts(influxd: Influxd) -> None:
    """A keep-alive connection the server dropped is replaced without a failed write."""
    store = make_store(StoreSection(kind="influxdb1", url=influxd.url, database="lab",
                                    timeout_s=5))

    async def scenario() -> None:
        await store.ensure_ready()
        await store.write(b"air,device=a,sensor=s,site=lab co2=1 1795351934000", 1)
        await asyncio.to_thread(influxd.restart)
        await store.write(b"air,device=a,sensor=s,site=lab co2=2 1795351935000", 1)
        await store.aclose()

    asyncio.run(asyncio.wait_for(scenario(), 60))
    assert [p["co2"] for p in influxd.points("lab", "air")] == [1, 2]


# ---- string fields: a status's ``fw`` (wire contract, "Status additions") ---------------

FW = 'v0.2.0 "rc1" C:\\fw, a=b'  # quotes, a backslash, a space, a comma, an equals sign


def status_messages() -> list[Accepted]:
    """Two validated statuses (one with ``fw`` and ``update``) as the pipeline buffers them."""
    out = []
    for i, doc in enumerate([
            {"state": "online", "fw": FW, "rssi": -61, "update": {
                "version": "0.3.0", "state": "refused", "reason": "<script>x</script>"}},
            {"state": "online", "fw": "0.1.0"}]):
        record, rejection = validate_status("t", json.dumps(doc).encode(), "lab",
                                            T0_MS / 1000 + i, f"air-{i}")
        assert rejection is None and record is not None
        out.append(Accepted(record.device, 0, i, (record.point,)))
    return out


def forward_all(tmp_path: Path, section: StoreSection, msgs: list[Accepted]) -> None:
    buf = DurableBuffer(tmp_path / "buffer.sqlite", 64 * MB)
    buf.put(msgs, time.time())
    store = make_store(section)
    fwd, _ = forwarder(buf, store)
    try:
        asyncio.run(run_until(fwd, lambda: buf.depth == 0, timeout=30))
        assert buf.list_quarantine() == []
    finally:
        asyncio.run(store.aclose())
        buf.close()


def test_influxdb1_status_fw_is_a_string_field(tmp_path: Path, influxd: Influxd) -> None:
    forward_all(tmp_path, StoreSection(kind="influxdb1", url=influxd.url, database="lab",
                                       timeout_s=5), status_messages())
    rows = {str(r["device"]): r for r in influxd.points("lab", "device")}
    assert rows["air-0"]["fw"] == FW and rows["air-1"]["fw"] == "0.1.0"
    assert rows["air-0"]["rssi"] == -61 and rows["air-0"]["online"] == 1
    keys = influxd.query('SHOW FIELD KEYS FROM "device"', db="lab")
    types = dict(keys["results"][0]["series"][0]["values"])  # type: ignore[index]
    assert types["fw"] == "string" and types["online"] == "float"


def test_sqlite_status_fw_is_a_text_row(tmp_path: Path) -> None:
    path = tmp_path / "readings.sqlite"
    forward_all(tmp_path, StoreSection(kind="sqlite", path=path), status_messages())
    with sqlite3.connect(path) as db:
        texts = db.execute("SELECT device, field, value, time_ms FROM text_fields "
                           "WHERE measurement = 'device' AND field = 'fw' "
                           "ORDER BY device").fetchall()
        update = db.execute("SELECT value FROM text_fields WHERE measurement = 'device' "
                            "AND field = 'update_state'").fetchall()
        numbers = db.execute("SELECT device, field FROM readings WHERE measurement = 'device' "
                             "ORDER BY device, field").fetchall()
    assert texts == [("air-0", "fw", FW, T0_MS), ("air-1", "fw", "0.1.0", T0_MS + 1000)]
    assert numbers == [("air-0", "online"), ("air-0", "rssi"), ("air-1", "online")]
    assert update == [("refused",)]  # third turn: the update state is a string field too


def test_victoriametrics_takes_a_status_with_fw(tmp_path: Path,
                                                victoria: VictoriaMetrics) -> None:
    """VictoriaMetrics keeps numbers only: the line with ``fw`` is accepted whole (its
    numeric fields stored), never refused or quarantined."""
    forward_all(tmp_path, StoreSection(kind="influxdb2", url=victoria.url, token="",
                                       bucket="livinglab", org="livinglab", timeout_s=5),
                status_messages())
    victoria.flush()
    names = {str(s["metric"]["__name__"]) for s in victoria.export()}  # type: ignore[index]
    assert {"device_online", "device_rssi"} <= names
    # it stores "0.1.0" as the number 0: the reader (export, reports) leaves that series out
    assert "device_fw" in names
    reader = VictoriaMetricsReader(StoreSection(kind="influxdb2", url=victoria.url))
    got = reader.window(T0_MS - 1000, T0_MS + 60_000, ["device"], [])
    assert {(r.device, r.quantity) for r in got} == {
        ("air-0", "online"), ("air-0", "rssi"), ("air-1", "online")}
