"""`livinglab device flash` against the MicroPython unix port on a pty."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from devices.inventory import Inventory
from gateway.cli import main
from tests.provisioning.conftest import PtyBoard, write_config

pytestmark = pytest.mark.timeout(60)


def _flash(cfg: Path, port: str, *extra: str, board: str = "unix",
           device: str = "air-0001") -> list[str]:
    return ["device", "flash", "--port", port, "--board", board, f"--device={device}",
            "--config", str(cfg), *extra]


def test_flash_writes_files_then_second_flash_copies_nothing(
        tmp_path: Path, unix_board: PtyBoard, capsys: pytest.CaptureFixture[str]) -> None:
    import firmware

    cfg = write_config(tmp_path)
    assert main(_flash(cfg, unix_board.port, "--no-wait", "--sensor", "scd41",
                       "--location", "room 2.14")) == 0
    out = capsys.readouterr().out
    expected = firmware.board_files("unix")
    assert f"copied {len(expected)} of {len(expected)} files" in out
    for src, rel in expected:
        assert (unix_board.flash_dir / rel).read_bytes() == src.read_bytes(), rel
    assert not list(unix_board.flash_dir.rglob("*.tmp"))
    dev_cfg = json.loads((unix_board.flash_dir / "device.json").read_text())
    assert dev_cfg["device"] == "air-0001" and dev_cfg["site"] == "test-lab"
    assert dev_cfg["wifi"] == {"ssid": "lab-iot", "password": "wifi-pass"}
    assert dev_cfg["mqtt"]["username"] == "air-0001"
    assert len(dev_cfg["mqtt"]["password"]) >= 24
    assert dev_cfg["sensors"] == [{"kind": "scd41", "bus": "i2c0", "address": 0x62}]
    secret = tmp_path / "var/broker/secrets/air-0001.json"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert json.loads(secret.read_text())["password"] == dev_cfg["mqtt"]["password"]
    with Inventory.in_data_dir(tmp_path / "var") as inv:
        dev = inv.get("air-0001")
    assert (dev.board, dev.location, dev.fw_version) == ("unix", "room 2.14", firmware.FW_VERSION)
    assert "user air-0001" in (tmp_path / "var/broker/acl").read_text()
    assert (tmp_path / "var/broker/passwd").read_text().startswith("gateway:$7$")

    # Re-flash: nothing copied, same config (same password), inventory kept.
    started = time.monotonic()
    assert main(_flash(cfg, unix_board.port, "--no-wait")) == 0
    out = capsys.readouterr().out
    assert re.search(r"copied 0 of \d+ files", out), out
    assert "config: unchanged" in out
    assert time.monotonic() - started < 10
    assert json.loads((unix_board.flash_dir / "device.json").read_text()) == dev_cfg
    with Inventory.in_data_dir(tmp_path / "var") as inv:
        assert inv.get("air-0001").sensors == dev.sensors


def test_changed_file_is_the_only_one_copied(tmp_path: Path, unix_board: PtyBoard) -> None:
    """Only files whose hash differs on the board are written."""
    from devices import catalogue
    from protocols.config import load_config
    from provisioning.flash import FlashRequest, flash
    from provisioning.settings import settings_from_config

    src = tmp_path / "src"
    (src / "ll").mkdir(parents=True)
    (src / "main.py").write_text("print('v1')\n")
    (src / "ll/a.py").write_text("A = 1\n")
    files = [(src / "main.py", "main.py"), (src / "ll/a.py", "ll/a.py")]
    settings = settings_from_config(load_config(write_config(tmp_path)))
    req = FlashRequest(port=unix_board.port, board=catalogue.board("unix"), device="flow-7",
                       files=files, fw_version="t", wait=False)
    with Inventory.in_data_dir(settings.data_dir) as inv:
        first = flash(settings, inv, req)
        assert sorted(first.copied) == ["ll/a.py", "main.py"]
        (src / "ll/a.py").write_text("A = 2\n")
        second = flash(settings, inv, req)
    assert second.copied == ["ll/a.py"] and second.unchanged == ["main.py"]
    assert (unix_board.flash_dir / "ll/a.py").read_text() == "A = 2\n"
    assert first.fw_hash != second.fw_hash


def test_board_paths_must_be_relative(tmp_path: Path, unix_board: PtyBoard) -> None:
    from provisioning.boardfs import safe_relpath
    from provisioning.errors import ProvisioningError

    assert safe_relpath("ll/mqtt.py") == "ll/mqtt.py"
    for bad in ("/etc/passwd", "../x.py", "ll/../../x", ""):
        with pytest.raises(ProvisioningError):
            safe_relpath(bad)


def test_not_micropython_is_a_clean_error(tmp_path: Path, not_micropython: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path)
    assert main(_flash(cfg, not_micropython, "--no-wait")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("livinglab: ")
    assert "not MicroPython" in err[0]


def test_wrong_board(tmp_path: Path, unix_board: PtyBoard,
                     capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path)
    assert main(_flash(cfg, unix_board.port, "--no-wait", board="pico_w")) == 2
    err = capsys.readouterr().err.strip()
    assert "wrong board" in err and "'linux'" in err and "--board unix" in err
    assert not (unix_board.flash_dir / "main.py").exists()


@pytest.mark.parametrize("device", ["Air-1", "-air", "air_1", "a" * 64, "air 1"])
def test_bad_device_id(tmp_path: Path, device: str, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path)
    assert main(_flash(cfg, "/dev/null", device=device)) == 2
    assert "device id" in capsys.readouterr().err


def test_no_such_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path)
    assert main(_flash(cfg, str(tmp_path / "ttyACM9"), "--no-wait")) == 2
    err = capsys.readouterr().err
    assert "no such port" in err and "list-ports" in err


def test_permission_denied_says_dialout(monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import serial

    from provisioning import rawrepl
    from provisioning.errors import PortError

    def denied(*_a: object, **_k: object) -> None:
        raise serial.SerialException(errno.EACCES, "could not open port /dev/ttyACM0: "
                                                   "[Errno 13] Permission denied")

    monkeypatch.setattr("provisioning.rawrepl.serial.Serial", denied)
    with pytest.raises(PortError, match="sudo usermod -aG dialout"):
        rawrepl.open_port("/dev/ttyACM0")


def test_board_full_is_recognised() -> None:
    from provisioning.errors import BoardFullError
    from provisioning.rawrepl import _board_error

    tb = ('Traceback (most recent call last):\r\n  File "<stdin>", line 3, in <module>\r\n'
          "OSError: [Errno 28] ENOSPC\r\n")
    assert isinstance(_board_error(tb), BoardFullError)
    assert isinstance(_board_error("OSError: 28\r\n"), BoardFullError)
    other = _board_error("OSError: [Errno 2] ENOENT\r\n")
    assert not isinstance(other, BoardFullError) and other.errno == 2


def test_board_full_during_write(tmp_path: Path, unix_board: PtyBoard) -> None:
    """A write that fails with ENOSPC on the board leaves no temp file behind."""
    from provisioning.boardfs import BoardFS
    from provisioning.errors import BoardFullError
    from provisioning.rawrepl import RawRepl

    with RawRepl(unix_board.port) as repl:
        repl.enter()
        fs = BoardFS(repl)
        fs.write("ok.txt", b"fine")
        # Make every write on the board raise ENOSPC, as a full LittleFS does.
        repl.exec("class _Full:\n def __init__(s, *a):\n  pass\n"
                  " def write(s, b):\n  raise OSError(28)\n def close(s):\n  pass\n"
                  "import builtins\n_open = builtins.open\n"
                  "open = lambda p, m='r': _Full() if 'w' in m else _open(p, m)")
        with pytest.raises(BoardFullError, match="full while writing big.py"):
            fs.write("big.py", b"x" * 100)
    assert (unix_board.flash_dir / "ok.txt").read_bytes() == b"fine"
    assert not (unix_board.flash_dir / "big.py").exists()


def test_plain_raw_repl_without_paste_mode(unix_board: PtyBoard) -> None:
    """Boards whose firmware predates raw-paste get code in paced 256-byte chunks."""
    from provisioning.boardfs import BoardFS
    from provisioning.rawrepl import RawRepl

    with RawRepl(unix_board.port) as repl:
        repl.enter()
        repl._paste = False  # as if the board had answered "R\x00"
        assert repl.exec("print(6 * 7)").strip() == "42"
        BoardFS(repl).write("ll/big.py", b"# " + b"x" * 3000 + b"\n")
    assert (unix_board.flash_dir / "ll/big.py").stat().st_size == 3003


def test_missing_config_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["device", "flash", "--port", "/dev/null", "--board", "unix",
                 "--device", "air-1"]) == 2
    assert "pass --config FILE" in capsys.readouterr().err
    assert main(["device", "flash", "--port", "/dev/null", "--board", "arduino",
                 "--device", "air-1"]) == 2
    assert "unknown board 'arduino'" in capsys.readouterr().err
