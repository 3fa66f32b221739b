"""``python -m bench.ota``: over-the-air update figures (docs/firmware.md, "Updates").

Starts its own Mosquitto and a 1-device simulated fleet (the real firmware under
the MicroPython unix port in a 160k heap), runs ``livinglab fleet update`` to a
new version N times (one per run: 0.2.<i>) and prints: wall time of the command,
time the device took to stream and stage the whole firmware, updater code and
download heap, plus the flash a Pico W needs for the loader, two slots and the
outbox on its littlefs (4096-byte blocks, 848 KB file system).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import firmware
from devices.ota_pack import pack
from tests.servers import Mosquitto, wait_for

PICO_W_FS = 848 * 1024  # MicroPython's littlefs on a 2 MB Pico W
BLOCK = 4096
INLINE_MAX = 256  # littlefs keeps smaller files inside the directory's metadata


def lfs_bytes(sizes: list[int], dirs: int) -> int:
    """Flash a set of files takes on littlefs: whole blocks per file (small files are
    inlined), two metadata blocks per directory."""
    blocks = sum(0 if s <= INLINE_MAX else math.ceil(s / BLOCK) for s in sizes)
    return (blocks + 2 * dirs) * BLOCK


def flash_figures() -> dict[str, int]:
    with tempfile.TemporaryDirectory() as tmp:
        bp = pack("9.9.9", "pico_w", Path(tmp))
        sizes = [p.stat().st_size for p in bp.folder.rglob("*") if p.is_file()]
        dirs = len({p.parent for p in bp.folder.rglob("*") if p.is_file()})
    slot = lfs_bytes(sizes, dirs)
    root_files = [(firmware.FIRMWARE_DIR / n).stat().st_size for n in firmware.LOADER_FILES]
    root = lfs_bytes(root_files + [900, 10, 120], 2)  # + device.json, boot.cnt, ota.json; /, /app
    outbox = 65536  # outbox_quota_bytes default
    return {"slot_code_bytes": bp.size, "slot_files": bp.files, "slot_flash": slot,
            "two_slots_flash": 2 * slot, "root_flash": root, "outbox_flash": outbox + BLOCK,
            "free_after": PICO_W_FS - 2 * slot - root - outbox - BLOCK}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ota-"))
    try:
        broker = Mosquitto(tmp / "mosquitto")
        broker.start()
        cfg = tmp / "livinglab.toml"
        cfg.write_text(f'site = "bench"\n[gateway]\ndata_dir = "var"\n[mqtt]\nhost = "127.0.0.1"\n'
                       f'port = {broker.port}\n[fleet]\nheapsize = "160k"\n'
                       'ota_confirm_after_s = 1\n')
        sim = subprocess.Popen([sys.executable, "-m", "gateway.cli", "fleet", "simulate",
                                "--config", str(cfg), "--devices", "1", "--interval", "1"],
                               cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                               start_new_session=True)
        log = tmp / "var" / "fleet" / "air-0001" / "device.log"
        walls: list[float] = []
        packed = ""
        try:
            wait_for(lambda: log.exists() and "boot 1" in log.read_text(), 30, what="device up")
            time.sleep(2)
            for i in range(args.runs):
                t0 = time.monotonic()
                res = subprocess.run([sys.executable, "-m", "gateway.cli", "fleet", "update",
                                      "--config", str(cfg), "--version", f"0.2.{i + 1}",
                                      "--device", "air-0001", "--timeout", "120"],
                                     capture_output=True, text=True, cwd=tmp, check=False)
                walls.append(time.monotonic() - t0)
                packed = res.stdout.splitlines()[0] if res.stdout else ""
                if res.returncode != 0:
                    print(res.stdout, res.stderr, tmp)
                    return 1
        finally:
            os.kill(sim.pid, signal.SIGTERM)
            sim.wait(20)
            broker.stop()
        text = log.read_text()
    finally:
        if not os.getenv("BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    staged = [int(m) for m in re.findall(r"staged in (\d+) ms", text)]
    heap = [int(m) for m in re.findall(r"heap \+(\d+) bytes during download", text)]
    code = [int(m) for m in re.findall(r"updater loaded, (\d+) bytes", text)]
    f = flash_figures()
    print(f"runs: {len(walls)} (1 device, unix port, -X heapsize=160k, confirm_after_s=1)")
    print(f"fleet update wall time: median {statistics.median(walls):.2f} s "
          f"(min {min(walls):.2f}, max {max(walls):.2f}) incl. 1 s confirm wait and reboot")
    print(f"stream + hash + stage the whole firmware on the device: median "
          f"{statistics.median(staged)} ms ({packed})")
    print(f"heap held by the download: max {max(heap)} B; updater code while loaded: "
          f"max {max(code)} B (64-bit unix port; a Pico's 32-bit objects are smaller)")
    print(f"Pico W flash (littlefs, {BLOCK} B blocks): one slot of {f['slot_files']} files, "
          f"{f['slot_code_bytes']} B: {f['slot_flash'] // 1024} KB, "
          f"two slots {f['two_slots_flash'] // 1024} KB, loader + config + state "
          f"{f['root_flash'] // 1024} KB, outbox {f['outbox_flash'] // 1024} KB, free "
          f"{f['free_after'] // 1024} KB of {PICO_W_FS // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
