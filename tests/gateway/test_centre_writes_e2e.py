"""What the centre reads, end to end (wire contract, "Additions (third turn)"): a real
Mosquitto, the gateway as a subprocess, and a real influxd or VictoriaMetrics.

Every new point lands with the contract's tags, fields and timestamps (device with
its new fields and the LWT's online = 0, device_info, gateway + gateway_info,
station history + station_info, rejections); the clean stop writes up = 0; a kill -9
stops the health points; station history survives a restart with the same
timestamps (one more current-state point per start, nothing else).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from devices.inventory import Device, Inventory, SensorSpec
from tests.gateway.helpers import SITE, GatewayProc, Publisher, topic, write_config
from tests.servers import free_port, wait_for

pytestmark = pytest.mark.slow

T0 = 1_795_000_000.0  # provisioning time (a recorded change)
HEALTH_S = 5


def inventory(data_dir: Path) -> Inventory:
    inv = Inventory.in_data_dir(data_dir)
    inv.upsert(Device(device="air-0001", site=SITE, board="pico_w", provisioned_at=T0,
                      sensors=(SensorSpec(kind="scd41", bus="i2c0", address=0x62),)))
    inv.upsert(Device(device="air-0009", site="elsewhere", board="esp32", provisioned_at=T0))
    inv.set_meta("air-0001", {"lat": 45.07, "lon": 7.68, "room": "B12"}, now=T0 + 10)
    return inv


def rows(kind: str, server: Any, measurement: str) -> list[dict[str, Any]]:
    """Every point of ``measurement`` as one dict of tags, fields and ``time`` (ms)."""
    if kind == "influxd":
        try:
            return [dict(p) for p in server.points("ll", measurement)]
        except OSError:
            return []
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for series in server.export('{__name__=~"' + measurement + '_.+"}'):
        labels = dict(series["metric"])
        name = labels.pop("__name__")
        labels.pop("db", None)
        field = name[len(measurement) + 1:]
        if not measurement.endswith("_info") and field.startswith("info_"):
            continue  # device_info_v is not a field of device
        for t, v in zip(series["timestamps"], series["values"], strict=True):
            key = (tuple(sorted(labels.items())), int(t))
            merged.setdefault(key, {**labels, "time": int(t)})[field] = float(v)
    return sorted(merged.values(), key=lambda r: r["time"])


def start_gateway(tmp_path: Path, mq_port: int, store: dict[str, Any]) -> GatewayProc:
    hp = free_port()
    cfg = write_config(tmp_path / "gw.toml", mqtt_port=mq_port, health_port=hp, store=store,
                       gateway={"store_health_s": HEALTH_S, "delivery_flush_s": 1})
    gw = GatewayProc(cfg, hp)
    gw.start()
    return gw


@pytest.mark.parametrize("kind", ["influxd", "victoria"])
def test_centre_points_land_with_contract_tags_fields_and_times(
        kind: str, tmp_path: Path, mosquitto: Any, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(kind)
    store = {"kind": "influxdb1", "url": server.url, "database": "ll"} if kind == "influxd" \
        else {"kind": "influxdb2", "url": server.url, "token": "x"}
    inv = inventory(tmp_path / "var")
    t_start = time.time()
    gw = start_gateway(tmp_path, mosquitto.port, store)
    pub = Publisher(mosquitto.port)
    try:
        # -- gateway health at start, with its version as a tag ---------------------
        wait_for(lambda: rows(kind, server, "gateway"), 20, what="a gateway point")
        g = rows(kind, server, "gateway")[0]
        assert g["site"] == SITE and g["gateway"] == "gw-test"
        assert g["up"] == 1.0 and g["interval_s"] == HEALTH_S
        assert {"broker_connected", "buffer_points", "buffer_oldest_s", "disk_free_bytes",
                "devices_online", "uptime_s"} <= g.keys()
        assert t_start * 1000 - 5 <= g["time"] <= time.time() * 1000
        gi = rows(kind, server, "gateway_info")
        assert gi and gi[0]["version"] and gi[0]["v"] == 1.0 and gi[0]["time"] == g["time"]

        # -- stations: history at the change times plus the state at start -----------
        wait_for(lambda: len(rows(kind, server, "station")) >= 3, 20, what="station points")
        st = rows(kind, server, "station")
        times = [r["time"] for r in st]
        assert times[:2] == [int(T0 * 1000), int((T0 + 10) * 1000)]
        assert t_start * 1000 - 5 <= times[2] <= time.time() * 1000
        assert {r["device"] for r in st} == {"air-0001"}  # its own site only
        assert "lat" not in st[0] or st[0]["lat"] is None  # unknown at provisioning
        assert st[1]["lat"] == 45.07 and st[1]["lon"] == 7.68 and st[1]["retired"] == 0.0
        assert st[2]["deployment"] == 1.0
        si = {r["time"]: r for r in rows(kind, server, "station_info")}
        assert si[times[1]]["room"] == "B12" and si[times[1]]["board"] == "pico_w"
        assert si[times[0]]["sensors"] == "scd41"

        # -- device points: the new fields, the strings, the last will ----------------
        status = {"state": "online", "fw": "1.1.0", "board": "pico_w", "boot": 3,
                  "interval_s": 30, "dropped": 2, "sensor_errors": 1, "uptime": 12,
                  "update": {"version": "1.2.0", "state": "refused", "reason": "bad sig"}}
        t_status = time.time()
        pub.raw(topic("air-0001", "status"), json.dumps(status).encode())
        bad = {"v": 1, "device": "air-0001", "boot": 3, "seq": 0, "samples": [
            {"sensor": "scd41", "ts": time.time(), "values": {"co2": 99999.0}}]}
        pub.raw(topic("air-0001"), json.dumps(bad).encode())
        # two statuses received in the same millisecond are one point (same key): the
        # will goes once the first is stored
        wait_for(lambda: rows(kind, server, "device"), 20, what="the online device point")
        pub.raw(topic("air-0001", "status"), b'{"state":"offline"}')
        t_will = time.time()
        wait_for(lambda: len(rows(kind, server, "device")) >= 2, 20, what="device points")
        online, offline = rows(kind, server, "device")[:2]
        assert online["device"] == "air-0001" and online["site"] == SITE
        assert (online["online"], online["interval_s"], online["boot"], online["dropped"],
                online["sensor_errors"]) == (1.0, 30.0, 3.0, 2.0, 1.0)
        # receive times: after the broker's PUBACK comes the gateway's own receipt
        assert t_status * 1000 - 5 <= online["time"] <= offline["time"] <= time.time() * 1000
        assert offline["online"] == 0.0
        wait_for(lambda: rows(kind, server, "device_info"), 10, what="device_info")
        di = rows(kind, server, "device_info")[0]
        assert (di["fw"], di["board"], di["update_state"], di["update_version"],
                di["update_reason"], di["time"]) == ("1.1.0", "pico_w", "refused", "1.2.0",
                                                     "bad sig", online["time"])

        # -- rejections per device, reason and hour -----------------------------------
        wait_for(lambda: rows(kind, server, "rejections"), 20, what="rejections point")
        rj = rows(kind, server, "rejections")[0]
        assert (rj["device"], rj["reason"], rj["count"]) == ("air-0001", "out_of_range", 1.0)
        assert rj["time"] == int(t_will // 3600 * 3600 * 1000) or \
            rj["time"] == int(t_status // 3600 * 3600 * 1000)

        # -- a device set reaches the store within 30 s, at the time of the change -----
        changed = inv.set_meta("air-0001", {"note": "by the window"})
        want = round(changed.at * 1000)
        wait_for(lambda: want in {r["time"] for r in rows(kind, server, "station")}, 30,
                 what="the change's station point")
        assert {r["time"]: r for r in rows(kind, server, "station_info")}[want]["note"] == \
            "by the window"

        # -- a clean stop: up = 0 --------------------------------------------------------
        assert gw.terminate() == 0
        wait_for(lambda: any(r["up"] == 0.0 for r in rows(kind, server, "gateway")), 10,
                 what="the shutdown point")

        # -- restart: the history again with the same timestamps, one more current ------
        history = [int(T0 * 1000), int((T0 + 10) * 1000), want]
        gw.start()
        wait_for(lambda: len(rows(kind, server, "station")) >= 5, 20, what="second start")
        got = sorted(r["time"] for r in rows(kind, server, "station"))
        assert [t for t in got if t in history] == history  # each once
        assert len(got) == len(history) + 2  # the state at each of the two starts

        # -- kill -9: the health points stop -------------------------------------------
        assert gw.proc is not None
        os.kill(gw.proc.pid, signal.SIGKILL)
        gw.proc.wait(10)
        gw.proc = None
        killed_ms = time.time() * 1000
        time.sleep(2 * HEALTH_S + 1)  # two intervals: none may come
        assert max(r["time"] for r in rows(kind, server, "gateway")) <= killed_ms
    finally:
        pub.close()
        gw.kill()
        inv.close()
