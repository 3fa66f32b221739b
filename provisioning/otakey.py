"""Per-device firmware-update keys: 32 random bytes per device, kept beside its MQTT
secret (``<secrets_dir>/<device>.ota``, mode 0600, never in git).

The key reaches the device once, in its ``device.json`` (``"ota": {"key": hex}``),
at provisioning (or when the simulated fleet lays out a board). ``fleet update``
signs each device's manifest with it (HMAC-SHA256); the key itself is never sent
in an update, so a device takes only manifests made by whoever holds this store.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from .credentials import _write_private
from .errors import ProvisioningError

_HEX = re.compile(r"^[0-9a-f]{64}$")


def key_path(secrets_dir: Path, device: str) -> Path:
    return secrets_dir / f"{device}.ota"


def load(secrets_dir: Path, device: str) -> str | None:
    """The device's key as 64 hex digits, or None when it has none."""
    path = key_path(secrets_dir, device)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ProvisioningError(f"ota key file {path} is unreadable: {exc} "
                                "(fix its permissions, or delete it and re-flash the device)"
                                ) from None
    if not _HEX.match(text):
        raise ProvisioningError(f"ota key file {path} is not 64 hex digits "
                                "(delete it and re-flash the device)")
    return text


def ensure(secrets_dir: Path, device: str) -> str:
    """The device's key, created on first use."""
    existing = load(secrets_dir, device)
    if existing is not None:
        return existing
    key = secrets.token_hex(32)
    _write_private(key_path(secrets_dir, device), key + "\n")
    return key
