"""``livinglab demo`` end to end, as a user runs it (a subprocess, stdout not a TTY)."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from devices.liveview import DeviceRow, LiveView, format_value, render_table
from protocols.quantities import BUILTIN, Registry, site_quantity
from tests.servers import Mosquitto, free_port, wait_for


def _demo(cwd: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVINGLAB_")}
    return subprocess.run([sys.executable, "-m", "gateway.cli", "demo", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def _readings(db: Path) -> dict[tuple[str, str], int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT measurement, device, count(*) FROM readings "
                           "GROUP BY measurement, device").fetchall()
    finally:
        con.close()
    return {(m, d): n for m, d, n in rows}


def _assert_children_gone(pid_file: Path) -> list[str]:
    lines = [line.split(None, 1) for line in pid_file.read_text().splitlines() if line.strip()]
    for pid, role in lines:
        assert not Path(f"/proc/{pid}").exists(), f"{role} (pid {pid}) left behind"
    return [role for _, role in lines]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_demo_runs_everything_lands_readings_and_leaves_no_process(tmp_path: Path) -> None:
    res = _demo(tmp_path, "--duration", "20")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    out = res.stdout
    assert "\x1b[" not in out, "non-TTY output must be plain lines"
    assert "broker: embedded amqtt" in out
    assert "all stopped" in out
    assert "console: http://127.0.0.1:" in out, out

    data = tmp_path / "var" / "demo"
    db = data / "readings.sqlite"
    assert str(db) in out, "the summary names the sqlite file"
    landed = _readings(db)
    for measurement, device in (("air", "air-0001"), ("air", "air-0002"),
                                ("light", "light-0001"), ("flow", "flow-0001")):
        assert landed.get((measurement, device), 0) > 0, (measurement, device, landed)
    # the summary's per-device count is what the store holds
    for line in out.splitlines():
        if line.strip().startswith("light-0001") and "readings landed" in line:
            assert int(line.split()[-1]) == landed[("light", "light-0001")]
            break
    else:
        pytest.fail(f"no summary line for light-0001 in:\n{out}")

    roles = _assert_children_gone(data / "demo.pids")
    assert roles[:3] == ["broker", "gateway", "console"]
    assert sorted(r for r in roles if r.startswith("device ")) == [
        "device air-0001", "device air-0002", "device flow-0001", "device light-0001"]


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_demo_with_config_uses_that_broker_and_store(tmp_path: Path,
                                                     mosquitto: Mosquitto) -> None:
    cfg = tmp_path / "lab.toml"
    cfg.write_text(f'site = "bdnc-lab"\n[gateway]\ndata_dir = "gw"\nhealth_port = {free_port()}\n'
                   f'[mqtt]\nport = {mosquitto.port}\n[store]\nkind = "sqlite"\n'
                   f'path = "lab.sqlite"\n')
    res = _demo(tmp_path, "--duration", "12", "--config", str(cfg), "--devices", "3",
                "--interval", "1", "--data-dir", str(tmp_path / "d"))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "embedded amqtt" not in res.stdout
    assert f"127.0.0.1:{mosquitto.port}" in res.stdout
    landed = _readings(tmp_path / "lab.sqlite")
    assert {m for m, _ in landed} >= {"air", "light", "flow"}, landed
    roles = _assert_children_gone(tmp_path / "d" / "demo.pids")
    assert "broker" not in roles and "gateway" in roles


def test_demo_bad_config_is_one_line_error(tmp_path: Path) -> None:
    res = _demo(tmp_path, "--config", str(tmp_path / "missing.toml"), "--duration", "5")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livinglab: config file"), res.stderr
    pid_file = tmp_path / "var" / "demo" / "demo.pids"
    assert not pid_file.exists() or pid_file.read_text() == "", "nothing was started"


def test_liveview_formats_values_with_units() -> None:
    assert format_value("co2", 612.0, BUILTIN) == "co2 612 ppm"
    assert format_value("temperature", 22.41, BUILTIN) == "T 22.4°C"
    assert format_value("pm2_5", 5.0, BUILTIN) == "pm2_5 5 µg/m³"
    assert format_value("flow_rate", 2.25, BUILTIN) == "flow 2.2 L/min"
    rows = [DeviceRow("air-0001", "air", {"pressure": 1012.3, "co2": 612.0}, 3, 18, 99.0),
            DeviceRow("flow-0001", "flow", {}, 0, None, None, "not running")]
    table = render_table(rows, "hdr", now=100.0, registry=BUILTIN)
    assert table[0] == "hdr"
    assert "co2 612 ppm  p 1012 hPa" in table[3]  # headline order, not dict order
    assert table[3].rstrip().endswith("18  1 s ago")
    assert table[4].rstrip().endswith("-  never (not running)")


def test_liveview_shows_site_quantities_with_their_units() -> None:
    """[quantities.noise_level] (new domain) and no2 (built-in domain air) from the config."""
    reg = Registry([site_quantity("noise_level", "dBA", "sound", 0, 140),
                    site_quantity("no2", "ug/m3", "air", 0, 2000)])
    assert format_value("noise_level", 48.25, reg) == "noise_level 48.2 dBA"
    assert format_value("noise_level", 48.25, BUILTIN) == "noise_level 48.2"  # unknown: no unit
    buf = io.StringIO()
    LiveView(buf, reg, tty=False, line_every=0.0).update(
        [DeviceRow("air-0002", "air", {"no2": 31.5, "co2": 612.0, "noise_level": 51.0}, 1, 1,
                   None)], "h", 2.0)
    assert "co2 612 ppm  no2 31.5 µg/m³  noise_level 51 dBA |" in buf.getvalue()


def test_liveview_plain_mode_prints_lines_not_escapes() -> None:
    buf = io.StringIO()
    view = LiveView(buf, BUILTIN, tty=False, line_every=0.0)
    view.update([DeviceRow("light-0001", "light", {"illuminance": 350.0}, 2, 2, None)], "h", 4.0)
    text = buf.getvalue()
    assert "\x1b" not in text
    assert text.startswith("[   4s] light-0001  E 350 lx | msgs 2 landed 2")
    tty = io.StringIO()
    LiveView(tty, BUILTIN, tty=True).update([], "h", 1.0)
    assert tty.getvalue().startswith("\x1b[H\x1b[2J") and "no device has reported" in tty.getvalue()


def test_still_running_sees_only_a_live_demos_children(tmp_path: Path) -> None:
    from devices.demo_pids import still_running

    pid_file = tmp_path / "demo.pids"
    assert still_running(pid_file) == []  # no file
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "main.py"])
    try:
        # our own pid is alive but is not a demo child (pid reuse must not block a demo)
        pid_file.write_text(f"{os.getpid()} gateway\n{child.pid} device air-0001\n")
        # right after fork the child still shows our command line: wait for its exec
        wait_for(lambda: still_running(pid_file) == [child.pid], 10, what="child exec'd")
    finally:
        child.kill()
        child.wait(5)
    assert still_running(pid_file) == []
