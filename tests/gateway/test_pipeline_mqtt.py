"""MqttSource against a real Mosquitto: persistent session, manual acks, generations."""

from __future__ import annotations

import asyncio
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.ingest.mqtt import BrokerUnreachable, Message, MqttSource
from protocols.config import parse_config
from tests.gateway.helpers import PREFIX, SITE, run_async, telemetry, topic
from tests.servers import Mosquitto, free_port


def publisher(port: int) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{time.monotonic_ns()}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def source(port: int, got: list[Message], **mqtt: object) -> MqttSource:
    cfg = parse_config({"site": SITE, "mqtt": {"port": port, "client_id": "gw-under-test",
                                                **mqtt}}, env={})
    return MqttSource(cfg, f"{PREFIX}/{SITE}/#", got.append,
                      will_topic=f"{PREFIX}/{SITE}/_gateway/gw-test/status",
                      will_payload=b'{"state":"offline"}')


async def wait_until(cond: object, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.02)


def _unacked_are_redelivered_and_acked_are_not(port: int, protocol: str) -> None:
    async def body() -> None:
        got: list[Message] = []
        src = source(port, got, protocol=protocol)
        await src.connect(5)
        assert src.connected and src.generation == 1
        pub = publisher(port)
        for i in range(4):
            pub.publish(topic("air-0001"), telemetry("air-0001", 1, i), qos=1).wait_for_publish(5)
        await wait_until(lambda: len(got) == 4)
        for m in got[:2]:
            assert src.ack(m)
        await asyncio.sleep(0.2)  # let the PUBACKs leave
        await src.close()
        # while the gateway is away the broker queues for its persistent session
        pub.publish(topic("air-0001"), telemetry("air-0001", 1, 4), qos=1).wait_for_publish(5)
        pub.loop_stop()
        pub.disconnect()

        got2: list[Message] = []
        src2 = source(port, got2, protocol=protocol)
        await src2.connect(5)
        await wait_until(lambda: len(got2) == 3)
        seqs = sorted(int(m.payload.split(b'"seq": ')[1].split(b",")[0]) for m in got2)
        assert seqs == [2, 3, 4]
        # an ack for a message of an older connection is dropped, not sent
        assert not src2.ack(Message(got[2].topic, b"", 0.0, qos=1, mid=got[2].mid,
                                    generation=src2.generation - 1))
        assert src2.stale_acks == 1
        await src2.close()

    asyncio.run(asyncio.wait_for(body(), 30))


def test_persistent_session_v5(mosquitto: Mosquitto) -> None:
    _unacked_are_redelivered_and_acked_are_not(mosquitto.port, "5")


def test_persistent_session_v311(mosquitto: Mosquitto) -> None:
    _unacked_are_redelivered_and_acked_are_not(mosquitto.port, "3.1.1")


@pytest.mark.slow
def test_reconnects_after_broker_restart_with_new_generation(mosquitto: Mosquitto) -> None:
    async def body() -> None:
        got: list[Message] = []
        src = source(mosquitto.port, got)
        stop = asyncio.Event()
        await src.connect(5)
        runner = asyncio.create_task(src.run(stop))
        await asyncio.to_thread(mosquitto.restart)
        await wait_until(lambda: src.connected and src.generation == 2, 20)
        pub = publisher(mosquitto.port)
        pub.publish(topic("air-0001"), telemetry("air-0001", 1, 0), qos=1).wait_for_publish(5)
        await wait_until(lambda: any(m.topic.endswith("/telemetry") for m in got))
        telem = [m for m in got if m.topic.endswith("/telemetry")]
        assert telem[0].generation == 2 and src.ack(telem[0])
        pub.loop_stop()
        pub.disconnect()
        stop.set()
        await asyncio.wait_for(runner, 5)
        await src.close()

    asyncio.run(asyncio.wait_for(body(), 40))


@run_async
async def test_unreachable_broker_gives_up_after_timeout() -> None:
    port = free_port()
    src = source(port, [])
    t0 = time.monotonic()
    try:
        await src.connect(1.0)
    except BrokerUnreachable as exc:
        assert f"127.0.0.1:{port}" in str(exc) and "is mosquitto running" in str(exc)
    else:
        raise AssertionError("expected BrokerUnreachable")
    assert time.monotonic() - t0 < 5


