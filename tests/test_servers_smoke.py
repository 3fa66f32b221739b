"""The server fixtures themselves start and answer (a broken fixture fails here first)."""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.servers import Influxd, Mosquitto, VictoriaMetrics, wait_for


def test_mosquitto_roundtrip(mosquitto: Mosquitto) -> None:
    got: list[bytes] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="smoke")
    c.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
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


@pytest.mark.slow
def test_mosquitto_restart_keeps_persistent_session(tmp_path: Path) -> None:
    """Fault tests rely on Mosquitto.restart() keeping queued messages (persistence works)."""
    m = Mosquitto(tmp_path / "m")
    m.start()
    try:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="keep", clean_session=False)
        c.connect("127.0.0.1", m.port)
        c.subscribe("a/#", 1)
        c.loop_start()
        wait_for(c.is_connected, 5, what="subscriber connected")
        c.loop_stop()
        c.disconnect()
        p = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pub")
        p.connect("127.0.0.1", m.port)
        p.loop_start()
        p.publish("a/b", b"queued", qos=1).wait_for_publish(5)
        p.loop_stop()
        p.disconnect()
        m.restart()
        got: list[bytes] = []
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="keep", clean_session=False)
        c.on_message = lambda _c, _u, msg: got.append(bytes(msg.payload))
        c.connect("127.0.0.1", m.port)
        c.loop_start()
        try:
            wait_for(lambda: got, 10, what="queued message after restart")
        finally:
            c.loop_stop()
            c.disconnect()
        assert got == [b"queued"]
    finally:
        m.stop()
