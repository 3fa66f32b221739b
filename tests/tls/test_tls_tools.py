"""`fleet simulate` and `device flash` with [mqtt] tls: the CA reaches the devices."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provisioning import tls
from tests.firmware.device import SITE
from tests.servers import Mosquitto, running
from tests.tls.conftest import GATEWAY, site_files, tls_broker

pytestmark = pytest.mark.slow


@pytest.mark.timeout(120)
def test_fleet_simulate_over_tls(tmp_path: Path, site_tls: tls.TlsFiles) -> None:
    # the fleet logs in as the gateway account (a simulation shares one login)
    with running(tls_broker(tmp_path / "mosq", site_files(site_tls))) as broker:
        assert isinstance(broker, Mosquitto)
        cfg = tmp_path / "ll.toml"
        cfg.write_text(f'site = "{SITE}"\n[gateway]\ndata_dir = "var"\n'
                       f'[mqtt]\nhost = "localhost"\nport = {broker.port}\ntls = true\n'
                       f'ca_file = "{site_tls.ca_cert}"\nusername = "{GATEWAY.username}"\n'
                       f'password = "{GATEWAY.password}"\n')
        res = subprocess.run([sys.executable, "-m", "gateway.cli", "fleet", "simulate",
                              "--config", str(cfg), "--devices", "2", "--interval", "1",
                              "--duration", "8"], capture_output=True, text=True, timeout=90,
                             stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    online = {line.split()[0] for line in res.stdout.splitlines() if " online (fw " in line}
    assert online == {"air-0001", "light-0001"}, res.stdout
    summary = [ln for ln in res.stdout.splitlines() if ln.startswith("fleet stopped:")][-1]
    assert int(summary.split("devices, ")[1].split()[0]) >= 4, summary  # telemetry seen
    flash = tmp_path / "var" / "fleet" / "air-0001"
    dev = json.loads((flash / "device.json").read_text())
    assert dev["mqtt"]["tls"] is True and (flash / "ca.der").read_bytes() == \
        site_tls.ca_der.read_bytes()
    assert (flash / "device.json").stat().st_mode & 0o777 == 0o600
    assert GATEWAY.password not in res.stdout + res.stderr


@pytest.mark.timeout(60)
def test_device_flash_copies_the_ca(tmp_path: Path, unix_board: object) -> None:
    from gateway.cli import main
    from tests.provisioning.conftest import PtyBoard, write_config

    assert isinstance(unix_board, PtyBoard)
    res = tls.issue(tmp_path / "var", "test-lab", ["localhost"])
    cfg = write_config(tmp_path, 8883, extra="")
    text = cfg.read_text().replace('port = 8883\n', 'port = 8883\ntls = true\n')
    cfg.write_text(text)
    assert main(["device", "flash", "--port", unix_board.port, "--board", "unix",
                 "--device", "air-0001", "--config", str(cfg), "--no-wait"]) == 0
    dev = json.loads((unix_board.flash_dir / "device.json").read_text())
    assert dev["mqtt"]["tls"] is True and dev["mqtt"]["ca"] == "ca.der"
    assert (unix_board.flash_dir / "ca.der").read_bytes() == res.files.ca_der.read_bytes()


@pytest.mark.timeout(120)
def test_demo_with_a_tls_config_lands_readings(tmp_path: Path, broker_tls: Mosquitto,
                                               site_tls: tls.TlsFiles) -> None:
    from tests.devices.test_demo import _demo, _readings
    from tests.servers import free_port

    cfg = tmp_path / "lab.toml"
    cfg.write_text(f'site = "{SITE}"\n[gateway]\ndata_dir = "gw"\nhealth_port = {free_port()}\n'
                   f'[mqtt]\nhost = "localhost"\nport = {broker_tls.port}\ntls = true\n'
                   f'ca_file = "{site_tls.ca_cert}"\nusername = "{GATEWAY.username}"\n'
                   f'password = "{GATEWAY.password}"\n'
                   f'[store]\nkind = "sqlite"\npath = "lab.sqlite"\n')
    res = _demo(tmp_path, "--duration", "12", "--config", str(cfg), "--devices", "2",
                "--interval", "1", "--data-dir", str(tmp_path / "d"))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    landed = _readings(tmp_path / "lab.sqlite")
    assert {m for m, _ in landed} >= {"air", "light"}, landed
    assert GATEWAY.password not in res.stdout + res.stderr
