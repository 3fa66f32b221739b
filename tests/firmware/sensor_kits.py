"""Running a sensor kind's kit (driver, twin, checks) on the unix port, for any checkout.

Used by ``test_sensor_kits.py`` on this repository and by the scaffold tests on a
generated copy, so "the suite covers a new sensor" is one code path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import firmware
from devices import catalogue
from protocols import Registry, site_quantity, validate_telemetry

MP_DIR = Path(__file__).parent / "mp"


def convention_kinds(fw_dir: Path) -> list[str]:
    """Sensor kinds whose driver is found by convention (defines ``open_sensor``)."""
    return sorted(p.stem for p in (fw_dir / "ll" / "drivers").glob("*.py")
                  if "\ndef open_sensor(" in p.read_text(encoding="utf-8"))


def run_check(micropython: str, script: Path, fw_dir: Path, mp_dir: Path,
              scratch: Path) -> dict[str, str]:
    """``name -> "ok" | "FAIL ..."`` for one check script; asserts it exited cleanly."""
    scratch.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([micropython, str(script), str(fw_dir), str(mp_dir)], cwd=scratch,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        status, _, rest = line.partition(" ")
        name, _, detail = rest.partition(" ")
        out[name] = status if status == "ok" else f"{status} {detail}"
    return out


def registry_for(profile: catalogue.SensorProfile) -> Registry:
    """The built-ins plus what the sensor's catalogue entry says a site must declare."""
    return Registry(site_quantity(n, q.unit, q.domain, q.min, q.max)
                    for n, q in profile.site_quantities.items())


def simulate(micropython: str, fw_dir: Path, spec: dict[str, Any], flash: Path,
             messages: int = 2, timeout: float = 30.0) -> list[bytes]:
    """Run the firmware (serial mode) with one sensor; the telemetry payloads it prints."""
    for src, rel in firmware.board_files("unix", fw_dir):
        target = flash / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    cfg = dict(firmware.DEFAULT_DEVICE_CONFIG, device="kit-0001", serial=True, interval_s=1,
               sensors=[spec])
    firmware.write_device_config(flash, cfg)
    env = dict(os.environ, LIVINGLAB_SIM_SPEED="5")
    proc = subprocess.Popen([micropython, "main.py"], cwd=flash, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    out: list[bytes] = []
    try:
        end = time.monotonic() + timeout
        while len(out) < messages and time.monotonic() < end:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith(b"kit-0001/telemetry "):
                out.append(line.split(b" ", 1)[1].strip())
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    assert len(out) == messages, err.decode(errors="replace")[-2000:]
    return out


def check_readings(payloads: list[bytes], profile: catalogue.SensorProfile) -> None:
    """Every value the gateway would accept, exactly the catalogue's quantities."""
    registry = registry_for(profile)
    for payload in payloads:
        doc = json.loads(payload)
        assert [s["sensor"] for s in doc["samples"]] == [profile.kind]
        assert sorted(doc["samples"][0]["values"]) == sorted(profile.quantities)
        outcome = validate_telemetry("livinglab/v1/lab/kit-0001/telemetry", payload, "lab",
                                     time.time(), "kit-0001", registry)
        assert outcome.accepted is not None and outcome.rejections == (), outcome.rejections
