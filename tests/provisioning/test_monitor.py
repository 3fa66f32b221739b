"""`livinglab device monitor` on a pty pair: verdicts per value, unplug/replug, Ctrl-C."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from protocols import Registry, site_quantity
from provisioning.monitor import judge_line, render

REG = Registry([site_quantity("noise_level", "dBA", "sound", 20.0, 140.0)])
NOW = 1_795_351_934.0


def line(values: dict[str, object], device: str = "snd-0001", **sample: object) -> bytes:
    s = {"sensor": "sen0232", "values": values, **(sample or {"age": 0.5})}
    return (f"{device}/telemetry " + json.dumps(
        {"v": 1, "device": device, "boot": 1, "seq": 0, "samples": [s]}) + "\r\n").encode()


def test_verdict_per_value() -> None:
    v = judge_line(line({"noise_level": 54.5, "temperature": 99, "radon": 1, "co2": "x"}),
                   REG, now=NOW)
    assert v is not None
    assert [(x.ok, x.what, x.why.split(":")[0]) for x in v] == [
        (True, "sen0232 noise_level = 54.5", "dBA -> sound (site-defined)"),
        (False, "sen0232 temperature = 99", "out_of_range"),
        (False, "sen0232 radon = 1", "unknown_quantity"),
        (False, 'sen0232 co2 = "x"', "mistyped_value")]
    assert v[1].why == "out_of_range: outside -40..85 degC"


def test_whole_message_sample_and_status_verdicts() -> None:
    bad = b'air-0001/telemetry {"v":2,"device":"air-0001","boot":1,"seq":0,"samples":[]}'
    v = judge_line(bad, REG, now=NOW)
    assert v is not None and [(x.ok, x.what) for x in v] == [(False, "message")]
    assert v[0].why.startswith("bad_version")
    v = judge_line(line({"co2": 500}, ts=1.0), REG, now=NOW)
    assert v is not None and not v[0].ok and v[0].why.startswith("ts_too_old")
    v = judge_line(b'air-0001/status {"state":"online","rssi":-61}', REG, now=NOW)
    assert v is not None and [(x.ok, x.why) for x in v] == [(True, "state online")]
    assert judge_line(b"Traceback (most recent call last):", REG) is None
    assert judge_line(b"ll: fw 0.1.0 board unix", REG) is None


def test_render_colour_only_on_request() -> None:
    raw = line({"noise_level": 150})
    plain = render(raw, judge_line(raw, REG, now=NOW), colour=False)
    assert plain[1] == "  REJECTED  sen0232 noise_level = 150  out_of_range: outside 20..140 dBA"
    assert "\x1b[" not in "".join(plain)
    coloured = render(raw, judge_line(raw, REG, now=NOW), colour=True)
    assert "\x1b[31mREJECTED\x1b[0m" in coloured[1]
    assert render(b"hello\r\n", None, colour=True) == ["hello"]


class Board:
    """The board end of a pty pair, reachable through a stable symlink (like udev's)."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master, slave = pty.openpty()
        name = os.ttyname(slave)
        os.close(slave)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(name)

    def print(self, data: bytes) -> None:
        os.write(self.master, data)

    def unplug(self) -> None:
        os.close(self.master)
        self.link.unlink()


class Output:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.text = ""

    def wait_for(self, needle: str, timeout: float = 15.0, since: int = 0) -> str:
        end = time.monotonic() + timeout
        while needle not in self.text[since:]:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{needle!r} not in output:\n{self.text}")
            if select.select([self.fd], [], [], left)[0]:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise EOFError(f"monitor exited; output:\n{self.text}")
                self.text += chunk.decode()
        return self.text


def test_monitor_on_a_pty_pair(tmp_path: Path) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text('site = "lab"\n[quantities.noise_level]\nunit = "dBA"\ndomain = "sound"\n'
                   "min = 20\nmax = 140\n")
    board = Board(tmp_path / "ttyBOARD")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "device", "monitor", "--port",
         str(board.link), "--config", str(cfg)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    out = Output(proc)
    try:
        out.wait_for("open at 115200 baud")
        board.print(b"MicroPython v1.24 on unix\r\n")
        board.print(line({"noise_level": 54.5, "humidity": 101, "radon": 2}))
        text = out.wait_for("sen0232 radon = 2  unknown_quantity")
        assert "MicroPython v1.24 on unix" in text
        assert "  accepted  sen0232 noise_level = 54.5  dBA -> sound (site-defined)" in text
        assert "  REJECTED  sen0232 humidity = 101  out_of_range: outside 0..100 %RH" in text
        assert "  REJECTED  sen0232 radon = 2  unknown_quantity" in text
        assert "\x1b[" not in text  # a pipe: plain text
        board.unplug()
        out.wait_for("vanished (board unplugged?); waiting for it to come back")
        mark = len(out.text)
        board = Board(board.link)
        text = out.wait_for("open at 115200 baud", 15, since=mark)
        assert text.count("open at 115200 baud") == 2
        assert text.count("vanished") == 1  # said once, not once per retry
        board.print(b'snd-0001/status {"state":"online","fw":"0.1.0"}\n')
        out.wait_for("accepted  status  state online")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(board.master)


def test_colour_on_a_tty(tmp_path: Path) -> None:
    """stdout is a terminal: verdicts in colour (green accepted, red rejected)."""
    board = Board(tmp_path / "ttyBOARD")
    term, term_slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "device", "monitor", "--port", str(board.link)],
        stdout=term_slave, stderr=term_slave, stdin=subprocess.DEVNULL, cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "NO_COLOR"})
    os.close(term_slave)
    text = b""
    try:
        end = time.monotonic() + 15
        while b"open at" not in text and time.monotonic() < end:
            if select.select([term], [], [], 0.5)[0]:
                text += os.read(term, 65536)
        board.print(line({"co2": 612, "noise_level": 54.5}))
        while b"noise_level = 54.5" not in text and time.monotonic() < end:
            if select.select([term], [], [], 0.5)[0]:
                text += os.read(term, 65536)
        assert b"\x1b[32maccepted\x1b[0m  sen0232 co2 = 612" in text, text
        # no [quantities] here: the contract's quantities only
        assert b"\x1b[31mREJECTED\x1b[0m  sen0232 noise_level = 54.5  unknown_quantity" in text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(term)
        os.close(board.master)
