"""The console in real headless Chromium, against Mosquitto, a gateway and the real
simulated fleet (firmware under the MicroPython unix port), all as a user runs them.

Screenshots land in the test's temp dir; with ``LIVINGLAB_SCREENSHOTS=DIR`` they are
also copied there (``LIVINGLAB_SCREENSHOTS=docs/img`` refreshes the README's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.gateway.helpers import SITE, GatewayProc, write_config
from tests.servers import Mosquitto, free_port, stop_pid, wait_for

PREFIX = "livinglab/v1"
TOKEN = "t0ken-for-the-tests"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'

pytestmark = pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
                                reason="chromium + chromium-driver not installed "
                                       "(scripts/test installs them)")


class Sent:
    """Every value each device published, per quantity (what the page must show)."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.values: dict[tuple[str, str], set[float]] = defaultdict(set)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="console-test-sent")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{PREFIX}/{SITE}/+/telemetry", qos=1)
        self.client.loop_start()

    def _on_message(self, client: object, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
            device = body["device"]
            with self.lock:
                for s in body["samples"]:
                    for q, v in s["values"].items():
                        self.values[(device, q)].add(float(v))
        except (ValueError, KeyError, TypeError):
            pass

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _browser(tmp_path: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


def _shot(driver: Any, tmp_path: Path, name: str, width: int, height: int) -> Path:
    driver.set_window_size(width, height)
    time.sleep(0.3)  # let the layout and the charts' resize settle
    full = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(int(full) + 120, height), 2400))
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    out = os.environ.get("LIVINGLAB_SCREENSHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(out) / path.name)
    driver.set_window_size(1280, 900)
    return path


@pytest.fixture
def stack(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[dict[str, Any]]:
    health, port = free_port(), free_port()
    cfg = write_config(tmp_path / "gw.toml", mqtt_port=mosquitto.port, health_port=health,
                       store={"kind": "sqlite", "path": str(tmp_path / "readings.sqlite")})
    with open(cfg, "a") as f:
        f.write(f'\n[console]\nport = {port}\ntoken = "{TOKEN}"\n')
    sent = Sent(mosquitto.port)
    gw = GatewayProc(cfg, health)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        gw.start()
        log = open(tmp_path / "fleet.log", "wb")  # noqa: SIM115 (closed in finally)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "fleet", "simulate", "--config", str(cfg),
             "--devices", "3", "--interval", "1"], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True))
        clog = open(tmp_path / "console.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "console", "--config", str(cfg)],
            stdout=clog, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True))
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: "console: " in (tmp_path / "console.log").read_text(), 20,
                 what="console started")
        yield {"url": url, "sent": sent, "gw": gw, "tmp": tmp_path}
    finally:
        for p in reversed(procs):
            stop_pid(p.pid)
        gw.kill()
        sent.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_console_in_chromium(stack: dict[str, Any], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    url, sent = stack["url"], stack["sent"]
    # the token is enforced for scripts too
    req = urllib.request.Request(f"{url}/api/devices")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 401

    driver = _browser(tmp_path)
    try:
        driver.get(url + "/")
        assert driver.find_elements(By.CSS_SELECTOR, "input[name=token]"), driver.page_source
        assert "Token required" in driver.page_source
        driver.get(f"{url}/?token={TOKEN}")  # once in the URL, then a cookie
        assert "token=" not in driver.current_url

        # rows appear, online, with values equal to what the devices sent
        devices = ["air-0001", "flow-0001", "light-0001"]

        def rows_online() -> bool:
            rows = driver.find_elements(By.CSS_SELECTOR, "tr[data-device]")
            states = {r.get_attribute("data-device"): r.get_attribute("data-state")
                      for r in rows}
            return all(states.get(d) == "online" for d in devices)

        wait_for(rows_online, 60, 0.3, what="three online rows")

        def values_shown() -> list[Any]:
            # read in one go: a live update may replace the cells between two calls
            els = driver.execute_script(
                "return Array.from(document.querySelectorAll('td [data-quantity][data-value]'))"
                ".map(function (e) { return [e.dataset.device, e.dataset.quantity,"
                " e.dataset.value]; });")
            return els if {e[0] for e in els} == set(devices) else []

        els = wait_for(values_shown, 30, 0.3, what="latest values of every device")
        with sent.lock:
            for device, quantity, value in els:
                assert float(value) in sent.values[(device, quantity)], (device, quantity)

        # a retained offline flips the row without a reload
        driver.execute_script("window.__noReload = 1")
        sent.publish(f"{PREFIX}/{SITE}/light-0001/status", b'{"state":"offline"}', retain=True)
        t0 = time.monotonic()
        wait_for(lambda: driver.find_element(By.CSS_SELECTOR, 'tr[data-device="light-0001"]')
                 .get_attribute("data-state") == "offline", 5, 0.1, what="row flipped offline")
        flip_s = time.monotonic() - t0
        assert driver.execute_script("return window.__noReload") == 1
        assert flip_s < 5

        # rejected messages appear with their reasons; injected markup stays text
        air = f"{PREFIX}/{SITE}/air-0001/telemetry"
        sent.publish(air, json.dumps({"v": 1, "device": "air-0001", "boot": 1, "seq": 1,
                                      "samples": [{"sensor": "scd41", "ts": time.time(),
                                                   "values": {"co2": 99999.0}}]}).encode())
        sent.publish(air, json.dumps({"v": 1, "device": XSS, "boot": 1, "seq": 2,
                                      "samples": []}).encode())
        sent.publish(air, XSS.encode())

        def reasons() -> set[str]:
            driver.get(f"{url}/rejected")
            return {e.get_attribute("data-reason")
                    for e in driver.find_elements(By.CSS_SELECTOR, "[data-reason]")}

        got = wait_for(lambda: r if (r := reasons()) >= {"out_of_range", "device_mismatch",
                                                         "not_json"} else set(),
                       20, 0.5, what="rejections listed")
        assert "out_of_range" in got
        assert driver.execute_script("return window.__xss") is None
        assert "<script>window.__xss=1</script>" in driver.find_element(By.TAG_NAME,
                                                                        "body").text
        driver.get(f"{url}/rejected?reason=out_of_range")
        listed = driver.find_elements(By.CSS_SELECTOR, "[data-reason]")
        assert listed and {e.get_attribute("data-reason") for e in listed} == {"out_of_range"}

        # back on the fleet page: the panel and the rejection count
        # (LIVINGLAB_SCREENSHOTS_WAIT=S lets readings pile up for the README's pictures)
        time.sleep(float(os.environ.get("LIVINGLAB_SCREENSHOTS_WAIT", "0")))
        driver.get(f"{url}/")
        wait_for(lambda: driver.find_element(
            By.CSS_SELECTOR, '#gateway-panel [data-field="broker_connected"]').text
            == "connected", 10, 0.2, what="gateway panel")
        wait_for(lambda: driver.find_element(
            By.CSS_SELECTOR, 'tr[data-device="air-0001"] [data-col="rejected_24h"]').text
            not in ("", "0"), 10, 0.3, what="rejection count on the fleet row")
        # delivery over 24 h is the gateway's accounting; fw and the update state are shown,
        # live (SSE, written with textContent): a refused update's markup stays text
        sent.publish(f"{PREFIX}/{SITE}/air-0009/status", json.dumps({
            "state": "online", "fw": "0.1.0", "board": "pico_w",
            "update": {"version": "0.2.0", "state": "refused", "reason": XSS}}).encode(),
            retain=True)
        upd = wait_for(lambda: driver.find_elements(
            By.CSS_SELECTOR, 'tr[data-device="air-0009"] [data-update-state="refused"]'),
            10, 0.2, what="the refused update on its row")
        assert XSS in upd[0].text and driver.execute_script("return window.__xss") is None
        cell = wait_for(lambda: driver.find_elements(
            By.CSS_SELECTOR, 'tr[data-device="air-0001"] td[data-col="delivery_24h"]'
            '[data-accepted]'), 15, 0.3, what="delivery on the fleet row")[0]
        assert int(cell.get_attribute("data-accepted")) > 0
        assert 0 < float(cell.get_attribute("data-capture")) <= 1
        assert driver.find_element(By.CSS_SELECTOR, 'tr[data-device="air-0001"] '
                                   '[data-col="firmware"]').text not in ("", "–")
        _shot(driver, tmp_path, "console-fleet", 1280, 700)
        _shot(driver, tmp_path, "console-fleet-phone", 390, 844)

        # the device page: one chart per quantity, drawn by uPlot from the store
        driver.get(f"{url}/devices/air-0001?window=1h")
        charts = driver.find_elements(By.CSS_SELECTOR, "[data-chart]")
        quantities = {c.get_attribute("data-chart") for c in charts}
        with sent.lock:
            air_sent = {q for (d, q) in sent.values if d == "air-0001"}
        assert {"temperature", "humidity"} <= quantities <= air_sent
        assert len(quantities) == len(charts)
        wait_for(lambda: all(c.get_attribute("data-points") not in (None, "0") for c in
                             driver.find_elements(By.CSS_SELECTOR, "[data-chart]")),
                 15, 0.3, what="every chart drawn")
        assert len(driver.find_elements(By.CSS_SELECTOR, "[data-chart] canvas")) == len(charts)
        assert driver.execute_script("return window.__xss") is None
        assert driver.find_elements(By.CSS_SELECTOR, "#delivery li[data-hour]")
        _shot(driver, tmp_path, "console-device", 1280, 900)
        _shot(driver, tmp_path, "console-device-phone", 390, 844)

        # an unknown device is a 404 page
        driver.get(f"{url}/devices/nope-0001")
        assert driver.find_elements(By.CSS_SELECTOR, "[data-not-found]")
    finally:
        driver.quit()
