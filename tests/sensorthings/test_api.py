"""``livinglab sensorthings`` over raw HTTP against a real SQLite store.

Every expectation is computed from what the devices sent (``City.readings``)
or the station points written, never from the service's own code.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import httpx
import pytest

from tests.centre.data import HOUR, MIN

from .conftest import DENSE, DENSE_N, Api, ds_of


def ms(iso: str) -> int:
    t = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return int(t.timestamp() * 1000 + 0.5) if t.microsecond % 1000 == 0 else -1


def iso(t: int) -> str:
    return dt.datetime.fromtimestamp(t / 1000, dt.UTC).isoformat(timespec="milliseconds"
                                                                 ).replace("+00:00", "Z")


def written(api: Api) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in api.city.readings:
        out[ds_of(r)].append((r.time_ms, r.value))
    return {k: sorted(v) for k, v in out.items()}


def test_root_lists_sets_and_conformance(api: Api) -> None:
    body = api.json("")
    names = {v["name"]: v["url"] for v in body["value"]}
    assert set(names) == {"Things", "Locations", "HistoricalLocations", "Datastreams", "Sensors",
                          "ObservedProperties", "Observations", "FeaturesOfInterest"}
    assert names["Things"] == f"{api.url}/Things"
    assert any(c.endswith("/req/request-data") for c in body["serverSettings"]["conformance"])


@pytest.mark.parametrize(("path", "n"), [
    ("Things", 5),              # a1 a2 a9 b1 (stations or readings) + p1
    ("Datastreams", 13),        # declared kinds' quantities + series with values
    ("Sensors", 4), ("ObservedProperties", 7),
    ("Locations", 2), ("HistoricalLocations", 2),  # a1's two positioned deployments
    ("FeaturesOfInterest", 6),  # a1.1 a1.2 b1.1 a9.1, a2.0 and p1.0 (no station)
])
def test_entity_counts(api: Api, path: str, n: int) -> None:
    body = api.json(path, **{"$count": "true"})
    assert body["@iot.count"] == n
    assert len(body["value"]) == n
    assert len({e["@iot.id"] for e in body["value"]}) == n


def test_thing_ids_names_and_site(api: Api) -> None:
    t = api.json("Things('alpha.a1')")
    assert t["@iot.id"] == "alpha.a1" and t["name"] == "a1"
    assert t["properties"]["site"] == "alpha" and t["properties"]["room"] == "Hall"
    assert api.json("Things(alpha.a1)")["@iot.id"] == "alpha.a1"  # a bare key
    assert t["@iot.selfLink"] == f"{api.url}/Things('alpha.a1')"


def test_every_observation_equals_what_was_sent(api: Api) -> None:
    for dsid, expected in written(api).items():
        got = api.all(f"Datastreams('{dsid}')/Observations", **{"$top": "1000"})
        assert [(ms(o["phenomenonTime"]), o["result"]) for o in got] == expected, dsid
        assert all(o["resultTime"] == o["phenomenonTime"] for o in got)
        assert [o["@iot.id"] for o in got] == [f"{dsid}.{t}" for t, _ in expected]


@pytest.mark.parametrize("top", ["1000", "7", "333"])
@pytest.mark.parametrize("order", ["phenomenonTime asc", "phenomenonTime desc", "id desc"])
def test_paging_neither_loses_nor_repeats(api: Api, top: str, order: str) -> None:
    expected = written(api)[DENSE]
    if top == "7":  # a shorter series for the small page size
        expected = written(api)["alpha.a1.scd41.co2"]
    dsid = DENSE if top != "7" else "alpha.a1.scd41.co2"
    got = api.all(f"Datastreams('{dsid}')/Observations",
                  **{"$top": top, "$orderby": order, "$select": "id,phenomenonTime,result"})
    pairs = [(ms(o["phenomenonTime"]), o["result"]) for o in got]
    assert len(pairs) == len(set(pairs)) == len(expected)
    assert pairs == (expected if order.endswith("asc") else expected[::-1])


def test_all_observations_paged_in_time_order(api: Api) -> None:
    got = api.all("Observations", **{"$top": "1000", "$select": "id"})
    every = sorted((r.time_ms, r.site, r.device, r.sensor, r.quantity) for r in api.city.readings)
    assert [o["@iot.id"] for o in got] == [f"{s}.{d}.{n}.{q}.{t}" for t, s, d, n, q in every]


def test_top_default_and_clamp(api: Api) -> None:
    body = api.json(f"Datastreams('{DENSE}')/Observations")
    assert len(body["value"]) == 100 and "@iot.nextLink" in body
    body = api.json(f"Datastreams('{DENSE}')/Observations", **{"$top": "5000"})
    assert len(body["value"]) == 1000 and "$skiptoken=" in body["@iot.nextLink"]
    body = api.json(f"Datastreams('{DENSE}')/Observations",
                    **{"$top": "3", "$skip": "10", "$count": "true"})
    assert body["@iot.count"] == DENSE_N
    assert [ms(o["phenomenonTime"]) for o in body["value"]] == [
        t for t, _ in written(api)[DENSE][10:13]]


def test_filter_time_window_and_result(api: Api) -> None:
    t0 = api.city.t0
    lo, hi = t0 + 10 * MIN, t0 + 20 * MIN
    flt = (f"phenomenonTime ge {iso(lo)} and phenomenonTime lt {iso(hi)} "
           "and (result gt 405 or result le 402)")
    got = api.all("Datastreams('alpha.a1.scd41.co2')/Observations", **{"$filter": flt})
    expected = [(t, v) for t, v in written(api)["alpha.a1.scd41.co2"]
                if lo <= t < hi and (v > 405 or v <= 402)]
    assert expected and [(ms(o["phenomenonTime"]), o["result"]) for o in got] == expected


def test_filter_on_the_thing_through_navigation(api: Api) -> None:
    got = api.all("Observations", **{
        "$filter": "Datastream/Thing/name eq 'b1' and Datastream/ObservedProperty/name eq "
                   "'co2' and result ge 480", "$top": "1000"})
    expected = [(r.time_ms, r.value) for r in api.city.readings
                if r.device == "b1" and r.quantity == "co2" and r.value >= 480]
    assert expected and [(ms(o["phenomenonTime"]), o["result"]) for o in got] == sorted(expected)
    things = api.json("Things", **{"$filter": "properties/site eq 'beta' or name eq 'a9'"})
    assert sorted(t["@iot.id"] for t in things["value"]) == ["alpha.a9", "beta.b1"]
    dss = api.json("Datastreams", **{"$filter": "startswith(name, 'co2') and "
                                                "Thing/properties/site eq 'alpha'"})
    assert sorted(d["@iot.id"] for d in dss["value"]) == ["alpha.a1.scd41.co2",
                                                         "alpha.a2.scd41.co2"]
    assert api.json("Datastreams", **{"$filter": "id eq 'beta.b1.scd41.co2'"})["value"][0][
        "unitOfMeasurement"]["symbol"] == "[ppm]"


def test_orderby_on_small_sets(api: Api) -> None:
    names = [t["name"] for t in api.json("Things", **{"$orderby": "name desc"})["value"]]
    assert names == sorted(names, reverse=True)
    got = api.all("Datastreams", **{"$orderby": "Thing/properties/site desc, id", "$top": "2"})
    keys = [(d["@iot.id"].split(".")[0], d["@iot.id"]) for d in got]
    assert len(got) == 13 and keys == sorted(keys, key=lambda k: (-ord(k[0][0]), k[1]))


def test_expand_latest_observation_per_datastream(api: Api) -> None:
    t = api.json("Things('alpha.a1')", **{
        "$expand": "Datastreams($select=id;$expand=Observations($top=1;"
                   "$orderby=phenomenonTime desc;$select=result,phenomenonTime))"})
    latest = {k: v[-1] for k, v in written(api).items()}
    seen = {d["@iot.id"]: d["Observations"] for d in t["Datastreams"]}
    assert set(seen) == {"alpha.a1.scd41.co2", "alpha.a1.scd41.temperature",
                         "alpha.a1.scd41.humidity", "alpha.a1.bh1750.illuminance"}
    for dsid, obs in seen.items():
        if dsid in latest:
            assert [(ms(obs[0]["phenomenonTime"]), obs[0]["result"])] == [latest[dsid]]
        else:
            assert obs == []  # declared by the station, never reported


def test_expand_paths_and_nested_options(api: Api) -> None:
    o = api.json(f"Observations('{DENSE}.{api.city.t0}')",
                 **{"$expand": "Datastream/Thing,Datastream/Sensor,FeatureOfInterest"})
    assert o["result"] == 20.0
    assert o["Datastream"]["Thing"]["@iot.id"] == "alpha.p1"
    assert o["Datastream"]["Sensor"]["name"] == "sht4x"
    assert o["FeatureOfInterest"]["@iot.id"] == "alpha.p1.0"
    ds = api.json(f"Datastreams('{DENSE}')", **{"$expand": "Observations($top=2;$count=true)"})
    assert ds["Observations@iot.count"] == DENSE_N and len(ds["Observations"]) == 2
    nxt = httpx.get(ds["Observations@iot.nextLink"], timeout=30).json()
    assert [ms(x["phenomenonTime"]) for x in nxt["value"]] == [
        t for t, _ in written(api)[DENSE][2:4]]


def test_locations_and_history(api: Api) -> None:
    locs = api.json("Things('alpha.a1')/Locations")["value"]
    assert [(lo["@iot.id"], lo["location"]) for lo in locs] == [
        ("alpha.a1.2", {"type": "Point", "coordinates": [16.875, 41.125]})]
    assert locs[0]["encodingType"] == "application/geo+json"
    hist = api.json("Things('alpha.a1')/HistoricalLocations",
                    **{"$expand": "Locations", "$orderby": "time desc"})["value"]
    t0 = api.city.t0
    assert [(h["time"], h["Locations"][0]["location"]["coordinates"]) for h in hist] == [
        (iso(t0 - HOUR), [16.875, 41.125]), (iso(t0 - 24 * HOUR), [16.8, 41.1])]
    assert api.json("Locations('alpha.a1.1')/Things")["value"][0]["name"] == "a1"
    # an observation after the move belongs to the second deployment
    first = api.json("Datastreams('alpha.a1.scd41.co2')/Observations",
                     **{"$top": "1", "$expand": "FeatureOfInterest"})["value"][0]
    assert first["FeatureOfInterest"]["@iot.id"] == "alpha.a1.2"
    assert first["FeatureOfInterest"]["feature"]["coordinates"] == [16.875, 41.125]
    n = len(written(api)["alpha.a1.scd41.co2"]) + len(written(api)["alpha.a1.scd41.temperature"]) \
        + len(written(api)["alpha.a1.bh1750.illuminance"])
    assert len(api.all("FeaturesOfInterest('alpha.a1.2')/Observations", **{"$top": "1000"})) == n
    assert api.all("FeaturesOfInterest('alpha.a1.1')/Observations") == []


def test_navigation_and_properties(api: Api) -> None:
    assert api.json(f"Datastreams('{DENSE}')/Thing")["@iot.id"] == "alpha.p1"
    assert api.json(f"Datastreams('{DENSE}')/ObservedProperty")["definition"].startswith("http")
    assert api.json("Things('alpha.a1')/name") == {"name": "a1"}
    r = api.get("Things('alpha.a1')/name/$value")
    assert r.status_code == 200 and r.text == "a1"
    s = api.json("Sensors('scd41')")
    assert s["encodingType"] == "text/html" and s["metadata"].startswith("https://")
    assert {d["@iot.id"] for d in api.json("Sensors('scd41')/Datastreams")["value"]} >= {
        "alpha.a1.scd41.co2", "beta.b1.scd41.humidity"}


@pytest.mark.parametrize(("path", "params", "status"), [
    ("Things('nope.nope')", {}, 404),
    ("Observations('alpha.a1.scd41.co2.1')", {}, 404),
    ("Nothing", {}, 404),
    ("Things", {"$filter": "name eq"}, 400),
    ("Things", {"$filter": "nosuchfunc(name)"}, 400),
    ("Things", {"$filter": "nosuch eq 1"}, 400),
    ("Observations", {"$orderby": "result"}, 400),
    ("Things", {"$top": "-1"}, 400),
    ("Things", {"$bogus": "1"}, 400),
    ("Things", {"$expand": "Nothing"}, 400),
    ("Things", {"$select": "nothing"}, 400),
    ("Things", {"$skiptoken": "!!"}, 400),
])
def test_errors_are_json_4xx(api: Api, path: str, params: dict[str, str], status: int) -> None:
    r = api.get(path, **params)
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["code"] == status and body["type"] == "error" and body["message"]


def test_read_only_and_cors(api: Api) -> None:
    r = httpx.post(f"{api.url}/Things", json={"name": "x"}, timeout=10)
    assert r.status_code == 405 and r.json()["type"] == "error"
    r = httpx.get(f"{api.url}/Things", headers={"Origin": "https://example.org"}, timeout=10)
    assert r.headers["access-control-allow-origin"] == "*"
    r = httpx.options(f"{api.url}/Things", headers={
        "Origin": "https://example.org", "Access-Control-Request-Method": "GET"}, timeout=10)
    assert r.status_code == 200 and "GET" in r.headers["access-control-allow-methods"]


def test_filter_any_and_all_over_small_collections(api: Api) -> None:
    def ids_of(flt: str) -> list[str]:
        return sorted(t["@iot.id"] for t in api.json("Things", **{"$filter": flt})["value"])
    assert ids_of("Datastreams/any(d: d/ObservedProperty/name eq 'illuminance')") == [
        "alpha.a1"]
    assert ids_of("Datastreams/all(d: d/Sensor/name eq 'scd41')") == ["alpha.a2", "beta.b1"]
    assert ids_of("Locations/any()") == ["alpha.a1"]
    dss = api.json("Datastreams", **{"$filter": "Thing/Locations/any(l: l/name eq "
                                                "'a1 deployment 2') and endswith(id, 'co2')"})
    assert [d["@iot.id"] for d in dss["value"]] == ["alpha.a1.scd41.co2"]
    r = api.get("Things", **{"$filter": "Datastreams/name eq 'x'"})
    assert r.status_code == 400 and "any(" in r.json()["message"]


def test_skip_beyond_a_page_in_descending_order(api: Api) -> None:
    """A $skip larger than any page, newest first: the backward walk holds at most a page
    and resumes below it, and still lands on the right rows."""
    got = api.json(f"Datastreams('{DENSE}')/Observations",
                   **{"$orderby": "phenomenonTime desc", "$skip": "1500", "$top": "5"})
    assert [ms(o["phenomenonTime"]) for o in got["value"]] == [
        t for t, _ in written(api)[DENSE][::-1][1500:1505]]


def test_an_entity_within_a_navigated_collection(api: Api) -> None:
    ds = api.json("Things('alpha.a1')/Datastreams('alpha.a1.scd41.co2')")
    assert ds["@iot.id"] == "alpha.a1.scd41.co2"
    assert api.get("Things('alpha.a2')/Datastreams('alpha.a1.scd41.co2')").status_code == 404
    t = api.city.t0 + 123
    o = api.json(f"Datastreams('alpha.a1.scd41.co2')/Observations('alpha.a1.scd41.co2.{t}')")
    assert o["result"] == 400.0
    assert api.get(f"Datastreams('alpha.a2.scd41.co2')/Observations("
                   f"'alpha.a1.scd41.co2.{t}')").status_code == 404
