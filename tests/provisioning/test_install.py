"""install-micropython without hardware: image checks, drive detection, esptool commands."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from gateway.cli import main
from provisioning import install
from provisioning.errors import ImageError, ProvisioningError


def _uf2(path: Path, blocks: int = 2, bad: bool = False) -> Path:
    data = b""
    for i in range(blocks):
        block = struct.pack("<IIIIIIII", install.UF2_MAGIC_START0,
                            install.UF2_MAGIC_START1 ^ (1 if bad else 0), 0x2000,
                            0x10000000 + 256 * i, 256, i, blocks, 0xE48BFF56)
        block += b"\0" * (512 - 4 - len(block)) + struct.pack("<I", install.UF2_MAGIC_END)
        data += block
    path.write_bytes(data)
    return path


def test_uf2_validation(tmp_path: Path) -> None:
    assert install.check_uf2(_uf2(tmp_path / "ok.uf2", 3)) == 3
    with pytest.raises(ImageError, match="bad magic"):
        install.check_uf2(_uf2(tmp_path / "bad.uf2", bad=True))
    (tmp_path / "short.uf2").write_bytes(b"x" * 100)
    with pytest.raises(ImageError, match="not a UF2"):
        install.check_uf2(tmp_path / "short.uf2")
    with pytest.raises(ImageError, match="not found"):
        install.check_uf2(tmp_path / "missing.uf2")


def test_esp_image_validation(tmp_path: Path) -> None:
    good = tmp_path / "fw.bin"
    good.write_bytes(bytes([0xE9, 3, 2, 0x20]) + b"\0" * 60)
    install.check_esp_image(good)
    uf2 = _uf2(tmp_path / "fw.uf2")
    with pytest.raises(ImageError, match="0xE9"):
        install.check_esp_image(uf2)


def test_rp2_drive_detection_and_copy(tmp_path: Path) -> None:
    pattern = (str(tmp_path / "media/*/RPI-RP2"),)
    with pytest.raises(ProvisioningError, match="BOOTSEL"):
        install.find_rp2_drive(pattern)
    drive = tmp_path / "media/alice/RPI-RP2"
    drive.mkdir(parents=True)
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nBoard-ID: RPI-RP2\n")
    assert install.find_rp2_drive(pattern) == drive
    (tmp_path / "media/bob/RPI-RP2").mkdir(parents=True)
    with pytest.raises(ProvisioningError, match="several"):
        install.find_rp2_drive(pattern)
    image = _uf2(tmp_path / "mp.uf2")
    assert install.install_uf2(image, drive).read_bytes() == image.read_bytes()


def test_install_cli_pico(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    image = _uf2(tmp_path / "mp.uf2")
    assert main(["device", "install-micropython", "--board", "pico_w", "--image", str(image),
                 "--drive", str(drive)]) == 2     # no INFO_UF2.TXT: not a boot drive
    assert "INFO_UF2.TXT" in capsys.readouterr().err
    (drive / "INFO_UF2.TXT").write_text("Board-ID: RPI-RP2\n")
    assert main(["device", "install-micropython", "--board", "pico_w", "--image", str(image),
                 "--drive", str(drive)]) == 0
    assert (drive / "mp.uf2").exists()


def test_esptool_commands() -> None:
    cmds = install.esptool_commands("/dev/ttyUSB0", Path("/x/fw.bin"), 0x1000, python="py")
    assert cmds == [
        ["py", "-m", "esptool", "--chip", "auto", "--port", "/dev/ttyUSB0", "--baud", "460800",
         "erase_flash"],
        ["py", "-m", "esptool", "--chip", "auto", "--port", "/dev/ttyUSB0", "--baud", "460800",
         "write_flash", "-z", "0x1000", "/x/fw.bin"],
    ]


def test_install_cli_esp32_checks_image_first(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    not_esp = _uf2(tmp_path / "mp.uf2")
    assert main(["device", "install-micropython", "--board", "esp32", "--port", "/dev/null",
                 "--image", str(not_esp)]) == 2
    assert "not an ESP32 firmware image" in capsys.readouterr().err
    assert main(["device", "install-micropython", "--board", "esp32",
                 "--image", str(not_esp)]) == 2
    assert "--port is required" in capsys.readouterr().err


def test_list_ports_marks_boards(monkeypatch: pytest.MonkeyPatch) -> None:
    from serial.tools.list_ports_common import ListPortInfo

    from provisioning import ports

    def fake() -> list[ListPortInfo]:
        out = []
        for dev, vid, pid in (("/dev/ttyACM0", 0x2E8A, 0x0005), ("/dev/ttyUSB0", 0x10C4, 0xEA60),
                              ("/dev/ttyS0", None, None)):
            p = ListPortInfo(dev, skip_link_detection=True)
            p.vid, p.pid, p.description = vid, pid, "x"
            out.append(p)
        return out

    monkeypatch.setattr("provisioning.ports.list_ports.comports", fake)
    found = ports.candidate_ports()
    assert [(p.device, p.usb_id, p.boards) for p in found] == [
        ("/dev/ttyACM0", "2E8A:0005", ("pico_w",)), ("/dev/ttyUSB0", "10C4:EA60", ("esp32",))]
    assert len(ports.candidate_ports(include_all=True)) == 3
    assert "pico_w" in ports.format_ports(found)
