"""What the console asks the store, through the one reader stack (gateway/stores'
centre readers, ``make_centre_reader``): points written through the gateway's own
stores, read back by the console's questions (latest values, downsampled series)
on influxd 1.x (InfluxQL), VictoriaMetrics and the embedded SQLite store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.console import store as q
from gateway.console.server import open_reader
from gateway.stores import make_store
from gateway.stores.centre import CentreReader
from gateway.stores.flux_reader import FluxReader
from gateway.stores.readers import make_centre_reader
from gateway.stores.reading import StoreUnreadable
from protocols.config import Config, StoreSection, parse_config
from protocols.quantities import Registry, site_quantity
from tests.servers import Influxd, VictoriaMetrics

SITE = "bdnc-lab"
#: site quantities: one in a new domain, one in a built-in one, one in a domain with '_'
#: (VictoriaMetrics names it water_quality_ph: the reader must split it where the site does)
REG = Registry([site_quantity("noise_level", "dBA", "sound", 0, 140),
                site_quantity("no2", "ug/m3", "air", 0, 2000),
                site_quantity("ph", "pH", "water_quality", 0, 14)])
QUANTITIES = {x.name: {"unit": x.unit, "domain": x.domain, "min": x.min, "max": x.max}
              for x in REG.site}


def _cfg(tmp_path: Path, store: dict[str, Any]) -> Config:
    return parse_config({"site": SITE, "store": store, "quantities": QUANTITIES}, tmp_path,
                        env={})


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


def _lines(doc: dict[str, Any]) -> dict[str, list[float]]:
    return {k: [v for v in vs if v is not None] for k, vs in doc["sensors"].items()}


def _check(reader: CentreReader, now_ms: int) -> None:
    latest = q.latest(reader, SITE, 3600)
    assert set(latest) == {"air-0001", "light-0001", "noise-0001"}  # the other site stays out
    assert latest["air-0001"]["co2"][0] == 629.0
    assert latest["light-0001"]["illuminance"][0] == 350.5
    assert latest["air-0001"]["temperature"][0] == 21.75  # the newest over its sensors
    noise = {k: v for k, (v, _) in latest["noise-0001"].items()}
    assert noise == {"noise_level": 49.5, "no2": 31.5, "ph": 7.25}  # rssi is no reading
    one = q.latest(reader, SITE, 7200, "light-0001")
    assert one == {"light-0001": {"illuminance": (350.5, one["light-0001"]["illuminance"][1])}}
    assert q.latest(reader, SITE, 45, "air-0001").get("air-0001", {}).keys() == {"temperature"}

    s = q.series(reader, REG, SITE, "air-0001", "co2", now_ms - 3600_000, now_ms + 1000,
                 600_000)
    assert list(s["sensors"]) == ["scd41"]
    values = _lines(s)["scd41"]
    assert 3 <= len(values) <= 5  # 30 readings a minute apart in 10-minute buckets
    assert min(values) >= 600.0 and max(values) <= 629.0
    t = q.series(reader, REG, SITE, "air-0001", "temperature", now_ms - 3600_000,
                 now_ms + 1000, 600_000)
    assert set(t["sensors"]) == {"scd41", "bme280"}
    assert q.series(reader, REG, SITE, "air-0001", "co2", now_ms - 7200_000,
                    now_ms - 3600_000, 600_000)["times_ms"] == []

    n = q.series(reader, REG, SITE, "noise-0001", "noise_level", now_ms - 3600_000,
                 now_ms + 1000, 60_000)
    assert list(n["sensors"]) == ["mic"]
    assert sorted(_lines(n)["mic"]) == [40.5 + i for i in range(10)]
    for quantity, sensor, value in (("no2", "no2cell", 31.5), ("ph", "probe", 7.25)):
        got = q.series(reader, REG, SITE, "noise-0001", quantity, now_ms - 3600_000,
                       now_ms + 1000, 3600_000)
        assert _lines(got) == {sensor: [value]}, quantity
    # a quantity the site does not know has no readings: nothing is asked
    before = reader.queries()
    assert q.series(reader, REG, SITE, "air-0001", "nope", 0, now_ms, 1000)["times_ms"] == []
    assert reader.queries() == before


@pytest.mark.timeout(60)
def test_sqlite(tmp_path: Path) -> None:
    now_ms = int(time.time() * 1000)
    section = StoreSection(kind="sqlite", path=tmp_path / "r.sqlite")
    _write(section, _body(now_ms))
    _check(make_centre_reader(_cfg(tmp_path, {"kind": "sqlite",
                                              "path": str(tmp_path / "r.sqlite")})), now_ms)
    (tmp_path / "bad.sqlite").write_bytes(b"not a database at all" * 100)
    bad = open_reader(_cfg(tmp_path, {"kind": "sqlite", "path": str(tmp_path / "bad.sqlite")}))
    with pytest.raises(StoreUnreadable):
        q.latest(bad, SITE)


@pytest.mark.timeout(90)
def test_influxdb1(tmp_path: Path, influxd: Influxd) -> None:
    now_ms = int(time.time() * 1000)
    _write(StoreSection(kind="influxdb1", url=influxd.url, database="lab"), _body(now_ms))
    _check(make_centre_reader(_cfg(tmp_path, {"kind": "influxdb1", "url": influxd.url,
                                              "database": "lab"})), now_ms)


@pytest.mark.timeout(90)
def test_victoriametrics_is_detected_for_influxdb2(tmp_path: Path,
                                                   victoria: VictoriaMetrics) -> None:
    now_ms = int(time.time() * 1000)
    _write(StoreSection(kind="influxdb2", url=victoria.url, token="", bucket="lab"),
           _body(now_ms))
    victoria.flush()
    # flavour "auto": probed; the registry (site domains) comes from the config
    _check(make_centre_reader(_cfg(tmp_path, {"kind": "influxdb2", "url": victoria.url})),
           now_ms)


def test_store_down_is_one_line_and_recovers(tmp_path: Path) -> None:
    from tests.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    for store in ({"kind": "influxdb1", "url": url}, {"kind": "influxdb2", "url": url}):
        reader = open_reader(_cfg(tmp_path, store))  # lazy: made (probed) on first use
        with pytest.raises(StoreUnreadable) as err:
            q.latest(reader, SITE)
        assert "unreachable" in str(err.value) and "\n" not in str(err.value)
    # the console starts with the store down and reads it once it answers
    path = tmp_path / "later.sqlite"
    later = open_reader(_cfg(tmp_path, {"kind": "sqlite", "path": str(path)}))
    with pytest.raises(StoreUnreadable):
        later.check()
    now_ms = int(time.time() * 1000)
    _write(StoreSection(kind="sqlite", path=path), _body(now_ms))
    later.check()
    assert q.latest(later, SITE, 3600)["light-0001"]["illuminance"][0] == 350.5


def test_flux_latest_values_and_series_queries_and_parse() -> None:
    """InfluxDB 2.x (no server on Debian): the console's two questions through the
    centre's FluxReader, its records answered by a stand-in for the client."""
    now = int(time.time() * 1000)
    asked: list[str] = []
    answers: list[list[dict[str, Any]]] = []

    def query(flux: str) -> Iterator[dict[str, Any]]:
        asked.append(flux)
        return iter(answers.pop(0))

    reader = FluxReader(StoreSection(kind="influxdb2", url="http://127.0.0.1:1", bucket="lab"),
                        lookback_s=86400, query=query)
    answers.append([{"_time": now, "_measurement": "air", "_field": "co2", "_value": 612.0,
                     "site": SITE, "device": "air-0001", "sensor": "scd41"}])
    got = q.latest(reader, SITE, 3600)
    assert got["air-0001"]["co2"][0] == 612.0
    assert 'r.site == "bdnc-lab"' in asked[-1] and "last()" in asked[-1]
    answers.append([{"_time": now - 600_000, "_value": 600.0, "sensor": "scd41"},
                    {"_time": now, "_value": 610.0, "sensor": "scd41"},
                    {"_time": now, "_value": 21.0, "sensor": "bme280"}])
    s = q.series(reader, REG, SITE, "air-0001", "co2", now - 3600_000, now, 300_000)
    flux = asked[-1]
    assert "aggregateWindow(every: 300000ms, fn: mean" in flux
    assert 'r.device == "air-0001"' in flux and 'r._field == "co2"' in flux
    assert 'r._measurement == "air"' in flux
    assert s["sensors"] == {"bme280": [None, 21.0], "scd41": [600.0, 610.0]}
    assert s["times_ms"] == [now - 600_000, now]
    with pytest.raises(ValueError):
        q.series(reader, REG, 'x" or true', "air-0001", "co2", 0, 1, 1000)
