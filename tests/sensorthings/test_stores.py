"""The same API over InfluxDB 1 and VictoriaMetrics (real servers): counts, every
observation of every Datastream, paging, a filtered window, locations.

VictoriaMetrics keeps 12 significant digits, so values are compared to 12 digits
there; times always exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocols.config import parse_config
from tests.centre.data import MIN, write
from tests.servers import Influxd, VictoriaMetrics, stop_pid

from .conftest import DENSE, DENSE_N, Api, city, start
from .test_api import iso, ms, written

pytestmark = pytest.mark.slow


def _same(kind: str, a: float, b: float) -> bool:
    return a == b if kind != "victoria" else float(f"{a:.12g}") == float(f"{b:.12g}")


@pytest.fixture(scope="module", params=["influxd", "victoria"])
def remote(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, Api]]:
    base: Path = tmp_path_factory.mktemp(request.param)
    server: Influxd | VictoriaMetrics
    if request.param == "influxd":
        server = Influxd(base / "influxd")
        server.start()
        store: dict[str, Any] = {"kind": "influxdb1", "url": server.url, "database": "city"}
    else:
        server = VictoriaMetrics(base / "vm")
        server.start()
        store = {"kind": "influxdb2", "url": server.url}
    try:
        c = city()
        write(parse_config({"store": store}, base, env={}, need_site=False).store, c.points)
        if isinstance(server, VictoriaMetrics):
            server.flush()
        config = base / "sta.toml"
        lines = [f'{k} = "{v}"' for k, v in store.items()]
        config.write_text("[store]\n" + "\n".join(lines) + "\n")
        proc, url = start(config)
        try:
            yield request.param, Api(url, c, config, store)
        finally:
            stop_pid(proc.pid)
    finally:
        server.stop()


def test_counts(remote: tuple[str, Api]) -> None:
    _, api = remote
    for path, n in (("Things", 5), ("Datastreams", 13), ("Locations", 2),
                    ("FeaturesOfInterest", 6), ("Sensors", 4)):
        assert api.json(path, **{"$count": "true"})["@iot.count"] == n, path


def test_every_observation_and_paging(remote: tuple[str, Api]) -> None:
    kind, api = remote
    for dsid, expected in written(api).items():
        for order in ("phenomenonTime asc", "phenomenonTime desc"):
            got = api.all(f"Datastreams('{dsid}')/Observations",
                          **{"$top": "1000" if dsid == DENSE else "17", "$orderby": order})
            pairs = [(ms(o["phenomenonTime"]), o["result"]) for o in got]
            want = expected if order.endswith("asc") else expected[::-1]
            assert [t for t, _ in pairs] == [t for t, _ in want], (dsid, order)
            assert all(_same(kind, a, b) for (_, a), (_, b) in zip(pairs, want, strict=True))
    assert len(written(api)[DENSE]) == DENSE_N


def test_filtered_window_and_locations(remote: tuple[str, Api]) -> None:
    _, api = remote
    lo, hi = api.city.t0 + 10 * MIN, api.city.t0 + 40 * MIN
    got = api.all("Observations", **{
        "$filter": f"Datastream/Thing/name eq 'a2' and phenomenonTime ge {iso(lo)} and "
                   f"phenomenonTime lt {iso(hi)}", "$top": "7"})
    want = sorted((r.time_ms, r.quantity) for r in api.city.readings
                  if r.device == "a2" and lo <= r.time_ms < hi)
    assert [(ms(o["phenomenonTime"]), o["@iot.id"].split(".")[3]) for o in got] == want
    locs = api.json("Things('alpha.a1')/Locations")["value"]
    assert locs[0]["location"]["coordinates"] == [16.875, 41.125]
    latest = api.json("Things('alpha.a2')/Datastreams", **{
        "$expand": "Observations($top=1;$orderby=phenomenonTime desc)"})["value"]
    newest = {k: v[-1][0] for k, v in written(api).items() if ".a2." in k}
    assert {d["@iot.id"]: ms(d["Observations"][0]["phenomenonTime"]) for d in latest} == newest
