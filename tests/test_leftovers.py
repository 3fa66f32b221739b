"""The suite stops process groups and fails a test that leaves a process behind (issue 15:
micropython devices under faketime were still running 12 minutes after the suite)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import leftovers
from tests.servers import stop_pid, wait_for

ROOT = Path(__file__).resolve().parents[1]


def _children(pid: int) -> list[int]:
    return sorted(leftovers.descendants(pid))


def _alive(pid: int) -> bool:
    st = leftovers._stat(pid)
    return st is not None and st[0] != "Z"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("wrapper", [["sh", "-c", "sleep 300; :"],
                                     ["faketime", "-f", "+1d", "sleep", "300"]])
def test_stop_pid_stops_the_wrapper_and_its_child(wrapper: list[str]) -> None:
    if shutil.which(wrapper[0]) is None:
        pytest.skip(f"{wrapper[0]} not installed")
    proc = subprocess.Popen(wrapper, start_new_session=True, stdin=subprocess.DEVNULL)
    kids = wait_for(lambda: _children(proc.pid), 10, what="the wrapped child")
    stop_pid(proc.pid)
    assert proc.poll() is not None
    wait_for(lambda: not any(_alive(k) for k in kids), 5, what="the child gone with its group")


@pytest.mark.timeout(120)
def test_a_test_that_leaves_a_process_fails(tmp_path: Path) -> None:
    test = tmp_path / "test_leak.py"
    test.write_text(
        "import subprocess\n"
        "from tests.conftest import no_process_left_behind  # noqa: F401\n"
        "def test_orphan():\n"
        "    wrapper = subprocess.Popen(['sh', '-c', 'sleep 300 & echo $!; wait'],\n"
        "                               stdout=subprocess.PIPE, start_new_session=True)\n"
        "    open('child.pid', 'w').write(wrapper.stdout.readline().decode())\n"
        "    wrapper.kill()  # only the wrapper: the sleep is orphaned\n"
        "    wrapper.wait()\n"
        "def test_clean():\n"
        "    subprocess.run(['true'], check=True)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop(leftovers.MARKER, None)
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-p", "no:randomly", str(test), "--rootdir", str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=100)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "2 passed, 1 error" in out and "ERROR at teardown of test_orphan" in out, out
    assert "left 1 process(es) running (killed now)" in out and "sleep 300" in out, out
    orphan = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(orphan) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(orphan)
