"""The console's store readers against real servers: points written through the
gateway's own stores, read back through each reader (InfluxQL on influxd 1.x,
MetricsQL on VictoriaMetrics, SQL on the embedded store)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway.console.influx import FluxReader, InfluxQLReader, VictoriaReader
from gateway.console.queries import SQLiteReader, StoreReader, StoreUnavailable, open_reader
from gateway.stores import make_store
from protocols.config import StoreSection, parse_config
from protocols.quantities import Registry, site_quantity
from tests.servers import Influxd, VictoriaMetrics

SITE = "bdnc-lab"
#: site quantities: one in a new domain, one in a built-in one, one in a domain with '_'
#: (VictoriaMetrics names it water_quality_ph: the reader must split it where the site does)
REG = Registry([site_quantity("noise_level", "dBA", "sound", 0, 140),
                site_quantity("no2", "ug/m3", "air", 0, 2000),
                site_quantity("ph", "pH", "water_quality", 0, 14)])


def _body(now_ms: int) -> bytes:
    """air-0001: co2 from scd41 every minute for 30 min; temperature from two sensors."""
    lines = [f"air,device=air-0001,sensor=scd41,site={SITE} co2={600 + i}.0,"
             f"temperature=21.5 {now_ms - (30 - i) * 60_000}" for i in range(30)]
    lines.append(f"air,device=air-0001,sensor=bme280,site={SITE} temperature=21.75 "
                 f"{now_ms - 30_000}")
    lines.append(f"light,device=light-0001,sensor=bh1750,site={SITE} illuminance=350.5 "
                 f"{now_ms - 90_000}")
    lines.append(f"air,device=air-0009,sensor=scd41,site=other-site co2=999.0 {now_ms - 1000}")
    lines += [f"sound,device=noise-0001,sensor=mic,site={SITE} noise_level={40 + i}.5 "
              f"{now_ms - (10 - i) * 60_000}" for i in range(10)]
    lines.append(f"air,device=noise-0001,sensor=no2cell,site={SITE} no2=31.5 {now_ms - 20_000}")
    lines.append(f"water_quality,device=noise-0001,sensor=probe,site={SITE} ph=7.25 "
                 f"{now_ms - 20_000}")
    # the gateway's own points are not readings
    lines.append(f"device,device=noise-0001,site={SITE} rssi=-60 {now_ms - 20_000}")
    return "\n".join(lines).encode()


def _write(section: StoreSection, body: bytes) -> None:
    async def go() -> None:
        store = make_store(section)
        try:
            await store.ensure_ready()
            await store.write(body, body.count(b"\n") + 1)
        finally:
            await store.aclose()
    asyncio.run(go())


def _check(reader: StoreReader, now_ms: int) -> None:
    latest = reader.latest(SITE)
    assert set(latest) == {"air-0001", "light-0001", "noise-0001"}  # the other site stays out
    assert latest["air-0001"]["co2"][0] == 629.0
    assert latest["light-0001"]["illuminance"][0] == 350.5
    assert latest["air-0001"]["temperature"][0] in (21.5, 21.75)
    noise = {q: v for q, (v, _) in latest["noise-0001"].items()}
    assert noise == {"noise_level": 49.5, "no2": 31.5, "ph": 7.25}
    one = reader.latest(SITE, 7200, "light-0001")
    assert one == {"light-0001": {"illuminance": (350.5, one["light-0001"]["illuminance"][1])}}
    assert reader.latest(SITE, 45, "air-0001").get("air-0001", {}).keys() == {"temperature"}

    s = reader.series(SITE, "air-0001", "co2", now_ms - 3600_000, now_ms + 1000, 600_000)
    assert list(s.lines) == ["scd41"]
    values = [v for v in s.lines["scd41"] if v is not None]
    assert 3 <= len(values) <= 5  # 30 readings a minute apart in 10-minute buckets
    assert min(values) >= 600.0 and max(values) <= 629.0
    t = reader.series(SITE, "air-0001", "temperature", now_ms - 3600_000, now_ms + 1000,
                      600_000)
    assert set(t.lines) == {"scd41", "bme280"}
    assert reader.series(SITE, "air-0001", "co2", now_ms - 7200_000, now_ms - 3600_000,
                         600_000).times == []

    n = reader.series(SITE, "noise-0001", "noise_level", now_ms - 3600_000, now_ms + 1000,
                      60_000)
    assert list(n.lines) == ["mic"]
    assert sorted(v for v in n.lines["mic"] if v is not None) == [40.5 + i for i in range(10)]
    for quantity, sensor, value in (("no2", "no2cell", 31.5), ("ph", "probe", 7.25)):
        s = reader.series(SITE, "noise-0001", quantity, now_ms - 3600_000, now_ms + 1000,
                          3600_000)
        assert {k: [v for v in vs if v is not None] for k, vs in s.lines.items()} == {
            sensor: [value]}, quantity



@pytest.mark.timeout(60)
def test_sqlite_reader(tmp_path: Path) -> None:
    now_ms = int(time.time() * 1000)
    section = StoreSection(kind="sqlite", path=tmp_path / "r.sqlite")
    _write(section, _body(now_ms))
    _check(SQLiteReader(tmp_path / "r.sqlite", REG), now_ms)
    assert SQLiteReader(tmp_path / "missing.sqlite", REG).latest(SITE) == {}
    (tmp_path / "bad.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreUnavailable):
        SQLiteReader(tmp_path / "bad.sqlite", REG).latest(SITE)


@pytest.mark.timeout(90)
def test_influxql_reader(influxd: Influxd) -> None:
    now_ms = int(time.time() * 1000)
    section = StoreSection(kind="influxdb1", url=influxd.url, database="lab")
    _write(section, _body(now_ms))
    _check(InfluxQLReader(section, REG), now_ms)
    assert InfluxQLReader(StoreSection(kind="influxdb1", url=influxd.url,
                                       database="nope"), REG).latest(SITE) == {}


@pytest.mark.timeout(90)
def test_victoria_reader_is_detected_for_influxdb2(tmp_path: Path,
                                                   victoria: VictoriaMetrics) -> None:
    now_ms = int(time.time() * 1000)
    section = StoreSection(kind="influxdb2", url=victoria.url, token="", bucket="lab")
    _write(section, _body(now_ms))
    victoria.flush()
    quantities = {q.name: {"unit": q.unit, "domain": q.domain, "min": q.min, "max": q.max}
                  for q in REG.site}
    cfg = parse_config({"site": SITE, "store": {"kind": "influxdb2", "url": victoria.url},
                        "quantities": quantities}, tmp_path, env={})
    reader = open_reader(cfg)  # the registry comes from the config
    assert isinstance(reader, VictoriaReader)
    _check(reader, now_ms)


def test_store_down_is_one_line(tmp_path: Path) -> None:
    from tests.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    for reader in (InfluxQLReader(StoreSection(kind="influxdb1", url=url), REG),
                   VictoriaReader(StoreSection(kind="influxdb2", url=url), REG)):
        with pytest.raises(StoreUnavailable) as err:
            reader.latest(SITE)
        assert "not reachable" in str(err.value) and "\n" not in str(err.value)
    cfg = parse_config({"site": SITE, "store": {"kind": "influxdb2", "url": url}},
                       tmp_path, env={})
    assert isinstance(open_reader(cfg), FluxReader)  # no build-info endpoint: InfluxDB 2
    with pytest.raises(StoreUnavailable):
        open_reader(cfg).ping()


class _Rec:
    def __init__(self, t_ms: int, field: str, value: float, **tags: str) -> None:
        import datetime as dt

        self.values = tags
        self._t = dt.datetime.fromtimestamp(t_ms / 1000, dt.UTC)
        self._f, self._v = field, value

    def get_time(self) -> object:
        return self._t

    def get_field(self) -> str:
        return self._f

    def get_value(self) -> float:
        return self._v


class _FakeFlux:
    """influxdb-client's query API stand-in (no InfluxDB 2.x server on Debian): records
    the Flux text and answers canned tables."""

    def __init__(self, tables: list[list[_Rec]]) -> None:
        self.tables, self.flux = tables, ""

    def query_api(self) -> _FakeFlux:
        return self

    def query(self, flux: str) -> list[object]:
        self.flux = flux

        class T:
            def __init__(self, records: list[_Rec]) -> None:
                self.records = records
        return [T(r) for r in self.tables]


def test_flux_reader_queries_and_parses() -> None:
    reader = FluxReader(StoreSection(kind="influxdb2", url="http://127.0.0.1:1", bucket="lab"),
                        REG)
    now = int(time.time() * 1000)
    reader.client = _FakeFlux([[_Rec(now, "co2", 612.0, device="air-0001")]])
    assert reader.latest(SITE)["air-0001"]["co2"][0] == 612.0
    assert 'r.site == "bdnc-lab"' in reader.client.flux and "last()" in reader.client.flux
    assert 'r._measurement == "sound"' in reader.client.flux  # the site's own domain
    reader.client = _FakeFlux([[_Rec(now - 600_000, "co2", 600.0, sensor="scd41"),
                                _Rec(now, "co2", 610.0, sensor="scd41")],
                               [_Rec(now, "temperature", 21.0, sensor="bme280")]])
    s = reader.series(SITE, "air-0001", "co2", now - 3600_000, now, 300_000)
    flux = reader.client.flux
    assert "aggregateWindow(every: 300000ms, fn: mean" in flux
    assert f"range(stop: time(v: {now * 1_000_000}), start: time(v: " in flux
    assert 'r.device == "air-0001"' in flux and 'r._field == "co2"' in flux
    assert s.lines == {"bme280": [None, 21.0], "scd41": [600.0, 610.0]}
    assert s.times == [now - 600_000, now]
    with pytest.raises(ValueError):
        reader.series(SITE, 'x" or true', "co2", 0, 1, 1)


def test_victoria_names_split_where_the_site_says() -> None:
    from gateway.console.influx import _split_name

    assert _split_name(REG, "air_co2") == ("air", "co2")
    assert _split_name(REG, "flow_flow_rate") == ("flow", "flow_rate")
    assert _split_name(REG, "water_quality_ph") == ("water_quality", "ph")
    assert _split_name(REG, "sound_noise_level") == ("sound", "noise_level")
    assert _split_name(REG, "sound_dropped_later") == ("sound", "dropped_later")
    assert _split_name(REG, "device_rssi") == ("", "")
