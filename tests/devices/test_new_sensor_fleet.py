"""The worked example (SHT4x) in the simulated fleet: `[fleet] extra_sensors` puts it on
every air device, the real firmware reads it through its twin, and its readings land in
the store through Mosquitto and a real gateway."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from devices.fleet_errors import FleetError
from devices.fleet_plan import BrokerTarget, DeviceSpec, device_config, parse_settings
from tests.gateway.helpers import GatewayProc, write_config
from tests.servers import Mosquitto, free_port, wait_for


def test_extra_sensors_setting() -> None:
    settings = parse_settings({"extra_sensors": {"air": ["sht4x"]}})
    spec = DeviceSpec(device="air-0001", kind="air", seed=1)
    cfg = device_config(spec, site="lab", broker=BrokerTarget(host="h", port=1), interval_s=5,
                        profile="office", extra_sensors=settings.extra_sensors["air"])
    assert [s["kind"] for s in cfg["sensors"]] == ["scd41", "bme280", "pms5003", "sht4x"]
    with pytest.raises(FleetError, match="'fleet.extra_sensors.air': unknown sensor 'nope'"):
        parse_settings({"extra_sensors": {"air": ["nope"]}})
    with pytest.raises(FleetError, match="fleet.extra_sensors.sound"):
        parse_settings({"extra_sensors": {"sound": ["sht4x"]}})


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sht4x_runs_in_the_simulated_fleet(tmp_path: Path, mosquitto: Mosquitto) -> None:
    hp = free_port()
    db = tmp_path / "readings.sqlite"
    cfg = write_config(tmp_path / "gw.toml", mqtt_port=mosquitto.port, health_port=hp,
                       store={"kind": "sqlite", "path": str(db)})
    cfg.write_text(cfg.read_text() + '\n[fleet.extra_sensors]\nair = ["sht4x"]\n')
    gw = GatewayProc(cfg, hp)
    gw.start()
    try:
        res = subprocess.run([sys.executable, "-m", "gateway.cli", "fleet", "simulate",
                              "--config", str(cfg), "--devices", "1", "--interval", "1",
                              "--duration", "6"], capture_output=True, text=True, timeout=90,
                             stdin=subprocess.DEVNULL)
        assert res.returncode == 0, res.stderr

        def sht4x_rows() -> list[tuple[str, float]]:
            if not db.exists():
                return []
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                return con.execute("SELECT field, value FROM readings WHERE measurement = 'air'"
                                   " AND sensor = 'sht4x' ORDER BY time_ms").fetchall()

        wait_for(lambda: len(sht4x_rows()) >= 6, 20, what="sht4x readings in the store")
        rows = sht4x_rows()
        assert {f for f, _ in rows} == {"temperature", "humidity"}
        assert all(15 < v < 30 for f, v in rows if f == "temperature"), rows
        assert all(20 < v < 70 for f, v in rows if f == "humidity"), rows
        assert gw.metric("livinglab_rejected_total") == 0
    finally:
        gw.kill()
