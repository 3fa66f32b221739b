"""Firmware update packs: the application files of a version, a manifest, its HMAC.

``fleet update`` packs the current ``firmware/`` sources as version V, one folder
per board (``<out>/<V>/<board>/``): the slot's files (``ll/...``, with
``ll/version.py`` rewritten to say V) and ``ota.manifest``::

    livinglab-ota 1
    version 0.2.0
    board pico_w
    <sha256 hex> <size> ll/app.py
    ...

Each device gets the same manifest and its own HMAC-SHA256 of it, under the
device's key (provisioning/otakey.py), in the control message it receives on
its ``update`` topic: ``{"version": V, "url": ".../<V>/<board>/", "mac": hex}``.
The device checks the MAC, then every file's size and SHA-256 against the
manifest (firmware/ll/ota.py; docs/ota.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from pathlib import Path

import firmware

from .fleet_errors import FleetError

MAGIC = "livinglab-ota 1"
MANIFEST = "ota.manifest"
MANIFEST_MAX = 4096  # the device refuses a bigger one (firmware/ll/ota.py)
_VERSION = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,6}){0,3}$")


class OtaError(FleetError):
    """A firmware update cannot be packed or rolled out."""


def version_tuple(v: str) -> tuple[int, ...]:
    """'1.10.2' -> (1, 10, 2), as the device compares them (never as strings)."""
    if not _VERSION.match(v):
        raise OtaError(f"version '{v}' is not valid (use 1 to 4 dot-separated numbers, "
                       "e.g. 0.2.0)")
    return tuple(int(p) for p in v.split("."))


@dataclass(frozen=True)
class BoardPack:
    board: str
    version: str
    folder: Path  # <out>/<V>/<board>
    manifest: bytes
    files: int
    size: int  # bytes of application code


def pack(version: str, board: str, out: Path,
         source: Path = firmware.FIRMWARE_DIR) -> BoardPack:
    """Write the slot files of ``board`` from ``source`` and their manifest under ``out``."""
    version_tuple(version)
    folder = out / version / board
    lines = [MAGIC, f"version {version}", f"board {board}"]
    total = 0
    files = firmware.slot_files(board, source)
    for src, rel in files:
        data = src.read_bytes()
        if rel == "ll/version.py":
            data = (f'# Firmware version; packed by `livinglab fleet update`.\n'
                    f'FW_VERSION = "{version}"\n').encode()
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        lines.append(f"{hashlib.sha256(data).hexdigest()} {len(data)} {rel}")
        total += len(data)
    manifest = ("\n".join(lines) + "\n").encode()
    if len(manifest) > MANIFEST_MAX:
        raise OtaError(f"manifest of {len(files)} files is {len(manifest)} bytes, more than "
                       f"the device takes ({MANIFEST_MAX}); ship fewer files")
    (folder / MANIFEST).write_bytes(manifest)
    return BoardPack(board, version, folder, manifest, len(files), total)


def mac(key_hex: str, manifest: bytes) -> str:
    return hmac.new(bytes.fromhex(key_hex), manifest, hashlib.sha256).hexdigest()


def control_message(version: str, url: str, key_hex: str, manifest: bytes) -> bytes:
    """The message published (QoS 1, not retained) on ``.../{device}/update``."""
    return json.dumps({"version": version, "url": url, "mac": mac(key_hex, manifest)},
                      separators=(",", ":")).encode()
