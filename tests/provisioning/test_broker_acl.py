"""Generated password and ACL files in a real Mosquitto: each device is fenced in."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from devices.inventory import Device, Inventory
from gateway.cli import main
from protocols.config import load_config
from provisioning import credentials
from provisioning.mosquitto import acl_text, pbkdf2_hash
from provisioning.settings import Settings, settings_from_config
from provisioning.sync import sync
from tests.provisioning.conftest import write_config
from tests.servers import Mosquitto, wait_for

pytestmark = pytest.mark.timeout(60)
PREFIX = "livinglab/v1/test-lab"


class Client:
    """A paho client that records CONNACK and messages."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}")
        self.c.username_pw_set(user, password)
        self.got: list[tuple[str, bytes]] = []
        self.rc: ReasonCode | None = None
        self.connected = threading.Event()
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda _c, _u, m: self.got.append((m.topic, bytes(m.payload)))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        wait_for(self.connected.is_set, 5, what=f"CONNACK for {user}")

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode,
                    _p: object = None) -> None:
        self.rc = rc
        self.connected.set()

    @property
    def accepted(self) -> bool:
        return self.rc is not None and not self.rc.is_failure

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _setup(tmp_path: Path, hasher: str) -> tuple[Settings, Inventory]:
    cfg = write_config(tmp_path, extra=f'hasher = "{hasher}"')
    settings = settings_from_config(load_config(cfg))
    inv = Inventory.in_data_dir(settings.data_dir)
    for dev in ("air-0001", "air-0002", "flow-0001"):
        credentials.ensure(settings.secrets_dir, dev)
        inv.upsert(Device(device=dev, site="test-lab", board="esp32"))
    return settings, inv


@pytest.fixture
def fenced(tmp_path: Path, request: pytest.FixtureRequest
           ) -> Iterator[tuple[Settings, Inventory, Mosquitto]]:
    settings, inv = _setup(tmp_path, getattr(request, "param", "auto"))
    sync(settings, inv)
    # (the fixture keeps a root-started mosquitto root, so it can read these files)
    broker = Mosquitto(tmp_path / "mosq", allow_anonymous=False, extra=(
        f"password_file {settings.password_file}", f"acl_file {settings.acl_file}"))
    broker.start()
    try:
        yield settings, inv, broker
    finally:
        broker.stop()
        inv.close()


def _cred(settings: Settings, dev: str) -> credentials.Credential:
    cred = credentials.load(settings.secrets_dir, dev)
    assert cred is not None
    return cred


def _wait_subscribed(c: Client, topic: str) -> None:
    """Publish probes to ``topic`` until one comes back: the subscription is live."""
    def probe() -> bool:
        c.c.publish(topic, b"probe", qos=1).wait_for_publish(5)
        return any(t == topic for t, _ in c.got)
    wait_for(probe, 5, what=f"subscription covering {topic}")


@pytest.mark.parametrize("fenced", ["binary", "python"], indirect=True)
def test_device_publishes_only_as_itself(fenced: tuple[Settings, Inventory, Mosquitto]) -> None:
    settings, _inv, broker = fenced
    gw = Client(broker.port, "gateway", "gw-secret")
    a1 = _cred(settings, "air-0001")
    try:
        assert gw.accepted
        gw.c.subscribe(f"{PREFIX}/#", qos=1)
        _wait_subscribed(gw, f"{PREFIX}/_gateway/gw-01/probe")
        own = json.dumps({"v": 1, "device": "air-0001", "seq": 0}).encode()
        dev = Client(broker.port, a1.username, a1.password)
        assert dev.accepted
        dev.c.publish(f"{PREFIX}/air-0001/telemetry", own, qos=1).wait_for_publish(5)
        # Mosquitto answers a denied PUBLISH by closing the connection (MQTT 3.1.1 allows it).
        dev.c.publish(f"{PREFIX}/air-0002/telemetry", b'{"spoof": 1}', qos=1)
        dev.close()
        later = json.dumps({"v": 1, "device": "air-0001", "seq": 1}).encode()
        dev = Client(broker.port, a1.username, a1.password)
        dev.c.publish(f"{PREFIX}/air-0001/telemetry", later, qos=1).wait_for_publish(5)
        dev.close()
        wait_for(lambda: (f"{PREFIX}/air-0001/telemetry", later) in gw.got, 5,
                 what="own telemetry at the gateway")
    finally:
        gw.close()
    assert (f"{PREFIX}/air-0001/telemetry", own) in gw.got
    assert not any(t.endswith("air-0002/telemetry") for t, _ in gw.got)


def test_device_reads_only_its_own_config(fenced: tuple[Settings, Inventory, Mosquitto]) -> None:
    settings, _inv, broker = fenced
    gw = Client(broker.port, "gateway", "gw-secret")
    a1 = _cred(settings, "air-0001")
    try:
        # The operators' (gateway) account sets both devices' retained config.
        for d in ("air-0002", "air-0001"):
            gw.c.publish(f"{PREFIX}/{d}/config", json.dumps({"interval_s": 5}).encode(),
                         qos=1, retain=True).wait_for_publish(5)
        dev = Client(broker.port, a1.username, a1.password)
        dev.c.subscribe(f"{PREFIX}/air-0002/config", qos=1)
        dev.c.subscribe(f"{PREFIX}/+/config", qos=1)   # wider than it may read
        wait_for(lambda: dev.got, 5, what="own retained config")
        dev.c.publish(f"{PREFIX}/air-0001/status", b'{"state":"online"}', qos=1,
                      retain=True).wait_for_publish(5)
        gw.c.subscribe(f"{PREFIX}/air-0001/status", qos=1)
        wait_for(lambda: gw.got, 5, what="device status at the gateway")
        got_by_device = list(dev.got)
        # A device may not set config, not even its own: it is disconnected instead.
        dev.c.publish(f"{PREFIX}/air-0001/config", b'{"interval_s": 1}', qos=1, retain=True)
        dev.close()
        probe = Client(broker.port, "gateway", "gw-secret")
        probe.c.subscribe(f"{PREFIX}/air-0001/config", qos=1)
        wait_for(lambda: probe.got, 5, what="retained config")
        probe.close()
    finally:
        gw.close()
    assert [t for t, _ in got_by_device] == [f"{PREFIX}/air-0001/config"]
    assert probe.got == [(f"{PREFIX}/air-0001/config", b'{"interval_s": 5}')]


def test_retired_device_cannot_connect(tmp_path: Path,
                                       fenced: tuple[Settings, Inventory, Mosquitto],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    settings, _inv, broker = fenced
    a1 = _cred(settings, "air-0001")
    before = Client(broker.port, a1.username, a1.password)
    before.close()
    assert before.accepted
    assert broker.proc is not None
    assert main(["device", "retire", "--device", "air-0001", "--config",
                 str(tmp_path / "livinglab.toml"), "--reload-pid", str(broker.proc.pid)]) == 0
    assert "air-0001 retired" in capsys.readouterr().out
    assert not credentials.load(settings.secrets_dir, "air-0001")
    assert "air-0001" not in settings.acl_file.read_text()

    def refused() -> bool:
        c = Client(broker.port, a1.username, a1.password)
        c.close()
        return not c.accepted

    wait_for(refused, 5, what="CONNACK refused after SIGHUP")
    a2 = _cred(settings, "air-0002")
    still = Client(broker.port, a2.username, a2.password)
    still.close()
    assert still.accepted


def test_acl_text_fences_each_device() -> None:
    from provisioning.mosquitto import DeviceAcl

    text = acl_text("livinglab/v1", [DeviceAcl("lab", "b-2"), DeviceAcl("lab", "a-1")],
                    "gw", "lab", "gw-01")
    blocks = text.split("\n\n")
    assert blocks[0].endswith("user gw\ntopic read livinglab/v1/lab/#\n"
                              "topic write livinglab/v1/lab/_gateway/gw-01/#\n"
                              "topic write livinglab/v1/lab/+/config\n"
                              "topic write livinglab/v1/lab/+/update")
    assert blocks[1] == ("user a-1\ntopic write livinglab/v1/lab/a-1/telemetry\n"
                         "topic write livinglab/v1/lab/a-1/status\n"
                         "topic read livinglab/v1/lab/a-1/config\n"
                         "topic read livinglab/v1/lab/a-1/update")
    assert blocks[2].startswith("user b-2\n")


def test_pbkdf2_format() -> None:
    h = pbkdf2_hash("pw", salt=b"\0" * 12)
    parts = h.split("$")
    assert parts[:3] == ["", "7", "101"] and len(parts) == 5
    assert h == pbkdf2_hash("pw", salt=b"\0" * 12) != pbkdf2_hash("pw")


def test_sync_signals_pid_file_and_reports_missing_secrets(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import signal
    import subprocess

    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        pid_file = tmp_path / "mosquitto.pid"
        pid_file.write_text(f"{sleeper.pid}\n")
        cfg = write_config(tmp_path, extra=f'mosquitto_pid_file = "{pid_file}"')
        settings = settings_from_config(load_config(cfg))
        with Inventory.in_data_dir(settings.data_dir) as inv:
            inv.upsert(Device(device="lost-0001", site="test-lab", board="esp32"))
        assert main(["broker", "sync", "--config", str(cfg)]) == 0
        out = capsys.readouterr().out
        assert f"mosquitto pid {sleeper.pid} reloaded" in out
        assert "left out (no secret on this host; re-flash them): lost-0001" in out
        assert sleeper.wait(5) == -signal.SIGHUP
        assert "lost-0001" not in settings.acl_file.read_text()
        assert main(["broker", "sync", "--config", str(cfg), "--reload-pid",
                     str(sleeper.pid)]) == 2
        assert "no mosquitto process" in capsys.readouterr().err
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait(5)


CONSOLE = '\n[console]\nmqtt_username = "console"\nmqtt_password = "c-secret"\n'


def _answered(info: mqtt.MQTTMessageInfo) -> bool:
    """Acked, or refused (paho raises once the broker closed the connection)."""
    try:
        return info.is_published()
    except RuntimeError:
        return True


def test_console_login_reads_status_only(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """[console] mqtt_username: `broker sync` adds a login that reads the devices' and
    gateways' retained status and nothing else, and may write nothing."""
    cfg = write_config(tmp_path, extra=CONSOLE)
    settings = settings_from_config(load_config(cfg))
    with Inventory.in_data_dir(settings.data_dir) as inv:
        credentials.ensure(settings.secrets_dir, "air-0001")
        inv.upsert(Device(device="air-0001", site="test-lab", board="esp32"))
    assert main(["broker", "sync", "--config", str(cfg)]) == 0
    assert "console login: console (reads the status topics only)" in capsys.readouterr().out
    broker = Mosquitto(tmp_path / "mosq", allow_anonymous=False, extra=(
        f"password_file {settings.password_file}", f"acl_file {settings.acl_file}"))
    broker.start()
    gw = console = None
    try:
        gw = Client(broker.port, "gateway", "gw-secret")
        a1 = _cred(settings, "air-0001")
        dev = Client(broker.port, a1.username, a1.password)
        dev.c.publish(f"{PREFIX}/air-0001/status", b'{"state":"online"}', qos=1,
                      retain=True).wait_for_publish(5)
        dev.close()
        gw.c.publish(f"{PREFIX}/_gateway/gw-01/status", b'{"state":"online"}', qos=1,
                     retain=True).wait_for_publish(5)
        gw.c.publish(f"{PREFIX}/air-0001/config", b'{"interval_s": 5}', qos=1,
                     retain=True).wait_for_publish(5)
        console = Client(broker.port, "console", "c-secret")
        assert console.accepted
        console.c.subscribe(f"{PREFIX}/#", qos=1)  # wider than it may read
        wait_for(lambda: len(console.got) >= 2, 5, what="retained status at the console")
        # not allowed to write: Mosquitto drops the message and may close the connection;
        # once acked or closed the broker has decided, so the probe below sees the outcome
        for topic, body in (("config", b'{"interval_s": 1}'), ("status", b'{"state":"no"}')):
            w = Client(broker.port, "console", "c-secret")
            info = w.c.publish(f"{PREFIX}/air-0001/{topic}", body, qos=1, retain=True)
            wait_for(lambda: _answered(info), 5,  # noqa: B023
                     what=f"the broker's answer to the console writing {topic}")
            w.close()
        probe = Client(broker.port, "gateway", "gw-secret")
        probe.c.subscribe(f"{PREFIX}/air-0001/+", qos=1)
        wait_for(lambda: len(probe.got) >= 2, 5, what="retained topics at the gateway")
        probe.close()
    finally:
        for c in (gw, console):
            if c is not None:
                c.close()
        broker.stop()
    assert sorted(t for t, _ in console.got) == [f"{PREFIX}/_gateway/gw-01/status",
                                                 f"{PREFIX}/air-0001/status"]
    assert sorted(probe.got) == [(f"{PREFIX}/air-0001/config", b'{"interval_s": 5}'),
                                 (f"{PREFIX}/air-0001/status", b'{"state":"online"}')]


def test_console_login_refuses_a_taken_name_or_no_password(tmp_path: Path) -> None:
    from provisioning.errors import ProvisioningError

    for extra, why in (('\n[console]\nmqtt_username = "air-0001"\nmqtt_password = "x"\n',
                        "already the gateway's or a device's login"),
                       ('\n[console]\nmqtt_username = "console"\n', "has no mqtt_password")):
        cfg = write_config(tmp_path, extra=extra)
        settings = settings_from_config(load_config(cfg))
        with Inventory.in_data_dir(settings.data_dir) as inv:
            credentials.ensure(settings.secrets_dir, "air-0001")
            inv.upsert(Device(device="air-0001", site="test-lab", board="esp32"))
            with pytest.raises(ProvisioningError, match=why):
                sync(settings, inv)
    # the [mqtt] login itself: nothing to add, the console shares it
    cfg = write_config(tmp_path, extra='\n[console]\nmqtt_username = "gateway"\n'
                                       'mqtt_password = "gw-secret"\n')
    settings = settings_from_config(load_config(cfg))
    with Inventory.in_data_dir(settings.data_dir) as inv:
        assert sync(settings, inv).console_user == ""
    assert settings.acl_file.read_text().count("user ") == 2  # gateway + air-0001
