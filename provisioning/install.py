"""``device install-micropython``: put MicroPython itself on a blank board.

* Pico W: the board, started with BOOTSEL held, is a USB drive ``RPI-RP2``;
  copying a ``.uf2`` image onto it flashes it and reboots it.
* ESP32: ``esptool`` erases the flash and writes the image over the serial
  port (classic ESP32 at 0x1000, S2/S3 at 0x0: ``--offset``).

Images are checked before anything is touched: a UF2 block starts with the
magic numbers 0x0A324655 and 0x9E5D5157, an ESP32 app image with 0xE9.
"""

from __future__ import annotations

import glob
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

from .errors import ImageError, ProvisioningError

UF2_MAGIC_START0 = 0x0A324655
UF2_MAGIC_START1 = 0x9E5D5157
UF2_MAGIC_END = 0x0AB16F30
UF2_BLOCK = 512
ESP_IMAGE_MAGIC = 0xE9
RP2_DRIVE_GLOBS = ("/media/*/RPI-RP2", "/run/media/*/RPI-RP2", "/media/RPI-RP2",
                   "/Volumes/RPI-RP2")


def _read_head(image: Path, n: int) -> bytes:
    try:
        with image.open("rb") as f:
            return f.read(n)
    except FileNotFoundError:
        raise ImageError(f"image {image} not found (download it from "
                         "https://micropython.org/download/)") from None
    except IsADirectoryError:
        raise ImageError(f"image {image} is a directory (pass the image file)") from None


def check_uf2(image: Path) -> int:
    """Number of UF2 blocks in ``image``, or :class:`ImageError`."""
    head = _read_head(image, UF2_BLOCK)
    size = image.stat().st_size
    if len(head) < UF2_BLOCK or size % UF2_BLOCK:
        raise ImageError(f"{image} is not a UF2 image (size {size} is not a multiple of 512; "
                         "download the .uf2 for the Pico W)")
    m0, m1 = struct.unpack_from("<II", head, 0)
    (end,) = struct.unpack_from("<I", head, UF2_BLOCK - 4)
    if (m0, m1, end) != (UF2_MAGIC_START0, UF2_MAGIC_START1, UF2_MAGIC_END):
        raise ImageError(f"{image} is not a UF2 image (bad magic numbers; "
                         "download the .uf2 for the Pico W)")
    return size // UF2_BLOCK


def check_esp_image(image: Path) -> None:
    """An ESP32 firmware image starts with the byte 0xE9."""
    head = _read_head(image, 1)
    if not head or head[0] != ESP_IMAGE_MAGIC:
        raise ImageError(f"{image} is not an ESP32 firmware image (first byte is not 0xE9; "
                         "download the .bin for your ESP32 variant)")


def find_rp2_drive(globs: tuple[str, ...] = RP2_DRIVE_GLOBS) -> Path:
    """The mounted RPI-RP2 drive; exactly one must be present."""
    found = sorted({p for g in globs for p in glob.glob(g) if os.path.isdir(p)})
    if not found:
        raise ProvisioningError("no RPI-RP2 drive found (hold BOOTSEL while plugging the Pico "
                                "in, wait for the drive to mount, or pass --drive PATH)")
    if len(found) > 1:
        raise ProvisioningError(f"several RPI-RP2 drives found ({', '.join(found)}): "
                                "pass --drive PATH")
    return Path(found[0])


def install_uf2(image: Path, drive: Path | None = None) -> Path:
    """Copy the UF2 image onto the boot drive (the board reboots into MicroPython)."""
    check_uf2(image)
    target = drive or find_rp2_drive()
    if not (target / "INFO_UF2.TXT").exists():
        raise ProvisioningError(f"{target} does not look like an RPI-RP2 boot drive "
                                "(no INFO_UF2.TXT; pass the drive's mount point)")
    dest = target / image.name
    shutil.copyfile(image, dest)
    return dest


def esptool_commands(port: str, image: Path, offset: int, baud: int = 460800,
                     python: str = sys.executable) -> list[list[str]]:
    """The two esptool runs: erase the whole flash, then write the image."""
    base = [python, "-m", "esptool", "--chip", "auto", "--port", port, "--baud", str(baud)]
    return [base + ["erase_flash"],
            base + ["write_flash", "-z", hex(offset), str(image)]]


def install_esp32(port: str, image: Path, offset: int, baud: int = 460800) -> None:
    """Erase and write with esptool; its own progress output goes to the terminal."""
    check_esp_image(image)
    for cmd in esptool_commands(port, image, offset, baud):
        proc = subprocess.run(cmd, check=False, timeout=600)
        if proc.returncode != 0:
            raise ProvisioningError(f"esptool {cmd[8]} failed (exit {proc.returncode}; hold "
                                    "BOOT on the board while it connects, or lower --baud)")
