"""`livinglab sensor new`: the scaffold passes ruff, the firmware type check and the
unix-port checks as generated, in a copy of the checkout, and runs in a simulated device."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devices import catalogue
from devices.scaffold import ScaffoldError, class_name, plan, write
from protocols import BUILTIN, Registry, site_quantity
from tests.firmware.sensor_kits import check_readings, convention_kinds, run_check, simulate

REPO = Path(__file__).resolve().parents[2]
SITE_TOML = ('site = "lab"\n[quantities.noise_level]\nunit = "dBA"\ndomain = "sound"\n'
             "min = 20.0\nmax = 140.0\n")
# (name, bus, quantities): one per bus, built-in and site quantities mixed
KITS = [("probe_i2c", "i2c", ["temperature", "noise_level", "pressure"]),
        ("probe_uart", "uart", ["noise_level", "co2"]),
        ("probe_pin", "pin", ["noise_level"])]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what the scaffold touches, wired like the repo, with the kits generated."""
    root = tmp_path_factory.mktemp("checkout")
    for d in ("firmware", "devices/sensors", "tests/firmware/mp", "scripts"):
        shutil.copytree(REPO / d, root / d, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root)
    (root / ".typings").mkdir()
    for board in ("pico_w", "esp32"):
        if (REPO / ".typings" / board / ".installed").exists():
            (root / ".typings" / board).symlink_to(REPO / ".typings" / board)
    (root / "site.toml").write_text(SITE_TOML)
    for name, bus, qs in KITS:
        args = ["sensor", "new", name, "--bus", bus, "--config", "site.toml", "--root", str(root)]
        for q in qs:
            args += ["--quantity", q]
        proc = cli(*args, cwd=root)
        assert proc.returncode == 0, proc.stderr
        assert f"created firmware/ll/drivers/{name}.py" in proc.stdout
    return root


def generated(root: Path) -> list[Path]:
    return sorted(p for name, _, _ in KITS for p in (
        root / "firmware/ll/drivers" / f"{name}.py", root / "firmware/ll/sim" / f"twin_{name}.py",
        root / "tests/firmware/mp/sensors" / f"check_{name}.py"))


def test_scaffold_passes_ruff(checkout: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache",
                           *map(str, generated(checkout))], cwd=checkout,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scaffold_passes_the_firmware_type_check(checkout: Path) -> None:
    if not (checkout / ".typings" / "pico_w").exists():
        pytest.skip("MicroPython stubs not installed (scripts/typecheck-firmware installs them)")
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(["scripts/typecheck-firmware", "pico_w"], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success" in proc.stdout


def test_scaffold_catalogue_entries_load(checkout: Path) -> None:
    profiles = catalogue.sensors(checkout / "devices" / "sensors")
    assert profiles["probe_pin"].bus == "pin"
    assert profiles["probe_i2c"].default_address == 0x40
    assert set(profiles["probe_uart"].site_quantities) == {"noise_level"}
    assert profiles["probe_uart"].site_quantities["noise_level"].domain == "sound"


@pytest.mark.parametrize(("name", "bus", "qs"), KITS, ids=[k[0] for k in KITS])
def test_scaffold_checks_and_simulation_pass_unchanged(
        micropython: str, checkout: Path, tmp_path: Path, name: str, bus: str,
        qs: list[str]) -> None:
    fw = checkout / "firmware"
    assert name in convention_kinds(fw)
    script = checkout / "tests/firmware/mp/sensors" / f"check_{name}.py"
    results = run_check(micropython, script, fw, checkout / "tests/firmware/mp", tmp_path / "s")
    assert len(results) >= 2 and all(v == "ok" for v in results.values()), results
    profile = catalogue.sensors(checkout / "devices" / "sensors")[name]
    spec = {"kind": name, "pin": 26} if bus == "pin" else {"kind": name}
    check_readings(simulate(micropython, fw, spec, tmp_path / "flash"), profile)


@pytest.fixture
def micropython() -> str:
    import firmware
    try:
        return firmware.micropython_binary()
    except firmware.MicroPythonNotFoundError as exc:
        pytest.skip(str(exc))


def test_plan_refusals() -> None:
    reg = Registry([site_quantity("noise_level", "dBA", "sound", 20, 140)])
    with pytest.raises(ScaffoldError, match="already in the catalogue"):
        plan("sht4x", "i2c", ["temperature"], reg, known={"sht4x"})
    with pytest.raises(ScaffoldError, match=r"\[quantities.radon\]"):
        plan("radon1", "i2c", ["radon"], reg)
    with pytest.raises(ScaffoldError, match="neither built in"):
        plan("snd", "pin", ["noise_level"], BUILTIN)
    with pytest.raises(ScaffoldError, match="one quantity"):
        plan("snd", "pin", ["noise_level", "temperature"], reg)
    for bad in ("1abc", "Abc", "crc8", "a-b"):
        with pytest.raises(ScaffoldError, match="must match"):
            plan(bad, "i2c", ["temperature"], reg)
    assert class_name("soil_probe") == "SoilProbe" and class_name("sen0232") == "Sen0232"


def test_write_never_overwrites(tmp_path: Path) -> None:
    kit = plan("thing", "i2c", ["temperature"], BUILTIN)
    write(kit, tmp_path)
    driver = tmp_path / "firmware/ll/drivers/thing.py"
    driver.write_text("# my work\n")
    with pytest.raises(ScaffoldError, match="exists"):
        write(kit, tmp_path)
    assert driver.read_text() == "# my work\n"


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    proc = cli("sensor", "new", "x1", "--bus", "i2c", "--quantity", "radon",
               "--root", str(REPO), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "livinglab: quantity 'radon' is neither built in nor in the config's [quantities] "
        "(add [quantities.radon] and pass --config FILE)"]
    proc = cli("sensor", "new", "x1", "--bus", "i2c", "--root", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "is not a livinglab checkout" in proc.stderr


def test_sensor_quantities_prints_the_site_table_and_schema(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(SITE_TOML)
    proc = cli("sensor", "quantities", "--config", "site.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "| `noise_level` | dBA | `sound` | 20 | 140 | site-defined |" in proc.stdout
    proc = cli("sensor", "quantities", "--config", "site.toml", "--schema", cwd=tmp_path)
    import json
    values = json.loads(proc.stdout)["$defs"]["Sample"]["properties"]["values"]["properties"]
    assert values["noise_level"]["maximum"] == 140.0 and "co2" in values
