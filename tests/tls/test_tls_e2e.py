"""TLS on every hop, against a real Mosquitto that has ONLY a TLS listener.

The real firmware (MicroPython unix port) and the real gateway (``livinglab gateway``)
deliver end to end into an influxd that serves only https; an impostor broker with
a certificate from another CA, a certificate for another host name, an expired
certificate and a wrong password are each refused with a clear line and no traceback.
Clocks are moved with Debian's ``faketime``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from provisioning import tls
from tests.firmware.device import SITE, Device, Observer, device_config, make_device
from tests.gateway.helpers import GatewayProc, influx_rows, write_config
from tests.servers import Influxd, Mosquitto, free_port, running, wait_for
from tests.tls.conftest import GATEWAY, device_password, server_cert, site_files, tls_broker

pytestmark = pytest.mark.slow

FAKETIME = shutil.which("faketime")
# libfaketime must leave CLOCK_MONOTONIC alone: the firmware's ticks and timeouts use it
FAKE_ENV = ("env", "FAKETIME_DONT_FAKE_MONOTONIC=1", "faketime", "-f")


def tls_device(micropython: str, flash: Path, broker: Mosquitto, ca: Path, device: str = "air-0001",
               host: str = "localhost", password: str | None = None,
               wrap: tuple[str, ...] = (), **over: Any) -> Device:
    """A board as `device flash` leaves it with [mqtt] tls on: ca.der + tls: true."""
    cfg = device_config(device, broker.port, interval_s=1, **over)
    cfg["mqtt"].update(host=host, tls=True, ca="ca.der", username=device,
                       password=device_password(device) if password is None else password)
    dev = make_device(micropython, flash, cfg, speed=5.0)
    (flash / "ca.der").write_bytes(tls.ca_der(ca))
    dev.wrap = wrap
    return dev


def tls_observer(broker: Mosquitto, ca: Path, user: str = GATEWAY.username,
                 password: str = GATEWAY.password) -> Observer:
    obs = Observer(broker.port, client_id=f"obs-{os.getpid()}-{broker.port}")
    obs.client.tls_set(ca_certs=str(ca))
    obs.client.username_pw_set(user, password)
    # paho checks the name it connects to: the observer uses the certificate's IP SAN
    return obs


def gateway_cmd(cfg: Path, *wrap: str) -> list[str]:
    return [*wrap, sys.executable, "-m", "gateway.cli", "gateway", "--config", str(cfg),
            "--connect-timeout", "4"]


def refused_once(dev: Device, what: str) -> bool:
    return dev.stderr().count(what) >= 2  # failed, backed off, failed again: still alive


def test_firmware_and_gateway_deliver_over_tls_to_https_influxd(
        micropython: str, tmp_path: Path, broker_tls: Mosquitto, site_tls: tls.TlsFiles) -> None:
    # influxd with https only, certificate from the same `broker certs` code
    _, cert, key = server_cert(site_tls, tmp_path / "influx-tls", ["localhost"])
    with running(Influxd(tmp_path / "influxd", tls=(cert, key, site_tls.ca_cert))) as influxd:
        hp = free_port()
        cfg = write_config(tmp_path / "gw.toml", site=SITE, mqtt_port=broker_tls.port,
                           health_port=hp,
                           mqtt={"host": "localhost", "tls": True,
                                 "ca_file": str(site_tls.ca_cert),
                                 "username": GATEWAY.username, "password": GATEWAY.password},
                           store={"kind": "influxdb1", "url": influxd.url, "database": "ll",
                                  "ca_file": str(site_tls.ca_cert)})
        gw = GatewayProc(cfg, hp)
        dev = tls_device(micropython, tmp_path / "flash", broker_tls, site_tls.ca_cert)
        gw.start()
        dev.start()
        try:
            with tls_observer(broker_tls, site_tls.ca_cert) as obs:
                rows = wait_for(lambda: influx_rows(influxd, "ll"), 60,
                                what="device readings in influxd over https")
                status = wait_for(lambda: obs.of("air-0001", "status"), 20, what="status")
            assert dev.alive(), dev.stderr()[-2000:]
        finally:
            dev.stop()
            assert gw.terminate() == 0
    assert {r[0] for r in rows} == {"air-0001"}
    first = status[-1].json()
    assert first["state"] == "online" and "tls_error" not in first
    log = gw.log.read_text()
    assert "Traceback" not in log
    assert GATEWAY.password not in log and device_password("air-0001") not in log


def test_rogue_broker_gets_no_telemetry_and_no_subscription(
        micropython: str, tmp_path: Path, rogue_broker: Mosquitto, rogue_tls: tls.TlsFiles,
        site_tls: tls.TlsFiles) -> None:
    dev = tls_device(micropython, tmp_path / "flash", rogue_broker, site_tls.ca_cert)
    with tls_observer(rogue_broker, rogue_tls.ca_cert, "anyone", "x") as spy:
        dev.start()
        try:
            wait_for(lambda: refused_once(dev, "ll: tls_error:"), 40, what="device refusal")
            assert dev.alive()
        finally:
            dev.stop()
        cfg = write_config(tmp_path / "gw.toml", site=SITE, mqtt_port=rogue_broker.port,
                           health_port=0,
                           mqtt={"host": "localhost", "tls": True,
                                 "ca_file": str(site_tls.ca_cert)},
                           store={"kind": "sqlite"})
        gw = subprocess.run(gateway_cmd(cfg), capture_output=True, text=True, timeout=60)
        assert not spy.of("air-0001", "telemetry") and not spy.of("air-0001", "status")
    err = dev.stderr()
    assert "not correctly signed by the trusted CA" in err and "Traceback" not in err
    assert gw.returncode != 0
    last = gw.stderr.strip().splitlines()[-1]
    assert last.startswith("livinglab: MQTT broker at localhost:") and "TLS" in last, gw.stderr
    assert "Traceback" not in gw.stderr
    # the impostor never saw the gateway's CONNECT, so it never got a SUBSCRIBE either
    assert "livinglab-gateway" not in rogue_broker.log.read_text()


def test_wrong_host_name_is_refused(micropython: str, tmp_path: Path,
                                    site_tls: tls.TlsFiles) -> None:
    files = server_cert(site_tls, tmp_path / "ip-only", ["127.0.0.1"])  # no "localhost"
    with running(tls_broker(tmp_path / "mosq", files)) as broker:
        dev = tls_device(micropython, tmp_path / "flash", broker, site_tls.ca_cert)
        dev.start()
        try:
            wait_for(lambda: refused_once(dev, "ll: tls_error:"), 40, what="device refusal")
        finally:
            dev.stop()
        cfg = write_config(tmp_path / "gw.toml", site=SITE, mqtt_port=broker.port, health_port=0,
                           mqtt={"host": "localhost", "tls": True,
                                 "ca_file": str(site_tls.ca_cert),
                                 "username": GATEWAY.username, "password": GATEWAY.password},
                           store={"kind": "sqlite"})
        gw = subprocess.run(gateway_cmd(cfg), capture_output=True, text=True, timeout=60)
    assert "Common Name" in dev.stderr() or "CN" in dev.stderr(), dev.stderr()[-1000:]
    assert gw.returncode != 0 and "Hostname mismatch" in gw.stderr, gw.stderr
    assert "Traceback" not in gw.stderr


@pytest.mark.skipif(FAKETIME is None, reason="faketime not installed (apt install faketime)")
def test_clock_before_ntp_connects_expired_and_not_yet_valid_are_refused(
        micropython: str, tmp_path: Path, broker_tls: Mosquitto, site_tls: tls.TlsFiles) -> None:
    # 1. A Pico W boots at 2021-01-01: our certificates start in 1999, so it connects.
    early = tls_device(micropython, tmp_path / "early", broker_tls, site_tls.ca_cert,
                       wrap=(*FAKE_ENV, "@2021-01-01 00:00:00"))
    # 2. Past the server certificate's 825 days: refused until `broker certs` renews it.
    late = tls_device(micropython, tmp_path / "late", broker_tls, site_tls.ca_cert,
                      device="air-0002", wrap=(*FAKE_ENV, "+900d"))
    with tls_observer(broker_tls, site_tls.ca_cert) as obs:
        early.start()
        late.start()
        try:
            wait_for(lambda: obs.of("air-0001", "telemetry"), 40, what="2021 board online")
            wait_for(lambda: refused_once(late, "ll: tls_error:"), 40, what="expired refusal")
        finally:
            early.stop()
            late.stop()
        assert not obs.of("air-0002", "telemetry")
    assert "expired" in late.stderr()
    # 3. A certificate that starts "now" (what a default openssl recipe makes) is not
    #    yet valid for that 2021 board: the reason `broker certs` back-dates to 1999.
    files = server_cert(site_tls, tmp_path / "now", ["localhost"],
                        not_before=dt.datetime.now(dt.UTC))
    with running(tls_broker(tmp_path / "mosq-now", files)) as broker:
        dev = tls_device(micropython, tmp_path / "nb", broker, site_tls.ca_cert,
                         wrap=(*FAKE_ENV, "@2021-01-01 00:00:00"))
        dev.start()
        try:
            wait_for(lambda: refused_once(dev, "ll: tls_error:"), 40, what="not-yet-valid")
        finally:
            dev.stop()
    assert "future" in dev.stderr(), dev.stderr()[-1000:]
    # The gateway (CPython's ssl) refuses the expired certificate too, in one line.
    cfg = write_config(tmp_path / "gw.toml", site=SITE, mqtt_port=broker_tls.port, health_port=0,
                       mqtt={"host": "localhost", "tls": True, "ca_file": str(site_tls.ca_cert),
                             "username": GATEWAY.username, "password": GATEWAY.password},
                       store={"kind": "sqlite"})
    gw = subprocess.run(gateway_cmd(cfg, *FAKE_ENV, "+900d"), capture_output=True, text=True,
                        timeout=60)
    assert gw.returncode != 0 and "certificate has expired" in gw.stderr, gw.stderr
    assert "Traceback" not in gw.stderr


def test_wrong_password_gives_a_clear_status(micropython: str, tmp_path: Path,
                                             broker_tls: Mosquitto,
                                             site_tls: tls.TlsFiles) -> None:
    dev = tls_device(micropython, tmp_path / "flash", broker_tls, site_tls.ca_cert,
                     password="not-the-password")
    dev.start()
    try:
        wait_for(lambda: refused_once(dev, "ll: mqtt refused:"), 40, what="device refusal")
    finally:
        dev.stop()
    assert "tls_error" not in dev.stderr()  # TLS was fine; the login was not
    assert "not-the-password" not in dev.stderr()
    cfg = write_config(tmp_path / "gw.toml", site=SITE, mqtt_port=broker_tls.port, health_port=0,
                       mqtt={"host": "localhost", "tls": True, "ca_file": str(site_tls.ca_cert),
                             "username": GATEWAY.username, "password": "wrong-secret"},
                       store={"kind": "sqlite"})
    gw = subprocess.run(gateway_cmd(cfg), capture_output=True, text=True, timeout=60)
    assert gw.returncode != 0 and "username/password" in gw.stderr.splitlines()[-1]
    assert "wrong-secret" not in gw.stderr and "Traceback" not in gw.stderr


def test_files_on_disk(site_tls: tls.TlsFiles) -> None:
    """What the site above ran on: EC keys owner-only, the CA in DER for boards."""
    assert site_files(site_tls)[2].stat().st_mode & 0o777 == 0o600
    assert site_tls.ca_der.read_bytes()[:1] == b"\x30"  # DER SEQUENCE


def test_tls_error_is_counted_and_reported_in_the_next_status(
        micropython: str, tmp_path: Path, rogue_tls: tls.TlsFiles,
        site_tls: tls.TlsFiles) -> None:
    """An impostor first (refused, backoff, counted), then the real broker on the same
    address: the board connects and its status carries tls_errors and the reason."""
    broker = tls_broker(tmp_path / "mosq", site_files(rogue_tls))
    with running(broker):
        dev = tls_device(micropython, tmp_path / "flash", broker, site_tls.ca_cert)
        dev.start()
        try:
            wait_for(lambda: refused_once(dev, "ll: tls_error:"), 40, what="refusal")
            broker.stop()
            broker.tls = site_files(site_tls)  # same port, the site's certificate now
            broker.start()
            with tls_observer(broker, site_tls.ca_cert) as obs:
                status = wait_for(lambda: [m.json() for m in obs.of("air-0001", "status")
                                           if "tls_error" in m.json()], 60,
                                  what="status with tls_error")
            assert dev.alive()
        finally:
            dev.stop()
    st = status[-1]
    assert st["state"] == "online" and st["tls_errors"] >= 2 and st["conn_failures"] >= 2
    assert st["tls_error"] == "The certificate is not correctly signed by the trusted CA"
