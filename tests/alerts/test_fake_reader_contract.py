"""The alerts tests' ``FakeReader`` against the real SQLite reader, on one small city.

The fake is filled with what the real reader gives back (its raw points: every
``device`` point, every station, reading and delivery row), then both answer the
same questions: the latest point per gateway and device, windows, filters. A fake
that answers differently (latest not the latest, a filter ignored, another shape)
would let the rules' tests pass against a store that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway.stores.centre import CentreReader
from gateway.stores.readers import make_centre_reader
from protocols.config import parse_config
from tests.centre.data import HOUR, City, build, write

from .fake_reader import FakeReader

# checked by mypy: the fake is a whole CentreReader, as the engine takes it
_FAKE: type[CentreReader] = FakeReader

@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CentreReader,
                                                                        FakeReader, City]]:
    base = tmp_path_factory.mktemp("city")
    cfg = parse_config({"store": {"kind": "sqlite", "path": str(base / "r.sqlite")}}, base,
                       env={}, need_site=False)
    city = build()
    write(cfg.store, city.points)
    real = make_centre_reader(cfg)
    lo, hi = city.t0 - 30 * HOUR, city.t0 + 4 * HOUR  # the whole city (readings: in hours)
    fake = FakeReader(gateway_points=[], device_pts=real.device_points(lo, hi),
                      station_pts=real.station_history(),
                      reading_rows=list(real.readings(lo, hi)),
                      delivery_rows=real.delivery(lo, hi))
    # gateway points: the real reader gives the latest only; the fake gets older ones too
    latest = real.gateways()
    older = [type(g)(**{**vars(g), "time_ms": g.time_ms - HOUR, "up": 1.0 - g.up})
             for g in latest]
    fake.gateway_points = older + latest
    try:
        yield real, fake, city
    finally:
        real.close()


def _key(x: Any) -> Any:
    return repr(x)


@pytest.mark.parametrize("sites", [(), ("alpha",), ("beta",)])
def test_same_answers(both: tuple[CentreReader, FakeReader, City],
                      sites: tuple[str, ...]) -> None:
    real, fake, city = both
    t0 = city.t0
    assert fake.sites() == real.sites()
    for name, call in [
        ("gateways", lambda r: r.gateways(sites)),
        ("devices", lambda r: r.devices(sites)),
        ("device_points", lambda r: r.device_points(t0, t0 + HOUR, sites)),
        ("stations", lambda r: r.stations(sites)),
        ("station_history", lambda r: r.station_history(sites, ("a1",))),
        ("latest_reading_times", lambda r: r.latest_reading_times(sites)),
        ("latest_values", lambda r: r.latest_values(sites, ("a2",))),
        ("latest_values since", lambda r: r.latest_values(sites, (), t0 + 80 * 60_000)),
        ("readings", lambda r: list(r.readings(t0, t0 + HOUR, sites, (), ("air",),
                                               ("co2",)))),
        ("delivery", lambda r: r.delivery(t0, t0 + 2 * HOUR, sites)),
    ]:
        want, got = call(real), call(fake)
        assert type(got) is type(want), name
        if isinstance(want, list) and name != "readings":  # readings: in the same order
            assert sorted(got, key=_key) == sorted(want, key=_key), name
        else:
            assert got == want, name
        if not sites:
            assert want, f"{name}: the city answers nothing, a vacuous comparison"
