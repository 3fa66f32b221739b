"""``$filter`` becomes the store's own query: the reader is asked for the window and the
series the filter names, never for everything; plus ``base_url`` in links."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.sensorthings.app import build_app
from gateway.sensorthings.service import Service
from gateway.stores.centre import CentreReader
from gateway.stores.readers import make_centre_reader
from gateway.stores.reading import Reading
from protocols.config import parse_config
from tests.centre.data import MIN

from .conftest import DENSE, Api


class Spy:
    """The real reader, recording each ``readings`` call's window and filters."""

    def __init__(self, inner: CentreReader) -> None:
        self.inner = inner
        self.calls: list[tuple[int, int, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = []

    def readings(self, since_ms: int, until_ms: int, sites: Sequence[str] = (),
                 devices: Sequence[str] = (), domains: Sequence[str] = (),
                 quantities: Sequence[str] = ()) -> Iterator[Reading]:
        self.calls.append((since_ms, until_ms, tuple(sites), tuple(devices), tuple(quantities)))
        return self.inner.readings(since_ms, until_ms, sites, devices, domains, quantities)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def spy(api: Api, tmp_path: Path) -> Iterator[tuple[Spy, TestClient]]:
    cfg = parse_config({"store": api.store}, tmp_path, env={}, need_site=False)
    reader = Spy(make_centre_reader(cfg))
    service = Service(reader, cfg.registry, "https://data.example.org/sta/")
    with TestClient(build_app(service)) as client:
        yield reader, client
    reader.inner.close()


def test_one_hour_window_reads_one_hour_of_one_series(api: Api, spy: tuple[Spy, TestClient]
                                                      ) -> None:
    reader, client = spy
    t0 = api.city.t0
    lo, hi = t0 + 5 * MIN, t0 + 65 * MIN
    from .test_api import iso
    r = client.get("/v1.1/Observations", params={
        "$filter": f"Datastream/Thing/name eq 'a1' and Datastream/ObservedProperty/name eq 'co2'"
                   f" and phenomenonTime ge {iso(lo)} and phenomenonTime lt {iso(hi)}",
        "$top": "1000"})
    assert r.status_code == 200, r.text
    assert len(r.json()["value"]) == 60
    assert reader.calls, "no store query"
    for since, until, sites, devices, quantities in reader.calls:
        assert lo <= since and until <= hi
        assert sites in ((), ("alpha",)) and devices == ("a1",) and quantities == ("co2",)


def test_result_filter_reads_only_its_datastream(spy: tuple[Spy, TestClient]) -> None:
    reader, client = spy
    r = client.get(f"/v1.1/Datastreams('{DENSE}')/Observations",
                   params={"$filter": "result ge 22", "$top": "10"})
    assert r.status_code == 200 and len(r.json()["value"]) == 10
    assert all(c[3] == ("p1",) and c[4] == ("temperature",) for c in reader.calls)


def test_a_filter_that_admits_no_datastream_reads_nothing(spy: tuple[Spy, TestClient]) -> None:
    reader, client = spy
    r = client.get("/v1.1/Observations", params={"$filter": "Datastream/Thing/name eq 'zz'"})
    assert r.status_code == 200 and r.json()["value"] == [] and reader.calls == []


def test_links_start_with_base_url(spy: tuple[Spy, TestClient]) -> None:
    _, client = spy
    body = client.get("/v1.1/Things", params={"$top": "1"}).json()
    assert body["value"][0]["@iot.selfLink"] == "https://data.example.org/sta/v1.1/Things('alpha.a1')"
    assert body["@iot.nextLink"].startswith("https://data.example.org/sta/v1.1/Things?")
    root = client.get("/v1.1").json()
    assert root["value"][0]["url"].startswith("https://data.example.org/sta/v1.1/")


def test_a_quiet_series_is_read_where_its_data_is(tmp_path: Path) -> None:
    """A Datastream whose readings are 60 days old (past the lookback): all of them come
    back, with a handful of store queries, not one per hour since."""
    from tests.centre.data import City, now_hour, write

    c = City(now_hour() - 60 * 86_400_000)
    c.add("station", {"site": "old", "device": "d1"},
          {"deployment": 1.0, "retired": 1.0, "board": "pico_w", "sensors": "sht4x",
           "room": "", "zone": "", "note": ""}, c.t0 - 86_400_000)
    for i in range(50):
        c.reading("old", "d1", "sht4x", "air", {"temperature": 10.0 + i / 8}, c.t0 + i * MIN)
    store = {"kind": "sqlite", "path": str(tmp_path / "old.sqlite")}
    cfg = parse_config({"store": store}, tmp_path, env={}, need_site=False)
    write(cfg.store, c.points)
    reader = make_centre_reader(cfg)
    service = Service(reader, cfg.registry)
    with TestClient(build_app(service)) as client:
        client.get("/v1.1/Things")  # the graph, built once
        before = reader.queries()
        for order in ("phenomenonTime asc", "phenomenonTime desc"):
            body = client.get("/v1.1/Datastreams('old.d1.sht4x.temperature')/Observations",
                              params={"$orderby": order}).json()
            got = [o["result"] for o in body["value"]]
            want = [10.0 + i / 8 for i in range(50)]
            assert got == (want if order.endswith("asc") else want[::-1])
        assert reader.queries() - before <= 12
    reader.close()
