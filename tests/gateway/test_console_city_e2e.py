"""The city console end to end: three sites, each its own Mosquitto and gateway, all
writing to one store (influxd, or VictoriaMetrics behind vmagent), and the city console reading that
store alone in headless Chromium. Every site and device with the right values; a
device that stops sending turns ``silent``, one whose last will fires ``offline``, a
killed gateway ``down`` with its devices ``unknown``; stations on the map where they
were set. The console shares no file and no broker with any gateway."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devices.inventory import Device, Inventory, SensorSpec
from tests.gateway.helpers import GatewayProc, Publisher, write_config
from tests.gateway.test_console_browser import CHROMEDRIVER, CHROMIUM, _browser
from tests.servers import (
    HOST,
    Mosquitto,
    Server,
    VictoriaMetrics,
    free_port,
    http_ok,
    running,
    stop_pid,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="chromium + chromium-driver not installed"), pytest.mark.skipif(
    importlib.util.find_spec("protocols.inventory") is None,
    reason="needs the gateways writing the centre's points (gateway health, stations: "
           "branch writes)")]

HEALTH_S = 5
INTERVAL_S = 2  # the devices' status interval: silent after 3 x 2 s
SITES = {"north-lab": (50.8793, 4.7010), "south-lab": (50.8120, 4.3810),
         "east-lab": (50.8500, 4.4500)}
DEVICES = ("air-0001", "air-0002")


@dataclass
class VMAgent(Server):
    """vmagent in front of VictoriaMetrics: the gateways write to it (the InfluxDB
    write API), it forwards to ``remote`` (``/api/v1/write``) within a second."""

    remote: str = ""

    def command(self) -> list[str]:
        return ["vmagent", f"-httpListenAddr={HOST}:{self.port}",
                f"-remoteWrite.url={self.remote}/api/v1/write",
                f"-remoteWrite.tmpDataPath={self.dir}/buffer", "-remoteWrite.flushInterval=200ms",
                "-loggerLevel=WARN"]

    def ready(self) -> bool:
        return http_ok(f"{self.url}/health")


class Fleet(threading.Thread):
    """Each site's devices: a status at start, then telemetry every second (co2 rising)."""

    def __init__(self, site: str, port: int) -> None:
        super().__init__(daemon=True)
        self.site, self.pub = site, Publisher(port, client_id=f"fleet-{site}")
        self.stopped: set[str] = set()
        self.sent: dict[tuple[str, str], float] = {}
        self.halt = threading.Event()
        self.seq = 0

    def topic(self, device: str, kind: str) -> str:
        return f"livinglab/v1/{self.site}/{device}/{kind}"

    def status(self, device: str) -> None:
        self.pub.raw(self.topic(device, "status"), json.dumps({
            "state": "online", "fw": "1.2.0", "board": "pico_w", "boot": 1,
            "interval_s": INTERVAL_S, "uptime": 600, "rssi": -60}).encode(), retain=True)

    def run(self) -> None:
        for d in DEVICES:
            self.status(d)
        while not self.halt.wait(1.0):
            self.seq += 1
            for i, d in enumerate(DEVICES):
                if d in self.stopped:
                    continue
                co2 = 500.0 + self.seq + 100 * i
                self.pub.raw(self.topic(d, "telemetry"), json.dumps({
                    "v": 1, "device": d, "boot": 1, "seq": self.seq, "samples": [
                        {"sensor": "scd41", "ts": time.time(), "values": {"co2": co2}}]
                }).encode())
                self.sent[(d, "co2")] = co2

    def close(self) -> None:
        self.halt.set()
        self.join(5)
        self.pub.close()


@pytest.fixture(params=["influxd", "victoria"])
def city(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    server = request.getfixturevalue(request.param)
    with contextlib.ExitStack() as stack:
        if isinstance(server, VictoriaMetrics):
            # the gateways write through vmagent; readers query VictoriaMetrics itself
            agent = stack.enter_context(running(VMAgent(tmp_path / "vmagent",
                                                        remote=server.url)))
            store: dict[str, Any] = {"kind": "influxdb2", "url": agent.url,
                                     "read_urls": [server.url], "flavour": "victoriametrics"}
        else:
            store = {"kind": "influxdb1", "url": server.url, "database": "city"}
        gateways: dict[str, GatewayProc] = {}
        fleets: dict[str, Fleet] = {}
        for n, (site, (lat, lon)) in enumerate(SITES.items()):
            base = tmp_path / site
            mq = stack.enter_context(running(Mosquitto(base / "mosquitto")))
            with Inventory.in_data_dir(base / "var") as inv:
                for d in DEVICES:
                    inv.upsert(Device(device=d, site=site, board="pico_w", sensors=(
                        SensorSpec(kind="scd41", bus="i2c0", address=0x62),)))
                inv.set_meta("air-0001", {"lat": lat, "lon": lon, "room": f"{n}.01"})
            health = free_port()
            cfg = write_config(base / "gw.toml", mqtt_port=mq.port, health_port=health,
                               store=store, site=site,
                               gateway={"id": f"gw-{site[:5]}", "store_health_s": HEALTH_S,
                                        "delivery_flush_s": 1})
            gw = GatewayProc(cfg, health)
            gw.start()
            stack.callback(gw.kill)
            gateways[site] = gw
            fleet = Fleet(site, mq.port)
            fleet.start()
            stack.callback(fleet.close)
            fleets[site] = fleet
        port = free_port()
        ccfg = tmp_path / "centre" / "city.toml"
        ccfg.parent.mkdir()
        table = "\n".join(f"{k} = {json.dumps(v)}" for k, v in store.items())
        ccfg.write_text(f'[console]\nscope = "city"\nport = {port}\n\n[store]\n{table}\n')
        log = tmp_path / "centre" / "console.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "console",
                                     "--config", str(ccfg)], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=ccfg.parent)
        stack.callback(stop_pid, proc.pid)
        wait_for(lambda: "console: " in log.read_text(), 20, what="city console started")
        yield {"url": f"http://127.0.0.1:{port}", "gateways": gateways, "fleets": fleets,
               "server": server, "centre": ccfg.parent}


@pytest.mark.timeout(300)
def test_three_sites_one_store_in_chromium(city: dict[str, Any], tmp_path: Path) -> None:
    url, fleets, gateways = city["url"], city["fleets"], city["gateways"]
    driver = _browser(tmp_path)

    def attrs(css: str, *names: str) -> list[list[str]]:
        return list(driver.execute_script(
            "var names = arguments[1]; return Array.from(document.querySelectorAll("
            "arguments[0])).map(function (e) { return names.map(function (n) {"
            " return n === 'text' ? e.textContent : e.getAttribute(n); }); });", css,
            list(names)))

    def count(site: str, state: str) -> int:
        got = attrs(f'[data-site="{site}"][data-count-state="{state}"]', "text")
        return int(got[0][0]) if got else -1

    try:
        driver.get(url + "/")
        wait_for(lambda: dict(attrs("tr[data-gateway-state]", "data-site",
                                    "data-gateway-state")) == dict.fromkeys(SITES, "online"),
                 60, 0.5, what="three sites online")
        wait_for(lambda: all(count(s, "online") == 2 for s in SITES), 60, 0.5,
                 what="every device online")

        # the values on a site page are what the devices sent
        driver.get(url + "/sites/north-lab")
        wait_for(lambda: len(attrs('[data-quantity="co2"]', "data-device")) == 2, 30, 0.5,
                 what="latest co2 of both devices")
        for device, value in attrs('[data-quantity="co2"]', "data-device", "data-value"):
            assert abs(float(value) - fleets["north-lab"].sent[(device, "co2")]) <= 20

        # a device that stops sending turns silent; a last will turns one offline
        fleets["north-lab"].stopped.add("air-0002")
        fleets["south-lab"].stopped.add("air-0001")
        fleets["south-lab"].pub.raw("livinglab/v1/south-lab/air-0001/status",
                                    b'{"state":"offline"}', retain=True)
        driver.get(url + "/")
        wait_for(lambda: count("north-lab", "silent") == 1, 45, 0.5, what="silent")
        wait_for(lambda: count("south-lab", "offline") == 1, 45, 0.5, what="offline")

        # a killed gateway: its site down, its devices unknown
        gateways["east-lab"].kill()
        wait_for(lambda: attrs('tr[data-site="east-lab"]', "data-gateway-state")
                 == [["down"]], 60, 0.5, what="east-lab down")
        wait_for(lambda: count("east-lab", "unknown") == 2, 10, 0.5, what="unknown")

        # stations where they were set (air-0001 of each site), none for the others
        driver.get(url + "/map")
        wait_for(lambda: driver.find_element("id", "map").get_attribute("data-stations")
                 == "3", 20, 0.5, what="three stations on the map")
        doc = json.loads(driver.execute_script(
            "return fetch('/api/stations.geojson').then(r => r.text())"))
        where = {(f["properties"]["site"], f["properties"]["device"]):
                 tuple(f["geometry"]["coordinates"]) for f in doc["features"]}
        assert where == {(s, "air-0001"): (lon, lat) for s, (lat, lon) in SITES.items()}
    finally:
        driver.quit()
    # the console shares no file with any gateway: its directory holds its config and log
    assert sorted(p.name for p in city["centre"].iterdir()) == ["city.toml", "console.log"]
