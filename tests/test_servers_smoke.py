"""The server fixtures themselves start and answer (a broken fixture fails here first)."""

from __future__ import annotations

import paho.mqtt.client as mqtt

from tests.servers import Influxd, Mosquitto, VictoriaMetrics, wait_for


def test_mosquitto_roundtrip(mosquitto: Mosquitto) -> None:
    got: list[bytes] = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="smoke")
    c.on_message = lambda _c, _u, m: got.append(m.payload)
    c.connect("127.0.0.1", mosquitto.port)
    c.subscribe("t/#", qos=1)
    c.loop_start()
    try:
        c.publish("t/x", b"hello", qos=1).wait_for_publish(5)
        wait_for(lambda: got, 5, what="message back")
    finally:
        c.loop_stop()
        c.disconnect()
    assert got == [b"hello"]


def test_influxd_and_vm_answer(influxd: Influxd, victoria: VictoriaMetrics) -> None:
    influxd.query('CREATE DATABASE "smoke"')
    assert "smoke" in str(influxd.query("SHOW DATABASES"))
    assert victoria.ready()
