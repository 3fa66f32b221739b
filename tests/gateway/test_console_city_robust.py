"""The city console when things go wrong: an empty store, a store down (at start or
later) and back, a SQLite store not written yet, NaN and lone surrogates in what the
store holds; and paging a large site. Helpers: :mod:`tests.gateway.test_console_city`.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette 1.x nudges towards httpx2; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from gateway.console.city_app import build_city_app, tile_origin
from gateway.stores.readers import make_centre_reader
from protocols.config import parse_config
from tests.gateway import city_points as cp
from tests.gateway.centre_fake import PointsReader
from tests.gateway.test_console_city import _attrs, _cfg, _first_event, write_sqlite


def test_site_page_pages_of_100(tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    points = cp.gateway("big-site", "gw-1", now - 1000)
    for i in range(250):
        points += cp.device("big-site", f"dev-{i:04d}", now - 5000)
    with TestClient(build_city_app(_cfg(tmp_path), PointsReader(points))) as c:
        def ids(url: str) -> list[str]:
            return [a["data-device"] for a in _attrs(c.get(url).text, "data-state")
                    if "data-device" in a]
        first, third = ids("/sites/big-site"), ids("/sites/big-site?page=3")
        assert len(first) == 100 and first[0] == "dev-0000"
        assert len(third) == 50 and third[-1] == "dev-0249"
        assert ids("/sites/big-site?page=99") == third  # clamped
        assert ids("/sites/big-site?page=x") == first
        assert 'href="?page=3"' in c.get("/sites/big-site").text


def test_tile_origin() -> None:
    assert tile_origin("https://{s}.tile.osm.org/{z}/{x}/{y}.png") == "https://*.tile.osm.org"
    assert tile_origin("http://127.0.0.1:8081/t/{z}/{x}/{y}.png") == "http://127.0.0.1:8081"
    assert tile_origin("") == "" and tile_origin("file:///tiles/{z}.png") == ""
    assert tile_origin("https://evil.org;script-src */{z}") == ""


def test_empty_store_says_so(tmp_path: Path) -> None:
    with TestClient(build_city_app(_cfg(tmp_path), PointsReader())) as c:
        r = c.get("/")
        assert r.status_code == 200 and 'data-empty="store"' in r.text
        assert c.get("/api/sites").json() == []
        assert c.get("/api/stations.geojson").json()["features"] == []
        assert c.get("/map").status_code == 200


def test_store_down_says_so_and_recovers(tmp_path: Path) -> None:
    import gateway.console.city_model as cm

    reader = PointsReader(cp.city(int(time.time() * 1000)))
    with pytest.MonkeyPatch.context() as mp, TestClient(build_city_app(_cfg(tmp_path),
                                                                        reader)) as c:
        mp.setattr(cm, "SNAPSHOT_TTL_S", 0.0)
        mp.setattr(cm, "VALUES_TTL_S", 0.0)
        assert 'data-banner="store-down"' not in c.get("/").text
        reader.down = True
        r = c.get("/")
        assert r.status_code == 200 and 'data-banner="store-down"' in r.text
        assert "not reachable" in r.text
        assert 'data-site="north-lab"' in r.text  # the last snapshot still shows
        assert c.get("/sites/north-lab").status_code == 200
        reader.down = False
        assert 'data-banner="store-down"' not in c.get("/").text


def test_store_down_from_the_start(tmp_path: Path) -> None:
    reader = PointsReader()
    reader.down = True
    with TestClient(build_city_app(_cfg(tmp_path), reader)) as c:
        r = c.get("/")
        assert r.status_code == 200 and 'data-banner="store-down"' in r.text


def test_sqlite_store_missing_then_written(tmp_path: Path) -> None:
    """A store that is not there yet (the first gateway has not written): the pages say
    so, then show the city once it is written, without a restart."""
    import gateway.console.city_model as cm

    path = tmp_path / "later.sqlite"
    cfg = parse_config({"console": {"scope": "city"},
                        "store": {"kind": "sqlite", "path": str(path)}}, tmp_path, env={},
                       need_site=False)
    with pytest.MonkeyPatch.context() as mp, TestClient(
            build_city_app(cfg, make_centre_reader(cfg))) as c:
        mp.setattr(cm, "SNAPSHOT_TTL_S", 0.0)
        first = c.get("/")
        assert first.status_code == 200
        assert 'data-banner="store-down"' in first.text or 'data-empty="store"' in first.text
        write_sqlite(path, cp.city(int(time.time() * 1000)))
        r = c.get("/")
        assert 'data-banner="store-down"' not in r.text
        assert 'data-site="east-lab" data-gateway-state="down"' in r.text


def test_nan_and_lone_surrogates_from_the_store_never_500(tmp_path: Path) -> None:
    """Whatever a store hands back (a NaN, a lone surrogate in a string), the pages and
    the API answer: NaN as null, the surrogate escaped or replaced."""
    from protocols.lineprotocol import make_point

    now = int(time.time() * 1000)
    points = cp.gateway("odd-site", "gw-1", now - 1000)
    points.append(make_point("device", {"site": "odd-site", "device": "air-0001"},
                             {"online": 1.0, "rssi": float("nan"), "fw": "1.0\ud800",
                              "board": "pico\udfff"}, now - 2000))
    points.append(make_point("air", {"site": "odd-site", "device": "air-0001",
                                     "sensor": "scd41"}, {"co2": float("nan"),
                                                          "temperature": 21.0}, now - 2000))
    with TestClient(build_city_app(_cfg(tmp_path), PointsReader(points))) as c:
        for url in ("/", "/sites/odd-site", "/sites/odd-site/devices/air-0001", "/map",
                    "/api/sites", "/api/sites/odd-site/devices",
                    "/api/sites/odd-site/devices/air-0001", "/api/stations.geojson"):
            r = c.get(url)
            assert r.status_code == 200, url
        row = c.get("/api/sites/odd-site/devices").json()[0]
        assert row["values"]["co2"]["value"] is None and row["firmware"] == "1.0\ud800"
        with c.stream("GET", "/api/sites/odd-site/events") as r:
            assert _first_event(r.iter_lines(), "fleet")["ids"] == ["air-0001"]
        base = "/api/sites/odd-site/devices/air-0001/readings?quantity=co2"
        for bad in ("&since=nan", "&until=inf", "&since=-inf&until=0"):
            assert c.get(base + bad).status_code == 400, bad
