"""The city console in headless Chromium, against a real SQLite store written with the
points the gateways write: the city page, a site page, a device page and the map with
tiles from a local tile server (admitted by the CSP); live changes without a reload.
Screenshots for the README (LIVINGLAB_SCREENSHOTS=docs/img)."""

from __future__ import annotations

import http.server
import json
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway import city_points as cp
from tests.gateway.test_console_browser import CHROMEDRIVER, CHROMIUM, _browser, _shot
from tests.gateway.test_console_city import write_sqlite
from tests.servers import free_port, stop_pid, wait_for

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="chromium + chromium-driver not installed (scripts/test installs them)")


def _tile_png() -> bytes:
    """A 256x256 light tile with a faint border: enough to see that tiles load."""
    rows = []
    for y in range(256):
        line = bytearray()
        for x in range(256):
            edge = x == 0 or y == 0
            line += bytes((222, 226, 219) if edge else (240, 242, 236))
        rows.append(b"\x00" + bytes(line))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


#: what the stand-in Alertmanager holds (API v2 shape)
FIRING = [{"labels": {"alertname": "GatewayDown", "severity": "critical", "site": "east-lab",
                      "gateway": "gw-east"},
           "annotations": {"summary": "Gateway gw-east of east-lab sent no health point "
                                      "for 10 minutes"},
           "startsAt": "2026-12-06T10:31:00Z", "status": {"state": "active"}},
          {"labels": {"alertname": "DeviceSilent", "severity": "warning", "site": "north-lab",
                      "device": "air-0002"},
           "annotations": {"summary": "<img src=x onerror=window.__xss=3> air-0002 is silent"},
           "startsAt": "2026-12-06T08:40:00Z", "status": {"state": "active"}}]


class _Tiles(http.server.BaseHTTPRequestHandler):
    """Map tiles on /{z}/{x}/{y}.png, and an Alertmanager's GET /api/v2/alerts."""

    png = _tile_png()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        alerts = self.path.startswith("/api/v2/alerts")
        body = json.dumps(FIRING).encode() if alerts else self.png
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if alerts else "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def city(tmp_path: Path) -> Iterator[dict[str, Any]]:
    now = int(time.time() * 1000)
    store = tmp_path / "centre.sqlite"
    points = cp.city(now)
    points += cp.fleet("north-lab", now, 9, (cp.NORTH[0] - 0.0015, cp.NORTH[1] - 0.002),
                       prefix="co2")
    points += cp.fleet("south-lab", now, 6, (cp.SOUTH[0] - 0.001, cp.SOUTH[1] + 0.001),
                       prefix="co2")
    write_sqlite(store, points)
    tiles = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Tiles)
    threading.Thread(target=tiles.serve_forever, daemon=True).start()
    port = free_port()
    cfg = tmp_path / "city.toml"
    side = f"http://127.0.0.1:{tiles.server_address[1]}"
    cfg.write_text(f'[console]\nscope = "city"\nport = {port}\n'
                   f'map_tiles = "{side}/{{z}}/{{x}}/{{y}}.png"\n'
                   f'[alerts]\nalertmanager_url = "{side}"\n'
                   f'[store]\nkind = "sqlite"\npath = "{store}"\n')
    log = tmp_path / "console.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "console", "--config",
                                 str(cfg)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: "console: " in log.read_text(), 20, what="console started")
        yield {"url": f"http://127.0.0.1:{port}", "store": store, "now": now}
    finally:
        stop_pid(proc.pid)
        tiles.shutdown()
        tiles.server_close()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_city_console_in_chromium(city: dict[str, Any], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    url = city["url"]
    driver = _browser(tmp_path)

    def attrs(css: str, *names: str) -> list[list[str]]:
        """The attributes (or "text") of every element matching ``css``, read in one go:
        live updates may replace elements between two WebDriver calls."""
        return list(driver.execute_script(
            "var names = arguments[1]; return Array.from(document.querySelectorAll("
            "arguments[0])).map(function (e) { return names.map(function (n) {"
            " return n === 'text' ? e.textContent : e.getAttribute(n); }); });", css,
            list(names)))

    try:
        # the city: one row per site, gateway state, counts per state
        driver.get(url + "/")
        sites = dict(attrs("tr[data-gateway-state]", "data-site", "data-gateway-state"))
        assert sites == {"north-lab": "online", "south-lab": "online", "east-lab": "down"}

        def count(site: str, state: str) -> int:
            got = attrs(f'[data-site="{site}"][data-count-state="{state}"]', "text")
            return int(got[0][0]) if got else -1
        assert count("north-lab", "online") == 10 and count("north-lab", "silent") == 1
        assert count("south-lab", "delayed") == 1 and count("east-lab", "unknown") == 1
        wait_for(lambda: "on" in (driver.find_element(By.ID, "live").get_attribute("class")
                                  or ""), 10, 0.2, what="live stream connected")
        assert attrs('tr[data-site="north-lab"] [data-col="alerts"]', "text") == [["1"]]
        _shot(driver, tmp_path, "console-city", 1280, 620)

        # live, without a reload: east-lab's gateway comes back, its device reports
        driver.execute_script("window.__noReload = 1")
        now = int(time.time() * 1000)
        write_sqlite(city["store"], cp.gateway("east-lab", "gw-east", now, online=1)
                     + cp.device("east-lab", "air-0201", now)
                     + cp.reading("east-lab", "air-0201", "scd41", "air", {"co2": 505.0}, now))
        t0 = time.monotonic()
        wait_for(lambda: attrs('tr[data-site="east-lab"]', "data-gateway-state")
                 == [["online"]], 10, 0.2, what="east-lab online without a reload")
        wait_for(lambda: count("east-lab", "online") == 1, 5, 0.2, what="east count")
        assert time.monotonic() - t0 <= 10
        assert driver.execute_script("return window.__noReload") == 1

        # a site page: rows with the derived states and the latest values
        driver.get(url + "/sites/north-lab")
        rows = dict(attrs("tr[data-site][data-device]", "data-device", "data-state"))
        assert rows["air-0001"] == "online" and rows["air-0002"] == "silent"
        assert rows["air-0003"] == "offline" and rows["air-0004"] == "never-seen"
        assert rows["air-0005"] == "retired" and len(rows) == 14
        co2 = attrs('[data-device="air-0001"][data-quantity="co2"]', "data-value")
        assert float(co2[0][0]) == 629.0
        assert driver.execute_script("return window.__xss") is None
        # live: air-0002 reports again and turns online on the open page
        driver.execute_script("window.__noReload = 1")
        now = int(time.time() * 1000)
        write_sqlite(city["store"], cp.device("north-lab", "air-0002", now)
                     + cp.reading("north-lab", "air-0002", "scd41", "air", {"co2": 731.0}, now))
        wait_for(lambda: attrs('tr[data-device="air-0002"]', "data-state") == [["online"]],
                 10, 0.2, what="air-0002 online")
        assert driver.execute_script("return window.__noReload") == 1
        _shot(driver, tmp_path, "console-site", 1280, 700)

        # the state filter
        driver.get(url + "/sites/north-lab?state=offline")
        assert [e.get_attribute("data-device") for e in driver.find_elements(
            By.CSS_SELECTOR, "tr[data-device]")] == ["air-0003"]

        # a device page: its charts drawn from the store through the city's API
        driver.get(url + "/sites/north-lab/devices/co2-0001?window=1h")
        wait_for(lambda: all(c.get_attribute("data-points") not in (None, "0") for c in
                             driver.find_elements(By.CSS_SELECTOR, "[data-chart]")),
                 15, 0.3, what="every chart drawn")
        assert len(driver.find_elements(By.CSS_SELECTOR, "[data-chart] canvas")) == 3

        # the firing alerts as Alertmanager holds them; their text stays text
        driver.get(url + "/alerts")
        got = attrs("[data-alert]", "data-alert", "data-severity", "data-site", "data-device")
        assert sorted(map(tuple, got)) == [("DeviceSilent", "warning", "north-lab", "air-0002"),
                                           ("GatewayDown", "critical", "east-lab", None)]
        assert driver.execute_script("return window.__xss") is None

        # the map: every station with a location, tiles from map_tiles through the CSP
        driver.get(url + "/map")
        box = driver.find_element(By.ID, "map")
        wait_for(lambda: box.get_attribute("data-stations") == str(7 + 9 + 6), 10, 0.2,
                 what="stations on the map")
        wait_for(lambda: driver.execute_script(
            "return document.querySelectorAll('img.leaflet-tile-loaded').length") > 0,
            10, 0.2, what="tiles loaded (CSP admits the tile origin)")
        assert driver.find_element(By.ID, "no-location").get_attribute(
            "data-no-location") == "1"
        # one site's stations up close, coloured by state
        driver.get(url + "/map?site=north-lab")
        box = driver.find_element(By.ID, "map")
        wait_for(lambda: box.get_attribute("data-stations") == str(7 + 9 + 6), 10, 0.2,
                 what="stations on the site's map")
        wait_for(lambda: driver.execute_script(
            "return document.querySelectorAll('img.leaflet-tile-loaded').length") > 0,
            10, 0.2, what="tiles of the site's map")
        _shot(driver, tmp_path, "console-map", 1280, 760)
        # a click on a station opens its device page
        marker = driver.find_element(By.CSS_SELECTOR,
                                     'path[data-site="north-lab"][data-device="air-0003"]')
        driver.execute_script(
            "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", marker)
        wait_for(lambda: driver.current_url.endswith("/sites/north-lab/devices/air-0003"),
                 10, 0.2, what="device page after a click")
    finally:
        driver.quit()
