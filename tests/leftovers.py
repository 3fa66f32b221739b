"""Which processes a test left behind: its own, found by an environment marker.

Every process a test starts inherits ``LIVINGLAB_TEST_ID`` (set for the test's
duration, cleared between tests), so it is found even after it was orphaned and
re-parented to init (a ``micropython`` under a ``faketime`` wrapper that was
stopped alone). Processes still below the pytest process that were not there
before the test count too (a child started with an environment of its own).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

MARKER = "LIVINGLAB_TEST_ID"


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) from /proc/PID/stat, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2:].split()
    return rest[0], int(rest[1])


def _pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def descendants(root: int) -> set[int]:
    """Live (not zombie) processes below ``root``."""
    parent: dict[int, int] = {}
    for pid in _pids():
        st = _stat(pid)
        if st is not None and st[0] != "Z":
            parent[pid] = st[1]
    out: set[int] = set()
    for pid in parent:
        p, seen = parent.get(pid), 0
        while p is not None and p > 1 and seen < 64:
            if p == root:
                out.add(pid)
                break
            p, seen = parent.get(p), seen + 1
    return out


def marked(value: str) -> set[int]:
    """Live processes whose environment holds ``LIVINGLAB_TEST_ID=value``."""
    needle = b"\0" + f"{MARKER}={value}".encode() + b"\0"
    me, out = os.getpid(), set()
    for pid in _pids():
        if pid == me:
            continue
        try:
            env = b"\0" + Path(f"/proc/{pid}/environ").read_bytes() + b"\0"
        except OSError:
            continue
        if needle in env:
            st = _stat(pid)
            if st is not None and st[0] != "Z":
                out.add(pid)
    return out


def describe(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace").strip()
    except OSError:
        cmd = "?"
    return f"{pid} {cmd[:120]}"


def kill(pids: set[int]) -> None:
    """SIGKILL each leftover and its group (it may lead one)."""
    for pid in pids:
        for send in (os.killpg, os.kill):
            try:
                send(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
