"""TLS fixtures: a site CA made by the project's own code, brokers with ONLY a TLS listener."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from provisioning import mosquitto, tls
from provisioning.credentials import Credential
from tests.provisioning.conftest import micropython_bin, unix_board  # noqa: F401 (fixtures)
from tests.servers import Mosquitto, running

GATEWAY = Credential("gw", "gw-secret-1")
DEVICES = ("air-0001", "air-0002", "air-0003", "air-0099")


def device_password(device: str) -> str:
    return f"pw-{device}-x"


@pytest.fixture(scope="session")
def site_tls(tmp_path_factory: pytest.TempPathFactory) -> tls.TlsFiles:
    """`broker certs` output: CA + server certificate for localhost and 127.0.0.1."""
    return tls.issue(tmp_path_factory.mktemp("site"), "bdnc-lab",
                     ["localhost", "127.0.0.1"]).files


@pytest.fixture(scope="session")
def rogue_tls(tmp_path_factory: pytest.TempPathFactory) -> tls.TlsFiles:
    """Another CA's certificate for the same names: what an impostor on the Wi-Fi shows."""
    return tls.issue(tmp_path_factory.mktemp("rogue"), "rogue", ["localhost", "127.0.0.1"]).files


def server_cert(site: tls.TlsFiles, dest: Path, hosts: list[str], *, days: int = 825,
                not_before: dt.datetime = tls.NOT_BEFORE) -> tuple[Path, Path, Path]:
    """Another broker certificate from the site CA: (cafile, certfile, keyfile)."""
    ca_key, ca_cert = tls.load_ca(site)
    key, cert = tls.make_server(ca_key, ca_cert, hosts, days, not_before=not_before)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (dest / "server.key").write_bytes(tls.key_pem(key))
    (dest / "server.key").chmod(0o600)
    return site.ca_cert, dest / "server.crt", dest / "server.key"


def tls_broker(dir: Path, files: tuple[Path, Path, Path], anonymous: bool = False) -> Mosquitto:
    users = [GATEWAY, *(Credential(d, device_password(d)) for d in DEVICES)]
    extra: tuple[str, ...] = ()
    if not anonymous:
        mosquitto.write_password_file(dir / "passwd", users, "python")
        extra = (f"password_file {dir / 'passwd'}",)
    return Mosquitto(dir, tls=files, allow_anonymous=anonymous, extra=extra)


def site_files(site: tls.TlsFiles) -> tuple[Path, Path, Path]:
    return site.ca_cert, site.server_cert, site.server_key


@pytest.fixture
def broker_tls(tmp_path: Path, site_tls: tls.TlsFiles) -> Iterator[Mosquitto]:
    """A Mosquitto with only a TLS listener and passwords (the production shape)."""
    with running(tls_broker(tmp_path / "mosq", site_files(site_tls))) as server:
        yield server


@pytest.fixture
def rogue_broker(tmp_path: Path, rogue_tls: tls.TlsFiles) -> Iterator[Mosquitto]:
    """An impostor: open to anyone, certificate from another CA for the right names."""
    with running(tls_broker(tmp_path / "rogue", site_files(rogue_tls), anonymous=True)) as s:
        yield s


@pytest.fixture(scope="session")
def micropython() -> str:
    import firmware

    try:
        return firmware.micropython_binary()
    except firmware.MicroPythonNotFoundError as exc:
        pytest.skip(str(exc))
