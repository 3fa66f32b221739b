"""The CPython-side firmware API that provisioning and the simulated fleet use."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import firmware


def test_version_matches_board_code() -> None:
    text = (firmware.FIRMWARE_DIR / "ll" / "version.py").read_text()
    m = re.search(r'FW_VERSION = "([^"]+)"', text)
    assert m is not None and m.group(1) == firmware.FW_VERSION


@pytest.mark.parametrize("board", ["pico_w", "esp32"])
def test_real_boards_get_their_layer_and_no_simulation(board: str) -> None:
    dests = [d for _, d in firmware.board_files(board)]
    slot = "app/a/"
    assert {"boot.py", "main.py", "loader.py"} <= set(dests)
    assert {slot + f for f in ("ll/app.py", "ll/mqtt.py", "ll/net.py", "ll/outbox.py",
                               "ll/ota.py", f"ll/boards/{board}.py", "ll/drivers/bme280.py")
            } <= set(dests)
    assert not [d for d in dests if "/sim/" in d or d.endswith("boards/unix.py")]
    assert "__init__.py" not in dests and "fakewdt.py" not in dests
    other = "esp32" if board == "pico_w" else "pico_w"
    assert f"{slot}ll/boards/{other}.py" not in dests


def test_nothing_at_the_root_can_shadow_the_slot() -> None:
    """Only the loader lives at the flash root; every application module is in the slot
    (a stale ll/ or x.py at the root must never be importable before the slot's)."""
    for board in firmware.BOARDS:
        for _, dest in firmware.board_files(board):
            assert dest in (*firmware.LOADER_FILES, "fakewdt.py") or dest.startswith("app/a/ll/")
    assert [d for _, d in firmware.slot_files("unix")] == [
        d.removeprefix("app/a/") for _, d in firmware.board_files("unix")
        if d.startswith("app/a/")]


def test_unix_gets_the_twins() -> None:
    files = firmware.board_files("unix")
    dests = [d for _, d in files]
    assert "app/a/ll/sim/twins.py" in dests and "app/a/ll/boards/unix.py" in dests
    assert "fakewdt.py" in dests
    assert all(src.is_file() and not Path(d).is_absolute() for src, d in files)


def test_unknown_board_is_an_error() -> None:
    with pytest.raises(firmware.FirmwareError, match="unknown board"):
        firmware.board_files("arduino")


def test_write_device_config(tmp_path: Path) -> None:
    cfg = dict(firmware.DEFAULT_DEVICE_CONFIG, device="air-0042")
    path = firmware.write_device_config(tmp_path / "flash", cfg)
    assert path == tmp_path / "flash" / "device.json"
    assert json.loads(path.read_text())["device"] == "air-0042"


def test_micropython_binary_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    with pytest.raises(firmware.MicroPythonNotFoundError, match="micropython"):
        firmware.micropython_binary()
