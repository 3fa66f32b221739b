"""``station`` points from the inventory (wire contract, "Stations, in detail"): history
at the change times, current state at start, changes picked up, retire, other sites."""

from __future__ import annotations

from pathlib import Path

from devices.inventory import Device, Inventory, SensorSpec
from gateway.ops.stations import REFRESH_S, StationWatcher, station_points
from protocols.inventory import read_inventory

T = 1_795_000_000.0


def make_inventory(data_dir: Path) -> Inventory:
    inv = Inventory.in_data_dir(data_dir)
    inv.upsert(Device(device="air-0001", site="lab", board="pico_w", provisioned_at=T,
                      sensors=(SensorSpec(kind="scd41", bus="i2c0", address=0x62),
                               SensorSpec(kind="bme280", bus="i2c0", address=0x76))))
    inv.upsert(Device(device="air-0002", site="other", board="esp32", provisioned_at=T))
    inv.set_meta("air-0001", {"lat": 45.07, "lon": 7.68, "room": "B12"}, now=T + 100)
    inv.set_meta("air-0001", {"note": "by the\u0007 window"}, now=T + 200)
    return inv


def by_time(points: list) -> dict[int, dict]:  # type: ignore[type-arg]
    return {p.time_ms: dict(p.fields) for p in points if p.measurement == "station"}


def test_history_then_current_state(tmp_path: Path) -> None:
    make_inventory(tmp_path).close()
    rows = read_inventory(tmp_path / "inventory.sqlite")
    assert rows is not None
    pts = station_points(rows, "lab", T + 300)
    hist = by_time(pts)
    assert sorted(hist) == [int(T * 1000), int((T + 100) * 1000), int((T + 200) * 1000),
                            int((T + 300) * 1000)]
    first = hist[int(T * 1000)]
    assert first == {"board": "pico_w", "sensors": "scd41,bme280", "deployment": 1.0,
                     "retired": 0.0, "room": "", "zone": "", "note": ""}  # no lat/lon yet
    assert hist[int((T + 100) * 1000)]["lat"] == 45.07
    assert hist[int((T + 100) * 1000)]["deployment"] == 1.0  # the first recorded place
    now = hist[int((T + 300) * 1000)]
    assert now["note"] == "by the window" and now["room"] == "B12" and now["lon"] == 7.68
    assert {dict(p.tags)["device"] for p in pts} == {"air-0001"}  # its own site only
    assert all(dict(p.tags).keys() >= {"site", "device"} for p in pts)
    infos = [p for p in pts if p.measurement == "station_info"]
    assert len(infos) == 4 and dict(infos[-1].tags)["room"] == "B12"
    assert infos[-1].fields == (("v", 1.0),)


def test_watcher_writes_changes_once_and_retire(tmp_path: Path) -> None:
    inv = make_inventory(tmp_path)
    w = StationWatcher(tmp_path, "lab")
    start = w.due(T + 300)
    assert len(by_time(start)) == 4
    w.written(start)
    assert w.due(T + 310) == []  # nothing changed: two stat calls, no read
    inv.retire("air-0001", now=T + 400)
    pts = w.due(T + 410)
    assert list(by_time(pts)) == [int((T + 400) * 1000)]  # only the new change
    assert by_time(pts)[int((T + 400) * 1000)]["retired"] == 1.0
    w.due(T + 411)  # not written yet (a full buffer): offered again
    assert list(by_time(w.due(T + 412))) == [int((T + 400) * 1000)]
    w.written(pts)
    assert w.due(T + 420) == []
    # a day later: the current state again
    again = by_time(w.due(T + 300 + REFRESH_S))
    assert list(again) == [int((T + 300 + REFRESH_S) * 1000)]
    inv.close()


def test_no_inventory_no_points(tmp_path: Path) -> None:
    w = StationWatcher(tmp_path, "lab")
    assert w.due(T) == []
    assert not (tmp_path / "inventory.sqlite").exists()  # the reader never creates it
