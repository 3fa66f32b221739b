"""The city console (``[console] scope = "city"``): pages, hooks and JSON API over the
shared store alone, the derived states, paging, the map's data, bad input."""

from __future__ import annotations

import asyncio
import json
import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette 1.x nudges towards httpx2; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from gateway.alerts.errors import AlertmanagerUnreachable
from gateway.console.city_app import build_city_app
from gateway.stores import make_store
from gateway.stores.centre import CentreReader
from gateway.stores.readers import make_centre_reader
from protocols.config import Config, StoreSection, parse_config
from tests.gateway import city_points as cp
from tests.gateway.centre_fake import PointsReader

EXPECTED = {("north-lab", "air-0001"): "online", ("north-lab", "air-0002"): "silent",
            ("north-lab", "air-0003"): "offline", ("north-lab", "air-0004"): "never-seen",
            ("north-lab", "air-0005"): "retired", ("south-lab", "air-0101"): "delayed",
            ("south-lab", "air-0102"): "online", ("east-lab", "air-0201"): "unknown"}
ALERTS = [{"alertname": "GatewayDown", "severity": "critical", "site": "east-lab",
           "gateway": "gw-east", "summary": "gateway gw-east of east-lab is down",
           "startsAt": "2026-12-06T10:00:00Z"},
          {"alertname": "DeviceSilent", "severity": "warning", "site": "north-lab",
           "device": "air-0002", "summary": "<b>air-0002</b> sent nothing", "startsAt": ""}]


def _cfg(tmp_path: Path, **console: Any) -> Config:
    return parse_config({"console": {"scope": "city", **console},
                         "alerts": {"alertmanager_url": "http://127.0.0.1:9"}},
                        tmp_path, env={}, need_site=False)


def write_sqlite(path: Path, points: list[Any]) -> None:
    """The points through the gateway's own SQLite store, as a gateway writes them."""
    async def go() -> None:
        store = make_store(StoreSection(kind="sqlite", path=path))
        try:
            await store.ensure_ready()
            body = cp.encode_lines(points)
            await store.write(body, len(points))
        finally:
            await store.aclose()
    asyncio.run(go())


def sqlite_reader(tmp_path: Path, points: list[Any]) -> CentreReader:
    path = tmp_path / "centre.sqlite"
    write_sqlite(path, points)
    cfg = parse_config({"store": {"kind": "sqlite", "path": str(path)}}, tmp_path, env={},
                       need_site=False)
    return make_centre_reader(cfg)


@pytest.fixture(params=["fake", "sqlite"])
def reader(request: pytest.FixtureRequest, tmp_path: Path) -> CentreReader:
    """The city in memory, and the same points in a SQLite store read by its centre
    reader (gateway/stores/sqlite_reader.py)."""
    points = cp.city(int(time.time() * 1000))
    return PointsReader(points) if request.param == "fake" else sqlite_reader(tmp_path, points)


@pytest.fixture
def client(tmp_path: Path, reader: CentreReader) -> Iterator[TestClient]:
    app = build_city_app(_cfg(tmp_path), reader, lambda: list(ALERTS))
    with TestClient(app) as c:
        yield c


def _attrs(html: str, tag_attr: str) -> list[dict[str, str]]:
    """Every element carrying ``tag_attr``: its data-* attributes."""
    out = []
    for m in re.finditer(r"<(\w+)([^>]*\b" + tag_attr + r'="[^"]*"[^>]*)>', html):
        out.append(dict(re.findall(r'(data-[\w-]+)="([^"]*)"', m.group(2))))
    return out


def test_city_page_sites_gateway_states_and_counts(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    rows = {a["data-site"]: a["data-gateway-state"]
            for a in _attrs(r.text, "data-gateway-state") if "data-site" in a}
    assert rows == {"north-lab": "online", "south-lab": "online", "east-lab": "down"}
    counts = {(m[0], m[1]): int(m[2]) for m in re.findall(
        r'data-site="([^"]+)" data-count-state="([^"]+)"[^>]*>(\d+)<', r.text)}
    assert counts[("north-lab", "online")] == 1 and counts[("north-lab", "silent")] == 1
    assert counts[("north-lab", "never-seen")] == 1 and counts[("north-lab", "retired")] == 1
    assert counts[("south-lab", "delayed")] == 1 and counts[("east-lab", "unknown")] == 1
    assert len(counts) == 3 * 7  # a count for every state of every site
    assert 'data-col="alerts"' in r.text and "2 firing" in r.text
    assert "96.7 %" in r.text  # north: accepted 87 / (87 + 3 missing)


def test_api_sites_shape(client: TestClient) -> None:
    sites = {s["site"]: s for s in client.get("/api/sites").json()}
    assert set(sites) == {"north-lab", "south-lab", "east-lab"}
    north = sites["north-lab"]
    assert set(north["devices"]) == {"online", "delayed", "silent", "offline", "never-seen",
                                     "retired", "unknown"}
    assert north["devices"]["offline"] == 1 and north["capture_24h"] == pytest.approx(87 / 90)
    gw = north["gateways"][0]
    assert set(gw) >= {"gateway", "state", "last_seen", "buffer_points", "buffer_oldest_s",
                       "disk_free_bytes"}
    assert gw["gateway"] == "gw-north" and gw["state"] == "online"
    assert abs(gw["last_seen"] - time.time()) < 60  # Unix seconds
    assert sites["east-lab"]["gateways"][0]["state"] == "down"
    assert sites["south-lab"]["gateways"][0]["buffer_oldest_s"] == 900.0
    assert sites["east-lab"]["capture_24h"] is None  # no delivery point: nothing to say


def test_site_page_states_values_and_escaping(client: TestClient) -> None:
    r = client.get("/sites/north-lab")
    assert r.status_code == 200
    devs = {(a["data-site"], a["data-device"]): a["data-state"]
            for a in _attrs(r.text, "data-state") if "data-device" in a and "data-site" in a}
    assert devs == {k: v for k, v in EXPECTED.items() if k[0] == "north-lab"}
    vals = {(a["data-device"], a["data-quantity"]): a["data-value"]
            for a in _attrs(r.text, "data-quantity")}
    assert vals[("air-0001", "co2")] == "629.0"
    assert vals[("air-0001", "temperature")] == "21.75"  # the newest over its sensors
    assert 'href="/sites/north-lab/devices/air-0001"' in r.text
    assert "<b>bad</b>" not in r.text and "signature &lt;b&gt;bad&lt;/b&gt;" in r.text
    assert 'data-update-state="refused"' in r.text
    assert 'data-events="/api/sites/north-lab/events?state=&amp;page=1"' in r.text
    south = client.get("/sites/south-lab").text
    assert 'data-device="air-0101" data-state="delayed"' in south
    assert 'data-quantity="illuminance" data-value="350.5"' in south


def test_site_page_state_filter(client: TestClient) -> None:
    r = client.get("/sites/north-lab?state=silent")
    got = [a["data-device"] for a in _attrs(r.text, "data-state") if "data-device" in a]
    assert got == ["air-0002"]
    assert "No device of north-lab is delayed" in client.get("/sites/north-lab?state=delayed").text
    # an unknown state is no filter
    assert len(_attrs(client.get("/sites/north-lab?state=bogus").text, "data-device")) >= 5
    api = client.get("/api/sites/north-lab/devices?state=offline").json()
    assert [d["device"] for d in api] == ["air-0003"]


def test_device_page_and_api(client: TestClient) -> None:
    r = client.get("/sites/north-lab/devices/air-0001")
    assert r.status_code == 200
    assert 'data-site="north-lab" data-device="air-0001" data-state="online"' in r.text
    assert 'data-chart="co2"' in r.text and 'data-chart="temperature"' in r.text
    assert 'data-api="/api/sites/north-lab/devices/air-0001"' in r.text
    assert 'data-reason="out_of_range"' in r.text
    assert "east wing" in r.text and "scd41, bme280" in r.text
    doc = client.get("/api/sites/north-lab/devices/air-0001").json()
    assert doc["state"] == "online" and doc["status"]["fw"] == "1.2.0"
    assert doc["metadata"]["location"].startswith("50.87930, 4.70100")
    assert sum(h["accepted"] for h in doc["delivery_per_hour"]) == 87
    never = client.get("/sites/north-lab/devices/air-0004")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in never.text
    assert "<script>alert(1)" not in never.text
    assert client.get("/sites/north-lab/devices/nope-0001").status_code == 404
    assert client.get("/api/sites/north-lab/devices/nope-0001").status_code == 404
    assert client.get("/sites/north-lab/devices/Bad_ID").status_code == 404
    assert client.get("/sites/no-such-site").status_code == 404
    assert client.get("/api/sites/no-such-site/devices").status_code == 404


def test_readings_api(client: TestClient) -> None:
    base = "/api/sites/north-lab/devices/air-0001/readings"
    doc = client.get(base + "?quantity=co2&window=1h").json()
    assert doc["unit"] == "ppm" and list(doc["sensors"]) == ["scd41"]
    values = [v for v in doc["sensors"]["scd41"] if v is not None]
    assert min(values) >= 600 and max(values) <= 629 and len(values) >= 2
    t = client.get(base + "?quantity=temperature&window=1h").json()
    assert set(t["sensors"]) == {"scd41", "bme280"}
    assert client.get(base).status_code == 400
    assert client.get(base + "?quantity=co2&since=yesterday").status_code == 400
    assert client.get(base + "?quantity=co2&since=0&until=1e12").status_code == 400
    assert client.get(base + "?quantity=co2&since=0&until=100").status_code == 400  # 1970
    now = time.time()
    span = client.get(base + f"?quantity=co2&since={now - 400 * 86400}&until={now}")
    assert span.status_code == 400  # more than 366 days


def test_stations_geojson(client: TestClient) -> None:
    doc = client.get("/api/stations.geojson").json()
    assert doc["type"] == "FeatureCollection"
    feats = {(f["properties"]["site"], f["properties"]["device"]): f for f in doc["features"]}
    # air-0002 has no location: not on the map
    assert set(feats) == set(EXPECTED) - {("north-lab", "air-0002")}
    f = feats[("north-lab", "air-0001")]
    assert f["geometry"] == {"type": "Point", "coordinates": [cp.NORTH[1], cp.NORTH[0]]}
    assert f["properties"]["state"] == "online" and f["properties"]["room"] == "1.12"
    assert set(f["properties"]) == {"site", "device", "state", "board", "room", "zone"}
    assert feats[("north-lab", "air-0005")]["properties"]["state"] == "retired"


def test_map_page_tiles_and_csp(tmp_path: Path, reader: CentreReader) -> None:
    with TestClient(build_city_app(_cfg(tmp_path), reader)) as c:
        r = c.get("/map")
        assert r.status_code == 200 and 'data-tiles=""' in r.text
        assert "/static/leaflet.js" in r.text and "/static/map.js" in r.text
        assert "img-src 'self' data:;" in r.headers["content-security-policy"] + ";"
        assert 'data-no-location="1"' in r.text and "north-lab/air-0002" in r.text
        assert c.get("/static/leaflet.js").status_code == 200
        assert c.get("/static/map.js").status_code == 200
    tiles = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    with TestClient(build_city_app(_cfg(tmp_path, map_tiles=tiles), reader)) as c:
        r = c.get("/map")
        assert f'data-tiles="{tiles}"' in r.text
        csp = r.headers["content-security-policy"]
        assert "img-src 'self' data: https://tile.openstreetmap.org" in csp
        assert "script-src 'self';" in csp  # tiles are images, never scripts


def test_alerts_page_and_api(client: TestClient) -> None:
    assert client.get("/api/alerts").json() == ALERTS
    r = client.get("/alerts")
    got = _attrs(r.text, "data-alert")
    assert {(a["data-alert"], a["data-severity"], a["data-site"], a.get("data-device", ""))
            for a in got} == {("GatewayDown", "critical", "east-lab", ""),
                              ("DeviceSilent", "warning", "north-lab", "air-0002")}
    assert "&lt;b&gt;air-0002&lt;/b&gt;" in r.text


def test_alerts_without_alertmanager(tmp_path: Path, reader: CentreReader) -> None:
    cfg = parse_config({"console": {"scope": "city"}}, tmp_path, env={}, need_site=False)
    with TestClient(build_city_app(cfg, reader, None)) as c:
        assert c.get("/api/alerts").json() == []
        assert 'data-empty="no-alertmanager"' in c.get("/alerts").text

    def down() -> list[dict[str, Any]]:
        raise AlertmanagerUnreachable("http://127.0.0.1:9", "connection refused")
    with TestClient(build_city_app(_cfg(tmp_path), reader, down)) as c:
        assert c.get("/api/alerts").json() == []
        assert 'data-banner="alertmanager-down"' in c.get("/alerts").text
        assert c.get("/").status_code == 200


def test_configured_sites_only_and_site_without_stations(tmp_path: Path,
                                                         reader: CentreReader) -> None:
    app = build_city_app(_cfg(tmp_path, sites=["south-lab", "west-lab"]), reader)
    with TestClient(app) as c:
        sites = {s["site"]: s for s in c.get("/api/sites").json()}
        assert set(sites) == {"south-lab", "west-lab"}  # north and east stay out
        assert sites["west-lab"]["devices"] == dict.fromkeys(sites["west-lab"]["devices"], 0)
        west = c.get("/sites/west-lab")
        assert west.status_code == 200 and "No devices at west-lab yet" in west.text
        assert c.get("/sites/north-lab").status_code == 404


def test_bounded_queries_per_view(tmp_path: Path, reader: CentreReader) -> None:
    """A site page adds its latest values to the snapshot's questions (a fixed number of
    queries whatever the size: the reader's rule); pages within the cache period ask
    nothing."""
    with TestClient(build_city_app(_cfg(tmp_path), reader)) as c:
        c.get("/")
        before = reader.queries()
        c.get("/sites/north-lab")
        assert reader.queries() - before <= 7
        mid = reader.queries()
        for _ in range(5):
            c.get("/")
            c.get("/sites/north-lab")
        assert reader.queries() == mid  # within the cache period: nothing asked again


def test_sse_streams_city_and_site(client: TestClient) -> None:
    with client.stream("GET", "/api/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        doc = _first_event(r.iter_lines(), "city")
    assert {s["site"] for s in doc["sites"]} == {"north-lab", "south-lab", "east-lab"}
    with client.stream("GET", "/api/sites/north-lab/events?state=silent") as r:
        doc = _first_event(r.iter_lines(), "fleet")
    assert doc["ids"] == ["air-0002"] and doc["rows"][0]["state"] == "silent"
    assert doc["summary"]["devices"]["silent"] == 1


def _first_event(lines: Iterator[str], name: str) -> dict[str, Any]:
    event = ""
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == name:
            return dict(json.loads(line[6:]))
    raise AssertionError(f"no {name} event")


def test_token_gate_covers_the_city(tmp_path: Path, reader: CentreReader) -> None:
    app = build_city_app(_cfg(tmp_path, token="s3cret-token-0123456789"), reader)
    with TestClient(app) as c:
        assert c.get("/api/sites").status_code == 401
        ok = c.get("/api/sites", headers={"Authorization": "Bearer s3cret-token-0123456789"})
        assert ok.status_code == 200
