"""Helpers for firmware tests: lay out a unix-port flash dir, run MicroPython."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
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
def broker() -> Iterator[Mosquitto]:
    """Mosquitto whose persistence really works across stop()/start().

    The shared ``mosquitto`` fixture lives under pytest's 0700 tmp dirs, which the
    dropped-privilege ``mosquitto`` user cannot traverse when tests run as root, so
    its database save fails ("Permission denied") and an observer's persistent
    session is lost on restart. A dir directly under the system temp dir works.
    """
    path = Path(tempfile.mkdtemp(prefix="ll-fw-mosquitto-"))
    server = Mosquitto(path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(path, ignore_errors=True)
