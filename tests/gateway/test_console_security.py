"""Console security (issue 15): bounded time windows, the token form by POST, a signed
session cookie that expires (Secure over https), short tokens refused, and hostile
retained statuses that neither break a page nor end the live subscription."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette 1.x nudges towards httpx2; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from gateway.console import auth
from gateway.console.app import build_app
from gateway.console.live import LiveStatus
from gateway.console.server import open_reader
from protocols.config import Config, parse_config
from protocols.errors import ConfigError
from tests.gateway.test_console import SITE, _config, _fill
from tests.servers import Mosquitto

TOKEN = "a-console-token-long-enough"


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


@pytest.mark.parametrize("query", [
    "since=nan", "until=nan", "since=inf", "until=1e20", "since=-1e308", "since=0",
    "since=1e400", "since=2019-12-31T23:00:00Z", "since=1700000000&until=1800000000",
    f"until={time.time() + 3 * 86400:.0f}", "since=2026-01-01T00:00:00Z&until=2025-01-01",
    "since=" + "9" * 400])
def test_readings_window_is_finite_and_bounded(client: TestClient, query: str) -> None:
    r = client.get(f"/api/devices/air-0001/readings?quantity=co2&{query}")
    assert r.status_code == 400, (query, r.text)
    assert "error" in r.json()


def test_a_window_inside_the_bounds_is_answered(client: TestClient) -> None:
    now = time.time()
    r = client.get("/api/devices/air-0001/readings",
                   params={"quantity": "co2", "since": now - 365 * 86400, "until": now})
    assert r.status_code == 200 and r.json()["sensors"]["scd41"]


def _gated(tmp_path: Path, session_s: int = 600) -> Config:
    c = parse_config({"site": SITE, "gateway": {"data_dir": "var", "health_port": 0},
                      "console": {"token": TOKEN, "session_s": session_s}}, tmp_path, env={})
    _fill(c, time.time())
    return c


def test_token_form_posts_and_sets_a_session_that_expires(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _gated(tmp_path, session_s=600)
    app = build_app(cfg, open_reader(cfg), run_live=False)
    with TestClient(app) as c:
        page = c.get("/devices/air-0001?window=1h", headers={"accept": "text/html"})
        assert page.status_code == 401
        assert 'method="post"' in page.text and 'action="/_login"' in page.text
        assert 'method="get"' not in page.text
        assert 'value="/devices/air-0001?window=1h"' in page.text
        bad = c.post("/_login", data={"token": "wrong", "next": "/"}, follow_redirects=False)
        assert bad.status_code == 401 and 'id="wrong-token"' in bad.text
        for evil in ("/\\evil.example/x", "https://evil.example/x"):
            r = c.post("/_login", data={"token": TOKEN, "next": evil}, follow_redirects=False)
            where = r.headers["location"]  # a local path, never another host
            assert r.status_code == 303 and where.startswith("/") and where[1] not in "/\\"
        r = c.post("/_login", data={"token": TOKEN, "next": "//evil.example/x"},
                   follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/evil.example/x"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=600" in cookie
        assert "secure" not in cookie  # plain http: a Secure cookie would never come back
        assert TOKEN not in r.headers["set-cookie"]
        assert c.get("/api/devices").status_code == 200
        value = c.cookies[auth.COOKIE]
        # 11 minutes later the same cookie is refused
        later = time.time() + 660
        monkeypatch.setattr("gateway.console.auth.time.time", lambda: later)
        assert c.get("/api/devices").status_code == 401
        monkeypatch.undo()
        # tampered, forged for a far future, or the old digest-of-the-token cookie: refused
        c.cookies.clear()
        for forged in (value[:-1] + ("0" if value[-1] != "0" else "1"),
                       auth.session_value("another-token-of-16+", int(time.time()) + 60),
                       auth.session_value(TOKEN, int(time.time()) + 10 * 86400),
                       "0" * 64):
            c.cookies.set(auth.COOKIE, forged)
            assert c.get("/api/devices").status_code == 401, forged


def test_session_cookie_is_secure_over_https(tmp_path: Path) -> None:
    cfg = _gated(tmp_path)
    app = build_app(cfg, open_reader(cfg), run_live=False)
    with TestClient(app, base_url="https://testserver") as c:
        r = c.post("/_login", data={"token": TOKEN}, follow_redirects=False)
        assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()
        c.cookies.clear()
        r = c.get(f"/?token={TOKEN}", follow_redirects=False)
        assert "secure" in r.headers["set-cookie"].lower()


@pytest.mark.parametrize("token", ["short", "fifteen-chars-x", " " * 20 + "abc"])
def test_a_short_console_token_is_a_config_error(tmp_path: Path, token: str) -> None:
    with pytest.raises(ConfigError, match=r"config key 'console.token': at least 16"):
        parse_config({"site": SITE, "console": {"token": token}}, tmp_path, env={})
    parse_config({"site": SITE, "console": {"token": "x" * 16}}, tmp_path, env={})


@pytest.mark.parametrize("payload", [
    b'{"state":"online","fw":"\\ud800"}',
    b'{"state":"online","rssi":NaN,"fw":"1.0.0"}',
    b'{"state":"online","rssi":Infinity}',
    b'{"state":"online","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b"\xff\xfe not json",
])
def test_a_hostile_status_neither_breaks_pages_nor_is_kept(client: TestClient,
                                                           payload: bytes) -> None:
    live: LiveStatus = client.live
    assert not live.observe(f"livinglab/v1/{SITE}/air-0001/status", payload)
    assert live.skipped == 1
    assert client.get("/", headers={"accept": "text/html"}).status_code == 200
    assert client.get("/api/devices").status_code == 200


HOSTILE = [b'{"state":"online","fw":"\\ud800"}', b'{"state":"online","rssi":NaN}',
           b'{"state":"online","x":' + b"[" * 50_000 + b"]" * 50_000 + b"}", b"\xff not json"]


@pytest.mark.timeout(60)
def test_hostile_retained_statuses_do_not_end_the_live_subscription(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    import asyncio

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    cfg = parse_config({"site": SITE, "gateway": {"data_dir": "var", "health_port": 0},
                        "mqtt": {"port": mosquitto.port}}, tmp_path, env={})
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="t-hostile")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    try:
        for i, payload in enumerate(HOSTILE):
            pub.publish(f"livinglab/v1/{SITE}/bad-{i}/status", payload, qos=1,
                        retain=True).wait_for_publish(10)
        pub.publish(f"livinglab/v1/{SITE}/air-0001/status", b'{"state":"online"}', qos=1,
                    retain=True).wait_for_publish(10)
    finally:
        pub.loop_stop()
        pub.disconnect()
    live = LiveStatus(cfg)

    async def scenario() -> None:
        task = asyncio.create_task(live.run())
        loop = asyncio.get_running_loop()
        end = loop.time() + 15
        try:
            while (live.skipped < len(HOSTILE) or "air-0001" not in live.devices) \
                    and loop.time() < end and not task.done():
                await asyncio.sleep(0.05)
            assert not task.done(), task.exception()
            assert live.connected
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert not live.connected  # stopped: the page no longer says "connected"

    asyncio.run(scenario())
    assert live.skipped == len(HOSTILE) and live.devices["air-0001"].state == "online"
    assert not any(d.startswith("bad-") for d in live.devices)


def test_nan_or_surrogate_kept_in_the_last_seen_file_does_not_500(cfg: Config) -> None:
    """An older gateway wrote statuses with json.dumps (NaN allowed, surrogates escaped)."""
    from gateway.accounting.lastseen import LastSeen, Sighting, lastseen_path

    seen = LastSeen(lastseen_path(cfg.gateway.data_dir))
    seen.update([Sighting("air-0001", time.time(), "status", "online",
                          {"state": "online", "fw": "\ud800", "rssi": float("nan")})])
    seen.close()
    app = build_app(cfg, open_reader(cfg), run_live=False)
    with TestClient(app) as c:
        assert c.get("/", headers={"accept": "text/html"}).status_code == 200
        assert c.get("/api/devices").status_code == 200
        assert c.get("/api/devices/air-0001").status_code == 200
        assert c.get("/devices/air-0001", headers={"accept": "text/html"}).status_code == 200
