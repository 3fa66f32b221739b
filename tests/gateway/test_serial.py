"""Serial ingress: line parsing, and a real pyserial port over a pseudo-terminal."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import pytest

from gateway.ingest.mqtt import Message
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.serial import SerialSource, parse_serial_line
from gateway.ops.metrics import Metrics
from tests.gateway.helpers import (
    PREFIX,
    SITE,
    FakeBuffer,
    FakeSink,
    GatewayProc,
    stream_payload,
    telemetry,
    write_config,
)
from tests.servers import Mosquitto, free_port, wait_for


@pytest.mark.parametrize(("line", "want"), [
    (b'air-0001/telemetry {"v":1}\r\n', (f"{PREFIX}/{SITE}/air-0001/telemetry", b'{"v":1}')),
    (b'air-0001/status {"state":"online"}\n',
     (f"{PREFIX}/{SITE}/air-0001/status", b'{"state":"online"}')),
    (b"MicroPython v1.23.0 on 2024-06-02; Raspberry Pi Pico W\r\n", None),
    (b">>> \r\n", None),
    (b'air-0001/config {"interval_s":5}\n', None),
    (b"Traceback (most recent call last):\n", None),
    (b"", None),
    (b'air 0001/telemetry {"v":1}\n', None),
])
def test_parse_serial_line(line: bytes, want: tuple[str, bytes] | None) -> None:
    assert parse_serial_line(line, SITE, PREFIX) == want


def test_bad_device_becomes_a_bad_topic_rejection_not_noise() -> None:
    parsed = parse_serial_line(b'AIR_1/telemetry {"v":1}\n', SITE, PREFIX)
    assert parsed is not None and "/AIR_1/" in parsed[0]


def test_lines_over_a_pty_reach_the_buffer() -> None:
    master, slave = os.openpty()
    port = os.ttyname(slave)

    async def body() -> None:
        buf, sink = FakeBuffer(), FakeSink()
        pipe = Pipeline(site=SITE, prefix=PREFIX, rejected_topic="rej",
                        buffer=buf, sink=sink, metrics=Metrics())
        noise: list[int] = []
        got: list[Message] = []

        def deliver(m: Message) -> None:
            got.append(m)
            pipe.submit(m)

        src = SerialSource((port,), 115200, SITE, PREFIX, deliver, lambda: noise.append(1))
        src.start(asyncio.get_running_loop())
        stop = asyncio.Event()
        runner = asyncio.create_task(pipe.run(stop))
        try:
            end = time.monotonic() + 5
            while not src.open_ports and time.monotonic() < end:
                await asyncio.sleep(0.01)
            lines = [b"MicroPython v1.23 on pico\r\n",
                     b"air-0001/telemetry " + telemetry("air-0001", 1, 0) + b"\r\n",
                     b"oops, a log line\r\n",
                     b'air-0001/status {"state":"online","rssi":-70}\r\n']
            half = b"air-0001/telemetry " + telemetry("air-0001", 1, 1)
            for line in lines:
                os.write(master, line)
            # a line split across reads (and the reader's timeout) still arrives whole
            os.write(master, half[:20])
            await asyncio.sleep(0.4)
            os.write(master, half[20:] + b"\r\n")
            end = time.monotonic() + 10
            while (len(buf.seen) < 3 or len(noise) < 2) and time.monotonic() < end:
                await asyncio.sleep(0.02)
        finally:
            await asyncio.to_thread(src.stop)
            stop.set()
            await runner
        assert len(noise) == 2
        assert [m.topic.rsplit("/", 1)[1] for m in got] == ["telemetry", "status", "telemetry"]
        assert {(d, b) for d, b, _ in buf.seen} == {("air-0001", 1), ("air-0001", -1)}
        assert sorted(p.measurement for p in buf.points) == ["air", "air", "device"]
        assert all(m.qos == 0 for m in got) and sink.acked == []

    try:
        asyncio.run(asyncio.wait_for(body(), 20))
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.slow
def test_gateway_process_reads_a_serial_board(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """`livinglab gateway` with serial_ports = [a pty]: lines land in the sqlite store."""
    master, slave = os.openpty()
    hp = free_port()
    db = tmp_path / "readings.sqlite"
    cfg = write_config(tmp_path / "gw.toml", mqtt_port=mosquitto.port, health_port=hp,
                       store={"kind": "sqlite", "path": str(db)},
                       gateway={"serial_ports": [os.ttyname(slave)]})
    gw = GatewayProc(cfg, hp)
    try:
        gw.start()
        wait_for(lambda: "serial" in gw.log.read_text() and " open at " in gw.log.read_text(),
                 10, what="serial port opened")
        base = time.time() - 600
        want = []
        for seq in range(3):
            payload, expected = stream_payload("usb-0001", 2, seq, base)
            os.write(master, b"usb-0001/telemetry " + payload + b"\r\n")
            os.write(master, b"I (1234) boot: some log line\r\n")
            want += expected

        def rows() -> list[tuple[str, str, int, str, float]]:
            if not db.exists():
                return []
            try:  # the file may exist before its table does
                with sqlite3.connect(db) as c:
                    return sorted(c.execute("SELECT device, sensor, time_ms, field, value "
                                            "FROM readings WHERE measurement='air'").fetchall())
            except sqlite3.OperationalError:
                return []

        wait_for(lambda: rows() == sorted(want), 15, what="serial readings in the store")
        assert gw.metric('livinglab_messages_received_total{kind="serial_noise"}') == 3
        assert gw.terminate() == 0
    finally:
        gw.kill()
        os.close(master)
        os.close(slave)
