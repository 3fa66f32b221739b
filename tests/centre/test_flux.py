"""The Flux reader (InfluxDB 2) without a server: the query texts it sends, and what it
makes of records shaped as Flux answers them (no InfluxDB 2 runs here)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway.stores.flux_reader import FluxReader
from protocols.config import StoreSection

T = 1_796_000_000_000


class Fake:
    """Answers each query with the next canned record list; keeps the texts."""

    def __init__(self, *answers: list[dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.texts: list[str] = []

    def __call__(self, flux: str) -> Iterator[dict[str, Any]]:
        self.texts.append(flux)
        return iter(self.answers.pop(0) if self.answers else [])


def reader(fake: Fake) -> FluxReader:
    return FluxReader(StoreSection(kind="influxdb2", bucket="city"), 86400, 3600, query=fake)


def rec(m: str, field: str, value: Any, t: int, **tags: str) -> dict[str, Any]:
    return {"_measurement": m, "_field": field, "_value": value, "_time": t, **tags}


def test_latest_device_point_from_last_records() -> None:
    fake = Fake([
        rec("device", "online", 1.0, T, site="a", device="d1"),
        rec("device", "rssi", -60.0, T, site="a", device="d1"),
        rec("device", "fw", "1.0.0", T, site="a", device="d1"),   # a string field: not a number
        rec("device", "online", 0.0, T + 5000, site="a", device="d2"),
        rec("device", "rssi", -70.0, T, site="a", device="d2"),   # older than d2's last will
        rec("device_info", "v", 1.0, T, site="a", device="d1", fw="1.0.0", board="pico_w"),
        rec("device_info", "v", 1.0, T - 9000, site="a", device="d1", fw="0.9.0"),
    ])
    r = reader(fake)
    got = {d.device: d for d in r.devices(["a"])}
    assert got["d1"].fields == {"online": 1.0, "rssi": -60.0}
    assert got["d1"].strings == {"fw": "1.0.0", "board": "pico_w"}
    assert (got["d2"].time_ms, got["d2"].fields) == (T + 5000, {"online": 0.0})
    q = fake.texts[0]
    assert 'from(bucket: "city")' in q and "|> last()" in q
    assert '(r._measurement == "device" or r._measurement == "device_info")' in q
    assert 'and (r.site == "a")' in q
    assert r.queries() == 1


def test_readings_and_latest_queries() -> None:
    fake = Fake([rec("air", "co2", 500.0, T, site="a", device="d1", sensor="scd41"),
                 rec("air", "co2", 400.0, T - 1, site="a", device="d2", sensor="scd41")])
    r = reader(fake)
    rows = list(r.readings(T - 10, T + 10, sites=["a"], quantities=["co2"]))
    assert [(x.device, x.time_ms) for x in rows] == [("d2", T - 1), ("d1", T)]
    q = fake.texts[0]
    assert 'not contains(value: r._measurement, set: ["delivery", "device", "gateway", ' \
           '"rejections", "station"])' in q
    assert 'strings.hasSuffix(v: r._measurement, suffix: "_info")' in q
    assert 'and (r._field == "co2")' in q
    assert "range(start: 2026-11-30T00:53:19.990Z, stop: 2026-11-30T00:53:20.010Z)" in q
    fake.answers.append([rec("air", "co2", 500.0, T, site="a", device="d1", sensor="scd41"),
                         rec("light", "illuminance", 5.0, T + 7, site="a", device="d1",
                             sensor="bh1750")])
    assert r.latest_reading_times() == {("a", "d1"): T + 7}


def test_series_delivery_rejections_stations() -> None:
    fake = Fake(
        [{"_time": T, "_value": 1.5, "sensor": "scd41"}, {"_time": T + 60_000, "_value": None,
                                                           "sensor": "scd41"}],
        [rec("delivery", "accepted", 58.0, T, site="a", device="d1"),
         rec("delivery", "missing", 2.0, T, site="a", device="d1")],
        [rec("rejections", "count", 3.0, T, site="a", device="d1", reason="out_of_range")],
        [rec("station", "lat", 41.1, T, site="a", device="d1"),
         rec("station", "retired", 0.0, T, site="a", device="d1"),
         rec("station_info", "v", 1.0, T, site="a", device="d1", sensors="scd41,bh1750",
             room="Hall")],
    )
    r = reader(fake)
    s = r.series("a", "d1", "air", "co2", T, T + 120_000, 60_000)
    assert [(p.sensor, p.time_ms, p.value) for p in s] == [("scd41", T, 1.5)]
    assert "aggregateWindow(every: 60000ms, fn: mean" in fake.texts[0]
    d = r.delivery(T, T + 1)
    assert [(x.accepted, x.missing, x.received) for x in d] == [(58, 2, 0)]
    assert [(x.reason, x.count) for x in r.rejections(T, T + 1)] == [("out_of_range", 3)]
    st = r.station_history(["a"])
    assert [(x.lat, x.sensors, x.room, x.retired) for x in st] == [
        (41.1, ("scd41", "bh1750"), "Hall", False)]
    assert r.queries() == 4
