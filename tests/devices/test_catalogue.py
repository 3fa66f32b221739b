"""Board and sensor profiles: every shipped file validates; lookups and USB matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices import catalogue
from devices.errors import CatalogueError, UnknownBoardError, UnknownSensorError


def test_shipped_profiles_load() -> None:
    assert set(catalogue.boards()) == {"pico_w", "esp32", "unix"}
    assert {"scd41", "bme280", "pms5003", "bh1750", "veml7700", "yfs201"} <= set(
        catalogue.sensors())
    assert catalogue.board("pico_w").platforms == ("rp2",)
    assert catalogue.board("esp32").platforms == ("esp32",)
    assert "linux" in catalogue.board("unix").platforms
    assert catalogue.sensor("scd41").default_address == 0x62


@pytest.mark.parametrize(("vid", "pid", "boards"), [
    (0x2E8A, 0x0005, ["pico_w"]),
    (0x10C4, 0xEA60, ["esp32"]),
    (0x1A86, 0x7523, ["esp32"]),
    (0x303A, 0x1001, ["esp32"]),      # ESP32-S2/S3 native USB: any product id
    (0x0403, 0x6001, []),             # FTDI: not a known board
    (None, None, []),
])
def test_usb_matching(vid: int | None, pid: int | None, boards: list[str]) -> None:
    assert catalogue.boards_for_usb(vid, pid) == boards


def test_platform_lookup() -> None:
    assert catalogue.board_for_platform("rp2") == ["pico_w"]
    assert catalogue.board_for_platform("linux") == ["unix"]


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(UnknownBoardError, match="known boards: esp32, pico_w, unix"):
        catalogue.board("arduino")
    with pytest.raises(UnknownSensorError, match="scd41"):
        catalogue.sensor("dht22")


def test_new_sensor_is_a_new_file(tmp_path: Path) -> None:
    (tmp_path / "sht45.toml").write_text(
        'kind = "sht45"\ndescription = "Sensirion SHT45"\n'
        'quantities = ["temperature", "humidity"]\nbus = "i2c"\ndefault_address = 0x44\n')
    found = catalogue.sensors(tmp_path)
    assert list(found) == ["sht45"] and found["sht45"].default_address == 0x44


@pytest.mark.parametrize(("name", "text", "why"), [
    ("x1", 'kind = "x2"\ndescription = ""\nquantities = ["co2"]\nbus = "i2c"\n', "file name"),
    ("x1", 'kind = "x1"\ndescription = ""\nquantities = ["radon"]\nbus = "i2c"\n',
     "invalid"),
    ("x1", 'kind = "x1"\ndescription = ""\nquantities = ["co2"]\nbus = "can"\n', "invalid"),
    ("x1", 'kind = "x1"\nquantities = ["co2"]\nbus = "i2c"\ncolour = 1\n', "invalid"),
])
def test_bad_profiles_fail_loudly(tmp_path: Path, name: str, text: str, why: str) -> None:
    (tmp_path / f"{name}.toml").write_text(text)
    with pytest.raises(CatalogueError, match=why):
        catalogue.sensors(tmp_path)


def test_bad_usb_id_rejected(tmp_path: Path) -> None:
    (tmp_path / "b.toml").write_text(
        'name = "b"\ndescription = ""\nplatforms = ["rp2"]\nusb_ids = ["2e8a:5"]\n'
        'firmware_board = "pico_w"\nreset = "machine"\nhas_wifi = true\nimage_kind = "uf2"\n')
    with pytest.raises(CatalogueError, match="invalid"):
        catalogue.boards(tmp_path)
