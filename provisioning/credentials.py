"""Per-device MQTT credentials: a random password per device, kept in a 0600 file.

The password has to reach the device (it is written into its ``device.json``)
and Mosquitto's password file (hashed), and has to survive a re-flash so a
re-provisioned device keeps working without a broker change. So the secret is
kept on the provisioning host, one file per device under
``<data_dir>/broker/secrets/`` (dir 0700, files 0600, never in git); the
inventory only stores a reference to it (its path relative to data_dir).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .errors import ProvisioningError


@dataclass(frozen=True)
class Credential:
    username: str
    password: str


def secret_path(secrets_dir: Path, device: str) -> Path:
    return secrets_dir / f"{device}.json"


def new_password() -> str:
    """32 URL-safe random characters (~190 bits): no quoting trouble in any file."""
    return secrets.token_urlsafe(24)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the first byte, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(secrets_dir: Path, device: str) -> Credential | None:
    """The stored credential of ``device``, or None."""
    path = secret_path(secrets_dir, device)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Credential(str(raw["username"]), str(raw["password"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as exc:
        raise ProvisioningError(f"credential file {path} is unreadable: {exc} "
                                "(delete it and re-flash the device)") from None


def ensure(secrets_dir: Path, device: str) -> Credential:
    """The device's credential, created (random password) on first use."""
    existing = load(secrets_dir, device)
    if existing is not None:
        return existing
    cred = Credential(device, new_password())
    _write_private(secret_path(secrets_dir, device),
                   json.dumps({"username": cred.username, "password": cred.password}))
    return cred


def remove(secrets_dir: Path, device: str) -> bool:
    """Delete the device's secret; True when there was one."""
    try:
        secret_path(secrets_dir, device).unlink()
        return True
    except FileNotFoundError:
        return False
