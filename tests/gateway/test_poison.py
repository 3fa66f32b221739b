"""Issue 15, the gateway intake: one test per finding (each failed on main before the
fix), and the principle that no single message stops, wedges or crash-loops it."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.accounting.delivery import Event, readable_key
from gateway.accounting.read import read_hours
from gateway.app import load_accounting
from gateway.buffer.core import DurableBuffer
from gateway.forward.forwarder import Forwarder
from gateway.forward.retry import Backoff
from gateway.ingest.decode import decode
from gateway.ingest.mqtt import Message
from gateway.ingest.pipeline import Pipeline
from gateway.ops.doctor import Host
from gateway.ops.metrics import Metrics
from protocols import Accepted, ProtocolError, encode_lines, make_point
from protocols.config import parse_config
from protocols.errors import ConfigError
from tests.gateway.helpers import (
    PREFIX,
    SITE,
    T0,
    FakeSink,
    GatewayProc,
    Publisher,
    telemetry,
    topic,
    wait_subscribed,
    write_config,
)
from tests.servers import Mosquitto, free_port, wait_for

REJ = f"{PREFIX}/{SITE}/_gateway/gw-test/rejected"
COUNT_MAX = 2**63 - 1  # SQLite's largest INTEGER


class Rig:
    """The intake as the gateway runs it: real buffer, delivery accounting on."""

    def __init__(self, tmp: Path, **kw: Any) -> None:
        self.path = tmp / "buffer.sqlite"
        self.buffer = DurableBuffer(self.path, 1 << 30)
        self.sink = FakeSink()
        self.metrics = Metrics()
        self.pipe = Pipeline(site=SITE, prefix=PREFIX, rejected_topic=REJ, buffer=self.buffer,
                             sink=self.sink, metrics=self.metrics,
                             accounting=load_accounting(self.path), **kw)
        self.mid = 0

    def send(self, payload: bytes, device: str = "air-0001", kind: str = "telemetry",
             port: str = "") -> None:
        self.mid += 1
        self.pipe.submit(Message(topic(device, kind), payload, T0 + 1, qos=0 if port else 1,
                                 mid=0 if port else self.mid, generation=1, port=port))

    def commit(self) -> bool:
        return asyncio.run(self.pipe.commit_once())

    def reports(self) -> list[dict[str, Any]]:
        return [json.loads(p) for t, p in self.sink.published if t == REJ]

    def hours(self, device: str = "air-0001") -> tuple[int, ...]:
        rows = read_hours(self.path, 0, 4e9, [device])
        assert len(rows) == 1
        return rows[0].counts()  # received, accepted, duplicates, rejected, missing

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


def rejected_telemetry(boot: int, seq: int) -> bytes:
    """Whole message rejected (v 2), with a boot/seq the accounting tries to read."""
    return json.dumps({"v": 2, "device": "air-0001", "boot": boot, "seq": seq,
                       "samples": []}).encode()


# -- (a) (boot, seq) readable only within 0..2^31-1; counts saturate -----------------------

@pytest.mark.parametrize("seqs", [[2**64], [2**63 - 1], [2**62, 2**62 + 1]],
                         ids=["past-2^63", "2^63-1-through-a-float", "two-2^62-overflow-missing"])
def test_rejected_telemetry_with_huge_seq_does_not_crash(tmp_path: Path, seqs: list[int]) -> None:
    rig = Rig(tmp_path)
    for i, seq in enumerate(seqs):
        rig.send(rejected_telemetry(i + 1, seq))
    assert rig.commit()  # main: OverflowError, never acked: a crash loop
    assert rig.sink.acked == list(range(1, len(seqs) + 1))
    assert rig.hours() == (len(seqs), 0, 0, len(seqs), 0)  # rejected; no gap revealed
    assert [r["reason"] for r in rig.reports()] == ["bad_version"] * len(seqs)


def test_readable_key_keeps_to_the_contract_range() -> None:
    assert readable_key(rejected_telemetry(2**31 - 1, 2**31 - 1)) == (2**31 - 1, 2**31 - 1)
    assert readable_key(rejected_telemetry(1, 2**31)) == (None, None)
    assert readable_key(rejected_telemetry(-1, 3)) == (None, None)
    # the one strict reader: NaN elsewhere makes the payload unreadable (main: (1, 2))
    assert readable_key(b'{"boot": 1, "seq": 2, "x": NaN}') == (None, None)


def test_delivery_counts_saturate_instead_of_overflowing(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    buf = DurableBuffer(path, 1 << 30)
    acc = load_accounting(path)
    first = [Event("air-0001", T0, "accepted", 1, 0)]
    buf.put([Accepted("air-0001", 1, 0, ())], T0, hook=acc.with_events(first))
    db = sqlite3.connect(path)
    db.execute("UPDATE delivery_hours SET missing = ?", (COUNT_MAX - 5,))
    db.commit()
    db.close()
    acc = load_accounting(path)
    gap = [Event("air-0001", T0 + 1, "accepted", 1, 100)]  # 99 more missing
    buf.put([Accepted("air-0001", 1, 100, ())], T0 + 1, hook=acc.with_events(gap))
    assert read_hours(path, 0, 4e9)[0].missing == COUNT_MAX  # main: OverflowError
    buf.close()


# -- (b) status strings must be storable ---------------------------------------------------

@pytest.mark.parametrize("status,reason", [
    (b'{"state":"online","fw":"\\ud800"}', "not_json"),
    (b'{"state":"online","board":"pico\\u0000w"}', "invalid_field"),
    (b'{"state":"online","update":{"version":"1","state":"refused","reason":"a\\nb"}}',
     "invalid_field"),
], ids=["lone-surrogate", "nul-in-board", "newline-in-update-reason"])
def test_status_strings_that_cannot_be_stored_are_rejected(tmp_path: Path, status: bytes,
                                                           reason: str) -> None:
    rig = Rig(tmp_path)
    rig.send(status, kind="status")
    rig.send(telemetry("air-0002", 1, 0), device="air-0002")
    assert rig.commit()  # main: UnicodeEncodeError in the line-protocol encoder, exit
    assert rig.sink.acked == [1, 2]
    assert [r["reason"] for r in rig.reports()] == [reason]
    assert rig.buffer.stats().depth == 1  # the telemetry landed


def test_line_protocol_encoder_raises_protocol_error_on_a_surrogate() -> None:
    p = make_point("device", {"site": SITE, "device": "air-0001"}, {"fw": "\ud800"}, 1)
    with pytest.raises(ProtocolError, match="UTF-8"):  # main: UnicodeEncodeError
        encode_lines([p])


# -- (c) one strict parser (more in tests/protocols/test_jsonstrict.py) --------------------

def test_telemetry_nested_too_deep_is_not_json(tmp_path: Path) -> None:
    doc = json.loads(telemetry("air-0001", 1, 0))
    doc["extra"] = json.loads("[" * 40 + "]" * 40)
    rig = Rig(tmp_path)
    rig.send(json.dumps(doc).encode())
    assert rig.commit()
    assert [r["reason"] for r in rig.reports()] == ["not_json"]  # main: accepted


# -- (d) quarantine: 2 KiB and the length (bounds: tests/gateway/test_buffer.py) -----------

def test_rejected_payload_quarantined_as_2_kib_and_its_length(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.send(b"[" + b" " * 16000 + b"]")
    assert rig.commit()
    (row,) = rig.buffer.list_quarantine(10)
    assert row.reason == "not_object" and len(row.payload) == 2048 and row.length == 16002


# -- (e) reports bounded: 16, then one too_many_rejections ---------------------------------

def test_a_16_kb_message_of_bad_values_gives_17_reports_and_one_quarantine_row(
        tmp_path: Path) -> None:
    samples = [{"sensor": "scd41", "ts": T0 - i, "values": {"co2": -1, "humidity": 101,
                                                            "bogus": 1, "temperature": 21}}
               for i in range(140)]
    payload = json.dumps({"v": 1, "device": "air-0001", "boot": 1, "seq": 0,
                          "samples": samples}).encode()
    assert 14_000 < len(payload) <= 16384
    rig = Rig(tmp_path)
    rig.send(payload)
    assert rig.commit()
    reports = rig.reports()  # main: 480 reports (1,760 for the message)
    assert len(reports) == 17
    assert reports[-1]["reason"] == "too_many_rejections"
    assert reports[-1]["count"] == 140 * 3 - 16
    (row,) = rig.buffer.list_quarantine(10)  # main: one row per report
    assert "419 more" in row.detail and row.length == len(payload)
    assert rig.buffer.stats().depth == 140  # the good temperatures landed


# -- (f) [gateway.serial_ids] ------------------------------------------------------------

def test_serial_port_speaks_only_for_its_mapped_ids(tmp_path: Path) -> None:
    rig = Rig(tmp_path, serial_ids={"/dev/ttyACM0": frozenset({"air-0007"})})
    rig.send(telemetry("air-0007", 1, 0), device="air-0007", port="/dev/ttyACM0")
    rig.send(telemetry("air-0001", 1, 0), device="air-0001", port="/dev/ttyACM0")
    rig.send(telemetry("air-0002", 1, 0), device="air-0002", port="/dev/ttyUSB9")  # unmapped
    assert rig.commit()
    assert [(r["device"], r["reason"]) for r in rig.reports()] == [
        ("air-0001", "port_not_allowed")]
    lines = b"\n".join(rig.buffer.get_batch(100).lines)  # type: ignore[union-attr]
    assert b"device=air-0007" in lines and b"device=air-0002" in lines
    assert b"device=air-0001" not in lines
    assert read_hours(rig.path, 0, 4e9, ["air-0001"]) == []  # not that device's message


def test_serial_ids_config_and_doctor(tmp_path: Path) -> None:
    from gateway.ops.doctor import check_serial_ids

    cfg = parse_config({"site": SITE, "gateway": {
        "serial_ports": ["/dev/ttyACM0", "/dev/ttyACM1"],
        "serial_ids": {"/dev/ttyACM0": ["air-0007"]}}}, tmp_path, env={})
    assert cfg.gateway.serial_ids == {"/dev/ttyACM0": ("air-0007",)}
    finding = check_serial_ids(Host(tmp_path / "x.toml", cfg=cfg))
    assert finding is not None and finding.level == "warn" and "/dev/ttyACM1" in finding.what
    ok = parse_config({"site": SITE, "gateway": {"serial_ports": ["/dev/ttyACM0"],
                                                 "serial_ids": {"/dev/ttyACM0": ["a-1"]}}},
                      tmp_path, env={})
    assert check_serial_ids(Host(tmp_path / "x.toml", cfg=ok)).level == "ok"  # type: ignore
    assert check_serial_ids(Host(tmp_path / "x.toml", cfg=parse_config(
        {"site": SITE}, tmp_path, env={}))) is None
    with pytest.raises(ConfigError, match="serial_ids"):
        parse_config({"site": SITE, "gateway": {"serial_ids": {"/dev/x": ["Bad Id"]}}},
                     tmp_path, env={})


# -- the principle: a failing commit is split until the culprit is alone -------------------

class Poisoned(DurableBuffer):
    """The real buffer, failing in a way no rule foresaw for messages of one device."""

    def put(self, messages: Any, received_at: float, rejected: Any = (), *,
            hook: Any = None) -> Any:
        if any(m.device == "air-0666" for m in messages):
            raise RuntimeError("boom:\nsomething no rule foresaw")
        return super().put(messages, received_at, rejected, hook=hook)


def test_culprit_is_isolated_quarantined_acked_counted_and_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(tmp_path)
    rig.buffer.close()
    rig.buffer = Poisoned(rig.path, 1 << 30)
    rig.pipe._buffer = rig.buffer
    for i in range(10):
        device = "air-0666" if i in (3, 7) else "air-0001"
        rig.send(telemetry(device, 1, i), device=device)
    with caplog.at_level(logging.ERROR):
        assert rig.commit()
    assert sorted(rig.sink.acked) == list(range(1, 11))  # all acked, the culprits too
    assert rig.buffer.stats().depth == 8  # the others committed
    rows = rig.buffer.list_quarantine(10)
    assert [(q.device, q.reason) for q in rows] == [("air-0666", "internal_error")] * 2
    assert rows[0].detail == "RuntimeError: boom: something no rule foresaw"
    assert [r["reason"] for r in rig.reports()] == ["internal_error"] * 2
    assert rig.metric("livinglab_rejections_total", reason="internal_error") == 2
    assert rig.hours("air-0666") == (2, 0, 0, 2, 0)  # counted as rejected
    assert len([r for r in caplog.records if "internal_error" in r.getMessage()]) == 1
    assert not rig.pipe.pending


def test_a_failure_that_is_not_the_messages_acks_nothing(tmp_path: Path) -> None:
    class Broken(DurableBuffer):
        def put(self, *a: Any, **kw: Any) -> Any:
            raise sqlite3.OperationalError("disk I/O error")

    rig = Rig(tmp_path)
    rig.pipe._buffer = Broken(tmp_path / "other.sqlite", 1 << 30)
    for i in range(4):
        rig.send(telemetry("air-0001", 1, i))
    with pytest.raises(sqlite3.OperationalError):
        rig.commit()  # up to the supervisor; the broker keeps every message
    assert rig.sink.acked == [] and len(rig.pipe.pending) == 4


def test_decode_failure_is_isolated_too(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.ingest.decode as decode_mod
    from protocols.validate import validate_telemetry as real  # what decode calls

    def flaky(topic: str, payload: bytes, *a: Any, **kw: Any) -> Any:
        if b"air-0666" in payload:
            raise KeyError("a validator bug")
        return real(topic, payload, *a, **kw)

    monkeypatch.setattr(decode_mod, "validate_telemetry", flaky)
    rig = Rig(tmp_path)
    for i, device in enumerate(["air-0001", "air-0666", "air-0001"]):
        rig.send(telemetry(device, 1, i), device=device)
    assert rig.commit()
    assert sorted(rig.sink.acked) == [1, 2, 3] and rig.buffer.stats().depth == 2
    assert [r["reason"] for r in rig.reports()] == ["internal_error"]
    assert decode([], SITE, PREFIX).quarantine == []


def test_forwarder_dead_letters_a_line_the_store_fails_on(tmp_path: Path) -> None:
    class BuggyStore:
        def __init__(self) -> None:
            self.written: list[bytes] = []

        async def ensure_ready(self) -> None:
            pass

        async def write(self, body: bytes, n: int) -> None:
            if b"air-0666" in body:
                raise ValueError("a store bug")
            self.written.extend(body.split(b"\n"))

        async def aclose(self) -> None:
            pass

    buf = DurableBuffer(tmp_path / "b.sqlite", 1 << 30)
    msgs = [Accepted(d, 1, i, (make_point("air", {"device": d, "site": SITE, "sensor": "s"},
                                          {"co2": 400.0 + i}, 1_795_351_934_000 + i),))
            for i, d in enumerate(["air-0001", "air-0666", "air-0001", "air-0001"])]
    buf.put(msgs, T0)
    store = BuggyStore()
    metrics = Metrics()
    fwd = Forwarder(buf, store, metrics, batch_size=100,
                    flush_interval_s=0.01, backoff=Backoff(base=0.01, cap=0.05))
    asyncio.run(fwd.flush(10))  # main: the ValueError ended the forwarder (and the gateway)
    assert buf.depth == 0 and len(store.written) == 3
    (row,) = buf.list_quarantine(10)
    assert row.reason == "internal_error" and row.device == "air-0666"
    assert row.detail == "ValueError: a store bug"
    assert encode_lines(msgs[1].points) == row.payload
    buf.close()


# -- end to end: the reproduction, against the real gateway process ----------------

@pytest.mark.slow
def test_gateway_process_survives_the_poison_and_its_restart(tmp_path: Path,
                                                            mosquitto: Mosquitto) -> None:
    """On main the first message (seq 2^64) crashed the gateway, never acked: the broker
    handed it over again at every start. Now it stays up, and so does the next start."""
    hp = free_port()
    db = tmp_path / "readings.sqlite"
    cfg = write_config(tmp_path / "gw.toml", mqtt_port=mosquitto.port, health_port=hp,
                       store={"kind": "sqlite", "path": str(db)},
                       gateway={"commit_window_s": 0.0})
    gw = GatewayProc(cfg, hp)
    pub = Publisher(mosquitto.port, "poison-publisher")
    try:
        gw.start()
        wait_subscribed(gw)
        pub.raw(topic("air-0001"), rejected_telemetry(1, 2**64))
        pub.raw(topic("air-0002", "status"), b'{"state":"online","fw":"\\ud800"}', retain=True)
        pub.raw(topic("air-0003"), telemetry("air-0003", 1, 0, ts=time.time() - 5))

        def readings() -> int:
            if not db.exists():
                return 0
            try:  # the gateway may be creating the file this instant (no table yet)
                with sqlite3.connect(db) as c:
                    return int(c.execute("SELECT count(*) FROM readings WHERE "
                                         "device = 'air-0003'").fetchone()[0])
            except sqlite3.OperationalError:
                return 0

        wait_for(lambda: readings() == 2, 15, what="the valid reading behind the poison")
        wait_for(lambda: gw.metric("livinglab_rejections_total") >= 2, 10, what="rejections")
        assert gw.healthz()[0] == 200
        assert gw.terminate() == 0
        gw.start()  # the retained status comes again: no crash this time either
        wait_subscribed(gw)
        wait_for(lambda: gw.metric('livinglab_rejections_total{reason="not_json"}') >= 1, 10,
                 what="the retained status rejected again")
        assert gw.healthz()[0] == 200
        assert gw.terminate() == 0
    finally:
        pub.raw(topic("air-0002", "status"), b"", retain=True)
        pub.close()
        gw.kill()
