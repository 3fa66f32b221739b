"""``livinglab gateway install-service``: the unit's content, systemd's own verdict on it."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.ops.service import UNIT_NAME, unit_text
from protocols.config import load_config

ANALYZE = shutil.which("systemd-analyze")


def _config(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'site = "lab"\n[gateway]\nid = "gw-pi"\ndata_dir = "var"\n{extra}')
    return cfg


def _directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out.setdefault(k, []).append(v)
    return out


def test_print_writes_the_unit_to_stdout_and_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    assert main(["gateway", "install-service", "--config", str(cfg), "--print"]) == 0
    d = _directives(capsys.readouterr().out)
    assert not (tmp_path / "var").exists()
    assert d["Type"] == ["notify"] and d["Restart"] == ["always"]
    assert int(d["WatchdogSec"][0]) > 0
    assert d["User"] == ["livinglab"] and d["NoNewPrivileges"] == ["yes"]
    assert d["ProtectSystem"] == ["strict"]
    assert d["ReadWritePaths"] == [str((tmp_path / "var").resolve())]  # data_dir only
    assert d["After"] == d["Wants"] == ["network-online.target mosquitto.service"]
    exe, *args = d["ExecStart"][0].split()
    assert os.path.isabs(exe) and os.access(exe, os.X_OK)
    assert args == ["gateway", "--config", str(cfg.resolve())]


def test_serial_ports_get_the_dialout_group_instead_of_private_devices(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 'serial_ports = ["/dev/ttyACM0"]\n')
    d = _directives(unit_text(load_config(cfg), cfg, "gw"))
    assert d["SupplementaryGroups"] == ["dialout"] and "PrivateDevices" not in d


def test_a_sqlite_store_outside_data_dir_is_writable_too(tmp_path: Path) -> None:
    cfg = _config(tmp_path, '[store]\nkind = "sqlite"\npath = "/srv/lab/readings.sqlite"\n')
    d = _directives(unit_text(load_config(cfg), cfg))
    assert d["ReadWritePaths"] == [f"{(tmp_path / 'var').resolve()} /srv/lab"]


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("extra", ["", 'serial_ports = ["/dev/ttyACM0"]\n'])
def test_unit_passes_systemd_analyze_verify(tmp_path: Path, extra: str) -> None:
    cfg = _config(tmp_path, extra)
    unit = tmp_path / UNIT_NAME
    unit.write_text(unit_text(load_config(cfg), cfg, "root"))
    res = subprocess.run([str(ANALYZE), "verify", str(unit)], capture_output=True, text=True,
                         timeout=60, check=False)
    if "Failed to initialize manager" in res.stderr or "No such file or directory" in res.stderr \
            and "/run/systemd" in res.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {res.stderr.strip()[:200]}")
    # systemd only warns about unknown keys or bad values ("..., ignoring"): none allowed
    assert res.returncode == 0 and res.stdout.strip() == "" and res.stderr.strip() == "", res
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / UNIT_NAME).write_text(unit.read_text().replace("Type=notify", "Type=notifyy"))
    res = subprocess.run([str(ANALYZE), "verify", str(bad / UNIT_NAME)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert "notifyy" in res.stderr  # the tool really reads what we write


@pytest.mark.skipif(os.geteuid() != 0, reason="installing needs root")
def test_install_writes_the_unit_and_gives_data_dir_to_the_user(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    units = tmp_path / "units"
    assert main(["gateway", "install-service", "--config", str(cfg), "--user", "nobody",
                 "--unit-dir", str(units)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {units / UNIT_NAME}" in out and "systemctl enable --now" in out
    assert "User=nobody" in (units / UNIT_NAME).read_text()
    assert (tmp_path / "var").stat().st_uid == pwd.getpwnam("nobody").pw_uid


@pytest.mark.skipif(os.geteuid() == 0, reason="root may install")
def test_install_without_root_is_a_one_line_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    assert main(["gateway", "install-service", "--config", str(cfg),
                 "--unit-dir", str(tmp_path)]) == 2
    assert "needs root" in capsys.readouterr().err
