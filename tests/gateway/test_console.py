"""The console's pages and API over a data_dir and SQLite store built the way the gateway
writes them (no browser: see tests/gateway/test_console_browser.py for that)."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette 1.x nudges towards httpx2; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from devices.inventory import Device, Inventory
from gateway.accounting.delivery import Accounting, Event, hour_of
from gateway.accounting.lastseen import LastSeen, Sighting, lastseen_path
from gateway.accounting.read import read_gaps, read_hours
from gateway.app import load_accounting
from gateway.buffer.core import DurableBuffer
from gateway.console.app import build_app
from gateway.console.live import LiveStatus
from gateway.console.server import open_reader
from gateway.stores.sqlite import SCHEMA
from protocols import Accepted, Rejection
from protocols.config import BUFFER_FILE, Config, parse_config

SITE = "bdnc-lab"
EVIL = '<script>alert("x")</script>'
#: a site quantity in a domain of its own and one in a built-in domain (docs/new-sensor.md)
QUANTITIES = {"noise_level": {"unit": "dBA", "domain": "sound", "min": 0, "max": 140},
              "no2": {"unit": "ug/m3", "domain": "air", "min": 0, "max": 2000}}


def _config(tmp_path: Path, **console: str) -> Config:
    return parse_config({"site": SITE, "gateway": {"data_dir": "var", "health_port": 0},
                         "console": console, "quantities": QUANTITIES}, tmp_path, env={})


def _fill(cfg: Config, now: float) -> None:
    data = cfg.gateway.data_dir
    with Inventory.in_data_dir(data) as inv:
        inv.upsert(Device(device="air-0001", site=SITE, board="pico_w", location="room 1.12",
                          fw_version="1.0.0"))
        inv.upsert(Device(device="light-0009", site=SITE, board="esp32"))
        inv.upsert(Device(device="noise-0001", site=SITE, board="pico_w"))
    seen = LastSeen(lastseen_path(data))
    seen.update([Sighting("air-0001", now - 5, "telemetry"),
                 Sighting("air-0001", now - 4, "status", "online", {
                     "state": "online", "fw": "1.0.1", "rssi": -61,
                     "update": {"version": "1.1.0", "state": "refused", "reason": EVIL}})])
    seen.close()
    buf = DurableBuffer(data / BUFFER_FILE, 64 * 1024 * 1024)
    buf.quarantine([(Rejection(f"livinglab/v1/{SITE}/air-0001/telemetry", "air-0001",
                               "out_of_range", f"co2 = 99999 {EVIL}"), EVIL.encode())])
    _account(buf, load_accounting(data / BUFFER_FILE), now)
    buf.close()
    con = sqlite3.connect(cfg.store.path)
    con.executescript(SCHEMA)
    t = int(now * 1000)
    con.executemany("INSERT INTO readings VALUES (?,?,?,?,?,?,?)", [
        ("air", SITE, "air-0001", "scd41", "co2", 600.0 + i, t - (30 - i) * 60_000)
        for i in range(30)] + [
        ("air", SITE, "air-0001", "scd41", "temperature", 21.5, t - 1000),
        ("air", SITE, "air-0001", "bme280", "temperature", 21.75, t - 2000),
        ("light", SITE, "light-0009", "bh1750", "illuminance", 120.0, t - 5 * 3600_000)] + [
        ("sound", SITE, "noise-0001", "mic", "noise_level", 40.0 + i, t - (10 - i) * 60_000)
        for i in range(10)] + [
        ("air", SITE, "noise-0001", "no2cell", "no2", 31.5, t - 3000),
        # the gateway's own points: never a reading, never counted as one
        ("device", SITE, "noise-0001", "", "rssi", -60.0, t - 3000)])
    con.commit()
    con.close()


def _account(buf: DurableBuffer, acc: Accounting, now: float) -> None:
    """A known pattern through the gateway's own accounting, as its pipeline feeds it: in
    the previous hour seq 0, 1, 2, 5 (3 and 4 missing), 1 again (a duplicate), 6 rejected;
    in this one seq 8 (7 missing)."""
    before = hour_of(now) - 1800

    def put(*events: Event) -> None:
        buf.put([Accepted(e.device, e.boot or 0, e.seq or 0, ()) for e in events
                 if e.kind == "accepted"], events[0].at, hook=acc.with_events(list(events)))

    put(*(Event("air-0001", before + s, "accepted", 1, s) for s in (0, 1, 2)))
    put(Event("air-0001", before + 5, "accepted", 1, 5))
    put(Event("air-0001", before + 6, "accepted", 1, 1))
    put(Event("air-0001", before + 7, "rejected", 1, 6))
    put(Event("air-0001", now - 1, "accepted", 1, 8))


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    c = _config(tmp_path)
    _fill(c, time.time())
    return c


@pytest.fixture
def client(cfg: Config) -> Iterator[TestClient]:
    live = LiveStatus(cfg)
    app = build_app(cfg, open_reader(cfg), live, run_live=False)
    with TestClient(app) as c:
        c.live = live
        yield c


def test_fleet_page_rows_states_values_and_escaping(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    html = r.text
    assert 'data-device="air-0001" data-state="online"' in html
    assert 'data-device="light-0009" data-state="never-seen"' in html
    assert 'data-quantity="co2" data-value="629.0"' in html
    assert "room 1.12" in html and "1.0.1" in html
    assert "<script>alert" not in html
    assert r.headers["content-security-policy"].startswith("default-src 'self'")


def test_api_devices_and_device(client: TestClient) -> None:
    doc = client.get("/api/devices").json()
    rows = {r["device"]: r for r in doc["devices"]}
    assert rows["air-0001"]["values"]["co2"] == {"value": 629.0, "unit": "ppm",
                                                "time_ms": rows["air-0001"]["values"]["co2"][
                                                    "time_ms"]}
    assert rows["air-0001"]["rejected_24h"] == 1
    dev = client.get("/api/devices/air-0001").json()
    assert dev["status"]["rssi"] == -61
    assert dev["metadata"]["location"] == "room 1.12"
    assert dev["rejections"][0]["reason"] == "out_of_range"


def test_site_quantities_on_the_fleet_page_api_and_charts(client: TestClient) -> None:
    """[quantities.noise_level] (new domain 'sound') and no2 (built-in 'air'): value and
    unit on the fleet page and in the API, a chart each on the device page."""
    html = client.get("/").text
    assert 'data-quantity="noise_level" data-value="49.0"' in html
    assert 'data-quantity="no2" data-value="31.5"' in html
    assert '<span class="u">dBA</span>' in html
    assert 'data-quantity="rssi"' not in html
    row = {r["device"]: r for r in client.get("/api/devices").json()["devices"]}["noise-0001"]
    assert {q: (v["value"], v["unit"]) for q, v in row["values"].items()} == {
        "noise_level": (49.0, "dBA"), "no2": (31.5, "ug/m3")}
    assert row["delivery_24h"] is None  # readings in the store, but nothing accounted
    dev = client.get("/api/devices/noise-0001").json()
    assert dev["charts"]["noise_level"]["unit"] == "dBA"
    assert {h["capture"] for h in dev["delivery_per_hour"]} == {None}
    html = client.get("/devices/noise-0001?window=1h").text
    assert sorted(re.findall(r'data-chart="([^"]+)" data-unit="([^"]*)"', html)) == [
        ("no2", "ug/m3"), ("noise_level", "dBA")]
    doc = client.get("/api/devices/noise-0001/readings?quantity=noise_level&window=1h").json()
    assert doc["unit"] == "dBA" and list(doc["sensors"]) == ["mic"]
    assert [v for v in doc["sensors"]["mic"] if v is not None] == [40.0 + i for i in range(10)]
    doc = client.get("/api/devices/noise-0001/readings?quantity=no2&window=1h").json()
    assert doc["unit"] == "ug/m3" and doc["sensors"] == {"no2cell": [31.5]}


def test_readings_are_downsampled_per_sensor(client: TestClient) -> None:
    doc = client.get("/api/devices/air-0001/readings?quantity=co2&window=1h").json()
    assert doc["unit"] == "ppm" and list(doc["sensors"]) == ["scd41"]
    assert 25 <= len(doc["times_ms"]) <= 31  # 15 s steps over readings a minute apart
    doc = client.get("/api/devices/air-0001/readings", params={
        "quantity": "temperature", "since": time.time() - 600}).json()
    assert set(doc["sensors"]) == {"scd41", "bme280"}
    assert client.get("/api/devices/air-0001/readings").status_code == 400
    assert client.get("/api/devices/air-0001/readings?quantity=co2&since=x").status_code == 400


def test_device_page_has_one_chart_per_quantity_and_rejection_reasons(
        client: TestClient) -> None:
    html = client.get("/devices/air-0001").text
    assert sorted(re.findall(r'data-chart="([^"]+)"', html)) == ["co2", "temperature"]
    assert 'data-reason="out_of_range"' in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<script>alert" not in html


def test_device_charts_follow_the_window(client: TestClient) -> None:
    """A device quiet for 5 h: no chart over 1 h, its quantity over 24 h."""
    html = client.get("/devices/light-0009?window=1h").text
    assert "data-chart=" not in html and 'data-empty="window"' in html
    html = client.get("/devices/light-0009?window=24h").text
    assert re.findall(r'data-chart="([^"]+)"', html) == ["illuminance"]


def test_unknown_device_is_a_404_page(client: TestClient) -> None:
    r = client.get("/devices/nope-0001", headers={"accept": "text/html"})
    assert r.status_code == 404 and "data-not-found" in r.text
    r = client.get(f"/devices/{EVIL}")
    assert r.status_code == 404 and "<script>alert" not in r.text
    assert client.get("/api/devices/nope-0001").status_code == 404


def test_rejected_page_filters(client: TestClient) -> None:
    html = client.get("/rejected?reason=out_of_range").text
    assert html.count("data-reason=") == 1 and "<script>alert" not in html
    assert "No rejected messages matching" in client.get("/rejected?reason=not_json").text
    doc = client.get("/api/rejected?device=air-0001").json()
    assert doc["rejected"][0]["payload"] == EVIL


def test_retained_offline_flips_the_state(client: TestClient) -> None:
    live: LiveStatus = client.live
    assert live.observe(f"livinglab/v1/{SITE}/air-0001/status", b'{"state":"offline"}')
    rows = {r["device"]: r for r in client.get("/api/devices").json()["devices"]}
    assert rows["air-0001"]["state"] == "offline"
    assert not live.observe(f"livinglab/v1/{SITE}/air-0001/status", b"not json")
    assert not live.observe(f"livinglab/v1/{SITE}/{EVIL}/status", b'{"state":"online"}')
    assert not live.observe("livinglab/v1/other/air-0001/status", b'{"state":"online"}')


def test_token_bearer_query_cookie_and_401_page(tmp_path: Path) -> None:
    cfg = _config(tmp_path, token="s3cret-long-enough")
    app = build_app(cfg, open_reader(cfg), run_live=False)
    with TestClient(app) as c:
        r = c.get("/", headers={"accept": "text/html"})
        assert r.status_code == 401 and 'name="token"' in r.text
        assert c.get("/api/devices").status_code == 401
        assert c.get("/static/console.js").status_code == 401
        assert c.get("/api/devices", headers={"authorization": "Bearer nope"}).status_code == 401
        assert c.get("/api/devices",
                     headers={"authorization": "Bearer s3cret-long-enough"}).status_code == 200
        r = c.get("/?token=s3cret-long-enough", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert "httponly" in r.headers["set-cookie"].lower()
        assert "s3cret-long-enough" not in r.headers["set-cookie"]
        assert c.get("/api/devices").status_code == 200  # the cookie now
        c.cookies.clear()
        r = c.get("http://testserver//evil.example/x?token=s3cret-long-enough&a=%3Cb%3E",
                  follow_redirects=False)
        assert r.headers["location"] == "/evil.example/x?a=%3Cb%3E"


def test_no_data_dir_and_store_down(tmp_path: Path) -> None:
    cfg = parse_config({"site": SITE, "gateway": {"data_dir": "never", "health_port": 0},
                        "store": {"kind": "influxdb1", "url": "http://127.0.0.1:9"}},
                       tmp_path, env={})
    app = build_app(cfg, open_reader(cfg), run_live=False)
    with TestClient(app) as c:
        html = c.get("/").text
        assert 'data-banner="no-data-dir"' in html and "No devices yet" in html
        assert 'data-banner="store-down"' in html and "unreachable" in html
        gw = c.get("/api/gateway").json()
        assert gw["store_reachable"] is False and gw["data_dir_exists"] is False
        assert not cfg.gateway.data_dir.exists()  # the console created nothing
        assert c.get("/api/devices/x-1/readings?quantity=co2").status_code == 503


def _console(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "console", *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_cli_refuses_public_bind_without_token_and_busy_port(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(f'site = "{SITE}"\n')
    res = _console("--config", str(path), "--host", "0.0.0.0")
    assert res.returncode == 2
    assert res.stderr.startswith("livinglab: the console would listen on 0.0.0.0")
    assert len(res.stderr.splitlines()) == 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        res = _console("--config", str(path), "--port", str(s.getsockname()[1]))
    assert res.returncode == 2 and "already in use" in res.stderr
    assert len(res.stderr.splitlines()) == 1, res.stderr


def test_tojson_escapes_markup() -> None:
    from gateway.console.app import _environment

    out = _environment().from_string("<p data-x='{{ v|tojson }}'>").render(v={"a": EVIL})
    assert "<script" not in out and json.loads(
        out[len("<p data-x='"):-2].replace("&#34;", '"').replace("&amp;", "&"))["a"] == EVIL


COUNTS = ("received", "accepted", "duplicates", "rejected", "missing")


def test_fleet_delivery_is_the_gateways_accounting(client: TestClient, cfg: Config) -> None:
    """The fleet row's 24 h delivery equals what the accounting (and so `livinglab report
    delivery`) says for the known pattern: gaps, a duplicate, a rejection."""
    now = time.time()
    hours = read_hours(cfg.gateway.data_dir / BUFFER_FILE, now - 86400, now + 1, ["air-0001"])
    want = {k: sum(getattr(h, k) for h in hours) for k in COUNTS}
    assert want == {"received": 7, "accepted": 5, "duplicates": 1, "rejected": 1,
                    "missing": 3}
    rows = {r["device"]: r for r in client.get("/api/devices").json()["devices"]}
    got = rows["air-0001"]["delivery_24h"]
    assert {k: got[k] for k in COUNTS} == want
    assert got["capture"] == pytest.approx(5 / 9, abs=1e-6)
    assert rows["light-0009"]["delivery_24h"] is None
    html = client.get("/").text
    cell = re.search(r'<tr data-device="air-0001".*?(<td data-label="Delivery 24 h"[^>]*>)',
                     html, re.S)
    assert cell is not None
    assert ('data-received="7" data-accepted="5" data-duplicates="1" data-rejected="1" '
            'data-missing="3" data-capture="0.555556"') in cell.group(1)
    assert "55.6 %" in html and "7 received · 5 accepted · 3 missing" in html


def test_device_delivery_per_hour_and_gaps(client: TestClient, cfg: Config) -> None:
    now = time.time()
    path = cfg.gateway.data_dir / BUFFER_FILE
    dev = client.get("/api/devices/air-0001").json()
    per_hour = dev["delivery_per_hour"]
    assert len(per_hour) == 25 and per_hour[-1]["hour_ms"] == hour_of(now) * 1000
    accounted = {h.hour * 1000: h for h in read_hours(path, 0, now + 1, ["air-0001"])}
    assert accounted  # the pattern is in the window
    for h in per_hour:
        row = accounted.get(h["hour_ms"])
        if row is None:
            assert h["received"] == 0 and h["capture"] is None
        else:
            assert tuple(h[k] for k in COUNTS) == row.counts()
            assert h["capture"] == pytest.approx(row.capture, abs=1e-6)
    gaps = dev["delivery_gaps"]
    assert [(g["cause"], g["seq_from"], g["seq_to"]) for g in gaps] == [
        (g.cause, g.lo, g.hi) for g in reversed(read_gaps(path, 0, now + 1, ["air-0001"]))]
    assert sorted((g["cause"], g["seq_from"]) for g in gaps) == [
        ("rejection", 6), ("unknown", 3), ("unknown", 7)]
    html = client.get("/devices/air-0001").text
    assert html.count("data-gap-cause=") == 3 and 'data-gap-cause="rejection"' in html
    assert html.count("<li data-hour=") == 25
    assert 'data-accepted="4" data-missing="2" data-rejected="1" data-duplicates="1"' in html \
        or 'data-accepted="5" data-missing="3"' in html  # the pattern straddled the hour


def test_fw_and_update_state_shown_and_escaped(client: TestClient) -> None:
    """The status's fw and update (OTA) on the fleet row, the device page and in the API; a
    reason with <script> stays text."""
    rows = {r["device"]: r for r in client.get("/api/devices").json()["devices"]}
    assert rows["air-0001"]["fw"] == "1.0.1"
    assert rows["air-0001"]["update"] == {"version": "1.1.0", "state": "refused",
                                          "reason": EVIL}
    assert rows["light-0009"]["update"] is None and rows["light-0009"]["fw"] is None
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    for page in ("/", "/devices/air-0001"):
        html = client.get(page).text
        assert 'data-update-state="refused" data-update-version="1.1.0"' in html
        assert escaped in html and "<script>alert" not in html
    # a live status (the console's own subscription, unvalidated JSON) moves it on
    live: LiveStatus = client.live
    assert live.observe(f"livinglab/v1/{SITE}/air-0001/status", json.dumps({
        "state": "online", "fw": "1.1.0",
        "update": {"version": "1.1.0", "state": "confirmed"}}).encode())
    assert live.observe(f"livinglab/v1/{SITE}/light-0009/status", json.dumps({
        "state": "online", "fw": EVIL, "update": {"version": ["x"], "state": 3}}).encode())
    rows = {r["device"]: r for r in client.get("/api/devices").json()["devices"]}
    assert rows["air-0001"]["update"] == {"version": "1.1.0", "state": "confirmed",
                                          "reason": ""}
    assert rows["air-0001"]["firmware"] == "1.1.0"
    assert rows["light-0009"]["update"] is None  # not the contract's shape: not shown
    html = client.get("/").text
    assert 'data-update-state="confirmed"' in html and "<script>alert" not in html
