"""Health rules, the HTTP server, the gateway status payloads, the shipped mosquitto.conf."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from gateway.accounting.lastseen import LastSeen, Sighting, read_lastseen
from gateway.app import Gateway
from gateway.ops.health import HealthPortBusy, route, start_health_server
from gateway.ops.status import GatewayHealth, offline_payload, online_payload
from protocols.config import parse_config
from protocols.models import GatewayStatus
from tests.gateway.helpers import SITE
from tests.servers import free_port, tcp_open, wait_for

REPO = Path(__file__).resolve().parents[2]


def test_route() -> None:
    health = lambda: (503, {"status": "unhealthy"})  # noqa: E731
    resp = route("GET", "/healthz?x=1", health, lambda: b"m 1\n")
    assert resp.startswith(b"HTTP/1.0 503 ") and resp.endswith(b'{"status": "unhealthy"}\n')
    assert route("GET", "/metrics", health, lambda: b"m 1\n").endswith(b"\r\n\r\nm 1\n")
    assert route("GET", "/nope", health, lambda: b"").startswith(b"HTTP/1.0 404 ")
    assert route("POST", "/healthz", health, lambda: b"").startswith(b"HTTP/1.0 405 ")


def test_health_rules(tmp_path: Path) -> None:
    cfg = parse_config({"site": SITE, "gateway": {"data_dir": str(tmp_path / "var")}}, env={})

    async def body() -> None:
        gw = Gateway(cfg)
        try:
            code, doc = gw.health()
            assert code == 503 and doc["mqtt_connected"] is False  # not connected yet
            gw.source.connected = True
            assert gw.health() == (200, {**doc, "status": "ok", "mqtt_connected": True})
            gw.forwarder.failing_since = time.monotonic() - 30
            assert gw.health()[0] == 200  # a short store outage is not unhealthy
            gw.forwarder.failing_since = time.monotonic() - 61
            code, doc = gw.health()
            assert code == 503 and doc["store_down_s"] > 60
        finally:
            gw.source.connected = False
            await gw.store.aclose()
            gw.buffer.close()
            gw.lastseen.close()

    asyncio.run(body())


def test_health_server_serves_and_refuses_busy_port() -> None:
    async def body() -> None:
        port = free_port()
        server = await start_health_server("127.0.0.1", port, lambda: (200, {"status": "ok"}),
                                           lambda: b"livinglab_x 1\n")
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = await r.read()
            w.close()
            assert data.startswith(b"HTTP/1.0 200 OK") and data.endswith(b'{"status": "ok"}\n')
            with pytest.raises(HealthPortBusy):
                await start_health_server("127.0.0.1", port, lambda: (200, {}), lambda: b"")
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(body())


def test_status_payloads_match_the_contract_model() -> None:
    h = GatewayHealth("gw-1", SITE, 1795351934.0, 10, 9, 1, 1, 18, 0)
    online = GatewayStatus.model_validate_json(online_payload(h, now=1795351944.0))
    assert online.state == "online" and online.received == 10 and online.forwarded == 18
    offline = json.loads(offline_payload("gw-1", SITE))
    assert offline == {"state": "offline", "gateway": "gw-1", "site": SITE}
    # built without pydantic (start-up time), byte for byte what the model would send
    for health in (h, GatewayHealth("gw-2", SITE, 1795351934.25, 0, 0, 0, 0, 0, 7, True,
                                    True)):
        raw = online_payload(health, now=1795351944.125)
        assert raw == GatewayStatus.model_validate_json(raw).model_dump_json(
            exclude_none=True).encode()
    raw = offline_payload("gw-1", SITE)
    assert raw == GatewayStatus.model_validate_json(raw).model_dump_json(
        exclude_none=True).encode()


def test_lastseen_keeps_newest(tmp_path: Path) -> None:
    table = LastSeen(tmp_path / "lastseen.sqlite")
    table.update([Sighting("air-0001", 100.0, "telemetry"),
                  Sighting("air-0001", 90.0, "status", "online", {"rssi": -60.0}),
                  Sighting("air-0001", 95.0, "status", "offline", {})])
    table.update([Sighting("air-0001", 80.0, "telemetry")])
    table.close()
    (row,) = read_lastseen(tmp_path)
    assert (row.last_seen, row.last_telemetry, row.state, row.status_at) == \
        (100.0, 100.0, "offline", 95.0)
    assert read_lastseen(tmp_path / "missing") == []


def test_shipped_mosquitto_conf_is_accepted_by_mosquitto(tmp_path: Path) -> None:
    port = free_port()
    text = (REPO / "gateway" / "ops" / "mosquitto.conf").read_text()
    assert "\nlistener 1883\n" in text and "max_queued_messages 200000" in text
    d = tmp_path / "mq"
    d.mkdir()
    d.chmod(0o777)
    conf = d / "m.conf"
    conf.write_text(text.replace("\nlistener 1883\n", f"\nlistener {port} 127.0.0.1\n")
                    + f"persistence_location {d}/\nlog_dest stderr\n")
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([exe, "-c", str(conf)], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: tcp_open(port) or proc.poll() is not None, 10, what="mosquitto up")
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    finally:
        proc.terminate()
        proc.wait(10)


def test_lastseen_is_written_when_due_and_at_close(tmp_path: Path) -> None:
    now = [0.0]
    table = LastSeen(tmp_path / "lastseen.sqlite", flush_every_s=5.0, clock=lambda: now[0])
    try:
        table.update([Sighting("air-0001", 100.0, "telemetry")])
        assert read_lastseen(tmp_path) == []  # noted in memory only
        now[0] = 5.0
        table.update([Sighting("air-0002", 101.0, "status", "online", {"rssi": -50.0})])
        assert {r.device for r in read_lastseen(tmp_path)} == {"air-0001", "air-0002"}
        table.update([Sighting("air-0001", 110.0, "telemetry")])
        now[0] = 9.0
        table.flush_if_due()  # not due yet
        assert read_lastseen(tmp_path)[0].last_seen == 100.0
        now[0] = 10.0
        table.flush_if_due()  # only a newer time of a known device: waits for the refresh
        assert read_lastseen(tmp_path)[0].last_seen == 100.0
        now[0] = 35.0
        table.flush_if_due()
        assert read_lastseen(tmp_path)[0].last_seen == 110.0
        table.update([Sighting("air-0001", 115.0, "telemetry")])
        now[0] = 40.0
        table.update([Sighting("air-0003", 120.0, "telemetry")])  # news: a new device
        assert {r.device: r.last_seen for r in read_lastseen(tmp_path)} == {
            "air-0001": 115.0, "air-0002": 101.0, "air-0003": 120.0}
        assert table.all()[-1].device == "air-0003"  # the gateway's own view is current
    finally:
        table.close()
    table = LastSeen(tmp_path / "lastseen.sqlite", clock=lambda: now[0])
    table.update([Sighting("air-0004", 130.0, "status", "offline", {})])
    table.close()  # shutdown writes what is pending
    rows = {r.device: r for r in read_lastseen(tmp_path)}
    assert set(rows) == {"air-0001", "air-0002", "air-0003", "air-0004"}
    assert rows["air-0004"].state == "offline" and rows["air-0002"].status == {"rssi": -50.0}
