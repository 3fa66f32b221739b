"""`livinglab devices`: inventory joined with retained status from a real Mosquitto."""

from __future__ import annotations

import json
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices.inventory import Device, Inventory
from gateway.cli import main
from tests.servers import Mosquitto, free_port


def _config(tmp_path: Path, port: int) -> Path:
    cfg = tmp_path / "livinglab.toml"
    cfg.write_text(f'site = "lab"\n[gateway]\ndata_dir = "var"\n[mqtt]\nport = {port}\n')
    with Inventory.in_data_dir(tmp_path / "var") as inv:
        for dev in ("air-0001", "air-0002", "air-0003", "old-0001"):
            inv.upsert(Device(device=dev, site="lab", board="pico_w", fw_version="0.1.0",
                              location="room 2"))
        inv.retire("old-0001")
    return cfg


@pytest.mark.timeout(60)
def test_devices_json(tmp_path: Path, mosquitto: Mosquitto,
                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, mosquitto.port)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="status-pub")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    try:
        pub.publish("livinglab/v1/lab/air-0001/status",
                    json.dumps({"state": "online", "fw": "0.1.0", "rssi": -60}), qos=1,
                    retain=True).wait_for_publish(5)
        pub.publish("livinglab/v1/lab/air-0002/status", json.dumps({"state": "offline"}),
                    qos=1, retain=True).wait_for_publish(5)
    finally:
        pub.loop_stop()
        pub.disconnect()

    assert main(["devices", "--config", str(cfg), "--json", "--listen", "0.5", "--all"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["site"] == "lab" and doc["broker_reachable"] is True
    by_id = {d["device"]: d for d in doc["devices"]}
    assert [d["device"] for d in doc["devices"]] == ["air-0001", "air-0002", "air-0003",
                                                     "old-0001"]
    assert by_id["air-0001"]["state"] == "online"
    assert by_id["air-0001"]["last_status"]["rssi"] == -60
    assert isinstance(by_id["air-0001"]["last_seen"], float)
    assert by_id["air-0002"]["state"] == "offline"
    assert by_id["air-0003"]["state"] == "never-seen"
    assert by_id["air-0003"]["last_seen"] is None and by_id["air-0003"]["last_status"] is None
    assert by_id["old-0001"]["state"] == "retired"
    for key in ("site", "board", "sensors", "location", "fw_version", "fw_hash",
                "provisioned_at", "credential_ref", "retired"):
        assert key in by_id["air-0001"]

    assert main(["devices", "--config", str(cfg), "--listen", "0.5"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["DEVICE", "SITE", "BOARD", "STATE"]
    assert [line.split()[3] for line in table[1:]] == ["online", "offline", "never-seen"]


def test_devices_without_broker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, free_port())
    assert main(["devices", "--config", str(cfg), "--json", "--listen", "0.1"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["broker_reachable"] is False
    assert {d["state"] for d in doc["devices"]} == {"unknown"}
    assert "unreachable" in captured.err
