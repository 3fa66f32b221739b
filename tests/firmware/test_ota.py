"""The update path on the device (ll/ota.py + the loader) under the MicroPython unix port:
HMAC vectors, version order, refusals, rollback, heap cost, a power cut at every
block-device operation of a littlefs2 file system, and kill -9 at every step."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

import firmware

CHECK = Path(__file__).parent / "mp" / "check_ota.py"
CHECKS = [
    "hmac_sha256_rfc4231",
    "constant_time_equal",
    "versions_compare_as_numbers",
    "manifest_paths_are_confined",
    "power_cut_at_every_operation_boots_old_or_new_complete",
    "refusals_leave_the_running_slot_alone",
    "rolls_back_after_max_tries",
    "replay_does_not_reinstall_a_rolled_back_version",
    "download_heap_cost_is_small",
]


@pytest.fixture(scope="module")
def results(micropython: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    scratch = tmp_path_factory.mktemp("ota")
    proc = subprocess.run([micropython, str(CHECK), str(firmware.FIRMWARE_DIR)], cwd=scratch,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        status, _, rest = line.partition(" ")
        name, _, detail = rest.partition(" ")
        out[name] = status if status in ("ok", "info") else f"{status} {detail}"
        if status == "info":
            print(line)
    return out


@pytest.mark.timeout(150)
@pytest.mark.parametrize("name", CHECKS)
def test_ota_check(results: dict[str, str], name: str) -> None:
    assert results.get(name) == "ok", results.get(name, "did not run")


def _run(micropython: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([micropython, str(CHECK), str(firmware.FIRMWARE_DIR), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


@pytest.mark.timeout(120)
def test_kill_9_at_every_step_boots_old_or_new(micropython: str, tmp_path: Path) -> None:
    (tmp_path / "clean").mkdir()
    clean = _run(micropython, "kill", str(tmp_path / "clean"), "999")
    out, err = clean.communicate(timeout=30)
    assert out.startswith("done "), err
    steps = int(out.split()[1])
    assert steps >= 8
    seen: list[str] = []
    for k in range(1, steps + 1):
        d = tmp_path / f"cut{k}"
        d.mkdir()
        proc = _run(micropython, "kill", str(d), str(k))
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "at k": it now waits at that step
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert line.strip() == f"at {k}", (line, proc.stderr.read() if proc.stderr else "")
        check = _run(micropython, "verify", str(d))
        got, err = check.communicate(timeout=30)
        seen.append(got.strip())
        assert got.strip() in ("old", "new"), f"killed at step {k}: {got} {err}"
    assert seen[0] == "old" and seen[-1] == "new", seen
