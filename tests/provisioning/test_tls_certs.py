"""`broker certs`, the sync snippet, the TLS config keys and the doctor check (no servers)."""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from devices.fleet_plan import BrokerTarget, DeviceSpec, broker_target, device_config
from gateway.cli import main
from protocols.config import load_config, parse_config
from provisioning import tls
from provisioning.credentials import Credential
from provisioning.flash import device_config as flash_config
from provisioning.settings import settings_from_config

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def write_cfg(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "ll.toml"
    cfg.write_text(f'site = "bdnc-lab"\n[gateway]\ndata_dir = "{tmp_path / "var"}"\n{extra}')
    return cfg


def test_certs_cli_keeps_the_ca_and_prints_listener_lines(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_cfg(tmp_path)
    assert main(["broker", "certs", "--config", str(cfg), "--hosts",
                 "broker.lab,10.0.0.2", "--days", "90"]) == 0
    out = capsys.readouterr().out
    files = tls.tls_files(tmp_path / "var")
    assert "created" in out and f"certfile {files.server_cert}" in out
    assert "listener 8883" in out
    ca_first = files.ca_cert.read_bytes()
    server_first = files.server_cert.read_bytes()
    assert main(["broker", "certs", "--config", str(cfg), "--hosts", "broker.lab"]) == 0
    assert "kept" in capsys.readouterr().out
    assert files.ca_cert.read_bytes() == ca_first  # boards keep trusting the same CA
    assert files.server_cert.read_bytes() != server_first
    for key in (files.ca_key, files.server_key):
        assert key.stat().st_mode & 0o777 == 0o600
    owner = tls.broker_owner()
    if owner is not None and os.geteuid() == 0:  # mosquitto reads it after dropping root
        assert files.server_key.stat().st_uid == owner.pw_uid
        assert files.ca_key.stat().st_uid == 0
    cert = x509.load_pem_x509_certificate(server_first)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.lab"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.2"]
    assert cert.not_valid_before_utc.year == 1999  # a board's clock before NTP
    # the server certificate really chains to the CA (what mbedTLS / OpenSSL check)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_first))
    assert files.ca_der.read_bytes() == tls.ca_der(files.ca_cert)


@pytest.mark.parametrize("hosts", ["", " , ", "bad host", "under_score.lab"])
def test_bad_hosts_are_one_line(tmp_path: Path, hosts: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_cfg(tmp_path)
    assert main(["broker", "certs", "--config", str(cfg), "--hosts", hosts]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("livinglab: --hosts") and "Traceback" not in "".join(err)


def test_sync_snippet_gets_the_tls_listener_once_certs_exist(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_cfg(tmp_path, '[provisioning]\nhasher = "python"\ntls_port = 18883\n')
    assert main(["broker", "sync", "--config", str(cfg)]) == 0
    snippet = tmp_path / "var" / "broker" / "mosquitto.conf"
    assert "password_file" in snippet.read_text() and "listener" not in snippet.read_text()
    assert main(["broker", "certs", "--config", str(cfg), "--hosts", "localhost"]) == 0
    assert main(["broker", "sync", "--config", str(cfg)]) == 0
    text = snippet.read_text()
    files = tls.tls_files(tmp_path / "var")
    assert "listener 18883\n" in text and f"keyfile {files.server_key}\n" in text
    assert "with the TLS listener" in capsys.readouterr().out


def test_config_tls_defaults() -> None:
    c = parse_config({"site": "x", "gateway": {"data_dir": "/d"}, "mqtt": {"tls": True}}, env={})
    assert c.mqtt.port == 8883 and c.mqtt_ca_file == Path("/d/broker/tls/ca.crt")
    c = parse_config({"site": "x", "mqtt": {"tls": True, "port": 9999, "ca_file": "/ca.pem"}},
                     env={})
    assert c.mqtt.port == 9999 and c.mqtt_ca_file == Path("/ca.pem")
    c = parse_config({"site": "x", "mqtt": {"ca_file": ""}, "store": {"ca_file": ""}}, env={})
    assert c.mqtt_ca_file is None and not c.mqtt_tls and c.store.ca_file is None


def test_flash_and_fleet_give_devices_the_ca(tmp_path: Path) -> None:
    res = tls.issue(tmp_path / "var", "bdnc-lab", ["localhost"])
    cfg = load_config(write_cfg(tmp_path, '[mqtt]\ntls = true\nusername = "gw"\n'
                                          'password = "gw-pass"\n'), env={})
    settings = settings_from_config(cfg)
    from devices.catalogue import boards

    d = flash_config(settings, boards()["pico_w"], "air-0001", (),
                     Credential("air-0001", "secret"))
    assert d["mqtt"]["tls"] is True and d["mqtt"]["ca"] == "ca.der"
    assert d["mqtt"]["port"] == 8883
    target = broker_target(cfg)
    assert target.device_files() == {"ca.der": res.files.ca_der.read_bytes()}
    assert isinstance(target.tls_context(), ssl.SSLContext)
    sim = device_config(DeviceSpec(device="air-0001", kind="air", seed=1), site="bdnc-lab",
                        broker=target, interval_s=5, profile="office")
    assert sim["mqtt"]["tls"] is True and sim["mqtt"]["ca"] == "ca.der"
    plain = BrokerTarget(host="h", port=1883)
    assert plain.device_files() == {} and plain.tls_context() is None
    assert "tls" not in device_config(DeviceSpec(device="air-0001", kind="air", seed=1),
                                      site="s", broker=plain, interval_s=5,
                                      profile="office")["mqtt"]


def test_device_json_is_owner_only(tmp_path: Path) -> None:
    import firmware

    path = firmware.write_device_config(tmp_path, {"device": "air-0001",
                                                   "mqtt": {"password": "secret"}})
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["device"] == "air-0001"


def test_cert_expiry_check_levels(tmp_path: Path) -> None:
    ca_key, ca = tls.make_ca("s", now=NOW)
    cases = {"ok": (NOW, 365), "warn": (NOW, 10), "expired": (NOW - dt.timedelta(days=20), 10)}
    for name, (now, days) in cases.items():
        _, cert = tls.make_server(ca_key, ca, ["h"], days, now=now)
        (tmp_path / f"{name}.crt").write_bytes(cert.public_bytes(
            serialization.Encoding.PEM))
    level, what, fix = tls.cert_expiry_check(tmp_path / "ok.crt", NOW)
    assert level == "ok" and "valid until 2027-06-01" in what and fix == ""
    level, what, fix = tls.cert_expiry_check(tmp_path / "warn.crt", NOW)
    assert level == "warn" and "expires in 10 days" in what and "broker certs" in fix
    level, what, fix = tls.cert_expiry_check(tmp_path / "expired.crt", NOW)
    assert level == "fail" and "expired on 2026-05-22" in what
    level, what, _ = tls.cert_expiry_check(tmp_path / "ok.crt", dt.datetime(1990, 1, 1,
                                                                               tzinfo=dt.UTC))
    assert level == "fail" and "not valid before 1999-01-01" in what
    level, what, _ = tls.cert_expiry_check(tmp_path / "missing.crt", NOW)
    assert level == "fail" and "unreadable" in what


def test_help_shows_no_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["broker", "certs", "--help"], ["gateway", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
    out = capsys.readouterr().out
    assert "password =" not in out and "token =" not in out


def test_devices_json_shows_no_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from devices.inventory import Device, Inventory
    from provisioning import credentials

    cfg = write_cfg(tmp_path, '[mqtt]\nport = 1\nusername = "gw"\npassword = "gw-pass-9"\n')
    cred = credentials.ensure(tmp_path / "var" / "broker" / "secrets", "air-0001")
    with Inventory.in_data_dir(tmp_path / "var") as inv:
        inv.upsert(Device(device="air-0001", site="bdnc-lab", board="pico_w",
                          credential_ref="broker/secrets/air-0001.json"))
    assert main(["devices", "--config", str(cfg), "--json", "--listen", "0.1"]) == 0
    out, err = capsys.readouterr()
    assert "air-0001" in out
    for secret in (cred.password, "gw-pass-9"):
        assert secret not in out and secret not in err
