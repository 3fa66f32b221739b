"""The [provisioning]/[wifi] sections and the device.json built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices import catalogue
from gateway.cli import main
from protocols.config import load_config
from provisioning.credentials import Credential
from provisioning.flash import device_config
from provisioning.sensorspec import parse_sensor
from provisioning.settings import settings_from_config
from tests.provisioning.conftest import write_config


def test_device_config_uses_per_device_defaults(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, mqtt_port=1883, extra="""\
device_mqtt_host = "10.0.0.2"
interval_s = 30
[provisioning.devices.flow-0001]
interval_s = 5
calibration = {yfs201_pulses_per_litre = 450}
""")
    settings = settings_from_config(load_config(cfg))
    board = catalogue.board("esp32")
    sensors = [parse_sensor("yfs201", board), parse_sensor("bme280@i2c1:0x77", board),
               parse_sensor("pms5003@uart2", board)]
    doc = device_config(settings, board, "flow-0001", sensors, Credential("flow-0001", "pw"))
    assert doc["mqtt"] == {"host": "10.0.0.2", "port": 1883, "username": "flow-0001",
                           "password": "pw", "keepalive": 60}
    assert doc["interval_s"] == 5
    assert doc["calibration"] == {"yfs201_pulses_per_litre": 450}
    assert doc["sensors"] == [{"kind": "yfs201", "pin": 27},
                              {"kind": "bme280", "bus": "i2c1", "address": 0x77},
                              {"kind": "pms5003", "uart": 2}]
    assert (doc["site"], doc["board"], doc["prefix"]) == ("test-lab", "esp32", "livinglab/v1")
    other = device_config(settings, board, "air-0001", [], Credential("air-0001", "pw"))
    assert other["interval_s"] == 30 and other["calibration"] == {}


@pytest.mark.parametrize("bad", ["scd41@i2c0:zz", "nope", "SCD41 x", "scd41@i2c0:0x99"])
def test_bad_sensor_args(bad: str) -> None:
    from devices.errors import DevicesError
    from provisioning.errors import ProvisioningError

    with pytest.raises((ProvisioningError, DevicesError)):
        parse_sensor(bad, catalogue.board("pico_w"))


def test_bad_provisioning_key_is_one_line(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, extra="wait_timeout = 5")
    assert main(["broker", "sync", "--config", str(cfg)]) == 2
    assert "config key 'provisioning.wait_timeout'" in capsys.readouterr().err
