"""A "board" for provisioning tests: the MicroPython unix port on a pseudo-terminal.

MicroPython gets the pty's master side as stdin/stdout/stderr and the flash
directory as its cwd; the tests talk to the slave side by name, exactly as to
a USB serial port (/dev/ttyACM0). Stopped by PID.
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import tty
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import stop_pid


@dataclass
class PtyBoard:
    port: str
    flash_dir: Path
    proc: subprocess.Popen[bytes]


def start_on_pty(cmd: list[str], cwd: Path) -> tuple[str, subprocess.Popen[bytes], int, int]:
    master, slave = pty.openpty()
    tty.setraw(slave)
    proc = subprocess.Popen(cmd, stdin=master, stdout=master, stderr=master, cwd=cwd,
                            start_new_session=True)
    return os.ttyname(slave), proc, master, slave


@pytest.fixture
def micropython_bin() -> str:
    found = shutil.which("micropython")
    if not found:
        pytest.skip("micropython (unix port) not installed")
    return found


@pytest.fixture
def unix_board(tmp_path: Path, micropython_bin: str) -> Iterator[PtyBoard]:
    flash = tmp_path / "flash"
    flash.mkdir()
    port, proc, master, slave = start_on_pty([micropython_bin], flash)
    try:
        yield PtyBoard(port, flash, proc)
    finally:
        stop_pid(proc.pid)
        os.close(master)
        os.close(slave)


@pytest.fixture
def not_micropython(tmp_path: Path) -> Iterator[str]:
    """A pty whose other end is `cat`: echoes everything, never says "raw REPL"."""
    port, proc, master, slave = start_on_pty(["cat"], tmp_path)
    try:
        yield port
    finally:
        stop_pid(proc.pid)
        os.close(master)
        os.close(slave)


def write_config(tmp_path: Path, mqtt_port: int = 1, extra: str = "") -> Path:
    cfg = tmp_path / "livinglab.toml"
    cfg.write_text(f"""\
site = "test-lab"
[gateway]
id = "gw-01"
data_dir = "var"
[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
username = "gateway"
password = "gw-secret"
[wifi]
ssid = "lab-iot"
password = "wifi-pass"
[provisioning]
wait_timeout_s = 20
{extra}
""")
    return cfg
