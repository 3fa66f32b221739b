"""Serial mode (no Wi-Fi: JSON lines on stdout) and memory use in a Pico W sized heap."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from functools import partial
from pathlib import Path

import pytest

from tests.firmware.contract import check_telemetry
from tests.firmware.device import PREFIX, SITE, Received, device_config, make_device
from tests.servers import Mosquitto, wait_for

# A Pico W has ~150-170 KB of GC heap free once Wi-Fi is up (docs/firmware.md); the
# unix port is 64-bit, so the same objects take more room here: a strict test.
PICO_W_HEAP = "160k"


@pytest.mark.timeout(30)
def test_serial_mode_prints_lines(micropython: str, tmp_path: Path) -> None:
    cfg = device_config("air-0007", 1, serial=True, interval_s=1)
    flash = make_device(micropython, tmp_path, cfg).flash
    env = dict(os.environ, LIVINGLAB_SIM_SPEED="10")
    proc = subprocess.Popen([micropython, "main.py"], cwd=flash, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        end = time.monotonic() + 20
        while len(lines) < 6 and time.monotonic() < end:
            lines.append(proc.stdout.readline().decode())
    finally:
        proc.kill()
        proc.wait(10)
    assert lines[0].startswith('air-0007/status {"state":"online"')
    tele = [ln for ln in lines if ln.startswith("air-0007/telemetry ")]
    assert len(tele) >= 4
    for i, ln in enumerate(tele):
        payload = ln.split(" ", 1)[1].strip().encode()
        msg = Received(f"{PREFIX}/{SITE}/air-0007/telemetry", payload, False, time.time())
        assert check_telemetry(msg, "air-0007") == []
        assert json.loads(payload)["seq"] == i


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_heap_does_not_grow_over_thousands_of_cycles(micropython: str, tmp_path: Path,
                                                     broker: Mosquitto) -> None:
    cfg = device_config("air-0099", broker.port, interval_s=1)
    cfg["sim"]["mem_report_every"] = 250
    dev = make_device(micropython, tmp_path / "flash", cfg, speed=100.0, heap=PICO_W_HEAP)
    dev.start()
    reports: list[tuple[int, int, int]] = []

    def read_reports() -> list[tuple[int, int, int]]:
        found = re.findall(r"mem free=(\d+) alloc=(\d+) cycle=(\d+)", dev.stderr())
        reports[:] = [(int(f), int(a), int(c)) for f, a, c in found]
        return reports

    try:
        def reports_at_least(n: int) -> bool:
            return len(read_reports()) >= n

        for k in range(3):  # reconnects: the broker goes away and comes back
            wait_for(partial(reports_at_least, 3 + 2 * k), 60, what="mem reports")
            broker.stop()
            wait_for(partial(reports_at_least, 4 + 2 * k), 60, what="offline cycles")
            broker.start()
        wait_for(lambda: len(read_reports()) >= 14, 120, what="3500 cycles")
        assert dev.alive(), dev.stderr()[-2000:]
    finally:
        dev.stop()
    cycles = reports[-1][2]
    assert cycles >= 3500
    assert "connects=4" in dev.stderr()
    allocs = [a for _, a, _ in reports]
    steady = allocs[2:]
    # after GC the live heap stays flat (outbox and buffers are preallocated)
    assert max(steady) - min(steady) < 4096, allocs
    assert allocs[-1] <= allocs[2] + 2048, allocs
    print(f"heap {PICO_W_HEAP}: live after GC {min(allocs)}..{max(allocs)} bytes, "
          f"min free {min(f for f, _, _ in reports)} bytes over {cycles} cycles")
