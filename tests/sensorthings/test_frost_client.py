"""The API through a SensorThings client the project did not write: FROST's Python
client (``frost_sta_client``, Fraunhofer IOSB), as a data team would use it."""

from __future__ import annotations

import frost_sta_client as fsc  # type: ignore[import-untyped]

from .conftest import DENSE, DENSE_N, Api, ds_of


def test_client_lists_entities(api: Api) -> None:
    service = fsc.SensorThingsService(api.url)
    things = {t.id: t for t in service.things().query().list()}
    assert set(things) == {"alpha.a1", "alpha.a2", "alpha.a9", "alpha.p1", "beta.b1"}
    assert things["alpha.a1"].name == "a1"
    assert things["alpha.a1"].properties["site"] == "alpha"
    assert len(list(service.datastreams().query().list())) == 13
    assert {s.name for s in service.sensors().query().list()} == {
        "scd41", "bh1750", "pms5003", "sht4x"}
    locs = list(service.locations().query().list())
    assert {lo.id for lo in locs} == {"alpha.a1.1", "alpha.a1.2"}


def test_client_pages_every_observation_of_a_datastream(api: Api) -> None:
    service = fsc.SensorThingsService(api.url)
    ds = service.datastreams().find(DENSE)
    assert ds.unit_of_measurement.symbol == "Cel"
    obs = list(ds.get_observations().query().top(1000).list())
    expected = sorted((r.time_ms, r.value) for r in api.city.readings if ds_of(r) == DENSE)
    assert len(obs) == DENSE_N
    got = [(int(o.id.rsplit(".", 1)[1]), o.result) for o in obs]
    assert got == expected


def test_client_filter_and_orderby(api: Api) -> None:
    service = fsc.SensorThingsService(api.url)
    q = (service.observations().query()
         .filter("Datastream/Thing/name eq 'a2' and result gt 495")
         .orderby("phenomenonTime", "DESC").top(1000))
    got = [(o.id, o.result) for o in q.list()]
    expected = sorted(((f"{ds_of(r)}.{r.time_ms}", r.value) for r in api.city.readings
                       if r.device == "a2" and r.value > 495),
                      key=lambda x: int(x[0].rsplit(".", 1)[1]), reverse=True)
    assert expected and got == expected
