"""End to end: paho publisher -> mosquitto -> `livinglab gateway` (subprocess) -> store.

Readings are read back from the real store and compared value by value; the
gateway's retained status, last will, rejection reports and the ``rejected``
command are checked on the way.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.gateway.helpers import (
    PREFIX,
    SITE,
    GatewayProc,
    Publisher,
    influx_rows,
    topic,
    vm_rows,
    write_config,
)
from tests.servers import Influxd, Mosquitto, VictoriaMetrics, free_port, wait_for

pytestmark = pytest.mark.slow

STATUS = f"{PREFIX}/{SITE}/_gateway/gw-test/status"
REJECTED = f"{PREFIX}/{SITE}/_gateway/gw-test/rejected"


class Watcher:
    """Subscribes to the gateway's status and rejected topics, keeps what arrives."""

    def __init__(self, port: int) -> None:
        self.status: list[dict[str, object]] = []
        self.rejected: list[dict[str, object]] = []
        self.lock = threading.Lock()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{time.time_ns()}")
        self.c.on_message = self._on
        self.c.connect("127.0.0.1", port)
        self.c.subscribe([(STATUS, 1), (REJECTED, 0)])
        self.c.loop_start()

    def _on(self, client: object, userdata: object, m: paho.MQTTMessage) -> None:
        with self.lock:
            (self.status if m.topic == STATUS else self.rejected).append(json.loads(m.payload))

    def last_state(self) -> object:
        with self.lock:
            return self.status[-1]["state"] if self.status else None

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True,
                          text=True, timeout=30)


def test_influxdb1_end_to_end(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd) -> None:
    hp = free_port()
    cfg = write_config(tmp_path / "gw.toml", mqtt_port=mosquitto.port, health_port=hp,
                       store={"kind": "influxdb1", "url": influxd.url, "database": "ll"})
    gw = GatewayProc(cfg, hp)
    watch = Watcher(mosquitto.port)
    gw.start()
    pub = Publisher(mosquitto.port)
    try:
        wait_for(lambda: watch.last_state() == "online", 10, what="retained online status")
        base = time.time() - 7200
        for seq in range(200):
            pub.send(f"air-{seq % 5:04d}", 3, seq, base, samples=2)
        pub.send("air-0000", 3, 0, base, samples=2)  # an exact duplicate: dropped
        pub.expected = pub.expected[:-4]
        pub.raw(topic("air-0009"), b'{"v":1,"device":"air-0008","boot":1,"seq":1,"samples":[]}')
        pub.raw(topic("air-0009", "status"), b'{"state":"online","rssi":-61,"uptime":12}')
        pub.wait_all()
        want = sorted(pub.expected)
        wait_for(lambda: sorted(influx_rows(influxd, "ll")) == want, 20,
                 what="every published value in influxd")
        dev = influxd.points("ll", "device")
        assert [(p["device"], p["rssi"], p["online"]) for p in dev] == [("air-0009", -61.0, 1.0)]
        wait_for(lambda: watch.rejected, 5, what="rejection report")
        assert watch.rejected[0]["reason"] == "device_mismatch"
        assert watch.rejected[0]["device"] == "air-0009"
        assert gw.metric("livinglab_duplicates_total") == 1
        # the readings, the device point (no strings: no device_info), and the gateway's
        # own health points (gateway + gateway_info each: wire contract, third turn)
        def counts() -> tuple[float, int]:
            return (gw.metric("livinglab_points_forwarded_total"),
                    len(want) // 2 + 1 + 2 * len(influxd.points("ll", "gateway")))

        wait_for(lambda: (lambda c: c[0] == c[1])(counts()), 10,
                 what="forwarded = readings + device point + health points")
        out = run_cli("gateway", "rejected", "--config", str(cfg))
        assert out.returncode == 0 and "device_mismatch" in out.stdout and "air-0009" in out.stdout
        js = run_cli("gateway", "rejected", "--config", str(cfg), "--json", "--limit", "1")
        assert json.loads(js.stdout)["payload"].startswith('{"v":1')
        t0 = time.monotonic()
        assert gw.terminate() == 0
        assert time.monotonic() - t0 < 10
        wait_for(lambda: watch.last_state() == "offline", 5, what="offline status on SIGTERM")
        # last will: a killed gateway is reported offline by the broker
        gw.start()
        wait_for(lambda: watch.last_state() == "online", 10, what="online again")
        gw.kill()
        wait_for(lambda: watch.last_state() == "offline", 10, what="last will")
    finally:
        gw.kill()
        pub.close()
        watch.close()


def test_victoriametrics_influxdb2_end_to_end(tmp_path: Path, mosquitto: Mosquitto,
                                              victoria: VictoriaMetrics) -> None:
    hp = free_port()
    cfg = write_config(tmp_path / "gw.toml", mqtt_port=mosquitto.port, health_port=hp,
                       store={"kind": "influxdb2", "url": victoria.url, "token": "x"})
    gw = GatewayProc(cfg, hp)
    gw.start()
    pub = Publisher(mosquitto.port)
    try:
        base = time.time() - 3600
        for seq in range(300):
            pub.send(f"light-{seq % 3:04d}", 1, seq, base)
        pub.wait_all()
        want = Counter(pub.expected)
        wait_for(lambda: gw.metric("livinglab_points_forwarded_total") >= 300, 20,
                 what="all points forwarded")
        wait_for(lambda: Counter(vm_rows(victoria)) == want, 20, what="values in VictoriaMetrics")
        # the health points may still wait their flush interval: depth 0 once they leave
        wait_for(lambda: gw.healthz()[1]["buffer_depth"] == 0, 10, what="buffer drained")
        code, doc = gw.healthz()
        assert code == 200 and doc["mqtt_connected"] is True
        assert gw.terminate() == 0
    finally:
        gw.kill()
        pub.close()
