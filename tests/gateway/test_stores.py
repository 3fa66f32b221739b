"""Store adapters without real databases: HTTP status translation (against a scripted
loopback HTTP server), Retry-After, and the embedded SQLite store."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gateway.stores import StoreFatal, StoreRejected, StoreTransient, make_store
from gateway.stores.base import classify_status, parse_retry_after
from gateway.stores.sqlite import SQLiteStore
from protocols.config import StoreSection

LINES = (b"air,device=air-1,sensor=scd41,site=lab co2=612,humidity=48.2 1795351934120\n"
         b"device,device=air-1,site=lab online=1,rssi=-61 1795351934000")


class Scripted(ThreadingHTTPServer):
    """Answers each request with the next (status, headers, body); records requests."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: deque[tuple[int, dict[str, str], bytes]] = deque()
        self.requests: list[tuple[str, bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Scripted

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append((self.path, body))
        status, headers, payload = (self.server.script.popleft() if self.server.script
                                    else (204, {}, b""))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http() -> Iterator[Scripted]:
    server = Scripted()
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


def test_classify_status() -> None:
    assert isinstance(classify_status(400, "unable to parse", None, "db"), StoreRejected)
    r = classify_status(422, "partial write error (2 written)", None, "db")
    assert isinstance(r, StoreRejected) and r.partial and r.status == 422
    assert isinstance(classify_status(413, "too large", None, "db"), StoreRejected)
    t = classify_status(429, "slow down", "7", "db")
    assert isinstance(t, StoreTransient) and t.retry_after == 7.0
    assert isinstance(classify_status(503, "", None, "db"), StoreTransient)
    f = classify_status(401, "unauthorized", None, "bucket 'x'")
    assert isinstance(f, StoreFatal) and "token" in str(f) and "\n" not in str(f)
    assert "create it" in str(classify_status(404, "bucket not found", None, "bucket 'x'"))
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("kind", ["influxdb1", "influxdb2"])
def test_http_stores_translate_statuses(http: Scripted, kind: str) -> None:
    cfg = StoreSection(kind=kind, url=http.url, database="lab", bucket="b", org="o",
                       token="t", timeout_s=2)

    async def scenario() -> list[Exception | None]:
        store = make_store(cfg)
        out: list[Exception | None] = []
        http.script.extend([
            (204, {}, b""),
            (429, {"Retry-After": "3"}, b'{"message": "too many requests"}'),
            (503, {}, b"unavailable"),
            (422, {}, b'{"code": "unprocessable entity", "message": "partial write"}'),
            (400, {}, b'{"error": "unable to parse line"}'),
            (401, {}, b'{"message": "unauthorized access"}'),
        ])
        for _ in range(6):
            try:
                await store.write(LINES, 2)
                out.append(None)
            except (StoreTransient, StoreRejected, StoreFatal) as exc:
                out.append(exc)
        await store.aclose()
        return out

    res = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert res[0] is None
    assert isinstance(res[1], StoreTransient) and res[1].retry_after == 3.0
    assert isinstance(res[2], StoreTransient)
    assert isinstance(res[3], StoreRejected) and res[3].partial
    assert isinstance(res[4], StoreRejected) and "unable to parse" in str(res[4])
    assert isinstance(res[5], StoreFatal)
    path, body = http.requests[0]
    assert body == LINES
    if kind == "influxdb1":
        assert path.startswith("/write?") and "db=lab" in path and "precision=ms" in path
    else:
        assert path.startswith("/api/v2/write?") and "bucket=b" in path and "precision=ms" in path


@pytest.mark.parametrize("kind", ["influxdb1", "influxdb2"])
def test_unreachable_store_is_transient(kind: str) -> None:
    from tests.servers import free_port

    cfg = StoreSection(kind=kind, url=f"http://127.0.0.1:{free_port()}",
                       timeout_s=1)

    async def scenario() -> None:
        store = make_store(cfg)
        try:
            with pytest.raises(StoreTransient):
                await store.write(LINES, 2)
            with pytest.raises(StoreTransient):
                await store.ensure_ready()
        finally:
            await store.aclose()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_influxdb1_recreates_a_dropped_database(http: Scripted) -> None:
    cfg = StoreSection(kind="influxdb1", url=http.url, database="lab", timeout_s=2)

    async def scenario() -> None:
        store = make_store(cfg)
        http.script.extend([(404, {}, b'{"error":"database not found: \\"lab\\""}'),
                            (200, {}, b'{"results":[{"statement_id":0}]}')])
        with pytest.raises(StoreTransient, match="created it"):
            await store.write(LINES, 2)
        await store.aclose()

    asyncio.run(asyncio.wait_for(scenario(), 30))
    assert http.requests[1][0].startswith("/query")
    assert b"CREATE+DATABASE" in http.requests[1][1]


def test_sqlite_store_writes_idempotently_and_rejects_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "readings.sqlite"
    store = SQLiteStore(StoreSection(kind="sqlite", path=path))

    async def scenario() -> None:
        await store.ensure_ready()
        await store.write(LINES, 2)
        await store.write(LINES, 2)  # a retry writes the same points: kept once
        with pytest.raises(StoreRejected, match="line 2"):
            await store.write(LINES.split(b"\n")[0] + b"\nair,site=lab co2=1 17", 2)
        await store.aclose()

    asyncio.run(asyncio.wait_for(scenario(), 30))
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT measurement, site, device, sensor, field, value, time_ms "
                          "FROM readings ORDER BY measurement, field").fetchall()
    assert rows == [
        ("air", "lab", "air-1", "scd41", "co2", 612.0, 1795351934120),
        ("air", "lab", "air-1", "scd41", "humidity", 48.2, 1795351934120),
        ("device", "lab", "air-1", "", "online", 1.0, 1795351934000),
        ("device", "lab", "air-1", "", "rssi", -61.0, 1795351934000),
    ]


def test_sqlite_keeps_info_companions_and_third_turn_points() -> None:
    """docs/wire-contract-reference.md, "SQLite": an _info point's string tags become
    text_fields rows under ``{m}_info``; gateway and rejections points keep their key."""
    from gateway.stores.sqlite import rows_of
    from protocols import encode_lines, make_point
    from protocols.lineprotocol import with_info
    dev = make_point("device", {"site": "lab", "device": "air-1"},
                     {"online": 1.0, "fw": "1.0.0", "board": "pico w"}, 1000)
    gw = make_point("gateway", {"site": "lab", "gateway": "gw1"}, {"up": 1.0, "version": "0.3"},
                    2000)
    rej = make_point("rejections", {"site": "lab", "device": "air-1", "reason": "out_of_range"},
                     {"count": 3.0}, 3600000)
    rows, texts = rows_of(encode_lines([*with_info(dev), *with_info(gw), rej]))
    assert sorted(texts) == sorted([
        ("device", "lab", "air-1", "", "board", "pico w", 1000),
        ("device", "lab", "air-1", "", "fw", "1.0.0", 1000),
        ("device_info", "lab", "air-1", "", "board", "pico w", 1000),
        ("device_info", "lab", "air-1", "", "fw", "1.0.0", 1000),
        ("gateway", "lab", "gw1", "", "version", "0.3", 2000),
        ("gateway_info", "lab", "gw1", "", "version", "0.3", 2000)])
    assert ("device_info", "lab", "air-1", "", "v", 1.0, 1000) in rows
    assert ("gateway", "lab", "gw1", "", "up", 1.0, 2000) in rows
    assert ("rejections", "lab", "air-1", "out_of_range", "count", 3.0, 3600000) in rows


def test_make_store_defaults_to_sqlite(tmp_path: Path) -> None:
    store = make_store(StoreSection(path=tmp_path / "r.sqlite"))
    assert isinstance(store, SQLiteStore)
