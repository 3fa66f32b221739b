"""The demo's children on record: every process it starts goes into ``demo.pids`` as
it starts, so a demo killed with -9 can be cleaned up by the next one (and by hand).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Children", "still_running"]


@dataclass
class Children:
    """Every process the demo started, written to ``demo.pids`` as each one starts."""

    pid_file: Path
    pids: dict[int, str] = field(default_factory=dict)

    def add(self, pid: int, role: str) -> None:
        self.pids[pid] = role
        with open(self.pid_file, "a", encoding="utf-8") as f:
            f.write(f"{pid} {role}\n")

    def alive(self) -> list[int]:
        out = []
        for pid in self.pids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            except PermissionError:
                pass
            out.append(pid)
        return out


def still_running(pid_file: Path) -> list[int]:
    """PIDs from an earlier demo's pid file that are still that demo's processes."""
    try:
        lines = pid_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        pid = line.split(" ", 1)[0]
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"main.py" in cmd or b"gateway.cli" in cmd or b"embedded_broker" in cmd:
            out.append(int(pid))
    return out
