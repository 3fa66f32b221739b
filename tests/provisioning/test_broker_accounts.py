"""Accounts (issue 15): with `[mqtt] operator_username`, the gateway's login reads its site
and writes only its own `_gateway/{id}/#`; the operators' login writes config and update
topics (`fleet update` uses it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.inventory import Device, Inventory
from protocols.config import load_config
from provisioning import credentials
from provisioning.mosquitto import DeviceAcl, acl_text
from provisioning.settings import settings_from_config
from provisioning.sync import sync
from tests.provisioning.conftest import write_config
from tests.provisioning.test_broker_acl import PREFIX, Client, _answered
from tests.servers import Mosquitto, wait_for

pytestmark = pytest.mark.timeout(60)
OPERATOR = 'operator_username = "operator"\noperator_password = "op-secret"\n'


def _config(tmp_path: Path) -> Path:
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace('password = "gw-secret"\n',
                                           'password = "gw-secret"\n' + OPERATOR))
    return cfg


def test_acl_text_fences_the_gateway_when_operators_have_their_own_login() -> None:
    text = acl_text("p", [DeviceAcl("lab", "a-1")], "gw", "lab", "gw-01", "",
                    operator_user="op")
    gw, op = text.split("\n\n")[0], text.split("\n\n")[1]
    assert gw.endswith("user gw\ntopic read p/lab/#\ntopic write p/lab/_gateway/gw-01/#")
    assert op == ("user op\ntopic read p/lab/+/status\ntopic read p/lab/_gateway/+/status\n"
                  "topic write p/lab/+/config\ntopic write p/lab/+/update")


def test_only_the_operator_reaches_a_device_update_topic(tmp_path: Path) -> None:
    path = _config(tmp_path)
    cfg = load_config(path)
    assert cfg.mqtt_operator == ("operator", "op-secret")
    settings = settings_from_config(cfg)
    with Inventory.in_data_dir(settings.data_dir) as inv:
        credentials.ensure(settings.secrets_dir, "air-0001")
        inv.upsert(Device(device="air-0001", site="test-lab", board="esp32"))
        sync(settings, inv)
    broker = Mosquitto(tmp_path / "mosq", allow_anonymous=False, extra=(
        f"password_file {settings.password_file}", f"acl_file {settings.acl_file}"))
    broker.start()
    clients: list[Client] = []
    try:
        cred = credentials.load(settings.secrets_dir, "air-0001")
        assert cred is not None
        dev = Client(broker.port, cred.username, cred.password)
        clients.append(dev)
        dev.c.subscribe(f"{PREFIX}/air-0001/update", qos=1)
        gw = Client(broker.port, "gateway", "gw-secret")
        op = Client(broker.port, "operator", "op-secret")
        clients += [gw, op]
        assert gw.accepted and op.accepted
        info = gw.c.publish(f"{PREFIX}/air-0001/update", b"from-gateway", qos=1)
        wait_for(lambda: _answered(info), 5, what="gateway publish answered")
        op.c.publish(f"{PREFIX}/air-0001/update", b"from-operator", qos=1).wait_for_publish(5)
        wait_for(lambda: dev.got, 5, what="the operator's update at the device")
        assert [p for _, p in dev.got] == [b"from-operator"]
        # the gateway still writes its own status
        gw2 = Client(broker.port, "gateway", "gw-secret")
        clients.append(gw2)
        op.c.subscribe(f"{PREFIX}/_gateway/+/status", qos=1)
        wait_for(lambda: gw2.c.publish(f"{PREFIX}/_gateway/gw-01/status", b'{"state":"online"}',
                                       qos=1) and any(t.endswith("gw-01/status")
                                                      for t, _ in op.got), 5,
                 what="gateway status at the operator")
    finally:
        for c in clients:
            c.close()
        broker.stop()
