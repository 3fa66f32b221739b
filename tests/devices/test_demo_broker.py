"""The demo's embedded amqtt broker: what the demo relies on works (QoS 1, retained
messages, a persistent session that queues while its client is away), and it stops."""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices import catalogue
from devices.embedded_broker import EmbeddedBroker, EmbeddedBrokerError
from devices.fleet_plan import KIND_SENSORS
from tests.servers import wait_for


class Client:
    """A paho MQTT 3.1.1 client that records (topic, payload, retain)."""

    def __init__(self, port: int, client_id: str, clean: bool = True) -> None:
        self.got: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=clean, protocol=mqtt.MQTTv311)
        self.c.on_message = self._on_message
        self.connected = threading.Event()
        self.c.on_connect = lambda *a: self.connected.set()
        self.c.connect("127.0.0.1", port, keepalive=10)
        self.c.loop_start()
        assert self.connected.wait(10), "no CONNACK from the embedded broker"

    def _on_message(self, client: object, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def payloads(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.got if t == topic]

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.c.on_subscribe = lambda *a: done.set()
        self.c.subscribe(topic, qos=1)
        assert done.wait(10), "no SUBACK"

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.mark.timeout(60)
def test_retained_qos1_and_persistent_session_queueing(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "broker.log")
    broker.start()
    pid = broker.pid
    try:
        pub = Client(broker.port, "pub")
        pub.c.publish("lab/dev/status", b"online", qos=1, retain=True).wait_for_publish(10)

        gw = Client(broker.port, "gateway", clean=False)
        gw.subscribe("lab/#")
        wait_for(lambda: gw.payloads("lab/dev/status") == [b"online"], 10,
                 what="retained status delivered to a new subscriber")
        gw.close()

        for i in range(5):  # published while the gateway is away
            pub.c.publish("lab/dev/telemetry", str(i).encode(), qos=1).wait_for_publish(10)
        gw2 = Client(broker.port, "gateway", clean=False)  # same id: the session resumes
        wait_for(lambda: gw2.payloads("lab/dev/telemetry") == [b"0", b"1", b"2", b"3", b"4"],
                 10, what="queued QoS 1 messages delivered in order on reconnect")
        gw2.close()
        pub.close()
        with pytest.raises(EmbeddedBrokerError, match="busy"):
            EmbeddedBroker(tmp_path / "other.log", port=broker.port).start()
    finally:
        broker.stop()
    assert pid is not None and not Path(f"/proc/{pid}").exists()


def test_fleet_kinds_use_catalogue_sensors() -> None:
    known = catalogue.sensors()
    for kind, sensors in KIND_SENSORS.items():
        for sensor in sensors:
            assert sensor in known, f"{kind} device uses {sensor}, not in devices/sensors/"
    assert {q for s in KIND_SENSORS["air"] for q in known[s].quantities} >= {"co2", "pm2_5"}
