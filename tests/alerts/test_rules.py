"""The built-in rules and the thresholds as pure functions over a fake reader."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.alerts.engine import Engine
from gateway.alerts.model import Alert, Memory
from gateway.alerts.rules import evaluate
from gateway.alerts.snapshot import DAY_MS, Collector
from gateway.alerts.state import AlertState
from gateway.stores.centre import DeliveryRow, DevicePoint, GatewayPoint, StationPoint
from gateway.stores.reading import Reading
from protocols.config import AlertsSection, ThresholdSection

from .fake_reader import FakeReader

NOW = 1_800_000_000_000  # 2027-01-15T08:00:00Z
S = 1000


def healthy(n_devices: int = 3, sites: tuple[str, ...] = ("s1",)) -> FakeReader:
    """Every site's gateway up, every device read 20 s ago and online."""
    r = FakeReader()
    for site in sites:
        r.gateway_points.append(GatewayPoint(site, f"gw-{site}", NOW - 10 * S,
                                             disk_free_bytes=5e9))
        for i in range(n_devices):
            dev = f"air-{i:04d}"
            r.device_pts.append(DevicePoint(site, dev, NOW - 600 * S,
                                            {"online": 1.0, "interval_s": 60.0,
                                             "uptime": 3600.0}))
            r.station_pts.append(StationPoint(site, dev, NOW - 86400 * S))
            r.reading_rows.append(Reading(NOW - 20 * S, site, dev, "scd41", "air", "co2", 600.0))
    return r


def gw_at(r: FakeReader, t: int) -> None:
    """The gateways keep writing health points up to ``t``."""
    for g in list({g.gateway: g for g in r.gateway_points}.values()):
        r.gateway_points.append(replace(g, time_ms=t))


def run(r: FakeReader, cfg: AlertsSection | None = None,
        state: AlertState | None = None, now: int = NOW) -> list[str]:
    eng = Engine(r, cfg or AlertsSection(), state or AlertState())
    return sorted(a.line() for a in eng.cycle(now).firing)


def test_healthy_fleet_fires_nothing() -> None:
    assert run(healthy(50, ("s1", "s2"))) == []


def test_device_silent() -> None:
    r = healthy()
    r.reading_rows = [x for x in r.reading_rows if x.device != "air-0001"]
    r.reading_rows.append(Reading(NOW - 200 * S, "s1", "air-0001", "scd41", "air", "co2", 1.0))
    assert run(r) == ["DeviceSilent site=s1 device=air-0001 severity=warning"]


def test_delayed_is_not_silent() -> None:
    r = healthy()
    r.reading_rows = [x for x in r.reading_rows if x.device != "air-0001"]
    r.reading_rows.append(Reading(NOW - 200 * S, "s1", "air-0001", "scd41", "air", "co2", 1.0))
    r.gateway_points.append(replace(r.gateway_points[0], time_ms=NOW - 5 * S,
                                    buffer_oldest_s=300.0))
    assert run(r) == []


def test_device_offline_after_offline_for_s() -> None:
    r = healthy()
    r.reading_rows = [x for x in r.reading_rows if x.device != "air-0002"]
    r.device_pts.append(DevicePoint("s1", "air-0002", NOW - 200 * S, {"online": 0.0}))
    assert run(r) == []  # offline 200 s < 300 s
    gw_at(r, NOW + 100 * S)
    assert run(r, now=NOW + 101 * S) == [
        "DeviceOffline site=s1 device=air-0002 severity=warning"]


def test_offline_run_start_is_remembered() -> None:
    r = healthy()
    r.device_pts.append(DevicePoint("s1", "air-0002", NOW - 400 * S, {"online": 0.0}))
    eng = Engine(r, AlertsSection(), AlertState())
    first = eng.cycle(NOW)
    assert [a.name for a in first.firing] == ["DeviceOffline"]
    starts = eng.state.active[first.firing[0].key].starts_ms
    assert starts == NOW - 100 * S  # offline since -400 s, + offline_for_s
    # the gateway restarts and writes the retained last will again: same run
    r.device_pts.append(DevicePoint("s1", "air-0002", NOW + 10 * S, {"online": 0.0}))
    gw_at(r, NOW + 20 * S)
    again = eng.cycle(NOW + 30 * S)
    assert [a.name for a in again.firing] == ["DeviceOffline"]
    assert eng.state.active[first.firing[0].key].starts_ms == starts


def test_reboot_once_does_not_alert() -> None:
    r = healthy()
    # last will, then back 40 s later with uptime 5 s and a fresh reading
    r.device_pts.append(DevicePoint("s1", "air-0000", NOW - 60 * S, {"online": 0.0}))
    assert run(r) == []
    r.device_pts.append(DevicePoint("s1", "air-0000", NOW - 20 * S,
                                    {"online": 1.0, "uptime": 5.0, "interval_s": 60.0}))
    gw_at(r, NOW + 390 * S)
    r.reading_rows.append(Reading(NOW + 380 * S, "s1", "air-0000", "scd41", "air", "co2", 1.0))
    assert "air-0000" not in " ".join(run(r, now=NOW + 400 * S))


def test_gateway_down_mutes_its_devices() -> None:
    r = healthy(sites=("s1", "s2"))
    r.gateway_points = [g if g.site == "s2" else replace(g, time_ms=NOW - 100 * S)
                        for g in r.gateway_points]
    r.device_pts.append(DevicePoint("s1", "air-0002", NOW - 4000 * S, {"online": 0.0}))
    r.reading_rows = [x for x in r.reading_rows if x.site != "s1"]
    assert run(r) == ["GatewayDown site=s1 gateway=gw-s1 severity=critical"]


def test_gateway_clean_shutdown_is_down_at_once() -> None:
    r = healthy()
    r.gateway_points.append(replace(r.gateway_points[0], time_ms=NOW - 1 * S, up=0.0))
    assert run(r) == ["GatewayDown site=s1 gateway=gw-s1 severity=critical"]


def test_backlog_and_disk_low() -> None:
    r = healthy()
    r.gateway_points.append(replace(r.gateway_points[0], time_ms=NOW - 1 * S,
                                    buffer_oldest_s=601.0, disk_free_bytes=1e8))
    assert run(r) == ["BufferBacklog site=s1 gateway=gw-s1 severity=warning",
                      "DiskLow site=s1 gateway=gw-s1 severity=critical"]
    assert run(r, AlertsSection(backlog_s=700, disk_low_bytes=50_000_000)) == []


def test_retired_device_never_named() -> None:
    r = healthy()
    r.reading_rows = [x for x in r.reading_rows if x.device != "air-0001"]
    r.device_pts.append(DevicePoint("s1", "air-0001", NOW - 4000 * S, {"online": 0.0}))
    r.station_pts.append(StationPoint("s1", "air-0001", NOW - 5000 * S, retired=True))
    assert run(r) == []


def _failed(at: int, version: str = "1.4.0", state: str = "rolled_back") -> DevicePoint:
    return DevicePoint("s1", "air-0001", at, {"online": 1.0, "uptime": 3600.0},
                       {"update_state": state, "update_version": version,
                        "update_reason": "no confirm"})


def test_update_failed_for_one_hour_from_the_first_point() -> None:
    r = healthy()
    for t in range(NOW - 1800 * S, NOW, 300 * S):
        r.device_pts.append(_failed(t))
    eng = Engine(r, AlertsSection(), AlertState())
    res = eng.cycle(NOW)
    assert [a.line() for a in res.firing] == [
        "UpdateFailed site=s1 device=air-0001 severity=warning"]
    assert eng.state.active[res.firing[0].key].starts_ms == NOW - 1800 * S
    assert "device_points" in r.calls
    r.calls.clear()
    gw_at(r, NOW + 25 * S)
    eng.cycle(NOW + 30 * S)
    assert "device_points" not in r.calls  # the state dates it now
    for t in range(NOW, NOW + 1900 * S, 300 * S):
        r.device_pts.append(_failed(t))
        gw_at(r, t)
    gw_at(r, NOW + 1790 * S)
    def names(t: int) -> list[str]:
        return [a.name for a in eng.cycle(t).firing]
    assert "UpdateFailed" in names(NOW + 1799 * S)
    assert "UpdateFailed" not in names(NOW + 1801 * S)  # one hour after the first point


def test_update_failed_long_ago_does_not_fire_on_a_cold_start() -> None:
    r = healthy()
    for t in range(NOW - 3 * 3600 * S, NOW, 300 * S):
        r.device_pts.append(_failed(t, state="refused"))
    assert run(r) == []


def test_capture_low_last_complete_day() -> None:
    r = healthy()
    day = NOW // DAY_MS * DAY_MS - DAY_MS
    for h in range(24):
        r.delivery_rows.append(DeliveryRow("s1", "air-0000", day + h * 3600 * S,
                                           accepted=50, missing=10))  # 0.83
        r.delivery_rows.append(DeliveryRow("s1", "air-0001", day + h * 3600 * S,
                                           accepted=40, rejected=5, missing=15))  # 0.67
        r.delivery_rows.append(DeliveryRow("s1", "air-0002", day + h * 3600 * S))  # no counts
        # today's hours do not count
        r.delivery_rows.append(DeliveryRow("s1", "air-0000", day + DAY_MS + h * 60 * S,
                                           missing=100))
    assert run(r) == ["CaptureLow site=s1 device=air-0001 severity=warning"]


def co2(r: FakeReader, t: int, v: float, device: str = "air-0000",
        sensor: str = "scd41") -> None:
    r.reading_rows.append(Reading(t, "s1", device, sensor, "air", "co2", v))


CO2 = AlertsSection(threshold=(ThresholdSection(name="Co2High", quantity="co2", above=1500,
                                                for_s=600, hysteresis=100),))


def test_threshold_for_s_and_hysteresis() -> None:
    r = healthy(1)
    r.reading_rows.clear()
    eng = Engine(r, CO2, AlertState())
    fired = []
    # 1600 from t0: fires once every reading of the last 600 s is above (at least one)
    t0 = NOW
    for i in range(0, 60):  # one reading a minute for an hour
        t = t0 + i * 60 * S
        # wander around the line: 1450/1550 while firing (held: above 1500 - 100), then
        # 1390 resolves, then 1390/1510 never fires again (not every reading is above)
        v = 1400.0 if i < 5 else 1600.0 if i < 25 else (1450.0, 1550.0)[i % 2] if i < 40 \
            else 1390.0 if i < 45 else (1390.0, 1510.0)[i % 2]
        co2(r, t, v)
        gw_at(r, t)
        fired.append(bool(eng.cycle(t + 1 * S).firing))
    first = fired.index(True)
    assert first == 14  # i=5 first above; at i=14 (+1 s) the 1400 of i=4 is 601 s old
    assert all(fired[14:40])  # 1450 > 1400: held by the hysteresis
    assert not any(fired[40:])  # 1390 <= 1400: resolved, and stays resolved
    labels = eng.state.outbox or {}
    assert any(t.labels["quantity"] == "co2" for t in labels.values())


def test_threshold_pools_sensors_and_no_reading_resolves() -> None:
    r = healthy(1)
    r.reading_rows.clear()
    for i in range(11):
        co2(r, NOW - i * 60 * S, 1600.0, sensor="scd41")
        co2(r, NOW - i * 60 * S, 1550.0, sensor="scd30")
    eng = Engine(r, CO2, AlertState())
    assert [a.line() for a in eng.cycle(NOW + S).firing] == [
        "Co2High site=s1 device=air-0000 quantity=co2 severity=warning"]
    co2(r, NOW + 30 * S, 1400.0, sensor="scd30")  # one sensor below: no longer every reading
    assert not Engine(r, CO2, AlertState()).cycle(NOW + 31 * S).firing
    # nothing in the last for_s: resolves even while firing
    gw_at(r, NOW + 690 * S)
    assert "Co2High" not in [a.name for a in eng.cycle(NOW + 700 * S).firing]


def test_threshold_below() -> None:
    r = healthy(1)
    r.reading_rows.clear()
    cfg = AlertsSection(threshold=(ThresholdSection(name="TooCold", quantity="temperature",
                                                    below=16, for_s=0, severity="info"),))
    r.reading_rows.append(Reading(NOW - 5 * S, "s1", "air-0000", "bme280", "air",
                                  "temperature", 15.0))
    assert run(r, cfg) == [
        "TooCold site=s1 device=air-0000 quantity=temperature severity=info"]


@pytest.mark.parametrize("n", [10, 1000])
def test_queries_per_cycle_do_not_grow_with_devices(n: int) -> None:
    r = healthy(n, ("s1", "s2"))
    for d in r.device_pts[:5]:
        r.device_pts.append(replace(d, time_ms=NOW - S, strings={"update_state": "refused",
                                                                  "update_version": "2"}))
    eng = Engine(r, CO2, AlertState())
    assert eng.cycle(NOW).queries == 16  # the day's delivery in 4, the history in 7 windows
    gw_at(r, NOW + 25 * S)
    assert eng.cycle(NOW + 30 * S).queries == 5  # day cached, updates dated


def test_snapshot_reads_only_through_the_reader() -> None:
    r = healthy(2)
    snap = Collector(r, AlertsSection()).collect(NOW)
    assert r.calls == ["gateways", "devices", "stations", "latest_reading_times"] + [
        "delivery"] * 4
    ev = evaluate(snap, AlertsSection(), Memory())
    assert ev.alerts == ()
    assert set(ev.states.values()) == {"online"}


def test_once_line_format() -> None:
    a = Alert({"alertname": "Co2High", "severity": "warning", "site": "s", "device": "d",
               "quantity": "co2"}, "x")
    assert a.line() == "Co2High site=s device=d quantity=co2 severity=warning"
    assert a.annotations["runbook_url"].endswith("/alerts.md#co2high")


@pytest.mark.parametrize(("age_s", "fires"), [(89, False), (91, True)])
def test_gateway_down_after_three_intervals(age_s: int, fires: bool) -> None:
    r = healthy()
    r.gateway_points = [replace(r.gateway_points[0], time_ms=NOW - age_s * S)]
    assert ("GatewayDown site=s1 gateway=gw-s1 severity=critical" in run(r)) is fires


@pytest.mark.parametrize(("age_s", "interval_s", "fires"),
                         [(179, 60.0, False), (181, 60.0, True), (500, 300.0, False)])
def test_silent_after_three_of_its_own_intervals(age_s: int, interval_s: float,
                                                 fires: bool) -> None:
    r = healthy(1)
    r.reading_rows = [Reading(NOW - age_s * S, "s1", "air-0000", "scd41", "air", "co2", 1.0)]
    r.device_pts = [DevicePoint("s1", "air-0000", NOW - 3000 * S,
                                {"online": 1.0, "interval_s": interval_s, "uptime": 9e3})]
    assert bool(run(r)) is fires


@pytest.mark.parametrize(("offline_s", "fires"), [(299, False), (301, True)])
def test_offline_after_offline_for_s(offline_s: int, fires: bool) -> None:
    r = healthy(1)
    r.reading_rows = []
    r.device_pts.append(DevicePoint("s1", "air-0000", NOW - offline_s * S, {"online": 0.0}))
    assert (run(r) == ["DeviceOffline site=s1 device=air-0000 severity=warning"]) is fires
