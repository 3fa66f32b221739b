"""One TLS setup for every MQTT client (issue 15): `[mqtt] tls = true` with no ca_file
(the `broker certs` flow: the CA under data_dir) against a broker with ONLY a TLS
listener. Before, the console and `fleet update` read `mqtt.ca_file` themselves,
found nothing and spoke plain text to port 8883 (their password in clear)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from protocols.config import Config, load_config
from protocols.mqtt_tls import MqttTlsError, client_tls
from provisioning import tls
from tests.servers import Mosquitto, wait_for
from tests.tls.conftest import GATEWAY

pytestmark = pytest.mark.timeout(60)
SITE = "bdnc-lab"
PREFIX = f"livinglab/v1/{SITE}"
ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, port: int, site_tls: tls.TlsFiles) -> Path:
    """tls = true and NO ca_file: the CA is <data_dir>/broker/tls/ca.crt."""
    ca = tmp_path / "var" / "broker" / "tls" / "ca.crt"
    ca.parent.mkdir(parents=True)
    shutil.copy(site_tls.ca_cert, ca)
    path = tmp_path / "ll.toml"
    path.write_text(f'site = "{SITE}"\n[gateway]\ndata_dir = "var"\n'
                    f'[mqtt]\nhost = "localhost"\nport = {port}\ntls = true\n'
                    f'username = "{GATEWAY.username}"\npassword = "{GATEWAY.password}"\n')
    return path


def _retain_status(cfg: Config, device: str, doc: dict[str, object]) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="t-retain")
    c.username_pw_set(GATEWAY.username, GATEWAY.password)
    ctx = client_tls(cfg)
    assert ctx is not None
    c.tls_set_context(ctx)
    c.connect(cfg.mqtt.host, cfg.mqtt.port)
    c.loop_start()
    try:
        c.publish(f"{PREFIX}/{device}/status", json.dumps(doc).encode(), qos=1,
                  retain=True).wait_for_publish(10)
    finally:
        c.loop_stop()
        c.disconnect()


def test_client_tls_follows_the_config(tmp_path: Path, site_tls: tls.TlsFiles) -> None:
    cfg = load_config(_config(tmp_path, 8883, site_tls))
    assert client_tls(cfg) is not None
    plain = load_config(_write(tmp_path / "plain.toml", f'site = "{SITE}"\n'))
    assert client_tls(plain) is None
    missing = load_config(_write(tmp_path / "m.toml", f'site = "{SITE}"\n[gateway]\n'
                                 'data_dir = "nowhere"\n[mqtt]\ntls = true\n'))
    with pytest.raises(MqttTlsError, match="broker certs"):
        client_tls(missing)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_console_live_subscription_speaks_tls(tmp_path: Path, broker_tls: Mosquitto,
                                              site_tls: tls.TlsFiles) -> None:
    from gateway.console.live import LiveStatus

    cfg = load_config(_config(tmp_path, broker_tls.port, site_tls))
    _retain_status(cfg, "air-0001", {"state": "online", "fw": "1.0.0"})
    live = LiveStatus(cfg)

    async def scenario() -> None:
        task = asyncio.create_task(live.run())
        try:
            end = asyncio.get_running_loop().time() + 15
            while "air-0001" not in live.devices and asyncio.get_running_loop().time() < end:
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
    assert live.devices["air-0001"].state == "online", live.error


def test_fleet_update_speaks_tls(tmp_path: Path, broker_tls: Mosquitto,
                                 site_tls: tls.TlsFiles,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    path = _config(tmp_path, broker_tls.port, site_tls)
    cfg = load_config(path)
    _retain_status(cfg, "air-0001", {"state": "online", "fw": "1.2.3", "board": "unix"})
    code = main(["fleet", "update", "--config", str(path), "--device", "air-0001",
                 "--version", "1.2.3", "--timeout", "5"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "air-0001: ok 1.2.3 already running" in out.out


def test_doctor_status_watcher_and_monitor_speak_tls(tmp_path: Path, broker_tls: Mosquitto,
                                                    site_tls: tls.TlsFiles) -> None:
    from devices.fleet_monitor import Tally, watch
    from devices.fleet_plan import broker_target
    from gateway.ops.doctor_probes import broker_login
    from provisioning.settings import settings_from_config
    from provisioning.status import StatusWatcher, status_topic

    cfg = load_config(_config(tmp_path, broker_tls.port, site_tls))
    _retain_status(cfg, "air-0002", {"state": "online"})
    broker_login(cfg, 5.0)
    s = settings_from_config(cfg)
    with StatusWatcher(s.mqtt_host, s.mqtt_port, s.gateway_username, s.gateway_password,
                       ca_file=s.mqtt_ca_file, cert_file=s.mqtt_cert_file,
                       key_file=s.mqtt_key_file) as w:
        w.start([status_topic(s.prefix, SITE)])
        got = wait_for(lambda: [m for m in w.collect(0.1) if m.device == "air-0002"], 10,
                       what="retained status over TLS")
    assert got[0].state == "online"
    tally = Tally("livinglab/v1", SITE)

    async def monitor() -> None:
        task = asyncio.create_task(watch(broker_target(cfg), tally))
        try:
            end = asyncio.get_running_loop().time() + 10
            while "air-0002" not in tally.devices and asyncio.get_running_loop().time() < end:
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(monitor())
    assert tally.devices["air-0002"].state == "online"


def test_no_mqtt_client_sets_up_tls_by_itself() -> None:
    """Every MQTT client goes through protocols/mqtt_tls.py: no tls_set / TLSParameters /
    a hand-made context next to an MQTT client anywhere else."""
    offenders = []
    for pkg in ("gateway", "devices", "provisioning", "protocols"):
        for path in (ROOT / pkg).rglob("*.py"):
            if path.name == "mqtt_tls.py" or "stores" in path.parts:
                continue
            text = path.read_text()
            mqtt_client = re.search(r"paho|aiomqtt", text) is not None
            if re.search(r"\.tls_set\(|TLSParameters\(", text) or (
                    mqtt_client and "create_default_context" in text):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
