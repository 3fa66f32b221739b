"""Serial ingress: line parsing, and a real pyserial port over a pseudo-terminal."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from gateway.metrics import Metrics
from gateway.mqtt_source import Message
from gateway.pipeline import Pipeline
from gateway.serial_source import SerialSource, parse_serial_line
from tests.gateway.helpers import PREFIX, SITE, FakeBuffer, FakeSink, telemetry


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
