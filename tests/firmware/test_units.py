"""Driver and firmware unit checks, run under the real MicroPython unix port."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import firmware

MP_DRIVERS = Path(__file__).parent / "mp" / "check_drivers.py"
MP_CORE = Path(__file__).parent / "mp" / "check_core.py"
MP_BOARD_SCRIPT = Path(__file__).parent / "mp" / "check_realboard.py"
CHECKS = [
    "crc8_datasheet_example",
    "scd4x_datasheet_measurement",
    "scd4x_bad_crc_is_oserror",
    "scd4x_against_twin",
    "bme280_datasheet_compensation",
    "bme280_integer_matches_float",
    "bme280_against_twin",
    "bme280_wrong_chip_id",
    "missing_device_is_oserror",
    "pms5003_frame_known_checksum",
    "bh1750_raw_to_lux",
    "veml7700_counts_to_lux",
    "yfs201_pulses_to_flow",
    "json_writer_numbers",
    "outbox_order_spill_and_ack",
    "outbox_quota_drops_oldest_and_persists",
    "outbox_survives_a_torn_append",
    "world_is_believable",
    "age_mode_before_clock_set",
]
BOARD_CHECKS = [
    "wifi_backoff_is_capped_with_jitter_and_never_raises",
    "pico_w_board_layer",
    "esp32_board_layer",
    "age_until_ntp_then_ts",
]


def pms_frame() -> bytes:
    """A PMS5003 frame built here (CPython), independent of the firmware code."""
    words = [28, 5, 8, 12, 5, 8, 12, 300, 100, 20, 5, 1, 0, 0]
    body = bytes([0x42, 0x4D]) + b"".join(w.to_bytes(2, "big") for w in words)
    assert len(body) == 30
    return body + (sum(body) & 0xFFFF).to_bytes(2, "big")


def run_checks(micropython: str, scratch: Path, *args: str) -> dict[str, str]:
    proc = subprocess.run([micropython, *args], cwd=scratch, capture_output=True, text=True,
                          timeout=60, check=False)
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        status, _, rest = line.partition(" ")
        name, _, detail = rest.partition(" ")
        out[name] = status if status == "ok" else f"{status} {detail}"
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def results(micropython: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    scratch = tmp_path_factory.mktemp("mp-units")
    fw = str(firmware.FIRMWARE_DIR)
    return {**run_checks(micropython, scratch, str(MP_DRIVERS), fw, pms_frame().hex()),
            **run_checks(micropython, scratch, str(MP_CORE), fw)}


@pytest.fixture(scope="module")
def board_results(micropython: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The pico_w/esp32 layers with fake machine/network/ntptime modules."""
    return run_checks(micropython, tmp_path_factory.mktemp("mp-boards"), str(MP_BOARD_SCRIPT),
                      str(firmware.FIRMWARE_DIR))


def test_pms_frame_checksum_is_known() -> None:
    frame = pms_frame()
    assert frame[30:] == (0x42 + 0x4D + 28 + 5 + 8 + 12 + 5 + 8 + 12 + 300 % 256 + 1 + 100 + 20
                          + 5 + 1).to_bytes(2, "big")


def test_every_check_was_run(results: dict[str, str], board_results: dict[str, str]) -> None:
    assert sorted(results) == sorted(CHECKS)
    assert sorted(board_results) == sorted(BOARD_CHECKS)


@pytest.mark.parametrize("name", CHECKS)
def test_check(results: dict[str, str], name: str) -> None:
    assert results.get(name) == "ok", results.get(name, "not run")


@pytest.mark.parametrize("name", BOARD_CHECKS)
def test_board_check(board_results: dict[str, str], name: str) -> None:
    assert board_results.get(name) == "ok", board_results.get(name, "not run")
