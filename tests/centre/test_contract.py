"""The centre reader contract, run against every store kind (real servers).

What was written (tests/centre/data.py) must come back exactly: numbers, strings
from the ``_info`` companions, the latest point per device (a last will after a
status), histories, windows, the sites filter; plus ``read_urls`` failover and a
number of queries that does not grow with the number of devices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.stores.centre import CentreReader
from gateway.stores.readers import make_centre_reader
from gateway.stores.reading import StoreUnreadable
from protocols.config import parse_config
from tests.centre.data import HOUR, MIN, build, write
from tests.servers import Influxd, VictoriaMetrics, free_port

KINDS = ["sqlite", "influxd", "victoria"]


def _approx(want: float, got: object) -> float:
    """``got`` when it is ``want`` to 12 significant digits (VictoriaMetrics keeps 12)."""
    if isinstance(got, tuple):
        got = got[1]
    return float(got) if got == pytest.approx(want, rel=1e-12) else want  # type: ignore[arg-type]


def _cfg(store: dict[str, Any], base: Path) -> Any:
    return parse_config({"store": store}, base, env={}, need_site=False)


class Store:
    """One store kind with a city written in it; ``config(extra)`` for readers."""

    def __init__(self, kind: str, base: Path, n_extra: int = 0) -> None:
        self.kind, self.base = kind, base
        self.server: Influxd | VictoriaMetrics | None = None
        if kind == "sqlite":
            self.store: dict[str, Any] = {"kind": "sqlite", "path": str(base / "r.sqlite")}
        elif kind == "influxd":
            self.server = Influxd(base / "influxd")
            self.server.start()
            self.store = {"kind": "influxdb1", "url": self.server.url, "database": "city"}
        else:
            self.server = VictoriaMetrics(base / "vm")
            self.server.start()
            self.store = {"kind": "influxdb2", "url": self.server.url}
        self.city = build(n_extra)
        write(_cfg(self.store, base).store, self.city.points)
        if isinstance(self.server, VictoriaMetrics):
            self.server.flush()

    def reader(self, **store: Any) -> CentreReader:
        return make_centre_reader(_cfg({**self.store, **store}, self.base))

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@pytest.fixture(scope="module", params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Store]:
    s = Store(request.param, tmp_path_factory.mktemp(request.param))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def reader(store: Store) -> Iterator[CentreReader]:
    r = store.reader()
    try:
        yield r
    finally:
        r.close()


def test_sites_and_check(reader: CentreReader) -> None:
    reader.check()
    assert reader.sites() == ["alpha", "beta"]


def test_gateways_latest_point_each(reader: CentreReader, store: Store) -> None:
    t0 = store.city.t0
    gws = {g.gateway: g for g in reader.gateways()}
    assert set(gws) == {"gw1", "gw-b"}
    a = gws["gw1"]
    assert (a.site, a.time_ms, a.up, a.buffer_points, a.buffer_oldest_s, a.uptime_s,
            a.disk_free_bytes, a.devices_online, a.broker_connected, a.interval_s, a.version) \
        == ("alpha", t0 + 80 * MIN + 60_000, 1.0, 12.0, 2.5, 660.0, 5e9, 2.0, 1.0, 30.0, "0.9.0")
    b = gws["gw-b"]
    assert (b.up, b.interval_s, b.version, b.time_ms) == (0.0, 15.0, "0.8.1", t0 + 85 * MIN)
    assert [g.gateway for g in reader.gateways(["beta"])] == ["gw-b"]


def test_devices_latest_point_and_strings(reader: CentreReader, store: Store) -> None:
    t0 = store.city.t0
    devs = {(d.site, d.device): d for d in reader.devices()}
    assert set(devs) == {("alpha", "a1"), ("alpha", "a2"), ("beta", "b1")}
    a1 = devs[("alpha", "a1")]
    # the last will is the latest point: online alone; strings from the newest companion
    assert (a1.time_ms, a1.fields, a1.online) == (t0 + 60 * MIN, {"online": 0.0}, 0.0)
    assert a1.strings == {"fw": "1.1.0", "board": "pico_w", "update_state": "confirmed",
                          "update_version": "1.1.0"}
    a2 = devs[("alpha", "a2")]
    assert a2.fields == {"online": 1.0, "dropped": 2.0, "sensor_errors": 1.0}
    assert a2.strings == {"fw": "1.0.0"}
    b1 = devs[("beta", "b1")]
    assert b1.strings["update_reason"] == "crc mismatch, reverted = bad"
    assert b1.fields == {"online": 1.0, "uptime": 5.0}
    assert [d.device for d in reader.devices(["beta"])] == ["b1"]


def test_device_points_window(reader: CentreReader, store: Store) -> None:
    t0 = store.city.t0
    pts = reader.device_points(t0, t0 + 60 * MIN + 1)
    assert [(p.device, p.time_ms) for p in pts] == [
        ("a1", t0), ("a2", t0 + 10 * MIN), ("b1", t0 + 20 * MIN), ("a1", t0 + 30 * MIN),
        ("a1", t0 + 60 * MIN)]
    assert pts[0].fields == {"online": 1.0, "rssi": -60.0, "heap_free": 123456.0,
                             "uptime": 100.0, "interval_s": 60.0, "boot": 3.0}
    assert pts[0].strings == {"fw": "1.0.0", "board": "pico_w"}
    assert pts[3].strings["update_state"] == "confirmed"
    assert pts[4].strings == {} and pts[4].fields == {"online": 0.0}
    assert [p.device for p in reader.device_points(t0, t0 + HOUR, ["beta"])] == ["b1"]
    assert reader.device_points(t0 + 1, t0 + 10 * MIN) == []  # end exclusive


def test_stations_current_and_history(reader: CentreReader, store: Store) -> None:
    t0 = store.city.t0
    now = {(s.site, s.device): s for s in reader.stations()}
    assert set(now) == {("alpha", "a1"), ("beta", "b1"), ("alpha", "a9")}
    a1 = now[("alpha", "a1")]
    assert (a1.time_ms, a1.lat, a1.lon, a1.deployment, a1.retired, a1.board, a1.sensors,
            a1.room, a1.zone, a1.note) == (t0 - HOUR, 41.125, 16.875, 2, False, "pico_w",
                                           ("scd41", "bh1750"), "Hall", "", "")
    b1 = now[("beta", "b1")]
    assert (b1.retired, b1.lat, b1.lon, b1.board, b1.note) == (True, None, None, "esp32", "gone")
    hist = reader.station_history()
    assert [(s.device, s.time_ms) for s in hist] == [
        ("a1", t0 - 24 * HOUR), ("a9", t0 - 3 * HOUR), ("b1", t0 - 2 * HOUR),
        ("a1", t0 - HOUR)]
    assert (hist[0].room, hist[0].zone, hist[0].note, hist[0].lat) == \
        ("Lab 2", "north", "by the window, left", 41.1)
    assert [s.time_ms for s in reader.station_history(["alpha"], ["a1"])] == \
        [t0 - 24 * HOUR, t0 - HOUR]


def test_latest_reading_times(reader: CentreReader, store: Store) -> None:
    t0 = store.city.t0
    last = t0 + 89 * MIN + 123
    assert reader.latest_reading_times() == {("alpha", "a1"): last, ("alpha", "a2"): last,
                                             ("beta", "b1"): last}
    assert reader.latest_reading_times(["beta"]) == {("beta", "b1"): last}


def test_latest_values(reader: CentreReader, store: Store) -> None:
    want: dict[tuple[str, str, str, str, str], tuple[int, float]] = {}
    for r in store.city.readings:  # oldest first: the last one written wins
        want[(r.site, r.device, r.sensor, r.domain, r.quantity)] = (r.time_ms, r.value)
    got = {(r.site, r.device, r.sensor, r.domain, r.quantity): (r.time_ms, r.value)
           for r in reader.latest_values()}
    assert got == {k: (t, _approx(v, got.get(k))) for k, (t, v) in want.items()}
    # a2's newest point had no temperature: its temperature is the one before
    assert got[("alpha", "a2", "scd41", "air", "temperature")][0] == store.city.t0 + 88 * MIN + 123
    only = reader.latest_values(["alpha"], ["a2"])
    assert {(r.device, r.quantity) for r in only} == {("a2", "co2"), ("a2", "temperature")}
    # as far back as since_ms only: a2's temperature stopped a minute before its co2
    since = store.city.t0 + 89 * MIN
    late = reader.latest_values(["alpha"], ["a2"], since_ms=since)
    assert [(r.quantity, r.time_ms, r.value) for r in late] == [("co2", since + 123, 999.5)]


def test_readings_window_and_filters(reader: CentreReader, store: Store) -> None:
    t0 = store.city.t0
    everything = list(reader.readings(t0 - HOUR, t0 + 3 * HOUR))
    want = sorted(store.city.readings,
                  key=lambda r: (r.time_ms, r.site, r.device, r.sensor, r.quantity, r.domain))
    assert everything == [r._replace(value=_approx(r.value, g.value))
                          for r, g in zip(want, everything, strict=False)]
    part = list(reader.readings(t0 + 10 * MIN + 123, t0 + 70 * MIN + 123, sites=["alpha"],
                                devices=["a1"], domains=["air"], quantities=["co2"]))
    assert [r._replace(value=round(r.value, 9)) for r in part] == [
        r._replace(value=round(r.value, 9)) for r in want
        if r.site == "alpha" and r.device == "a1" and r.domain == "air" and r.quantity == "co2"
        and t0 + 10 * MIN + 123 <= r.time_ms < t0 + 70 * MIN + 123]
    assert len(part) == 60


def test_series_mean_per_step(reader: CentreReader, store: Store) -> None:
    t0 = store.city.t0
    step = 10 * MIN
    got = reader.series("alpha", "a1", "air", "co2", t0, t0 + 90 * MIN, step)
    sums: dict[int, list[float]] = {}
    for r in store.city.readings:
        if (r.site, r.device, r.quantity) == ("alpha", "a1", "co2"):
            sums.setdefault(r.time_ms // step * step, []).append(r.value)
    assert [(p.sensor, p.time_ms) for p in got] == [("scd41", t) for t in sorted(sums)]
    for p in got:
        assert p.value == pytest.approx(sum(sums[p.time_ms]) / len(sums[p.time_ms]), rel=1e-9)


def test_delivery_and_rejections(reader: CentreReader, store: Store) -> None:
    t0 = store.city.t0
    rows = reader.delivery(t0, t0 + 2 * HOUR)
    assert [(r.site, r.device, r.hour_ms, r.received, r.accepted, r.duplicates, r.rejected,
             r.missing) for r in rows] == [
        ("alpha", "a1", t0, 59, 58, 1, 0, 2), ("beta", "b1", t0, 60, 59, 0, 1, 0),
        ("alpha", "a1", t0 + HOUR, 61, 60, 1, 0, 0)]
    assert [r.hour_ms for r in reader.delivery(t0 + 1, t0 + 2 * HOUR, ["alpha"])] == \
        [t0 + HOUR]
    rej = reader.rejections(t0, t0 + 2 * HOUR)
    assert [(r.site, r.device, r.reason, r.hour_ms, r.count) for r in rej] == [
        ("alpha", "a1", "not_json", t0 + HOUR, 1), ("alpha", "a1", "out_of_range", t0 + HOUR, 3),
        ("beta", "b1", "too_many_rejections", t0 + HOUR, 2)]
    assert [r.site for r in reader.rejections(t0, t0 + 2 * HOUR, ["beta"])] == ["beta"]
    assert reader.rejections(t0, t0 + HOUR) == []


def test_lookback_bounds_latest(store: Store) -> None:
    """``[console] lookback_s``: nothing older is "latest"."""
    base = store.base
    cfg = parse_config({"store": store.store, "console": {"lookback_s": 60}}, base, env={},
                       need_site=False)
    r = make_centre_reader(cfg)
    try:
        assert r.devices() == [] and r.latest_reading_times() == {}
        assert r.latest_values() == [] and r.gateways() == []
    finally:
        r.close()


def test_read_urls_failover(store: Store) -> None:
    if store.kind == "sqlite":
        pytest.skip("one file: no read URLs")
    dead = f"http://127.0.0.1:{free_port()}"
    r = store.reader(read_urls=[dead, store.store["url"]])
    try:
        assert r.sites() == ["alpha", "beta"]
        assert len(r.devices()) == 3
    finally:
        r.close()
    r = store.reader(read_urls=[dead], flavour="victoriametrics"
                     if store.kind == "victoria" else "auto")
    try:
        with pytest.raises(StoreUnreadable, match="read_urls"):
            r.devices()
    finally:
        r.close()


def _calls(r: CentreReader, t0: int) -> dict[str, int]:
    out: dict[str, int] = {}
    calls: dict[str, Callable[[], object]] = {
        "sites": lambda: r.sites(), "gateways": lambda: r.gateways(),
        "devices": lambda: r.devices(), "stations": lambda: r.stations(),
        "station_history": lambda: r.station_history(),
        "device_points": lambda: r.device_points(t0, t0 + 2 * HOUR),
        "latest_reading_times": lambda: r.latest_reading_times(),
        "latest_values": lambda: r.latest_values(),
        "readings": lambda: list(r.readings(t0, t0 + 2 * HOUR)),
        "series": lambda: r.series("alpha", "a1", "air", "co2", t0, t0 + HOUR, MIN),
        "delivery": lambda: r.delivery(t0, t0 + 2 * HOUR),
        "rejections": lambda: r.rejections(t0, t0 + 2 * HOUR),
    }
    for name, call in calls.items():
        before = r.queries()
        call()
        out[name] = r.queries() - before
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_query_count_does_not_grow_with_devices(kind: str, tmp_path: Path) -> None:
    counts = []
    for n in (2, 50):
        s = Store(kind, tmp_path / str(n), n_extra=n)
        try:
            r = s.reader(flavour="victoriametrics" if kind == "victoria" else "auto")
            try:
                assert len(r.devices()) == 3 + n
                counts.append(_calls(r, s.city.t0))
            finally:
                r.close()
        finally:
            s.stop()
    assert counts[0] == counts[1]
    assert all(1 <= v <= 4 for v in counts[0].values()), counts[0]


def test_flavour_is_probed_once_per_reader(store: Store) -> None:
    """``auto`` asks ``/health`` of the first read URL that answers; the readers of the
    exports and of the centre are the same class."""
    from gateway.stores import make_reader
    from gateway.stores.readers import detect_flavour

    r = store.reader()
    e = make_reader(_cfg(store.store, store.base).store)
    try:
        assert type(r).__name__ == type(e).__name__
    finally:
        r.close()
        e.close()
    if store.kind == "sqlite":
        return
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = _cfg({**store.store, "kind": "influxdb2", "read_urls": [dead, store.store["url"]]},
               store.base)
    assert detect_flavour(cfg.store) == ("victoriametrics" if store.kind == "victoria"
                                         else "influxdb")


def test_export_window_of_device_points_holds_numbers_only(store: Store) -> None:
    """The exports' ``window`` over ``device`` (``--domain device``): the numeric fields,
    never a string field nor the ``device_info`` companion, on every store kind."""
    from gateway.stores import make_reader

    r = make_reader(_cfg(store.store, store.base).store)
    try:
        t0 = store.city.t0
        rows = r.window(t0, t0 + HOUR + 1, ["device"], [])
    finally:
        r.close()
    assert {x.quantity for x in rows} == {"online", "rssi", "heap_free", "uptime",
                                          "interval_s", "boot", "dropped", "sensor_errors"}
    assert len(rows) == 6 + 4 + 1 + 3 + 2
