"""End to end: a site quantity through Mosquitto -> `livinglab gateway` -> InfluxDB 1.x.

One site quantity in a new domain (its own measurement), one in a built-in domain
(beside the built-ins of the same sample); out-of-range and unknown values rejected
with reports on the gateway's ``rejected`` topic.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.gateway.helpers import PREFIX, SITE, GatewayProc, Publisher, topic, write_config
from tests.servers import Influxd, Mosquitto, free_port, wait_for

pytestmark = pytest.mark.slow

REJECTED = f"{PREFIX}/{SITE}/_gateway/gw-test/rejected"
QUANTITIES = """
[quantities.noise_level]
unit = "dBA"
domain = "sound"
min = 20.0
max = 140.0

[quantities.no2]
unit = "ppb"
domain = "air"
min = 0
max = 2000
"""


def test_site_quantities_land_in_the_store(tmp_path: Path, mosquitto: Mosquitto,
                                           influxd: Influxd) -> None:
    hp = free_port()
    cfg = write_config(tmp_path / "gw.toml", mqtt_port=mosquitto.port, health_port=hp,
                       store={"kind": "influxdb1", "url": influxd.url, "database": "ll"})
    cfg.write_text(cfg.read_text() + QUANTITIES)
    reports: list[dict[str, object]] = []
    lock = threading.Lock()

    def on_message(client: object, userdata: object, m: paho.MQTTMessage) -> None:
        with lock:
            reports.append(json.loads(m.payload))

    watch = paho.Client(CallbackAPIVersion.VERSION2, client_id="watch-site-q")
    watch.on_message = on_message
    watch.connect("127.0.0.1", mosquitto.port)
    watch.subscribe(REJECTED, 0)
    watch.loop_start()
    gw = GatewayProc(cfg, hp)
    gw.start()
    pub = Publisher(mosquitto.port)
    try:
        ts = round(time.time() - 60, 3)
        body = {"v": 1, "device": "air-0001", "boot": 1, "seq": 0, "samples": [
            {"sensor": "sen0232", "ts": ts, "values": {"noise_level": 54.5}},
            {"sensor": "mix", "ts": ts, "values": {"no2": 21, "temperature": 21.5,
                                                   "noise_level": 150, "radon": 3}}]}
        pub.raw(topic("air-0001"), json.dumps(body).encode())
        ms = round(ts * 1000)
        wait_for(lambda: len(influxd.points("ll", "air")) == 1, 20, what="air point")
        wait_for(lambda: len(influxd.points("ll", "sound")) == 1, 20, what="sound point")
        sound = influxd.points("ll", "sound")[0]
        assert (sound["time"], sound["device"], sound["sensor"], sound["noise_level"]) == (
            ms, "air-0001", "sen0232", 54.5)
        air = influxd.points("ll", "air")[0]
        assert (air["sensor"], air["no2"], air["temperature"]) == ("mix", 21.0, 21.5)
        assert air.get("noise_level") is None and air.get("radon") is None
        wait_for(lambda: len(reports) == 2, 10, what="two rejection reports")
        with lock:
            got = sorted((r["reason"], r["detail"]) for r in reports)
        assert got == [("out_of_range", "samples[1] (mix) 'noise_level'=150 outside 20..140 dBA"),
                       ("unknown_quantity", "samples[1] (mix) 'radon'=3")]
        assert gw.terminate() == 0
    finally:
        gw.kill()
        pub.close()
        watch.loop_stop()
        watch.disconnect()
