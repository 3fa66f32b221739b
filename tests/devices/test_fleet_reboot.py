"""A simulated board that resets (exit 75, or the fake watchdog's SIGALRM) is started
again at once in the same flash dir, as a real board reboots; a crash keeps backoff."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

import firmware
from devices.fleet import Fleet, FleetEvent
from devices.fleet_plan import BrokerTarget, device_config, plan_round_robin

# Boots 1 and 2 reset (75) and are killed by "the watchdog"; boot 3 crashes (exit 1).
MAIN = """import os, sys
n = int(open("n").read()) + 1 if "n" in os.listdir() else 1
open("n", "w").write(str(n))
if n == 1:
    sys.exit(75)
if n == 2:
    os.system("kill -ALRM $PPID")
    while True:
        pass
sys.exit(1)
"""


class RebootingFirmware:
    FW_VERSION = "0"

    def board_files(self, board: str) -> list[tuple[Path, str]]:
        return [(self.main, "main.py")]

    def write_device_config(self, dest_dir: Path, cfg: dict[str, object]) -> Path:
        path = dest_dir / "device.json"
        path.write_text(json.dumps(cfg))
        return path

    def __init__(self, root: Path, binary: str) -> None:
        self.main = root / "reboot_main.py"
        self.main.write_text(MAIN)
        self.binary = binary

    def micropython_binary(self) -> str:
        return self.binary


@pytest.mark.timeout(30)
def test_reset_and_watchdog_restart_at_once_crash_backs_off(tmp_path: Path) -> None:
    try:
        binary = firmware.micropython_binary()
    except firmware.MicroPythonNotFoundError as exc:
        pytest.skip(str(exc))
    fw = RebootingFirmware(tmp_path, binary)
    events: list[FleetEvent] = []
    target = BrokerTarget(host="127.0.0.1", port=1)
    fleet = Fleet(plan_round_robin(1), tmp_path / "fleet",
                  lambda s: device_config(s, site="lab", broker=target, interval_s=1,
                                          profile="office"),
                  restart=True, max_backoff_s=0.2, on_event=events.append, firmware=fw)
    fleet.prepare()

    async def scenario() -> None:
        await fleet.start()
        end = time.monotonic() + 20
        while fleet.devices[0].starts < 4 and time.monotonic() < end:
            await asyncio.sleep(0.05)
        await fleet.stop()

    asyncio.run(scenario())
    exits = [e.text for e in events if e.kind == "exited"]
    assert "exited with code 75" in exits[0] and "exited with code -14" in exits[1], exits
    assert "exited with code 1" in exits[2], exits
    kinds = [e.kind for e in events if e.kind in ("exited", "restarting", "started")]
    # started, exited(75), started, exited(-14), started, exited(1), restarting, started
    assert kinds[:7] == ["started", "exited", "started", "exited", "started", "exited",
                         "restarting"], kinds
    # the same flash dir every time: the boot count it keeps went on (the 4th start may
    # be stopped before it writes)
    assert int((tmp_path / "fleet" / "air-0001" / "n").read_text()) >= 3
