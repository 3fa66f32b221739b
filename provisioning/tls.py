"""The site's private CA and the broker's server certificate (``livinglab broker certs``).

Files under ``<data_dir>/broker/tls/``:

- ``ca.crt`` / ``ca.key``: the private CA (EC P-256, 20 years). Created once and kept:
  every device trusts it (``ca.der`` on the board), so re-issuing the broker's
  certificate never means re-flashing the fleet.
- ``server.crt`` / ``server.key``: the broker's certificate, SAN = the names and IPs
  given, signed by the CA; re-issued on every run.
- ``ca.der``: the CA in DER, what ``device flash`` copies to boards (MicroPython
  before 1.29 rejects PEM on rp2 and the unix port).

Keys are mode 0600 and, when a ``mosquitto`` user exists, owned by it: Mosquitto
drops to that user before it reads them ("Unable to load server key file").

A board boots with its clock at 2000 (ESP32) or 2021 (Pico W) and mbedTLS checks
the validity dates, so both certificates start in 1999 (``NOT_BEFORE``): a board
can connect before NTP has set its clock. Expiry is still checked once the clock
is right; :func:`cert_expiry_check` warns 30 days ahead.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pwd
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
else:  # imported on first use: every `livinglab` command loads this module, few sign
    from .lazy import lazy_attr, lazy_module

    x509 = lazy_module("cryptography.x509")
    hashes = lazy_module("cryptography.hazmat.primitives.hashes")
    serialization = lazy_module("cryptography.hazmat.primitives.serialization")
    ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
    ExtendedKeyUsageOID = lazy_attr("cryptography.x509.oid", "ExtendedKeyUsageOID")
    NameOID = lazy_attr("cryptography.x509.oid", "NameOID")

from gateway.ops.certcheck import cert_expiry_check

from .errors import ProvisioningError

TLS_DIR = Path("broker/tls")
CA_DAYS = 20 * 365
SERVER_DAYS = 825
# Before any clock a board boots with (ESP32: 2000-01-01, Pico W: 2021-01-01).
NOT_BEFORE = dt.datetime(1999, 1, 1, tzinfo=dt.UTC)
MQTT_TLS_PORT = 8883
BROKER_USER = "mosquitto"

Level = Literal["ok", "warn", "fail"]


class TlsError(ProvisioningError):
    """A certificate or key cannot be made, read or used."""


@dataclass(frozen=True)
class TlsFiles:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def ca_der(self) -> Path:
        return self.dir / "ca.der"

    @property
    def server_cert(self) -> Path:
        return self.dir / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.dir / "server.key"


@dataclass(frozen=True)
class CertsResult:
    files: TlsFiles
    ca_created: bool
    hosts: tuple[str, ...]
    not_after: dt.datetime
    owner: str


def tls_files(data_dir: Path) -> TlsFiles:
    return TlsFiles(data_dir / TLS_DIR)


def parse_hosts(text: str) -> tuple[str, ...]:
    """``--hosts broker.lab,10.0.0.2`` -> names and IPs, each checked."""
    hosts = tuple(h.strip() for h in text.split(",") if h.strip())
    if not hosts:
        raise TlsError("--hosts is empty (give the broker's names/IPs as devices reach it, "
                       "e.g. --hosts broker.lab,10.0.0.2)")
    for h in hosts:
        if _ip(h) is None and not all(part and all(c.isalnum() or c == "-" for c in part)
                                      for part in h.rstrip(".").split(".")):
            raise TlsError(f"--hosts: '{h}' is neither a host name nor an IP address "
                           "(e.g. --hosts broker.lab,10.0.0.2)")
    return hosts


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int, owner: pwd.struct_passwd | None = None) -> None:
    """Atomic write with ``mode`` set before any byte lands (keys never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if owner is not None and os.geteuid() == 0:
            os.chown(tmp, owner.pw_uid, owner.pw_gid)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def broker_owner(user: str = BROKER_USER) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(user)
    except KeyError:
        return None


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "livinglab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(site: str, days: int = CA_DAYS, now: dt.datetime | None = None,
            not_before: dt.datetime = NOT_BEFORE
            ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"livinglab {site} CA")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_server(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
                hosts: Sequence[str], days: int = SERVER_DAYS, now: dt.datetime | None = None,
                not_before: dt.datetime = NOT_BEFORE
                ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A server certificate for ``hosts`` (first one is the CN), signed by the CA."""
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        ip = _ip(h)
        sans.append(x509.IPAddress(ip) if ip is not None else x509.DNSName(h))
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (x509.CertificateBuilder().subject_name(_name(hosts[0]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def load_ca(files: TlsFiles) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), None)
    except (OSError, ValueError) as exc:
        raise TlsError(f"cannot read the CA in {files.dir}: {exc} (restore ca.crt/ca.key "
                       "from a backup; deleting both makes a new CA and every board must "
                       "then be re-flashed)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsError(f"{files.ca_key} is not an EC key (restore it from a backup)")
    return key, cert


def issue(data_dir: Path, site: str, hosts: Sequence[str], days: int = SERVER_DAYS,
          owner_user: str = BROKER_USER) -> CertsResult:
    """Create the CA if missing (else keep it), then a fresh server certificate."""
    if days < 1:
        raise TlsError(f"--days {days}: must be at least 1")
    files = tls_files(data_dir)
    owner = broker_owner(owner_user)
    created = False
    if files.ca_cert.exists() or files.ca_key.exists():
        ca_key, ca_cert = load_ca(files)
    else:
        ca_key, ca_cert = make_ca(site)
        _write(files.ca_key, key_pem(ca_key), 0o600)  # root only: it signs everything
        _write(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        created = True
    _write(files.ca_der, ca_cert.public_bytes(serialization.Encoding.DER), 0o644)
    key, cert = make_server(ca_key, ca_cert, hosts, days)
    _write(files.server_key, key_pem(key), 0o600, owner)
    _write(files.server_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644, owner)
    return CertsResult(files, created, tuple(hosts), cert.not_valid_after_utc,
                       owner.pw_name if owner is not None and os.geteuid() == 0 else "")


def listener_lines(files: TlsFiles, port: int = 8883) -> list[str]:
    """The Mosquitto lines for a TLS listener with these files."""
    return [f"listener {port}",
            f"cafile {files.ca_cert}",
            f"certfile {files.server_cert}",
            f"keyfile {files.server_key}",
            "tls_version tlsv1.2"]


def ca_der(path: Path) -> bytes:
    """A CA file (PEM or DER) as DER bytes, what the firmware loads."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read CA file {path}: {exc.strerror} "
                       "(run livinglab broker certs, or fix [mqtt] ca_file)") from None
    try:
        cert = (x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data
                else x509.load_der_x509_certificate(data))
    except ValueError:
        raise TlsError(f"{path} is not a certificate (point [mqtt] ca_file at the CA's "
                       "ca.crt)") from None
    return cert.public_bytes(serialization.Encoding.DER)


__all__ = ["NOT_BEFORE", "CertsResult", "TlsError", "TlsFiles", "broker_owner", "ca_der",
           "cert_expiry_check", "issue", "key_pem", "listener_lines", "load_ca", "make_ca",
           "make_server", "parse_hosts", "tls_files"]
