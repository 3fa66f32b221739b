"""Against a real Alertmanager and a webhook receiver: what a technician would get.

The store here is the in-memory reader (the rules' inputs are chosen exactly);
tests/alerts/test_alerts_e2e.py runs the command over a real store. Times are
real (Alertmanager judges ``endsAt`` by its own clock): points are written at
chosen offsets before now.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.alerts.engine import Engine
from gateway.alerts.snapshot import DAY_MS
from gateway.alerts.state import AlertState, load_state, save_state
from gateway.stores.centre import DeliveryRow, DevicePoint, GatewayPoint, StationPoint
from gateway.stores.reading import Reading
from protocols.config import AlertsSection, ThresholdSection
from tests.servers import running, wait_for
from tests.servers_centre import Alertmanager

from .fake_reader import FakeReader
from .webhook import Hook, webhook

S = 1000


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def hook() -> Iterator[Hook]:
    with webhook() as h:
        yield h


@pytest.fixture
def am(tmp_path: Path, hook: Hook) -> Iterator[Alertmanager]:
    with running(Alertmanager(tmp_path / "am", webhook=hook.url)) as server:
        yield server


def fleet(sites: tuple[str, ...] = ("s1",), n: int = 3) -> FakeReader:
    now = now_ms()
    r = FakeReader()
    for site in sites:
        r.gateway_points.append(GatewayPoint(site, f"gw-{site}", now - 5 * S, disk_free_bytes=5e9))
        for i in range(n):
            dev = f"air-{i:04d}"
            r.device_pts.append(DevicePoint(site, dev, now - 600 * S,
                                            {"online": 1.0, "interval_s": 60.0, "uptime": 9e3}))
            r.station_pts.append(StationPoint(site, dev, now - DAY_MS))
            r.reading_rows.append(Reading(now - 20 * S, site, dev, "scd41", "air", "co2", 600.0))
    return r


def refresh(r: FakeReader, devices: bool = True) -> None:
    """Every gateway writes a health point now; every device (optionally) a reading."""
    now = now_ms()
    for g in list({(g.site, g.gateway): g for g in r.gateway_points}.values()):
        if g.up == 1.0 and now - g.time_ms < 60 * S:
            r.gateway_points.append(replace(g, time_ms=now))
    if devices:
        for site, dev in {(d.site, d.device) for d in r.device_pts}:
            r.reading_rows.append(Reading(now, site, dev, "scd41", "air", "co2", 600.0))


def active(am: Alertmanager) -> set[tuple[str, str]]:
    out = set()
    for a in am.alerts(active="true"):
        labels = a["labels"]
        assert isinstance(labels, dict)
        out.add((str(labels["alertname"]), str(labels.get("device") or labels.get("gateway"))))
    return out


def engine(r: FakeReader, am: Alertmanager, state: AlertState | None = None,
           **kw: object) -> Engine:
    cfg = AlertsSection(alertmanager_url=am.url, interval_s=5, **kw)
    return Engine(r, cfg, state or AlertState())


@pytest.mark.slow
def test_each_rule_fires_for_the_right_one_and_resolves(am: Alertmanager, hook: Hook) -> None:
    now = now_ms()
    r = fleet(("s1", "s2", "s3"))
    # s1: one silent device, one offline for 400 s, one rolled back, one with a bad day
    r.reading_rows = [x for x in r.reading_rows if (x.site, x.device) != ("s1", "air-0000")]
    r.reading_rows.append(Reading(now - 300 * S, "s1", "air-0000", "scd41", "air", "co2", 1))
    r.device_pts.append(DevicePoint("s1", "air-0001", now - 400 * S, {"online": 0.0}))
    r.device_pts.append(DevicePoint("s1", "air-0002", now - 60 * S,
                                    {"online": 1.0, "uptime": 9e3},
                                    {"update_state": "rolled_back", "update_version": "1.5.0"}))
    day = now // DAY_MS * DAY_MS - DAY_MS
    r.delivery_rows.append(DeliveryRow("s1", "air-0002", day + 3600 * S, accepted=10,
                                       missing=90))
    # s2: its gateway's buffer is behind and its disk nearly full
    r.gateway_points.append(replace(r.gateway_points[1], time_ms=now, buffer_oldest_s=900.0,
                                    buffer_points=5e4, disk_free_bytes=1e8))
    # s3: the gateway is gone; its silent device is not named
    r.gateway_points[2] = replace(r.gateway_points[2], time_ms=now - 200 * S)
    r.reading_rows = [x for x in r.reading_rows if x.site != "s3"]
    eng = engine(r, am)
    res = eng.cycle(now_ms())
    assert res.sent is True
    expected = {("DeviceSilent", "air-0000"), ("DeviceOffline", "air-0001"),
                ("UpdateFailed", "air-0002"), ("CaptureLow", "air-0002"),
                ("BufferBacklog", "gw-s2"), ("DiskLow", "gw-s2"), ("GatewayDown", "gw-s3")}
    assert active(am) == expected
    wait_for(lambda: {(n, w) for s, n, w in hook.notes() if s == "firing"} == expected,
             15, what="a firing notification for each")
    by_name = {a["labels"]["alertname"]: a for a in am.alerts()}  # type: ignore[index]
    assert by_name["GatewayDown"]["labels"]["severity"] == "critical"  # type: ignore[index]
    assert by_name["DiskLow"]["annotations"]["runbook_url"].endswith(  # type: ignore[index]
        "alerts.md#disklow")

    # everything repaired: every one resolves
    now = now_ms()
    r.device_pts.append(DevicePoint("s1", "air-0001", now, {"online": 1.0, "uptime": 3.0}))
    r.device_pts.append(DevicePoint("s1", "air-0002", now, {"online": 1.0, "uptime": 9e3},
                                    {"update_state": "confirmed", "update_version": "1.5.1"}))
    r.delivery_rows = [replace(x, missing=0) for x in r.delivery_rows]
    eng.collector._day = None  # the corrected day is re-read (normally every hour)
    r.gateway_points.append(replace(r.gateway_points[1], time_ms=now, buffer_oldest_s=0.0,
                                    disk_free_bytes=5e9))
    r.gateway_points.append(replace(r.gateway_points[2], time_ms=now))
    refresh(r)
    res = eng.cycle(now_ms())
    assert res.firing == () and res.sent is True
    assert active(am) == set()
    wait_for(lambda: {(n, w) for s, n, w in hook.notes() if s == "resolved"} == expected,
             15, what="a resolved notification for each")


@pytest.mark.slow
def test_threshold_no_flapping(am: Alertmanager, hook: Hook) -> None:
    th = ThresholdSection(name="Co2High", quantity="co2", above=1500, for_s=2, hysteresis=100)
    r = fleet(n=1)
    eng = engine(r, am, threshold=(th,))
    # below, then above for 2 s, then wander across the line (1450/1550), then 1390,
    # then 1510/1390 (never every reading above again)
    values = [1400.0] * 8 + [1600.0] * 8 + [1450.0, 1550.0] * 6 + [1390.0] * 3 \
        + [1510.0, 1390.0] * 4
    firing = []
    for v in values:
        t = now_ms()
        r.reading_rows.append(Reading(t, "s1", "air-0000", "scd41", "air", "co2", v))
        refresh(r, devices=False)
        firing.append(bool(eng.cycle(t + 1).firing))
        time.sleep(0.3)
    first = firing.index(True)
    # not before the last 1400 is 2 s old (about 6 steps of 0.3 s after the first 1600)
    assert 8 + 5 <= first < 16
    assert all(firing[first:28]) and not any(firing[28:])
    wait_for(lambda: hook.resolved("Co2High", "air-0000") == 1, 15, what="resolved once")
    time.sleep(1.5)  # longer than group_interval: any flap would have been notified
    assert hook.firing("Co2High", "air-0000") == 1
    assert hook.resolved("Co2High", "air-0000") == 1


@pytest.mark.slow
def test_outage_loses_nothing(am: Alertmanager, hook: Hook, tmp_path: Path) -> None:
    r = fleet(n=2)
    eng = engine(r, am)
    assert eng.cycle(now_ms()).firing == ()
    am.kill()
    now = now_ms()
    r.device_pts.append(DevicePoint("s1", "air-0001", now - 400 * S, {"online": 0.0}))
    r.gateway_points.append(replace(r.gateway_points[0], time_ms=now, disk_free_bytes=1e6))
    res = eng.cycle(now_ms())
    assert res.sent is False and {a.name for a in res.firing} == {"DeviceOffline", "DiskLow"}
    # the disk is cleared while Alertmanager is still down: its resolution is kept
    r.gateway_points.append(replace(r.gateway_points[0], time_ms=now_ms(), disk_free_bytes=5e9))
    res = eng.cycle(now_ms())
    assert res.sent is False and len(eng.state.outbox) == 1
    am.start()
    res = eng.cycle(now_ms())
    assert res.sent is True and eng.state.outbox == {}
    assert active(am) == {("DeviceOffline", "air-0001")}
    resolved = [a for a in am.alerts(active="false") if a["status"]["state"] != "active"]  # type: ignore[index]
    assert resolved == [] or all(a["labels"]["alertname"] == "DiskLow"  # type: ignore[index]
                                 for a in resolved)
    wait_for(lambda: hook.firing("DeviceOffline", "air-0001") == 1, 15,
             what="the offline alert delivered after the outage")


@pytest.mark.slow
def test_restart_neither_refires_nor_forgets(am: Alertmanager, hook: Hook,
                                             tmp_path: Path) -> None:
    state_file = tmp_path / "alerts.json"
    r = fleet(n=3)
    now = now_ms()
    r.device_pts.append(DevicePoint("s1", "air-0001", now - 400 * S, {"online": 0.0}))
    r.device_pts.append(DevicePoint("s1", "air-0002", now - 400 * S, {"online": 0.0}))
    eng = engine(r, am)
    eng.cycle(now_ms())
    save_state(state_file, eng.state)
    starts = {a["labels"]["device"]: a["startsAt"] for a in am.alerts()}  # type: ignore[index]
    wait_for(lambda: hook.firing("DeviceOffline", "air-0001") == 1, 15, what="fired")
    wait_for(lambda: hook.firing("DeviceOffline", "air-0002") == 1, 15, what="fired")
    # air-0002 comes back while Alertmanager cannot be reached; then the evaluator restarts
    r.device_pts.append(DevicePoint("s1", "air-0002", now_ms(), {"online": 1.0, "uptime": 2.0}))
    refresh(r)
    cut_off = Engine(r, eng.cfg.model_copy(update={"alertmanager_url": "http://127.0.0.1:9"}),
                     eng.state)
    assert cut_off.cycle(now_ms()).sent is False
    save_state(state_file, cut_off.state)
    again = engine(r, am, load_state(state_file))
    assert again.cycle(now_ms()).sent is True
    # not re-fired: the same startsAt, one notification
    assert {a["labels"]["device"]: a["startsAt"]  # type: ignore[index]
            for a in am.alerts(active="true")} == {"air-0001": starts["air-0001"]}
    # not forgotten: air-0002's resolution, queued before the restart, went out
    assert again.state.outbox == {}
    wait_for(lambda: hook.resolved("DeviceOffline", "air-0002") == 1, 15, what="resolved")
    time.sleep(1.5)  # > group_interval: a re-fire would have been notified by now
    assert hook.firing("DeviceOffline", "air-0001") == 1


@pytest.mark.slow
def test_healthy_fleet_and_a_reboot_page_nobody(am: Alertmanager, hook: Hook) -> None:
    r = fleet(("s1", "s2"), n=20)
    eng = engine(r, am)
    for i in range(5):
        if i == 2:  # one board reboots: its last will, then back 20 s later
            r.device_pts.append(DevicePoint("s1", "air-0003", now_ms() - 20 * S,
                                            {"online": 0.0}))
        if i == 3:
            r.device_pts.append(DevicePoint("s1", "air-0003", now_ms(),
                                            {"online": 1.0, "uptime": 4.0, "interval_s": 60.0}))
        refresh(r, devices=i != 2)
        assert eng.cycle(now_ms()).firing == ()
    assert am.alerts() == []
    assert hook.notes() == []
