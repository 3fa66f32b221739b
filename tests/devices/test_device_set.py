"""``livinglab device set``: dated metadata for any device id, deployments on a move."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devices.inventory import Inventory
from provisioning.devices_cli import rows, table


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(f'site = "lab"\n[gateway]\ndata_dir = "{tmp_path / "var"}"\n')
    return p


def test_history_and_deployments(cfg: Path, tmp_path: Path) -> None:
    r = cli("device", "set", "--config", str(cfg), "--device", "air-0007",
            "--location", "52.0116,4.3571", "--room", "2.14")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("air-0007: deployment 1 since ")
    assert "52.011600,4.357100" in r.stdout
    r = cli("device", "set", "--config", str(cfg), "--device", "air-0007", "--note", "window")
    assert "deployment 1 " in r.stdout and "note='window'" in r.stdout
    r = cli("device", "set", "--config", str(cfg), "--device", "air-0007", "--room", "3.01")
    assert "deployment 2 " in r.stdout
    with Inventory(tmp_path / "var" / "inventory.sqlite") as inv:
        hist = inv.meta_history("air-0007")
        assert [(m.deployment, m.room, m.note, m.lat) for m in hist] == [
            (1, "2.14", "", 52.0116), (1, "2.14", "window", 52.0116),
            (2, "3.01", "window", 52.0116)]
        assert hist[0].at < hist[1].at < hist[2].at
        data = rows([], {}, {}, True, 0.0, inv.current_meta(), "lab")
    assert data[0]["device"] == "air-0007" and data[0]["meta"]["deployment"] == 2
    assert "52.01160,4.35710 3.01 (dep. 2)" in table(data)


@pytest.mark.parametrize("args, msg", [
    (["--location", "52.0"], "is not LAT,LON"),
    (["--location", "95,4"], "outside -90..90"),
    (["--location", "nan,4"], "outside"),
    ([], "nothing to set"),
])
def test_bad_input_is_one_line(cfg: Path, args: list[str], msg: str) -> None:
    r = cli("device", "set", "--config", str(cfg), "--device", "air-1", *args)
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("livinglab: ") and msg in last and "Traceback" not in r.stderr
