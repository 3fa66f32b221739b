"""Helpers for firmware tests: lay out a unix-port flash dir, run MicroPython."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import firmware
from tests.servers import Mosquitto


def install(dest: Path, cfg: dict[str, object], board: str = "unix") -> Path:
    """Copy the firmware for ``board`` into ``dest`` and write its device.json."""
    for src, rel in firmware.board_files(board):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    firmware.write_device_config(dest, cfg)
    return dest


@pytest.fixture(scope="session")
def micropython() -> str:
    try:
        return firmware.micropython_binary()
    except firmware.MicroPythonNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def broker(mosquitto: Mosquitto) -> Mosquitto:
    """The shared broker: persistence works there, so stop()/start() keeps sessions."""
    return mosquitto
