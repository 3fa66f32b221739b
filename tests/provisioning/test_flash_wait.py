"""The wait path: flash, start the board's firmware, see it come online on a real
Mosquitto that only knows the generated credentials."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.cli import main
from tests.provisioning.conftest import PtyBoard, write_config
from tests.servers import Mosquitto, free_port, stop_pid

ROOT = Path(__file__).resolve().parents[2]


def _readline_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    """Lines of ``proc``'s stdout up to one containing ``needle`` (bounded)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    lines: list[str] = []
    buf = ""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            chunk = os.read(fd, 65536).decode()
        except BlockingIOError:
            chunk = ""
        if chunk:
            buf += chunk
            *done, buf = buf.split("\n")
            lines += done
            if any(needle in line for line in done):
                return lines
        elif proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no line with {needle!r} within {timeout}s: {lines + [buf]}")


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_flash_waits_for_first_online(tmp_path: Path, unix_board: PtyBoard,
                                      micropython_bin: str) -> None:
    broker_dir = tmp_path / "mosq"
    broker = Mosquitto(broker_dir, allow_anonymous=False)
    broker.port = free_port()
    cfg = write_config(tmp_path, mqtt_port=broker.port)
    var = tmp_path / "var/broker"
    assert main(["broker", "sync", "--config", str(cfg)]) == 0
    broker.extra = (f"password_file {var / 'passwd'}", f"acl_file {var / 'acl'}")
    broker.start()
    fw: subprocess.Popen[bytes] | None = None
    flash = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "device", "flash", "--port", unix_board.port,
         "--board", "unix", "--device", "air-0001", "--config", str(cfg),
         "--sensor", "scd41", "--reload-pid", str(broker.proc.pid if broker.proc else 0)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = _readline_until(flash, "waiting for its first online status", 30)
        assert any(f"cd {unix_board.flash_dir}" in line for line in lines), lines
        # What "reset" means for a unix-port board: start its firmware in its flash dir.
        with open(tmp_path / "firmware.log", "wb") as log:
            fw = subprocess.Popen([micropython_bin, "main.py"], cwd=unix_board.flash_dir,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        os.set_blocking(flash.stdout.fileno(), True)  # type: ignore[union-attr]
        out, err = flash.communicate(timeout=30)
        assert flash.returncode == 0, err + (tmp_path / "firmware.log").read_text()
        assert "  online (" in out and "fw 0.1.0" in out, out

        # `livinglab devices` now shows it online, from the retained status.
        listing = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "devices", "--config", str(cfg)],
            cwd=ROOT, capture_output=True, text=True, timeout=30)
        row = next(line for line in listing.stdout.splitlines() if line.startswith("air-0001"))
        assert " online " in row, listing.stdout
    finally:
        if flash.poll() is None:
            flash.kill()
            flash.wait(5)
        if fw is not None:
            stop_pid(fw.pid)
        broker.stop()


def test_broker_unreachable_while_waiting(tmp_path: Path, unix_board: PtyBoard,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, mqtt_port=free_port())
    code = main(["device", "flash", "--port", unix_board.port, "--board", "unix",
                 "--device", "air-0001", "--config", str(cfg)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "unreachable while waiting for air-0001" in err[0] and "--no-wait" in err[0]
    assert (unix_board.flash_dir / "device.json").exists()  # flashed all the same
