"""Every sensor kind found by convention (ll/drivers/<kind>.py with ``open_sensor``) has
its twin, its datasheet-vector checks and a catalogue entry, and runs in a simulated
device; every check script under mp/sensors passes on the unix port."""

from __future__ import annotations

from pathlib import Path

import pytest

import firmware
from devices import catalogue
from tests.firmware.sensor_kits import (
    MP_DIR,
    check_readings,
    convention_kinds,
    run_check,
    simulate,
)

FW = firmware.FIRMWARE_DIR
KINDS = convention_kinds(FW)
CHECK_FILES = sorted((MP_DIR / "sensors").glob("check_*.py"))


def test_the_worked_example_is_found_by_convention() -> None:
    assert "sht4x" in KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_kit_is_complete(kind: str) -> None:
    assert (FW / "ll" / "sim" / f"twin_{kind}.py").is_file(), "twin missing"
    assert (MP_DIR / "sensors" / f"check_{kind}.py").is_file(), "checks missing"
    assert catalogue.sensor(kind).kind == kind


@pytest.mark.parametrize("script", CHECK_FILES, ids=[p.stem for p in CHECK_FILES])
def test_sensor_checks(micropython: str, tmp_path: Path, script: Path) -> None:
    results = run_check(micropython, script, FW, MP_DIR, tmp_path)
    assert results, "no checks ran"
    assert all(v == "ok" for v in results.values()), results


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_runs_in_a_simulated_device(micropython: str, tmp_path: Path, kind: str) -> None:
    profile = catalogue.sensor(kind)
    check_readings(simulate(micropython, FW, {"kind": kind}, tmp_path), profile)
